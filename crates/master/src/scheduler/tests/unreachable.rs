//! Instances on unreachable agents: `unreachableStrategy`, marking, the settle delay.

use serde_json::{Value, json};
use state::{Condition, Goal};

use crate::scheduler::harness::*;

/// Three zones of three agents, `/web` with one instance per agent (`hostname UNIQUE`).
fn nine(strategy: Value) -> Harness {
    let mut h = Harness::new();
    for z in ["a", "b", "c"] {
        h.zone(z, 3);
    }
    let mut app = json!({"id": "/web", "instances": 6, "constraints": [["hostname", "UNIQUE"]]});
    if !strategy.is_null() {
        app["unreachableStrategy"] = strategy;
    }
    h.running(app);
    h
}

fn on(h: &Harness, agent: &str) -> Vec<state::InstanceId> {
    h.live("/web")
        .into_iter()
        .filter(|i| i.agent_id.0.as_str() == agent)
        .map(|i| i.id)
        .collect()
}

/// The first agent of zone `a` that runs an instance of `/web`.
fn busy_agent(h: &Harness) -> domain::AgentId {
    ["a-1", "a-2", "a-3"]
        .into_iter()
        .map(domain::AgentId::from)
        .find(|a| !on(h, a.0.as_str()).is_empty())
        .expect("an agent of zone a runs /web")
}

#[test]
fn a_lost_agents_instances_are_held_for_the_settle_delay_then_replaced_at_once_by_default() {
    let mut h = nine(Value::Null);
    let lost = busy_agent(&h);
    let stranded = on(&h, lost.0.as_str());
    h.lose(&lost);
    let d = h.decide();
    assert_eq!(marked(&d), stranded, "marked unreachable, not replaced yet");
    assert!(placed(&d).is_empty());
    assert_eq!(d.next_wake_ms, Some(h.now + h.policy.settle_ms));
    h.commit(&d);

    h.advance(h.policy.settle_ms);
    let d = h.decide();
    assert_eq!(
        forgotten(&d),
        stranded,
        "expunged at once (Marathon's default)"
    );
    assert_eq!(placed(&d).len(), stranded.len());
    assert!(placed(&d).iter().all(|i| i.agent_id != lost));
}

#[test]
fn inactive_and_expunge_deadlines_replace_then_forget_and_each_is_a_wake_up() {
    let mut h = nine(json!({"inactiveAfterSeconds": 300, "expungeAfterSeconds": 600}));
    let lost = busy_agent(&h);
    let stranded = on(&h, lost.0.as_str());
    let since = h.now;
    h.lose(&lost);
    h.pass();
    h.advance(h.policy.settle_ms);
    let d = h.pass();
    assert!(placed(&d).is_empty(), "not inactive yet");
    assert_eq!(d.next_wake_ms, Some(since + 300_000));

    h.now = since + 300_000;
    let d = h.pass();
    assert_eq!(placed(&d).len(), stranded.len(), "replaced once inactive");
    assert!(forgotten(&d).is_empty(), "but not forgotten");
    assert_eq!(d.next_wake_ms, Some(since + 600_000));
    h.start_all(true);

    h.now = since + 600_000;
    let d = h.decide();
    assert_eq!(forgotten(&d), stranded, "expunged");
    assert!(placed(&d).is_empty());
    h.commit(&d);
    assert!(h.state.instances().keys().all(|id| !stranded.contains(id)));
}

#[test]
fn a_disabled_strategy_waits_for_the_agent_forever() {
    let mut h = nine(json!("disabled"));
    let lost = busy_agent(&h);
    let stranded = on(&h, lost.0.as_str());
    h.lose(&lost);
    h.pass();
    h.advance(86_400_000);
    let d = h.decide();
    assert!(d.command.is_none(), "{:?}", kinds(&d));
    assert_eq!(d.next_wake_ms, None, "no deadline to wake for");
    for id in &stranded {
        assert_eq!(h.state.instances()[id].condition, Condition::Unreachable);
    }
}

#[test]
fn an_instance_told_to_stop_on_an_unreachable_agent_is_forgotten_at_once() {
    let mut h = nine(json!("disabled"));
    let lost = busy_agent(&h);
    let stopping = on(&h, lost.0.as_str()).remove(0);
    let revision = h.state.instances()[&stopping].revision;
    h.apply(state::Command::SetGoals {
        changes: vec![state::GoalChange {
            instance_id: stopping.clone(),
            revision,
            goal: Goal::Decommissioned,
        }],
        at_ms: h.now,
    });
    h.lose(&lost);
    let d = h.decide();
    assert_eq!(forgotten(&d), vec![stopping]);
}
