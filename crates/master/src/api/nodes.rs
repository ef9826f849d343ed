//! `/v1/nodes` (masters and agents with their fault domains) and `/v2/queue`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use state::AgentState;

use crate::agents::RTT_WARNING_MS;
use crate::clock;
use crate::error::ApiError;
use crate::node::Master;

fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(h, _)| h)
}

/// `GET /v1/nodes`: every master (leader marked) and agent, with region, zone and whether
/// it is remote.
pub async fn list(State(m): State<Arc<Master>>) -> Result<Json<Value>, ApiError> {
    m.linearizable().await?;
    let leader = m.leader().map(|(id, _)| id);
    let body = m.state.read(|a| {
        let s = &a.state;
        let local = s
            .local_region()
            .unwrap_or(m.config.domain.region.as_str())
            .to_string();
        let mut nodes = Vec::new();
        let mut ids: Vec<u64> = m.config.masters.keys().copied().collect();
        ids.extend(s.masters().keys().copied());
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let registered = s.masters().get(&id);
            let addr = registered
                .map(|r| r.addr.clone())
                .or_else(|| m.config.masters.get(&id).cloned())
                .unwrap_or_default();
            let domain = registered
                .and_then(|r| r.domain.clone())
                .or_else(|| (id == m.config.id).then(|| m.config.domain.clone()));
            nodes.push(json!({
                "type": "master",
                "id": id.to_string(),
                "hostname": host_of(&addr),
                "ip": host_of(&addr),
                "address": addr,
                "leader": leader == Some(id),
                "region": domain.as_ref().map(|d| d.region.clone()),
                "zone": domain.as_ref().map(|d| d.zone.clone()),
                "remote": false,
            }));
        }
        let mut agents: Vec<_> = s.agents().values().collect();
        agents.sort_by(|a, b| {
            let key = |r: &state::machine::AgentRecord| {
                let region = r.agent.region().unwrap_or(&local).to_string();
                (
                    region != local,
                    region,
                    r.agent.zone().map(str::to_string),
                    r.agent.hostname.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        for r in agents {
            let a = &r.agent;
            let rtt = m.agents.rtt_ms(&a.id);
            let u = s.usage(&a.id);
            let (tasks, cpus_used, mem_used) =
                (u.tasks, u.cpus as f64 / 1000.0, u.mem as f64 / 1000.0);
            nodes.push(json!({
                "type": "agent",
                "id": a.id,
                "hostname": a.hostname,
                "ip": a.ip,
                "region": a.region().unwrap_or(&local),
                "zone": a.zone(),
                "remote": r.remote,
                "state": match r.state {
                    AgentState::Active => "active",
                    AgentState::Unreachable => "unreachable",
                    AgentState::Gone => "gone",
                },
                "tasks": tasks,
                "resources": a.resources,
                "used": {"cpus": cpus_used, "mem": mem_used},
                "attributes": a.attributes,
                "rtt_ms": rtt,
                "disk_use": m.agents.disk(&a.id),
                "rtt_warning": rtt.is_some_and(|r| r >= RTT_WARNING_MS),
                "registered_at": clock::iso(r.registered_at_ms),
            }));
        }
        json!({"local_region": local, "nodes": nodes})
    });
    Ok(Json(body))
}

/// `GET /v2/queue`: apps with instances waiting, with the counted reasons and the delay.
pub async fn queue(State(m): State<Arc<Master>>) -> Result<Json<Value>, ApiError> {
    m.linearizable().await?;
    let now = m.clock.now_ms();
    let entries = m.queue.entries();
    let items: Vec<Value> = m.state.read(|a| {
        entries
            .iter()
            .filter_map(|(id, e)| {
                let app = a.state.app(id)?;
                let left = e.delayed_until_ms.map_or(0, |u| u.saturating_sub(now));
                let reasons: BTreeMap<&String, &u32> = e.reasons.iter().collect();
                let mut item = json!({
                    "app": app.current().app.to_json(),
                    "count": e.unplaced,
                    "delay": {"timeLeftSeconds": left / 1000, "overdue": left == 0},
                    "unplacedReasons": reasons,
                });
                if let Some(error) = &e.error {
                    item["schedulingError"] = json!(error);
                }
                Some(item)
            })
            .collect()
    });
    Ok(Json(json!({ "queue": items })))
}
