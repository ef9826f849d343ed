//! Zone states and what each means for replacements (the table in `scheduler::eviction`).

use std::collections::BTreeMap;

use serde_json::json;

use crate::scheduler::ZoneState::{self, *};
use crate::scheduler::eviction::assess;
use crate::scheduler::harness::*;

/// A cluster of zones given as (name, agents, of which unreachable).
fn cluster(zones: &[(&str, usize, usize)]) -> Harness {
    let mut h = Harness::new();
    for &(zone, total, lost) in zones {
        for agent in h.zone(zone, total).into_iter().take(lost) {
            h.lose(&agent);
        }
    }
    h
}

fn states(zones: &[(&str, usize, usize)]) -> BTreeMap<String, ZoneState> {
    let h = cluster(zones);
    assess(&h.state, h.policy.eviction_threshold)
        .zones
        .into_iter()
        .map(|(name, z)| (name, z.state))
        .collect()
}

fn expect(pairs: &[(&str, ZoneState)]) -> BTreeMap<String, ZoneState> {
    pairs.iter().map(|(z, s)| (z.to_string(), *s)).collect()
}

/// A table row: what it shows, the zones (name, agents, unreachable), the states wanted.
type Row<'a> = (
    &'a str,
    &'a [(&'a str, usize, usize)],
    &'a [(&'a str, ZoneState)],
);

#[test]
fn each_zone_state_is_assessed_from_the_registry() {
    let table: &[Row] = &[
        (
            "nothing lost",
            &[("a", 3, 0), ("b", 3, 0)],
            &[("a", Healthy), ("b", Healthy)],
        ),
        (
            "one agent lost is a lost machine",
            &[("a", 3, 1), ("b", 3, 0), ("c", 3, 0)],
            &[("a", Healthy), ("b", Healthy), ("c", Healthy)],
        ),
        (
            "most of a zone lost: partly unreachable",
            &[("a", 3, 2), ("b", 3, 0), ("c", 3, 0)],
            &[("a", PartlyUnreachable), ("b", Healthy), ("c", Healthy)],
        ),
        (
            "a whole zone lost while the others are healthy: outage",
            &[("a", 3, 3), ("b", 3, 0), ("c", 3, 1)],
            &[("a", Outage), ("b", Healthy), ("c", Healthy)],
        ),
        (
            "a whole zone lost while another is failing too: paced",
            &[("a", 3, 3), ("b", 3, 2), ("c", 3, 0)],
            &[
                ("a", PartlyUnreachable),
                ("b", PartlyUnreachable),
                ("c", Healthy),
            ],
        ),
        (
            "every zone unreachable: cut off",
            &[("a", 2, 2), ("b", 2, 2), ("c", 1, 1)],
            &[("a", CutOff), ("b", CutOff), ("c", CutOff)],
        ),
        (
            "a lone zone wholly lost has nowhere to go: paced",
            &[("a", 3, 3)],
            &[("a", PartlyUnreachable)],
        ),
    ];
    for (what, zones, want) in table {
        assert_eq!(states(zones), expect(want), "{what}");
    }
}

/// Nine agents in three zones, `/spread` with nine instances over the zones (one per agent),
/// each taking `cpus` of an agent's eight.
fn spread(cpus: u32) -> Harness {
    let mut h = Harness::new();
    for z in ["a", "b", "c"] {
        h.zone(z, 3);
    }
    h.running(json!({"id": "/spread", "instances": 9, "cpus": cpus,
                     "constraints": [["@zone", "GROUP_BY"]]}));
    assert_eq!(
        h.per_zone("/spread"),
        BTreeMap::from([("a".into(), 3), ("b".into(), 3), ("c".into(), 3)])
    );
    h
}

/// Loses `n` agents of zone `a`, marks their instances, and lets the settle delay pass.
fn lose_in_a(h: &mut Harness, n: usize) {
    for i in 1..=n {
        h.lose(&domain::AgentId::from(format!("a-{i}").as_str()));
    }
    h.pass();
    h.advance(h.policy.settle_ms);
}

/// The zone states, then how many of zone a's instances one pass after the settle delay
/// replaces, for each state.
#[test]
fn each_zone_state_replaces_what_its_rule_says_in_one_pass() {
    let table: &[(&str, usize, usize)] = &[
        ("healthy: one lost agent's instance is replaced", 1, 1),
        (
            "partly unreachable: one agent's instances per interval",
            2,
            1,
        ),
        ("outage: every instance of the zone at once", 3, 3),
    ];
    for &(what, lost, replaced) in table {
        let mut h = spread(1);
        lose_in_a(&mut h, lost);
        let d = h.pass();
        assert_eq!(placed(&d).len(), replaced, "{what}: {:?}", kinds(&d));
        let on_active = |i: &&state::Instance| {
            h.state
                .agent(&i.agent_id)
                .is_some_and(|r| r.state == state::AgentState::Active)
        };
        assert!(
            placed(&d).iter().all(on_active),
            "{what}: only on agents that answer"
        );
    }

    // Every zone unreachable: nothing is replaced, however long it lasts.
    let mut h = spread(1);
    for z in ["a", "b", "c"] {
        for i in 1..=3 {
            h.lose(&domain::AgentId::from(format!("{z}-{i}").as_str()));
        }
    }
    let d = h.pass();
    assert_eq!(marked(&d).len(), 9, "marked unreachable");
    h.advance(3_600_000);
    let d = h.decide();
    assert!(d.command.is_none(), "cut off: {:?}", kinds(&d));
    assert!(d.eviction.last.cut_off());
}

#[test]
fn a_zone_outage_is_balanced_over_the_remaining_zones() {
    let mut h = spread(1);
    lose_in_a(&mut h, 3);
    let d = h.pass();
    assert_eq!(d.eviction.last.state("a"), Outage);
    assert_eq!(placed(&d).len(), 3);
    let per = h.per_zone("/spread");
    assert_eq!(per.get("a"), None, "{per:?}");
    assert_eq!(per["b"] + per["c"], 9, "{per:?}");
    assert!(per["b"].abs_diff(per["c"]) <= 1, "{per:?}");
}

#[test]
fn a_zone_outage_replaces_as_far_as_capacity_allows_and_queues_the_rest() {
    // Seven of eight cpus each: every agent holds one instance, none has room for another.
    let mut h = spread(7);
    lose_in_a(&mut h, 3);
    let d = h.decide();
    assert!(placed(&d).is_empty());
    let entry = &d.queue[&app_id("/spread")];
    assert_eq!(entry.unplaced, 3);
    assert!(!entry.reasons.is_empty(), "the queue says why: {entry:?}");
}

#[test]
fn a_partly_unreachable_zone_releases_one_agent_per_interval_and_wakes_for_the_next() {
    let mut h = spread(1);
    lose_in_a(&mut h, 2);
    let d = h.pass();
    assert_eq!(d.eviction.last.state("a"), PartlyUnreachable);
    assert_eq!(placed(&d).len(), 1);
    let released = h.now;
    assert_eq!(
        d.next_wake_ms,
        Some(released + h.policy.eviction_interval_ms)
    );
    assert_eq!(d.eviction.released.len(), 1);

    h.advance(h.policy.eviction_interval_ms - 1);
    assert!(
        placed(&h.pass()).is_empty(),
        "the second agent waits for the interval"
    );
    h.advance(1);
    assert_eq!(placed(&h.pass()).len(), 1, "then its instance is replaced");
}

#[test]
fn agents_of_a_failing_zone_found_silent_one_after_another_are_judged_together() {
    let mut h = spread(1);
    // Marked half a settle delay apart: until the last one settles, the zone is not judged.
    for i in 1..=3 {
        h.lose(&domain::AgentId::from(format!("a-{i}").as_str()));
        let d = h.pass();
        assert!(placed(&d).is_empty(), "a-{i} marked: nothing replaced yet");
        h.advance(h.policy.settle_ms / 2);
    }
    let d = h.decide();
    assert!(
        placed(&d).is_empty(),
        "a-3 marked {} ms ago",
        h.policy.settle_ms / 2
    );
    assert_eq!(d.next_wake_ms, Some(h.now + h.policy.settle_ms / 2));
    h.advance(h.policy.settle_ms / 2);
    let d = h.decide();
    assert_eq!(d.eviction.last.state("a"), Outage);
    assert_eq!(placed(&d).len(), 3, "judged whole: an outage, not paced");
}

#[test]
fn each_transition_is_an_event_naming_the_zone_and_its_state() {
    let mut h = spread(1);
    let d = h.pass();
    assert!(
        d.events.is_empty(),
        "all healthy from the start: no transition"
    );

    for i in 1..=3 {
        h.lose(&domain::AgentId::from(format!("a-{i}").as_str()));
    }
    let d = h.pass();
    assert_eq!(event_types(&d), ["eviction_protection_event"]);
    let e = &d.events[0].fields();
    assert_eq!(e["zones"], json!(["a"]));
    assert_eq!(e["zoneStates"]["a"], "outage");
    assert_eq!(e["zoneStates"]["b"], "healthy");
    assert_eq!(e["engaged"], true);
    assert_eq!(e["cutOff"], false);
    assert!(
        e["reason"].as_str().is_some_and(|r| r.contains("zone a")),
        "{e}"
    );

    h.advance(h.policy.settle_ms);
    let d = h.pass();
    assert!(
        !event_types(&d).contains(&"eviction_protection_event"),
        "no transition, no event"
    );

    for i in 1..=3 {
        h.back(&domain::AgentId::from(format!("a-{i}").as_str()));
    }
    let d = h.pass();
    assert_eq!(event_types(&d), ["eviction_protection_event"]);
    assert_eq!(d.events[0].fields()["zones"], json!([]));
    assert_eq!(d.events[0].fields()["engaged"], false);
}

#[test]
fn released_agents_are_forgotten_once_every_zone_is_healthy_again() {
    let mut h = spread(1);
    lose_in_a(&mut h, 2);
    h.pass();
    assert_eq!(h.obs.eviction.released.len(), 1);
    for i in 1..=2 {
        h.back(&domain::AgentId::from(format!("a-{i}").as_str()));
    }
    h.pass();
    assert!(h.obs.eviction.released.is_empty());
}

#[test]
fn a_cut_off_cluster_coming_back_zone_by_zone_is_not_taken_half_way_for_an_outage() {
    let mut h = spread(1);
    let originals = ids_of(&h.live("/spread"));
    let agent = |z: &str, i: usize| domain::AgentId::from(format!("{z}-{i}").as_str());
    for z in ["a", "b", "c"] {
        for i in 1..=3 {
            h.lose(&agent(z, i));
        }
    }
    h.pass();
    h.advance(60_000);
    assert!(h.pass().command.is_none(), "cut off: nothing replaced");
    // Zones a and b answer first: for a moment c looks like a zone lost while the others are
    // healthy. Nothing is replaced until the agents have been still for the settle delay.
    for z in ["a", "b"] {
        for i in 1..=3 {
            h.back(&agent(z, i));
        }
    }
    let d = h.pass();
    assert_eq!(d.eviction.last.state("c"), Outage);
    assert!(
        placed(&d).is_empty() && forgotten(&d).is_empty(),
        "{:?}",
        kinds(&d)
    );
    assert_eq!(d.next_wake_ms, Some(h.now + h.policy.settle_ms));
    h.advance(h.policy.settle_ms / 2);
    for i in 1..=3 {
        h.back(&agent("c", i));
    }
    h.advance(h.policy.settle_ms);
    h.settle();
    assert_eq!(
        ids_of(&h.live("/spread")),
        originals,
        "the same instances run on"
    );
}
