//! Readiness: what deployments wait for (`health::ready` with readiness checks).

use serde_json::{Value, json};
use state::{Condition, Goal, InstanceId};

use crate::scheduler::harness::*;
use crate::scheduler::health;

/// `/web` with one readiness check (the default port name, on its one port).
fn checked(n: u32, cmd: &str) -> Value {
    json!({"id": "/web", "instances": n, "cmd": cmd,
           "portDefinitions": [{"port": 0, "name": "http-api"}],
           "readinessChecks": [{"path": "/ready", "intervalSeconds": 2, "timeoutSeconds": 1}]})
}

/// `/web` running `n` ready instances, then restarted with a new command.
fn restarting(n: u32) -> (Harness, Vec<InstanceId>) {
    let mut h = Harness::new();
    h.zone("a", 4);
    let old = ids_of(&h.running(checked(n, "sleep 1000")));
    h.app(checked(n, "sleep 2000"));
    h.deploy("/web", "RestartApplication");
    (h, old)
}

fn new_ones(h: &Harness, old: &[InstanceId]) -> Vec<InstanceId> {
    let mut ids: Vec<InstanceId> = h
        .live("/web")
        .into_iter()
        .map(|i| i.id)
        .filter(|id| !old.contains(id))
        .collect();
    ids.sort();
    ids
}

#[test]
fn ready_needs_a_ready_report_when_the_instance_version_has_readiness_checks() {
    let mut h = Harness::new();
    h.zone("a", 1);
    h.app(checked(1, "sleep 1000"));
    h.pass();
    h.start_all(false);
    let inst = h.live("/web").remove(0);
    let app = h
        .state
        .app(&app_id("/web"))
        .expect("app")
        .current()
        .app
        .clone();
    let ready = |h: &mut Harness| {
        let obs = health::readiness_observations(&h.state, &h.readiness);
        h.obs.readiness = obs;
        (
            health::ready(&app, &h.obs, &inst),
            health::unknown(&app, &h.obs, &inst),
        )
    };
    assert_eq!(
        ready(&mut h),
        (false, true),
        "running, nothing heard: not known"
    );
    h.ready(&inst.id, false);
    assert_eq!(ready(&mut h), (false, false), "reported not ready");
    h.ready(&inst.id, true);
    assert_eq!(ready(&mut h), (true, false), "reported ready");
    // An app without readiness checks needs no report.
    let mut plain = app.clone();
    plain.readiness_checks.clear();
    h.readiness.clear();
    h.obs.readiness = health::readiness_observations(&h.state, &h.readiness);
    assert!(health::ready(&plain, &h.obs, &inst));
}

#[test]
fn a_restart_stops_no_old_instance_until_its_successor_is_ready_and_finishes_only_then() {
    let (mut h, old) = restarting(1);
    let d = h.pass();
    assert!(goals(&d).is_empty(), "{:?}", goals(&d));
    assert_eq!(placed(&d).len(), 1, "the successor");
    // It runs and is healthy (no health checks), but its readiness check has not passed.
    h.start_all(false);
    let successor = new_ones(&h, &old);
    assert_eq!(successor.len(), 1);
    let d = h.pass();
    assert!(
        goals(&d).is_empty(),
        "running is not ready: {:?}",
        goals(&d)
    );
    h.ready(&successor[0], false);
    let d = h.pass();
    assert!(goals(&d).is_empty(), "not ready yet: {:?}", goals(&d));
    assert!(!kinds(&d).contains(&"finish-deployment"));
    h.ready(&successor[0], true);
    let d = h.pass();
    assert_eq!(goals(&d), vec![(old[0].clone(), Goal::Decommissioned)]);
    h.report(&old[0], Condition::Killed);
    let d = h.decide();
    assert!(kinds(&d).contains(&"finish-deployment"), "{:?}", kinds(&d));
}

#[test]
fn old_instances_whose_version_had_no_readiness_checks_count_as_ready() {
    let mut h = Harness::new();
    h.zone("a", 4);
    let plain = json!({"id": "/web", "instances": 1, "cmd": "sleep 1000",
                       "portDefinitions": [{"port": 0, "name": "http-api"}]});
    let old = ids_of(&h.running(plain));
    // The first version with a readiness check: the old instance was never checked.
    h.app(checked(1, "sleep 1000"));
    h.deploy("/web", "RestartApplication");
    h.pass();
    h.start_all(false);
    let successor = new_ones(&h, &old);
    let d = h.pass();
    assert!(
        goals(&d).is_empty(),
        "the old one serves until the new one is ready"
    );
    h.ready(&successor[0], true);
    let d = h.pass();
    assert_eq!(goals(&d), vec![(old[0].clone(), Goal::Decommissioned)]);
}

#[test]
fn an_old_instance_whose_readiness_a_new_leader_has_not_heard_is_not_stopped_first() {
    let (mut h, old) = restarting(1);
    // A new leader: no reports yet, of the old instance or any other.
    h.readiness.clear();
    let d = h.pass();
    assert!(
        goals(&d).is_empty(),
        "the unknown old instance stays: {:?}",
        goals(&d)
    );
    assert_eq!(placed(&d).len(), 1);
    h.start_all(false);
    let d = h.pass();
    assert!(goals(&d).is_empty(), "{:?}", goals(&d));
    // The agents tell again: the old instance was ready, the new one turns ready.
    h.ready(&old[0], true);
    let successor = new_ones(&h, &old);
    h.ready(&successor[0], true);
    let d = h.pass();
    assert_eq!(goals(&d), vec![(old[0].clone(), Goal::Decommissioned)]);
}
