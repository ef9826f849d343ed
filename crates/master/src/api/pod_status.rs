//! Marathon's `PodStatus` (`GET /v2/pods/{id}::status`): the pod's state, each instance with
//! its containers, and the last instances' terminations.
//!
//! A container's status is its instance's while the instance runs (drover ends an instance
//! when its first container ends, so no container of a live instance has ended). Once an
//! instance ended, its agent's report says how each container ended: an instance still in
//! the state shows it as `termination` of each container, and `terminationHistory` keeps
//! the last [`crate::agents::TERMINATIONS_KEPT`] ends of the pod (in the leader's memory, as health is).

use serde_json::{Value, json};
use state::machine::{AppRecord, AppVersion};
use state::protocol::ContainerEnd;
use state::{ClusterState, Condition, Instance};

use super::agents::mesos_task_state;
use super::pods::pod_json;
use crate::agents::{AgentView, Termination};
use crate::clock;
use crate::deployments;

/// Marathon's state of one pod instance.
fn instance_status(agents: &AgentView, i: &Instance, has_checks: bool) -> &'static str {
    match i.condition {
        Condition::Scheduled => "PENDING",
        Condition::Staging | Condition::Starting => "STAGING",
        Condition::Running => {
            let healthy = agents.health(&i.id).map(|h| h.healthy);
            if !has_checks || healthy == Some(true) {
                "STABLE"
            } else {
                "DEGRADED"
            }
        }
        Condition::Unreachable => "DEGRADED",
        _ => "TERMINAL",
    }
}

/// One container of instance `i` (of version `spec`): its endpoints with their ports, its
/// health as a condition, and how it ended when it did (`ended`).
fn container_status(
    agents: &AgentView,
    spec: &AppVersion,
    i: &Instance,
    container: &domain::app::PodContainer,
    ended: Option<&ContainerEnd>,
) -> Value {
    let since = clock::iso(i.updated_at_ms);
    let endpoints: Vec<Value> = container
        .endpoints
        .iter()
        .map(|name| {
            let port = spec
                .app
                .port_definitions
                .iter()
                .position(|d| d.name.as_deref() == Some(name))
                .and_then(|idx| i.ports.get(idx));
            let mut e = json!({"name": name});
            if let Some(p) = port {
                e["allocatedHostPort"] = json!(p);
            }
            e
        })
        .collect();
    let condition = ended.map_or(i.condition, |e| e.condition);
    let mut c = json!({
        "name": container.name,
        "status": mesos_task_state(condition),
        "statusSince": since,
        "containerId": format!("{}.{}", i.id, container.name),
        "endpoints": endpoints,
        "lastUpdated": since,
        "lastChanged": since,
    });
    if container.health_check.is_some()
        && i.condition == Condition::Running
        && let Some(h) = agents.health(&i.id)
    {
        let mut healthy = json!({
            "name": "healthy",
            "value": h.healthy.to_string(),
            "lastChanged": clock::iso(h.checked_at_ms),
            "lastUpdated": clock::iso(h.checked_at_ms),
        });
        if let Some(cause) = h.last_failure_cause.filter(|_| !h.healthy) {
            healthy["reason"] = json!(cause);
        }
        c["conditions"] = json!([healthy]);
    }
    if let Some(e) = ended {
        let mut termination = json!({"message": e.message});
        if let Some(code) = e.exit_code {
            termination["exitCode"] = json!(code);
        }
        c["message"] = json!(e.message);
        c["termination"] = termination;
    }
    c
}

/// One instance: its state, agent, resources and containers.
fn instance_json(
    agents: &AgentView,
    state: &ClusterState,
    record: &AppRecord,
    i: &Instance,
    ended: Option<&Termination>,
) -> Value {
    let current = record.current();
    let spec = record.version(&i.app_version).unwrap_or(current);
    let id = &spec.app.id;
    let status = instance_status(agents, i, !spec.app.health_checks.is_empty());
    let host = state.agent(&i.agent_id).map(|r| r.agent.hostname.clone());
    let since = clock::iso(i.updated_at_ms);
    let containers: Vec<Value> = spec
        .app
        .pod
        .iter()
        .flat_map(|p| p.containers.iter())
        .map(|c| {
            let end = ended.and_then(|t| t.containers.iter().find(|e| e.name == c.name));
            container_status(agents, spec, i, c, end)
        })
        .collect();
    let mut out = json!({
        "id": i.id.to_string(),
        "status": status,
        "statusSince": since,
        "agentHostname": host,
        "agentId": i.agent_id.to_string(),
        "resources": {"cpus": spec.app.cpus, "mem": spec.app.mem, "disk": spec.app.disk, "gpus": 0},
        "containers": containers,
        "specReference": format!("/v2/pods{id}::versions/{}", i.app_version),
        "lastUpdated": since,
        "lastChanged": since,
    });
    if let Some(t) = ended {
        out["message"] = json!(t.message);
    }
    out
}

/// Marathon's `TerminationHistory` entry.
fn termination_json(t: &Termination) -> Value {
    let mut out = json!({
        "instanceID": t.instance_id.to_string(),
        "terminatedAt": clock::iso(t.terminated_at_ms),
        "message": t.message,
    });
    if let Some(started) = t.started_at_ms {
        out["startedAt"] = json!(clock::iso(started));
    }
    out
}

/// `PodStatus`: the spec, the pod's state, each instance the state holds (live ones, and
/// ended ones not yet forgotten) with its containers, and the last terminations.
pub(super) fn pod_status(agents: &AgentView, state: &ClusterState, record: &AppRecord) -> Value {
    let current = record.current();
    let app = &current.app;
    let id = &app.id;
    let has_checks = !app.health_checks.is_empty();
    let terminations = agents.terminations(id);
    let ended = |i: &Instance| terminations.iter().find(|t| t.instance_id == i.id);
    let known: Vec<&Instance> = state.instances_of(id).collect();
    let instances: Vec<Value> = known
        .iter()
        .map(|i| instance_json(agents, state, record, i, ended(i)))
        .collect();
    let stable = known
        .iter()
        .filter(|i| {
            instance_status(agents, i, has_checks) == "STABLE" && i.app_version == current.version
        })
        .count();
    let status = if deployments::of_app(state, id).is_some() {
        "DEPLOYING"
    } else if stable >= app.instances as usize {
        "STABLE"
    } else {
        "DEGRADED"
    };
    let now = clock::iso(clock::now_ms());
    json!({
        "id": id.as_str(),
        "spec": pod_json(current),
        "status": status,
        "statusSince": now,
        "instances": instances,
        "terminationHistory": terminations.iter().map(termination_json).collect::<Vec<_>>(),
        "lastUpdated": now,
        "lastChanged": now,
    })
}

#[cfg(test)]
mod tests;
