//! Tasks as Marathon shows them (`/v2/tasks`, `/v2/apps/{id}/tasks`, embedded in apps).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use state::{ClusterState, Condition, Instance};

use super::agents::mesos_task_state;
use crate::clock;
use crate::error::ApiError;
use crate::node::Master;

/// Marathon's task JSON for one instance, with drover's `region` and `zone`.
pub fn task_json(m: &Master, state: &ClusterState, i: &Instance) -> Value {
    let agent = state.agent(&i.agent_id);
    let local = state
        .local_region()
        .unwrap_or(m.config.domain.region.as_str());
    let health: Vec<Value> = m
        .agents
        .health(&i.id)
        .map(|h| {
            json!({
                "instanceId": i.id,
                "alive": h.healthy,
                "consecutiveFailures": h.consecutive_failures,
                "lastFailureCause": h.last_failure_cause,
                "lastSuccess": h.healthy.then(|| clock::iso(h.checked_at_ms)),
                "lastFailure": (!h.healthy).then(|| clock::iso(h.checked_at_ms)),
            })
        })
        .into_iter()
        .collect();
    let host = agent.map(|r| r.agent.hostname.clone());
    let ip = agent.map(|r| r.agent.ip.clone());
    json!({
        "id": i.id,
        "appId": i.app_id.as_str(),
        "host": host,
        "ipAddresses": ip.map(|ip| vec![json!({"ipAddress": ip, "protocol": "IPv4"})]).unwrap_or_default(),
        "ports": i.ports,
        "servicePorts": [],
        "slaveId": i.agent_id,
        "agentId": i.agent_id,
        "state": mesos_task_state(i.condition),
        "stagedAt": clock::iso(i.created_at_ms),
        "startedAt": i.started_at_ms.map(clock::iso),
        "version": i.app_version,
        "healthCheckResults": health,
        "region": agent.map(|r| r.agent.region().unwrap_or(local).to_string()),
        "zone": agent.and_then(|r| r.agent.zone().map(str::to_string)),
    })
}

/// The counts Marathon puts on every app.
pub fn counts(m: &Master, state: &ClusterState, app: &domain::AppId) -> Value {
    let (mut staged, mut running, mut healthy, mut unhealthy) = (0, 0, 0, 0);
    for i in state
        .instances_of(app)
        .filter(|i| !i.condition.is_terminal())
    {
        match i.condition {
            Condition::Running => running += 1,
            Condition::Scheduled | Condition::Staging | Condition::Starting => staged += 1,
            _ => {}
        }
        match m.agents.health(&i.id).map(|h| h.healthy) {
            Some(true) => healthy += 1,
            Some(false) => unhealthy += 1,
            None => {}
        }
    }
    json!({"tasksStaged": staged, "tasksRunning": running, "tasksHealthy": healthy, "tasksUnhealthy": unhealthy})
}

/// The live (not yet terminal) tasks of an app.
pub fn tasks_of(m: &Master, state: &ClusterState, app: &domain::AppId) -> Vec<Value> {
    state
        .instances_of(app)
        .filter(|i| !i.condition.is_terminal())
        .map(|i| task_json(m, state, i))
        .collect()
}

/// `GET /v2/tasks`.
pub async fn list(State(m): State<Arc<Master>>) -> Result<Json<Value>, ApiError> {
    m.linearizable().await?;
    let tasks: Vec<Value> = m.state.read(|a| {
        a.state
            .instances()
            .values()
            .filter(|i| !i.condition.is_terminal())
            .map(|i| task_json(&m, &a.state, i))
            .collect()
    });
    Ok(Json(json!({ "tasks": tasks })))
}
