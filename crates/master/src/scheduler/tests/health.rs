//! Health kills.

use serde_json::json;
use state::{Condition, Goal};

use crate::scheduler::harness::*;

fn checked(n: u32) -> serde_json::Value {
    json!({"id": "/web", "instances": n,
           "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}]})
}

#[test]
fn an_instance_failing_its_checks_is_decommissioned_and_replaced_in_the_same_pass() {
    let mut h = Harness::new();
    h.zone("a", 2);
    let running = h.running(checked(2));
    assert_eq!(running.len(), 2);
    let sick = running[0].id.clone();
    h.health(&sick, false, true);
    let d = h.decide();
    assert_eq!(goals(&d), vec![(sick.clone(), Goal::Decommissioned)]);
    assert_eq!(placed(&d).len(), 1, "the replacement");
    assert_eq!(kinds(&d), ["goals", "place"]);
    assert_eq!(
        event_types(&d),
        ["unhealthy_instance_kill_event", "status_update_event"]
    );
    assert_eq!(d.events[0].fields()["instanceId"], json!(sick));
    assert_eq!(d.events[0].fields()["appId"], "/web");
    // The balancers take it out at the kill's commit, not at its TASK_KILLED.
    assert_eq!(d.events[1].fields()["taskId"], json!(sick));
    assert_eq!(d.events[1].fields()["taskStatus"], "TASK_KILLING");
}

#[test]
fn a_failing_check_below_the_limit_kills_nothing() {
    let mut h = Harness::new();
    h.zone("a", 1);
    let running = h.running(checked(1));
    h.health(&running[0].id, false, false);
    let d = h.decide();
    assert!(d.command.is_none(), "{:?}", kinds(&d));
    assert!(d.events.is_empty());
}

#[test]
fn an_instance_whose_health_is_not_known_is_neither_ready_nor_killed_by_a_restart() {
    let mut h = Harness::new();
    h.zone("a", 2);
    let running = h.running(checked(1));
    // A new leader has heard no health report yet.
    h.obs.health.clear();
    h.app(
        checked(1)
            .as_object()
            .cloned()
            .map(|mut o| {
                o.insert("cmd".into(), json!("sleep 2000"));
                serde_json::Value::Object(o)
            })
            .expect("an object"),
    );
    h.deploy("/web", "RestartApplication");
    let d = h.decide();
    assert!(
        goals(&d).is_empty(),
        "the unknown old instance stays: {:?}",
        goals(&d)
    );
    // One new instance may be launched above the count (maximumOverCapacity 1 by default).
    assert_eq!(placed(&d).len(), 1);
    assert_eq!(running[0].condition, Condition::Running);
}

#[test]
fn adding_health_checks_judges_old_instances_by_their_own_version() {
    // The old version has no health checks, so its agent never reports health for it: a
    // rolling upgrade that adds checks must not wait for a report that never comes.
    let mut h = Harness::new();
    h.zone("a", 2);
    let old = ids_of(&h.running(json!({"id": "/web", "instances": 1, "cmd": "sleep 1000"})));
    h.obs.health.clear();
    h.app(json!({"id": "/web", "instances": 1, "cmd": "sleep 2000",
                 "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}]}));
    h.deploy("/web", "RestartApplication");
    let d = h.pass();
    assert_eq!(placed(&d).len(), 1, "the successor");
    h.start_all(false);
    let successor: Vec<_> = ids_of(&h.live("/web"))
        .into_iter()
        .filter(|id| !old.contains(id))
        .collect();
    let d = h.pass();
    assert!(goals(&d).is_empty(), "not healthy yet: {:?}", goals(&d));
    h.health(&successor[0], true, false);
    let d = h.pass();
    assert_eq!(goals(&d), vec![(old[0].clone(), Goal::Decommissioned)]);
}
