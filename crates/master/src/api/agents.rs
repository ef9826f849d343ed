//! `/internal/agents/…`: the master's side of the agent protocol (see `state::protocol`).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use client::{ErrorBody, Refusal};
use domain::{Agent, AgentId, AppDefinition, AppId};
use serde::Deserialize;
use serde_json::{Value, json};
use state::protocol::{
    AGENT_ID_IN_USE, AGENT_PROTOCOL, AGENT_PROTOCOL_UNSUPPORTED, Assignments, DEFINITIONS_ONCE,
    Heartbeat, HeartbeatAck, Registered, Registration, SharedAssignments, StatusReport, TaskGoal,
    TaskRef, VersionedDefinition,
};
use state::{AgentState, ClusterState, Command, Condition, Goal, Instance, Response as Applied};

use crate::agents::AgentView;
use crate::error::ApiError;
use crate::events::{Event, EventBus};
use crate::node::RaftNode;

/// The longest a long poll for assignments is held open.
const MAX_WAIT: Duration = Duration::from_secs(30);

fn unknown_agent(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("Agent {id} is not registered with the leader; register again"),
    )
}

/// `POST /internal/agents/register`.
pub async fn register(
    State(m): State<Arc<RaftNode>>,
    State(agents): State<Arc<AgentView>>,
    Json(reg): Json<Registration>,
) -> Result<Json<Registered>, ApiError> {
    refuse_protocol(&reg)?;
    let protocol = reg.protocol.min(AGENT_PROTOCOL);
    let agent = reg.agent;
    let mut problems = Vec::new();
    if agent.id.0.trim().is_empty() {
        problems.push("agent id is empty");
    }
    if agent.hostname.trim().is_empty() {
        problems.push("hostname is empty");
    }
    if agent.ip.parse::<std::net::IpAddr>().is_err() {
        problems.push("ip is not an IP address");
    }
    if !problems.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("cannot register agent: {}", problems.join(", ")),
        ));
    }
    let local = m.state().read(|a| {
        a.state
            .local_region()
            .map(str::to_string)
            .unwrap_or_else(|| m.config().domain.region.clone())
    });
    refuse_a_copy(&m, &agents, &agent)?;
    let remote = agent.is_remote(&local);
    let id = agent.id.clone();
    let answer = m
        .write(Command::RegisterAgent {
            agent,
            remote,
            at_ms: m.clock().now_ms(),
        })
        .await?;
    if let Applied::Conflict { message } = answer {
        return Err(ApiError::new(StatusCode::CONFLICT, message));
    }
    agents.heard_from(&id, None);
    tracing::info!(agent = %id, remote, protocol, "agent registered");
    Ok(Json(Registered {
        agent_id: id,
        term: m.term(),
        heartbeat_interval_ms: m.config().agent_heartbeat.as_millis() as u64,
        local_region: local,
        remote,
        protocol,
    }))
}

/// Refuses an agent whose protocol this master does not speak (400, with
/// [`AGENT_PROTOCOL_UNSUPPORTED`]): the agent keeps retrying, and is accepted once the side
/// the message names is upgraded.
fn refuse_protocol(reg: &Registration) -> Result<(), ApiError> {
    let Some(problem) = state::protocol::unsupported_agent_protocol(reg.protocol) else {
        return Ok(());
    };
    tracing::warn!(agent = %reg.agent.id, version = %reg.version, "registration refused: {problem}");
    Err(ApiError {
        status: StatusCode::BAD_REQUEST,
        body: ErrorBody {
            refusal: Some(Box::new(Refusal {
                reason: AGENT_PROTOCOL_UNSUPPORTED.to_string(),
                agent_id: reg.agent.id.to_string(),
                live_ip: String::new(),
                ip: reg.agent.ip.clone(),
            })),
            ..ErrorBody::new(format!(
                "cannot register agent {} (drover {}): {problem}",
                reg.agent.id, reg.version
            ))
        },
    })
}

/// Refuses a registration whose agent id is live at another address: two agents sharing an
/// id (a work dir copied from a running agent) would both run its instances. An agent that
/// moved is accepted once its old registration is unreachable; while this master has not
/// heard from the agent since its election, it cannot tell yet and answers 503 (retried).
fn refuse_a_copy(m: &RaftNode, agents: &AgentView, agent: &Agent) -> Result<(), ApiError> {
    let registered = m.state().read(|a| {
        a.state
            .agent(&agent.id)
            .filter(|r| r.state == AgentState::Active && r.agent.ip != agent.ip)
            .map(|r| r.agent.ip.clone())
    });
    let Some(live_ip) = registered else {
        return Ok(());
    };
    let window = m.config().agent_unreachable_after;
    match agents.silent_for(&agent.id) {
        Some(silent) if silent > window => Ok(()),
        None => Err(ApiError::unavailable(format!(
            "agent {} is registered at {live_ip} and the leader has not heard from it since it was elected; it cannot tell yet whether it still runs there (retry)",
            agent.id
        ))),
        Some(silent) => Err(ApiError {
            status: StatusCode::CONFLICT,
            body: ErrorBody {
                refusal: Some(Box::new(Refusal {
                    reason: AGENT_ID_IN_USE.to_string(),
                    agent_id: agent.id.to_string(),
                    live_ip: live_ip.clone(),
                    ip: agent.ip.clone(),
                })),
                ..ErrorBody::new(format!(
                    "agent {id} is live at {live_ip} (last heartbeat {ms} ms ago), and this agent at {ip} has the same id: its work dir was copied from that agent's. Give this agent its own work dir (or remove agent-id, tasks/ and sandboxes/ from the copy) and start it again. If agent {id} moved to {ip}, stop the old process; {ip} is accepted once the masters mark agent {id} unreachable ({window_ms} ms without a heartbeat).",
                    id = agent.id,
                    ip = agent.ip,
                    ms = silent.as_millis(),
                    window_ms = window.as_millis(),
                ))
            },
        }),
    }
}

/// `POST /internal/agents/{id}/heartbeat`.
pub async fn heartbeat(
    State(m): State<Arc<RaftNode>>,
    State(agents): State<Arc<AgentView>>,
    Path(id): Path<String>,
    Json(beat): Json<Heartbeat>,
) -> Result<Json<HeartbeatAck>, ApiError> {
    // A deposed leader that has not noticed (cut off from the other masters) must not keep
    // the agent: a 503 sends it to the next master.
    m.confirm_leadership().await?;
    let id = AgentId(id);
    let agent_state = m.state().read(|a| a.state.agent(&id).map(|r| r.state));
    match agent_state {
        None | Some(AgentState::Gone) => return Err(unknown_agent(&id.0)),
        Some(AgentState::Unreachable) => {
            tracing::info!(agent = %id, "agent is back");
            m.write(Command::SetAgentState {
                agent_id: id.clone(),
                state: AgentState::Active,
                at_ms: m.clock().now_ms(),
            })
            .await?;
            // Its unreplaced instances are marked running again by the same command.
        }
        Some(AgentState::Active) => {}
    }
    agents.heard_from(&id, beat.rtt_ms);
    if let Some(disk) = beat.disk {
        agents.set_disk(&id, disk);
    }
    Ok(Json(HeartbeatAck { term: m.term() }))
}

/// Query of the assignments long poll.
#[derive(Deserialize)]
pub struct AssignmentsQuery {
    #[serde(default)]
    after: u64,
    #[serde(default)]
    wait_ms: u64,
    /// `once` ([`DEFINITIONS_ONCE`]): answer [`SharedAssignments`].
    #[serde(default)]
    definitions: Option<String>,
}

/// An assignments poll's answer, in the form the agent asked for.
pub enum AssignmentsAnswer {
    /// Each task with its definition (agents that did not ask for `definitions=once`).
    Full(Assignments),
    /// Each definition once.
    Shared(SharedAssignments),
}

impl axum::response::IntoResponse for AssignmentsAnswer {
    fn into_response(self) -> axum::response::Response {
        match self {
            AssignmentsAnswer::Full(a) => Json(a).into_response(),
            AssignmentsAnswer::Shared(a) => Json(a).into_response(),
        }
    }
}

/// What an agent should run, from the state: every instance assigned to it that has not
/// stopped for good, each app version's definition once.
fn assignments_for(
    state: &ClusterState,
    agent: &AgentId,
) -> (Vec<VersionedDefinition>, Vec<TaskRef>) {
    let mut definitions: Vec<VersionedDefinition> = Vec::new();
    let mut seen: std::collections::HashSet<(&AppId, &str)> = std::collections::HashSet::new();
    let tasks = state
        .instances_on(agent)
        .filter(|i| !i.condition.is_terminal())
        .map(|i| {
            if seen.insert((&i.app_id, i.app_version.as_str())) {
                definitions.push(VersionedDefinition {
                    version: i.app_version.clone(),
                    app: definition_of(state, i),
                });
            }
            TaskRef {
                instance_id: i.id.clone(),
                app_id: Some(i.app_id.clone()),
                app: None,
                app_version: i.app_version.clone(),
                ports: i.ports.clone(),
                goal: match i.goal {
                    Goal::Running => TaskGoal::Running,
                    Goal::Stopped | Goal::Decommissioned => TaskGoal::Killed,
                },
                term: i.term,
            }
        })
        .collect();
    (definitions, tasks)
}

/// The definition an instance runs; for an instance of a deleted app (only ever told to
/// stop), a stand-in carrying the id.
fn definition_of(state: &ClusterState, i: &Instance) -> AppDefinition {
    state.definition(i).cloned().unwrap_or_else(|| {
        AppDefinition::from_json(&json!({"id": i.app_id.as_str(), "cmd": "true", "instances": 0}))
            .unwrap_or_else(|_| unreachable_definition())
    })
}

fn unreachable_definition() -> AppDefinition {
    // The literal above is valid for every valid app id; this is never reached.
    AppDefinition::from_json(&json!({"id": "/deleted", "cmd": "true"}))
        .unwrap_or_else(|e| panic!("built-in app definition is invalid: {e}"))
}

/// `GET /internal/agents/{id}/assignments?after=REV&wait_ms=MS[&definitions=once]`: answers at once when the
/// agent's own assignments moved past revision `after`, otherwise when they do or `wait_ms`
/// passes. Commits that do not touch this agent's assignments do not wake it: the revision is
/// the agent's ([`ClusterState::assignment_revision`]), not the log's.
pub async fn assignments(
    State(m): State<Arc<RaftNode>>,
    State(agents): State<Arc<AgentView>>,
    Path(id): Path<String>,
    Query(q): Query<AssignmentsQuery>,
) -> Result<AssignmentsAnswer, ApiError> {
    let id = AgentId(id);
    if m.state().read(|a| a.state.agent(&id).is_none()) {
        return Err(unknown_agent(&id.0));
    }
    // Subscribed before the first look, so an apply between the look and the wait wakes it.
    let mut applied = m.state().subscribe();
    let wait = Duration::from_millis(q.wait_ms).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        applied.borrow_and_update();
        let revision = m.state().read(|a| a.state.assignment_revision(&id));
        if revision > q.after || tokio::time::Instant::now() >= deadline {
            break;
        }
        if tokio::time::timeout_at(deadline, applied.changed())
            .await
            .is_err()
        {
            break;
        }
    }
    agents.heard_from(&id, None);
    m.metrics().assignments_answered();
    let (revision, (definitions, tasks)) = m.state().read(|a| {
        (
            a.state.assignment_revision(&id),
            assignments_for(&a.state, &id),
        )
    });
    let shared = SharedAssignments {
        term: m.term(),
        revision,
        definitions,
        tasks,
    };
    if q.definitions.as_deref() == Some(DEFINITIONS_ONCE) {
        return Ok(AssignmentsAnswer::Shared(shared));
    }
    // Agents that did not ask get each task with its definition: the same answer, expanded
    // as an agent that asked expands it.
    shared.expand().map(AssignmentsAnswer::Full).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("The master could not build this agent's assignments: {e}"),
        )
    })
}

/// Mesos's name for a condition, as Marathon's events carry it.
pub fn mesos_task_state(c: Condition) -> &'static str {
    match c {
        Condition::Scheduled | Condition::Staging => "TASK_STAGING",
        Condition::Starting => "TASK_STARTING",
        Condition::Running => "TASK_RUNNING",
        Condition::Killing => "TASK_KILLING",
        Condition::Killed => "TASK_KILLED",
        Condition::Failed => "TASK_FAILED",
        Condition::Finished => "TASK_FINISHED",
        Condition::Error => "TASK_ERROR",
        Condition::Unreachable => "TASK_UNREACHABLE",
        Condition::Gone => "TASK_GONE",
    }
}

/// `POST /internal/agents/{id}/status`: records condition changes (replicated), health and
/// readiness (leader's memory).
pub async fn status(
    State(m): State<Arc<RaftNode>>,
    State(agents): State<Arc<AgentView>>,
    State(events): State<Arc<EventBus>>,
    Path(id): Path<String>,
    Json(report): Json<StatusReport>,
) -> Result<Json<Value>, ApiError> {
    let id = AgentId(id);
    if m.state().read(|a| a.state.agent(&id).is_none()) {
        return Err(unknown_agent(&id.0));
    }
    agents.heard_from(&id, None);
    // Health and readiness are the leader's memory, not replicated: recorded at once, for
    // this agent's own instances only.
    m.state().read(|a| {
        for update in &report.updates {
            let Some(inst) = a.state.instances().get(&update.instance_id) else {
                continue;
            };
            if inst.agent_id != id {
                continue;
            }
            if let Some(r) = &update.readiness {
                agents.set_readiness(&inst.id, r.clone());
            }
            if !update.containers.is_empty() && update.condition.is_terminal() {
                agents.record_termination(
                    &inst.app_id,
                    crate::agents::Termination {
                        instance_id: inst.id.clone(),
                        started_at_ms: inst.started_at_ms,
                        terminated_at_ms: update.at_ms,
                        message: update.message.clone().unwrap_or_default(),
                        containers: update.containers.clone(),
                    },
                );
            }
            let Some(h) = &update.health else {
                continue;
            };
            let before = agents.health(&inst.id).map(|b| b.healthy);
            if before != Some(h.healthy) {
                events.publish(Event::HealthStatusChangedEvent {
                    app_id: inst.app_id.to_string(),
                    instance_id: inst.id.to_string(),
                    version: inst.app_version.clone(),
                    alive: h.healthy,
                });
                events.publish(Event::InstanceHealthChangedEvent {
                    instance_id: inst.id.to_string(),
                    run_spec_id: inst.app_id.to_string(),
                    run_spec_version: inst.app_version.clone(),
                    healthy: Some(h.healthy),
                });
            }
            if !h.healthy {
                events.publish(Event::FailedHealthCheckEvent {
                    app_id: inst.app_id.to_string(),
                    instance_id: inst.id.to_string(),
                    task_id: inst.id.to_string(),
                    version: inst.app_version.clone(),
                    cause: h.last_failure_cause.clone(),
                });
            }
            agents.set_health(&inst.id, h.clone());
        }
    });
    // Conditions go through the state machine, which applies the life-cycle rules (only
    // this agent's instances, never out of a terminal condition); events describe what it
    // changed, after the commit.
    let reports: Vec<state::InstanceReport> = report
        .updates
        .iter()
        .map(|u| state::InstanceReport {
            instance_id: u.instance_id.clone(),
            condition: u.condition,
            at_ms: u.at_ms,
        })
        .collect();
    if reports.is_empty() {
        return Ok(Json(json!({})));
    }
    let Applied::Reported { changed } = m.report(id.clone(), reports).await? else {
        return Ok(Json(json!({})));
    };
    m.state().read(|a| {
        for (instance_id, condition) in &changed {
            let Some(inst) = a.state.instances().get(instance_id) else {
                continue;
            };
            let message = report
                .updates
                .iter()
                .find(|u| u.instance_id == *instance_id && u.condition == *condition)
                .and_then(|u| u.message.as_deref());
            if let Some(msg) = message {
                tracing::info!(instance = %inst.id, condition = ?condition, "{msg}");
            }
            events.publish(crate::events::status_update(
                &a.state,
                inst,
                mesos_task_state(*condition),
                message.map(str::to_string),
            ));
            let host = a
                .state
                .agent(&inst.agent_id)
                .map(|r| r.agent.hostname.clone())
                .unwrap_or_default();
            events.publish(Event::InstanceChangedEvent {
                instance_id: inst.id.to_string(),
                run_spec_id: inst.app_id.to_string(),
                agent_id: inst.agent_id.to_string(),
                host,
                run_spec_version: inst.app_version.clone(),
                condition: format!("{condition:?}"),
            });
        }
    });
    Ok(Json(json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(protocol: Option<u32>) -> Registration {
        let mut body = json!({
            "agent": {"id": "a1", "hostname": "h1", "ip": "127.0.0.2"},
            "version": "0.1.0",
        });
        if let Some(p) = protocol {
            body["protocol"] = json!(p);
        }
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn an_agent_released_before_versions_is_accepted_at_protocol_1() {
        let reg = registration(None);
        assert_eq!(reg.protocol, 1);
        assert!(refuse_protocol(&reg).is_ok());
        assert!(refuse_protocol(&registration(Some(AGENT_PROTOCOL))).is_ok());
    }

    #[test]
    fn an_agent_outside_the_masters_protocols_is_refused_with_what_to_upgrade() {
        let e = refuse_protocol(&registration(Some(AGENT_PROTOCOL + 1))).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.body.message.contains(&format!(
                "this agent speaks agent protocol {}; this master speaks {} to {AGENT_PROTOCOL}: upgrade the masters first, then the agents",
                AGENT_PROTOCOL + 1,
                state::protocol::OLDEST_AGENT_PROTOCOL
            )),
            "{}",
            e.body.message
        );
        let refusal = e.body.refusal.expect("a refusal the agent acts on");
        assert_eq!(refusal.reason, AGENT_PROTOCOL_UNSUPPORTED);
        let e = refuse_protocol(&registration(Some(0))).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.body.message.contains("too old"), "{}", e.body.message);
    }
}
