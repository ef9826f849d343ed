//! Placement glue: capacity from the state's usage, the per-pass launch budget, the queue.

use serde_json::json;

use crate::scheduler::harness::*;
use crate::scheduler::{REASON_NEXT_PASS, live_agents};

#[test]
fn the_launch_budget_leaves_the_rest_for_the_next_pass_with_a_reason() {
    let mut h = Harness::new();
    h.zone("a", 2);
    h.policy.launch_budget = 2;
    h.app(json!({"id": "/many", "instances": 5, "cpus": 0.1, "mem": 16}));
    let d = h.pass();
    assert_eq!(placed(&d).len(), 2);
    let entry = &d.queue[&app_id("/many")];
    assert_eq!(entry.unplaced, 3);
    assert!(entry.reasons.contains_key(REASON_NEXT_PASS), "{entry:?}");
    assert_eq!(placed(&h.pass()).len(), 2);
    let d = h.pass();
    assert_eq!(placed(&d).len(), 1);
    assert!(d.queue.is_empty());
}

#[test]
fn what_one_app_takes_in_a_pass_is_not_offered_to_the_next() {
    let mut h = Harness::new();
    h.agent("solo", "a");
    h.app(json!({"id": "/first", "instances": 1, "cpus": 8}));
    h.app(json!({"id": "/second", "instances": 1, "cpus": 8}));
    let d = h.decide();
    assert_eq!(placed(&d).len(), 1);
    assert_eq!(placed(&d)[0].app_id, app_id("/first"));
    let entry = &d.queue[&app_id("/second")];
    assert_eq!(entry.unplaced, 1);
    assert!(!entry.reasons.is_empty(), "{entry:?}");
    h.commit(&d);
    assert!(placed(&h.decide()).is_empty(), "the agent is full");
}

#[test]
fn free_capacity_is_what_the_state_machine_counts() {
    let mut h = Harness::new();
    let a = h.agent("solo", "a");
    h.running(
        json!({"id": "/web", "instances": 2, "cpus": 1.5, "mem": 100,
                     "portDefinitions": [{"port": 0}]}),
    );
    let used = h.state.usage(&a);
    let agent = live_agents(&h.state).remove(0);
    assert_eq!(agent.resources.cpus, 8.0 - 3.0);
    assert_eq!(agent.resources.mem, 8192.0 - 200.0);
    assert_eq!(used.ports.len(), 2);
    for p in &used.ports {
        assert!(!agent.resources.ports.contains(*p), "port {p} is taken");
    }
}

#[test]
fn nothing_to_place_on_is_queued_with_a_reason_and_no_commit() {
    let mut h = Harness::new();
    h.app(json!({"id": "/nowhere", "instances": 2}));
    let d = h.decide();
    assert!(d.command.is_none());
    assert_eq!(d.queue[&app_id("/nowhere")].unplaced, 2);
}

#[test]
fn the_next_pass_reason_names_the_budget() {
    let budget = crate::scheduler::MAX_LAUNCHES_PER_PASS;
    assert!(REASON_NEXT_PASS.contains(&format!("at most {budget} launches")));
}

#[test]
fn a_scale_down_announces_task_killing_for_the_running_victims_only_once_their_kill_applies() {
    use crate::scheduler::Requires;
    use state::Condition;
    let mut h = Harness::new();
    h.zone("a", 2);
    let running = h.running(json!({"id": "/web", "instances": 2, "cpus": 0.1, "mem": 16}));
    h.app(json!({"id": "/web", "instances": 1, "cpus": 0.1, "mem": 16}));
    let d = h.decide();
    let killed = goals(&d);
    assert_eq!(killed.len(), 1, "{killed:?}");
    assert!(ids_of(&running).contains(&killed[0].0));
    let killing: Vec<_> = d
        .events
        .iter()
        .filter(|e| e.event_type() == "status_update_event")
        .collect();
    assert_eq!(killing.len(), 1, "{:?}", event_types(&d));
    assert_eq!(killing[0].fields()["taskStatus"], "TASK_KILLING");
    assert_eq!(killing[0].fields()["taskId"], json!(killed[0].0));
    assert_eq!(
        killing[0].requires,
        Some(Requires::Goal(killed[0].0.clone())),
        "published only if the goal change was not stale"
    );

    // An instance placed but never launched serves nothing: no TASK_KILLING for it.
    for c in [
        Condition::Scheduled,
        Condition::Unreachable,
        Condition::Killed,
    ] {
        assert!(!c.is_live(), "{c:?}");
    }
}
