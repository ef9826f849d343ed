//! Pod status built from a harness state and the leader's memory of agents' reports.

use serde_json::json;
use state::Command;

use super::*;
use crate::scheduler::harness::{Harness, app_id};

const POD: &str = "/shop/pair";

/// A state with one agent and pod [`POD`] (web with a checked endpoint, side) running one
/// instance.
fn running() -> (Harness, Instance) {
    let mut h = Harness::new();
    h.agent("a1", "a");
    let pod = domain::AppDefinition::pod_from_json(&json!({
        "id": POD,
        "containers": [
            {"name": "web", "exec": {"command": {"shell": "sleep 1000"}},
             "resources": {"cpus": 0.1, "mem": 16},
             "endpoints": [{"name": "http", "hostPort": 0}],
             "healthCheck": {"http": {"endpoint": "http"}}},
            {"name": "side", "exec": {"command": {"shell": "sleep 1000"}},
             "resources": {"cpus": 0.1, "mem": 16}}
        ]
    }))
    .expect("a valid pod");
    h.apply(Command::PutApp {
        app: pod,
        version: crate::clock::iso(h.now),
    });
    h.pass();
    h.start_all(true);
    let live = h.live(POD);
    assert_eq!(live.len(), 1, "{live:?}");
    (h, live[0].clone())
}

fn status_of(h: &Harness, agents: &AgentView) -> Value {
    let record = h.state.app(&app_id(POD)).expect("the pod");
    pod_status(agents, &h.state, record)
}

#[test]
fn a_running_instance_shows_each_container_with_its_endpoints_and_health() {
    let (h, inst) = running();
    let agents = AgentView::default();
    agents.set_health(
        &inst.id,
        state::protocol::HealthReport {
            healthy: true,
            consecutive_failures: 0,
            last_failure_cause: None,
            checked_at_ms: h.now,
            should_kill: false,
        },
    );
    let st = status_of(&h, &agents);
    let i = &st["instances"][0];
    assert_eq!(i["status"], "STABLE", "{st}");
    let web = &i["containers"][0];
    assert_eq!(web["name"], "web");
    assert_eq!(web["status"], "TASK_RUNNING");
    assert_eq!(web["endpoints"][0]["name"], "http");
    assert_eq!(
        web["endpoints"][0]["allocatedHostPort"],
        json!(inst.ports[0])
    );
    assert_eq!(web["conditions"][0]["name"], "healthy", "{web}");
    assert_eq!(web["conditions"][0]["value"], "true", "{web}");
    let side = &i["containers"][1];
    assert_eq!(side["name"], "side");
    assert!(
        side.get("conditions").is_none(),
        "side has no check: {side}"
    );
    assert!(side.get("termination").is_none(), "{side}");
    assert_eq!(st["terminationHistory"], json!([]), "{st}");
}

#[test]
fn an_ended_instance_shows_each_containers_exit_and_its_termination_is_kept() {
    let (mut h, inst) = running();
    let agents = AgentView::default();
    h.report(&inst.id, Condition::Failed);
    let message = "container side exited with code 3; the pod instance ends with it";
    agents.record_termination(
        &app_id(POD),
        Termination {
            instance_id: inst.id.clone(),
            started_at_ms: Some(h.now),
            terminated_at_ms: h.now + 5,
            message: message.into(),
            containers: vec![
                ContainerEnd {
                    name: "web".into(),
                    condition: Condition::Killed,
                    exit_code: None,
                    message: "stopped by the agent because container side ended".into(),
                },
                ContainerEnd {
                    name: "side".into(),
                    condition: Condition::Failed,
                    exit_code: Some(3),
                    message: "exited with code 3".into(),
                },
            ],
        },
    );
    let st = status_of(&h, &agents);
    let i = &st["instances"][0];
    assert_eq!(i["status"], "TERMINAL", "{st}");
    assert_eq!(i["message"], message, "{st}");
    let side = &i["containers"][1];
    assert_eq!(side["status"], "TASK_FAILED", "{side}");
    assert_eq!(side["termination"]["exitCode"], 3, "{side}");
    assert_eq!(
        side["termination"]["message"], "exited with code 3",
        "{side}"
    );
    let web = &i["containers"][0];
    assert_eq!(web["status"], "TASK_KILLED", "{web}");
    assert!(web["termination"].get("exitCode").is_none(), "{web}");
    let history = &st["terminationHistory"];
    assert_eq!(history[0]["instanceID"], inst.id.to_string(), "{st}");
    assert_eq!(history[0]["message"], message, "{st}");
    assert!(history[0]["startedAt"].is_string(), "{st}");
    assert!(history[0]["terminatedAt"].is_string(), "{st}");
    // Marathon's TerminationHistory has these fields and no others.
    let mut keys: Vec<&String> = history[0].as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["instanceID", "message", "startedAt", "terminatedAt"]);
}

#[test]
fn only_the_last_terminations_are_kept_and_a_repeated_report_counts_once() {
    let agents = AgentView::default();
    let end = |n: usize| Termination {
        instance_id: state::InstanceId(format!("i{n}")),
        started_at_ms: None,
        terminated_at_ms: n as u64,
        message: format!("end {n}"),
        containers: Vec::new(),
    };
    for n in 0..crate::agents::TERMINATIONS_KEPT + 3 {
        agents.record_termination(&app_id(POD), end(n));
        agents.record_termination(&app_id(POD), end(n));
    }
    let kept = agents.terminations(&app_id(POD));
    assert_eq!(kept.len(), crate::agents::TERMINATIONS_KEPT);
    let newest = crate::agents::TERMINATIONS_KEPT + 2;
    assert_eq!(kept[0].instance_id.0, format!("i{newest}"), "newest first");
    agents.retain_health(|_| true, |_| false);
    assert!(
        agents.terminations(&app_id(POD)).is_empty(),
        "a deleted pod's are forgotten"
    );
}
