//! The agent protocol: the messages agents and masters exchange over HTTP (internal API,
//! not a stable interface). Agents pull; masters never connect to agents.
//!
//! | call | body | answer |
//! |---|---|---|
//! | `POST /internal/agents/register` | [`Registration`] | 200 [`Registered`]; 409 `{"message"}` when another live agent has the IP, or `{"message","reason":"agent_id_in_use"}` when the id is live at another IP (a cloned work dir); 503 while the leader cannot tell yet; 422 for bad fields |
//! | `POST /internal/agents/{id}/heartbeat` | [`Heartbeat`] | 200 [`HeartbeatAck`]; 404 when the leader does not know the agent (register again) |
//! | `GET /internal/agents/{id}/assignments?after=REV&wait_ms=MS` | | 200 [`Assignments`], at once if the revision moved past `after`, else after at most `wait_ms` |
//! | `POST /internal/agents/{id}/status` | [`StatusReport`] | 200 `{}`; 404 as for heartbeats |
//!
//! Any master answers (followers forward to the leader). Every answer that carries
//! assignments carries the leader's Raft term: an agent ignores answers from a term lower than
//! the highest it has seen, so a deposed leader cannot start or stop anything.

use domain::{Agent, AgentId, AppDefinition};
use serde::{Deserialize, Serialize};

use crate::command::{Condition, InstanceId};

/// An agent introducing itself (first start, restart, or after a leader lost track of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// The agent: its persisted id, hostname, ip, fault domain, resources and attributes.
    pub agent: Agent,
    /// drover version of the agent.
    pub version: String,
    /// Instances it runs now (found again after a restart, or kept through an outage).
    #[serde(default)]
    pub running: Vec<InstanceId>,
}

/// The leader's answer to a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// The agent's id (as sent).
    pub agent_id: AgentId,
    /// The leader's term.
    pub term: u64,
    /// How often to heartbeat.
    pub heartbeat_interval_ms: u64,
    /// The cluster's local region.
    pub local_region: String,
    /// True when the agent is outside the local region.
    pub remote: bool,
}

/// `reason` of the 409 to a registration whose agent id is live at another address.
pub const AGENT_ID_IN_USE: &str = "agent_id_in_use";

/// "Still here", sent every heartbeat interval.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Round-trip time of the previous heartbeat, as the agent measured it.
    #[serde(default)]
    pub rtt_ms: Option<u64>,
    /// The agent's work dir disk use, once measured (optional: older agents send none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskUse>,
}

/// How much of its disk an agent's work dir uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskUse {
    /// Bytes under the work dir (checkpoints and sandboxes).
    pub work_dir_bytes: u64,
    /// Sandboxes kept, of running and of ended tasks.
    pub sandboxes: u64,
    /// Bytes still available on the work dir's filesystem.
    pub available_bytes: u64,
    /// Size of the work dir's filesystem in bytes.
    pub total_bytes: u64,
}

/// The leader's answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAck {
    /// The leader's term.
    pub term: u64,
}

/// What an instance should be doing on its agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskGoal {
    /// Run it (start it if it is not running).
    Running,
    /// Stop it (SIGTERM, then SIGKILL after the grace period) and report `killed`.
    Killed,
}

/// One instance assigned to an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskAssignment {
    /// The instance (the task id, `MESOS_TASK_ID`).
    pub instance_id: InstanceId,
    /// The app definition of the instance's version (command, env, health checks, container).
    pub app: AppDefinition,
    /// That version (`MARATHON_APP_VERSION`).
    pub app_version: String,
    /// Host ports, in port-definition order (`PORT0`, `PORT1`, …).
    pub ports: Vec<u64>,
    /// Run or stop.
    pub goal: TaskGoal,
    /// Term of the leader that assigned it.
    pub term: u64,
}

/// Everything an agent should be doing: its whole desired set, not a diff. Instances the
/// agent runs that are not listed must be stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignments {
    /// The leader's term.
    pub term: u64,
    /// Changes whenever the set may have changed; pass it back as `after`.
    pub revision: u64,
    /// The instances.
    pub tasks: Vec<TaskAssignment>,
}

/// A health check's latest verdict for an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// True when the last check passed.
    pub healthy: bool,
    /// Failed checks in a row.
    pub consecutive_failures: u32,
    /// Why the last failure failed, for people.
    #[serde(default)]
    pub last_failure_cause: Option<String>,
    /// When the instance was last checked, ms since the Unix epoch.
    pub checked_at_ms: u64,
    /// True when failures exceed `maxConsecutiveFailures` after the grace period: the
    /// scheduler should kill and replace it.
    #[serde(default)]
    pub should_kill: bool,
}

/// What an instance's readiness checks found (`readinessChecks` of its app version): sent
/// when the first check has answered and again when the instance turns ready, after which
/// the agent stops checking (as Marathon does); with `preserveLastResponse`, also whenever
/// the last answer changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessReport {
    /// True once every readiness check has seen one of its ready status codes.
    pub ready: bool,
    /// Each check's latest result, in definition order.
    #[serde(default)]
    pub checks: Vec<ReadinessCheckReport>,
}

/// One readiness check's latest result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessCheckReport {
    /// The check's `name`.
    pub name: String,
    /// True once it has seen a ready status code.
    pub ready: bool,
    /// The last answer, when the check has `preserveLastResponse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_response: Option<HttpAnswer>,
}

/// An HTTP answer as a readiness check keeps it (Marathon's `HttpResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, empty when there was none.
    #[serde(default)]
    pub content_type: String,
    /// The body as text (cut at the agent's limit).
    #[serde(default)]
    pub body: String,
}

/// A change in one instance's condition or health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStatus {
    /// The instance.
    pub instance_id: InstanceId,
    /// Its condition now.
    pub condition: Condition,
    /// For people: why (e.g. "exited with code 3", "docker is not available on this agent").
    #[serde(default)]
    pub message: Option<String>,
    /// Exit code, when it exited.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Health, when the app has health checks and one has run.
    #[serde(default)]
    pub health: Option<HealthReport>,
    /// Readiness, when the app version has readiness checks and one has answered (optional:
    /// older agents send none, older masters ignore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<ReadinessReport>,
    /// How each container of a pod instance ended (sent with a pod instance's terminal
    /// condition; empty otherwise, and from older agents).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerEnd>,
    /// When the agent saw the change, ms since the Unix epoch.
    pub at_ms: u64,
}

/// How one container of a pod instance ended, as its agent saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerEnd {
    /// The container's name in the pod.
    pub name: String,
    /// `Finished` (exit 0), `Failed`, or `Killed` (stopped by the agent: a kill was asked
    /// for, or a sibling container ended first).
    pub condition: Condition,
    /// Its exit code, when it exited (not when a signal ended it).
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// For people: how it ended.
    pub message: String,
}

/// A batch of status changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The highest leader term the agent has seen.
    pub term: u64,
    /// The changes, oldest first.
    pub updates: Vec<TaskStatus>,
}
