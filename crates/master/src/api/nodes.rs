//! `/v1/nodes`: masters and agents with their fault domains.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use client::{AgentNode, MasterNode, Node, NodeState, Nodes, Used};
use domain::AgentId;
use serde::Serialize;
use state::{AgentState, Command, Response};

use crate::agents::{AgentView, RTT_WARNING_MS};
use crate::clock;
use crate::error::ApiError;
use crate::node::RaftNode;

fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(h, _)| h)
}

/// `GET /v1/nodes`: every master (leader marked) and agent, with region, zone and whether
/// it is remote.
pub async fn list(
    State(m): State<Arc<RaftNode>>,
    State(agents): State<Arc<AgentView>>,
) -> Result<Json<Nodes>, ApiError> {
    m.linearizable().await?;
    let leader = m.leader().map(|(id, _)| id);
    let members = m.members();
    let body = m.state().read(|a| {
        let s = &a.state;
        let local = s
            .local_region()
            .unwrap_or(m.config().domain.region.as_str())
            .to_string();
        let mut nodes = Vec::new();
        let mut ids: Vec<u64> = if members.is_empty() {
            m.config().masters.keys().copied().collect()
        } else {
            members.keys().copied().collect()
        };
        ids.extend(s.masters().keys().copied());
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let registered = s.masters().get(&id);
            let addr = registered
                .map(|r| r.addr.clone())
                .or_else(|| members.get(&id).cloned())
                .or_else(|| m.config().masters.get(&id).cloned())
                .unwrap_or_default();
            let domain = registered
                .and_then(|r| r.domain.clone())
                .or_else(|| (id == m.config().id).then(|| m.config().domain.clone()));
            nodes.push(Node::Master(MasterNode {
                id: id.to_string(),
                hostname: host_of(&addr).to_string(),
                ip: host_of(&addr).to_string(),
                leader: leader == Some(id),
                region: domain.as_ref().map(|d| d.region.clone()),
                zone: domain.as_ref().map(|d| d.zone.clone()),
                remote: false,
                address: addr,
            }));
        }
        let mut records: Vec<_> = s.agents().values().collect();
        records.sort_by(|a, b| {
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
        for r in records {
            let a = &r.agent;
            let rtt = agents.rtt_ms(&a.id);
            let u = s.usage(&a.id);
            let (tasks, cpus_used, mem_used) =
                (u.tasks, u.cpus as f64 / 1000.0, u.mem as f64 / 1000.0);
            nodes.push(Node::Agent(AgentNode {
                id: a.id.to_string(),
                hostname: a.hostname.clone(),
                ip: a.ip.clone(),
                region: a.region().unwrap_or(&local).to_string(),
                zone: a.zone().map(str::to_string),
                remote: r.remote,
                state: node_state(r.state),
                tasks,
                resources: a.resources.clone(),
                used: Used {
                    cpus: cpus_used,
                    mem: mem_used,
                },
                attributes: a.attributes.clone(),
                rtt_ms: rtt,
                disk_use: agents.disk(&a.id).map(|d| client::DiskUse {
                    work_dir_bytes: d.work_dir_bytes,
                    sandboxes: d.sandboxes,
                    available_bytes: d.available_bytes,
                    total_bytes: d.total_bytes,
                }),
                rtt_warning: rtt.is_some_and(|r| r >= RTT_WARNING_MS),
                registered_at: clock::iso(r.registered_at_ms),
            }));
        }
        Nodes {
            local_region: local,
            nodes,
        }
    });
    Ok(Json(body))
}

/// An agent's state as `/v1/nodes` shows it.
fn node_state(state: AgentState) -> NodeState {
    match state {
        AgentState::Active => NodeState::Active,
        AgentState::Unreachable => NodeState::Unreachable,
        AgentState::Gone => NodeState::Gone,
    }
}

/// What `DELETE /v1/nodes/{id}` did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    /// The agent.
    pub id: String,
    /// Its state before (`active`, `unreachable`, or `gone` when it was removed already).
    pub was: NodeState,
    /// Instances on it that the scheduler now replaces elsewhere (they were not terminal).
    pub instances_replaced: usize,
    /// For people.
    pub message: String,
}

/// `DELETE /v1/nodes/{id}`: removes an agent for good (Mesos' "agent removed", Nomad's
/// `node purge`). Its instances that had not ended are replaced on other agents, and every
/// certificate issued to it is revoked, so on a secure cluster it cannot report or register
/// again without a new join token. An agent of an insecure cluster that still runs comes
/// back by registering again: stop it first.
pub async fn remove(
    State(m): State<Arc<RaftNode>>,
    Path(id): Path<String>,
) -> Result<Json<Removed>, ApiError> {
    m.linearizable().await?;
    let agent = AgentId(id.clone());
    let (was, live) = m.state().read(|a| {
        let s = &a.state;
        let was = s.agent(&agent).map(|r| r.state);
        let live = s
            .instances_on(&agent)
            .filter(|i| !i.condition.is_terminal())
            .count();
        (was, live)
    });
    let Some(was) = was else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "agent '{id}' is not known to the cluster; `drover node list` shows the agents"
            ),
        ));
    };
    if was == AgentState::Gone {
        return Ok(Json(Removed {
            id,
            was: NodeState::Gone,
            instances_replaced: 0,
            message: "the agent was removed already".into(),
        }));
    }
    let answer = m
        .write(Command::SetAgentState {
            agent_id: agent,
            state: AgentState::Gone,
            at_ms: m.clock().now_ms(),
        })
        .await?;
    if let Response::NotFound { .. } = answer {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("agent '{id}' was removed meanwhile"),
        ));
    }
    tracing::warn!(agent = %id, instances = live, "agent removed by an operator");
    Ok(Json(Removed {
        id: id.clone(),
        was: node_state(was),
        instances_replaced: live,
        message: format!(
            "agent '{id}' is removed: {live} instance(s) on it are replaced elsewhere and its certificates are revoked"
        ),
    }))
}
