//! Rebalancing a `GROUP_BY` after a zone returns.

use std::collections::BTreeMap;

use serde_json::json;
use state::{Condition, Goal};

use crate::scheduler::harness::*;

/// Runs `/spread` (six instances, `@zone GROUP_BY`) with zone `a` lost and replaced, then
/// brings `a` back: b and c hold three each, a none.
fn returned_zone() -> Harness {
    let mut h = Harness::new();
    for z in ["a", "b", "c"] {
        h.zone(z, 2);
    }
    h.running(json!({"id": "/spread", "instances": 6, "constraints": [["@zone", "GROUP_BY"]]}));
    for i in 1..=2 {
        h.lose(&domain::AgentId::from(format!("a-{i}").as_str()));
    }
    h.pass();
    h.advance(h.policy.settle_ms);
    h.pass();
    h.start_all(true);
    h.settle();
    for i in 1..=2 {
        h.back(&domain::AgentId::from(format!("a-{i}").as_str()));
    }
    assert_eq!(
        h.per_zone("/spread"),
        BTreeMap::from([("b".into(), 3), ("c".into(), 3)])
    );
    h
}

#[test]
fn a_settled_app_launches_one_extra_instance_where_its_group_by_is_emptiest() {
    let mut h = returned_zone();
    let d = h.decide();
    assert_eq!(placed(&d).len(), 1, "one at a time");
    assert!(placed(&d)[0].agent_id.0.as_str().starts_with("a-"));
    assert!(
        goals(&d).is_empty(),
        "nothing stops before the extra one runs"
    );
    assert!(d.queue.is_empty(), "a rebalance is not a queued launch");
}

#[test]
fn the_surplus_waits_for_the_extra_instance_then_goes_where_the_group_by_is_fullest() {
    let mut h = returned_zone();
    h.pass();
    let d = h.decide();
    assert!(
        d.command.is_none(),
        "the extra instance is starting: {:?}",
        kinds(&d)
    );
    h.start_all(true);
    let d = h.decide();
    let stopped = goals(&d);
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert_eq!(stopped[0].1, Goal::Decommissioned);
    let victim = &h.state.instances()[&stopped[0].0];
    assert!(
        !victim.agent_id.0.as_str().starts_with("a-"),
        "not in the emptiest zone"
    );
}

#[test]
fn rebalancing_ends_balanced_and_never_below_the_wanted_count_running() {
    let mut h = returned_zone();
    for _ in 0..20 {
        let running = h
            .live("/spread")
            .iter()
            .filter(|i| i.condition == Condition::Running)
            .count();
        assert!(running >= 6, "{running} running");
        let d = h.pass();
        h.start_all(true);
        let stopping: Vec<_> = h
            .state
            .instances()
            .values()
            .filter(|i| i.goal == Goal::Decommissioned && !i.condition.is_terminal())
            .map(|i| i.id.clone())
            .collect();
        for id in stopping {
            h.report(&id, Condition::Killed);
        }
        if d.command.is_none() {
            break;
        }
    }
    assert_eq!(
        h.per_zone("/spread"),
        BTreeMap::from([("a".into(), 2), ("b".into(), 2), ("c".into(), 2)])
    );
}

#[test]
fn a_balanced_app_is_left_alone() {
    let mut h = Harness::new();
    for z in ["a", "b"] {
        h.zone(z, 2);
    }
    h.running(json!({"id": "/spread", "instances": 4, "constraints": [["@zone", "GROUP_BY"]]}));
    let d = h.decide();
    assert!(d.command.is_none(), "{:?}", kinds(&d));
    assert_eq!(d.next_wake_ms, None);
}
