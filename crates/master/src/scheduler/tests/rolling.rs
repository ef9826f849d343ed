//! Deployments' rolling replacement.

use serde_json::{Value, json};
use state::{Condition, Goal, InstanceId};

use crate::scheduler::harness::*;

fn web(n: u32, cmd: &str, min_healthy: f64, over: f64) -> Value {
    json!({"id": "/web", "instances": n, "cmd": cmd,
           "upgradeStrategy": {"minimumHealthCapacity": min_healthy, "maximumOverCapacity": over}})
}

/// Runs `/web` with two instances, then changes its command and starts a deployment.
fn upgrading(min_healthy: f64, over: f64) -> (Harness, Vec<InstanceId>) {
    let mut h = Harness::new();
    h.zone("a", 4);
    let old = ids_of(&h.running(web(2, "sleep 1000", min_healthy, over)));
    h.app(web(2, "sleep 2000", min_healthy, over));
    h.deploy("/web", "RestartApplication");
    (h, old)
}

/// Asserts that the decision stops exactly one instance, one of `old`, for good.
fn one_old_stopped(d: &crate::scheduler::Decision, old: &[InstanceId]) {
    let stopped = goals(d);
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert!(
        old.contains(&stopped[0].0),
        "{stopped:?} is not one of {old:?}"
    );
    assert_eq!(stopped[0].1, Goal::Decommissioned);
}

#[test]
fn with_full_capacity_kept_new_instances_start_before_any_old_one_stops() {
    let (mut h, old) = upgrading(1.0, 1.0);
    let d = h.pass();
    assert!(
        goals(&d).is_empty(),
        "nothing stops while nothing new is ready"
    );
    assert_eq!(placed(&d).len(), 2, "up to twice the count at once");
    assert!(
        placed(&d)
            .iter()
            .all(|i| i.app_version == h.current("/web"))
    );
    h.start_all(true);
    let d = h.pass();
    let mut stopped: Vec<InstanceId> = goals(&d).into_iter().map(|(id, _)| id).collect();
    stopped.sort();
    assert_eq!(
        stopped, old,
        "both old instances go once the new ones are ready"
    );
    assert!(placed(&d).is_empty());
}

#[test]
fn with_half_capacity_and_no_surplus_one_old_instance_stops_and_one_new_starts() {
    let (mut h, old) = upgrading(0.5, 0.0);
    let d = h.decide();
    one_old_stopped(&d, &old);
    assert_eq!(placed(&d).len(), 1, "one launch within the total of two");
}

#[test]
fn an_old_instance_that_is_not_ready_goes_first() {
    let (mut h, old) = upgrading(1.0, 0.0);
    h.report(&old[1], Condition::Starting);
    h.obs.health.remove(&old[1]);
    let d = h.decide();
    assert_eq!(goals(&d), vec![(old[1].clone(), Goal::Decommissioned)]);
}

#[test]
fn when_neither_a_kill_nor_a_launch_fits_one_old_instance_goes_so_the_deployment_progresses() {
    let (mut h, old) = upgrading(1.0, 0.0);
    let d = h.decide();
    one_old_stopped(&d, &old);
    assert!(placed(&d).is_empty(), "the launch follows in the next pass");
}

#[test]
fn a_deployment_is_finished_with_its_events_once_the_app_runs_the_new_version_ready() {
    let (mut h, _) = upgrading(1.0, 1.0);
    h.pass();
    h.start_all(true);
    h.pass();
    // The old ones stopped; their agent reports them killed.
    let stopping: Vec<InstanceId> = h
        .state
        .instances()
        .values()
        .filter(|i| i.goal == Goal::Decommissioned)
        .map(|i| i.id.clone())
        .collect();
    for id in &stopping {
        h.report(id, Condition::Killed);
    }
    let d = h.decide();
    assert_eq!(kinds(&d), ["forget", "finish-deployment"]);
    assert_eq!(
        event_types(&d),
        ["deployment_step_success", "deployment_success"]
    );
    // Marathon's plan shape: the steps name the app.
    assert_eq!(
        d.events[1].fields()["plan"]["steps"][0]["actions"][0]["app"],
        json!("/web")
    );
    h.commit(&d);
    assert!(h.state.deployments().is_empty());
}
