//! Mesos master read endpoints (and Mesos-DNS names) for DC/OS tooling: the leader and every
//! agent with `domain.fault_domain`, so `dcos node` and friends show regions and zones.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use state::{AgentState, ClusterState};

use super::tasks::task_json;
use crate::error::ApiError;
use crate::node::Master;

fn host_port(addr: &str) -> (&str, u16) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().unwrap_or(0)),
        None => (addr, 0),
    }
}

fn slave_json(s: &ClusterState, r: &state::machine::AgentRecord) -> Value {
    let a = &r.agent;
    let used = s.usage(&a.id);
    let thousandths = |v: u64| v as f64 / 1000.0;
    json!({
        "id": a.id,
        "hostname": a.hostname,
        "pid": format!("slave(1)@{}:5051", a.ip),
        "active": r.state == AgentState::Active,
        "registered_time": r.registered_at_ms as f64 / 1000.0,
        "resources": a.resources,
        "used_resources": {"cpus": thousandths(used.cpus), "mem": thousandths(used.mem), "disk": thousandths(used.disk)},
        "attributes": a.attributes,
        "domain": a.domain.as_ref().map(|d| d.to_json()),
        "TASK_RUNNING": used.tasks,
    })
}

fn framework_json(m: &Master, s: &ClusterState) -> Value {
    let tasks: Vec<Value> = s
        .instances()
        .values()
        .filter(|i| !i.condition.is_terminal())
        .map(|i| {
            let t = task_json(m, s, i);
            json!({
                "id": i.id, "name": i.app_id.as_str().trim_start_matches('/'),
                "framework_id": s.cluster_id(), "slave_id": i.agent_id,
                "state": t.state, "resources": {}, "region": t.region, "zone": t.zone,
            })
        })
        .collect();
    json!({"id": s.cluster_id(), "name": "marathon", "active": true, "tasks": tasks})
}

fn leader_info(m: &Master) -> Value {
    let leader = m.leader();
    let (host, port) = leader.as_ref().map_or(("", 0), |(_, a)| host_port(a));
    json!({
        "id": leader.as_ref().map(|(id, _)| id.to_string()),
        "hostname": host,
        "ip": host,
        "port": port,
        "domain": m.config.domain.to_json(),
    })
}

/// `GET /mesos/master/state` (and `state.json`).
pub async fn state(State(m): State<Arc<Master>>) -> Result<Json<Value>, ApiError> {
    m.linearizable().await?;
    let leader = m.leader().map(|(_, a)| a);
    Ok(Json(m.state.read(|a| {
        let s = &a.state;
        let slaves: Vec<Value> = s.agents().values().map(|r| slave_json(s, r)).collect();
        let count = |st: AgentState| s.agents().values().filter(|r| r.state == st).count();
        json!({
            "version": format!("drover-{}", env!("CARGO_PKG_VERSION")),
            "id": s.cluster_id(),
            "cluster": "drover",
            "leader": leader.as_ref().map(|l| format!("master@{l}")),
            "leader_info": leader_info(&m),
            "hostname": host_port(m.config.advertised()).0,
            "domain": m.config.domain.to_json(),
            "activated_slaves": count(AgentState::Active),
            "deactivated_slaves": 0,
            "unreachable_slaves": count(AgentState::Unreachable),
            "slaves": slaves,
            "frameworks": [framework_json(&m, s)],
        })
    })))
}

/// `GET /mesos/master/state-summary`.
pub async fn state_summary(State(m): State<Arc<Master>>) -> Result<Json<Value>, ApiError> {
    m.linearizable().await?;
    Ok(Json(m.state.read(|a| {
        let s = &a.state;
        let slaves: Vec<Value> = s.agents().values().map(|r| slave_json(s, r)).collect();
        json!({
            "hostname": host_port(m.config.advertised()).0,
            "cluster": "drover",
            "leader_info": leader_info(&m),
            "slaves": slaves,
            "frameworks": [{"id": s.cluster_id(), "name": "marathon", "active": true}],
        })
    })))
}

/// `GET /mesos/master/slaves`.
pub async fn slaves(State(m): State<Arc<Master>>) -> Result<Json<Value>, ApiError> {
    m.linearizable().await?;
    Ok(Json(m.state.read(|a| {
        let slaves: Vec<Value> = a
            .state
            .agents()
            .values()
            .map(|r| slave_json(&a.state, r))
            .collect();
        json!({ "slaves": slaves })
    })))
}

/// `GET /mesos_dns/v1/hosts/master.mesos`: every master.
pub async fn dns_masters(State(m): State<Arc<Master>>) -> Json<Value> {
    let hosts: Vec<Value> = m
        .members()
        .values()
        .map(|addr| json!({"host": "master.mesos.", "ip": host_port(addr).0}))
        .collect();
    Json(json!(hosts))
}

/// `GET /mesos_dns/v1/hosts/leader.mesos`: the leader.
pub async fn dns_leader(State(m): State<Arc<Master>>) -> Json<Value> {
    let hosts: Vec<Value> = m
        .leader()
        .map(|(_, addr)| json!({"host": "leader.mesos.", "ip": host_port(&addr).0}))
        .into_iter()
        .collect();
    Json(json!(hosts))
}
