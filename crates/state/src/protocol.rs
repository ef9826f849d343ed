//! The agent protocol: the messages agents and masters exchange over HTTP (internal API,
//! not a stable interface). Agents pull; masters never connect to agents.
//!
//! | call | body | answer |
//! |---|---|---|
//! | `POST /internal/agents/register` | [`Registration`] | 200 [`Registered`]; 400 `{"message","reason":"agent_protocol_unsupported"}` when the agent's [`Registration::protocol`] is outside [`OLDEST_AGENT_PROTOCOL`]..=[`AGENT_PROTOCOL`]; 409 `{"message"}` when another live agent has the IP, or `{"message","reason":"agent_id_in_use"}` when the id is live at another IP (a cloned work dir); 503 while the leader cannot tell yet; 422 for bad fields |
//! | `POST /internal/agents/{id}/heartbeat` | [`Heartbeat`] | 200 [`HeartbeatAck`]; 404 when the leader does not know the agent (register again) |
//! | `GET /internal/agents/{id}/assignments?after=REV&wait_ms=MS[&definitions=once]` | | 200 [`Assignments`] ([`SharedAssignments`] with `definitions=once`), at once if the revision moved past `after`, else after at most `wait_ms` |
//! | `POST /internal/agents/{id}/status` | [`StatusReport`] | 200 `{}`; 404 as for heartbeats |
//!
//! Any master answers (followers forward to the leader). Every answer that carries
//! assignments carries the leader's Raft term: an agent ignores answers from a term lower than
//! the highest it has seen, so a deposed leader cannot start or stop anything.
//!
//! # Versions
//!
//! The protocol has a version, [`AGENT_PROTOCOL`]. An agent sends its own in its
//! registration; the master answers the version it will use with that agent, the lower of
//! the two, and serves any agent from [`OLDEST_AGENT_PROTOCOL`] up, so a cluster of old and
//! new processes works while it is upgraded (masters first, then agents). Version 1 is every
//! agent and master released before the field existed: a registration or an answer without
//! it is version 1. Fields added within a version are optional (`#[serde(default)]`) and
//! unknown fields are ignored, so either side may be the newer one.

use domain::{Agent, AgentId, AppDefinition, AppId};
use serde::{Deserialize, Serialize};

use crate::command::{Condition, InstanceId};

/// The agent protocol this build speaks (see the module's "Versions"): 2 added the version
/// fields themselves.
pub const AGENT_PROTOCOL: u32 = 2;

/// The oldest agent protocol this build still speaks: a master serves agents from this
/// version up, an agent registers with masters that speak at least it.
pub const OLDEST_AGENT_PROTOCOL: u32 = 1;

/// `reason` of the 400 to a registration whose agent protocol the master does not speak.
pub const AGENT_PROTOCOL_UNSUPPORTED: &str = "agent_protocol_unsupported";

/// The version of peers released before protocol versions existed (they send none).
fn first_protocol() -> u32 {
    1
}

/// Why a master cannot serve an agent speaking `agent` (it speaks
/// [`OLDEST_AGENT_PROTOCOL`]..=[`AGENT_PROTOCOL`]), saying which side to upgrade; `None`
/// when it can.
pub fn unsupported_agent_protocol(agent: u32) -> Option<String> {
    let ours = format!("this master speaks {OLDEST_AGENT_PROTOCOL} to {AGENT_PROTOCOL}");
    if agent > AGENT_PROTOCOL {
        Some(format!(
            "this agent speaks agent protocol {agent}; {ours}: upgrade the masters first, then the agents"
        ))
    } else if agent < OLDEST_AGENT_PROTOCOL {
        Some(format!(
            "this agent speaks agent protocol {agent}; {ours}: this agent is too old for these masters, upgrade it to the masters' release"
        ))
    } else {
        None
    }
}

/// An agent introducing itself (first start, restart, or after a leader lost track of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// The agent: its persisted id, hostname, ip, fault domain, resources and attributes.
    pub agent: Agent,
    /// drover version of the agent.
    pub version: String,
    /// The agent protocol the agent speaks, [`AGENT_PROTOCOL`] of its build (absent from
    /// agents released before versions: 1).
    #[serde(default = "first_protocol")]
    pub protocol: u32,
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
    /// The agent protocol the master speaks with this agent: the lower of the agent's and
    /// its own (absent from masters released before versions: 1).
    #[serde(default = "first_protocol")]
    pub protocol: u32,
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

/// The `definitions` value of an assignments poll that asks for [`SharedAssignments`].
pub const DEFINITIONS_ONCE: &str = "once";

/// [`Assignments`] with each app version's definition sent once, for an agent that polls
/// with `definitions=once`: an agent running 100 instances of one app gets one definition,
/// not 100 copies of it. The agent [`expand`](SharedAssignments::expand)s it back. It also
/// reads a master's [`Assignments`] (a master that ignored the parameter), whose tasks
/// carry their definitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedAssignments {
    /// The leader's term.
    pub term: u64,
    /// As [`Assignments::revision`].
    pub revision: u64,
    /// The definitions the tasks run, one per app version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub definitions: Vec<VersionedDefinition>,
    /// The instances.
    pub tasks: Vec<TaskRef>,
}

/// One app version's definition in [`SharedAssignments`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionedDefinition {
    /// The version (`MARATHON_APP_VERSION`).
    pub version: String,
    /// The definition (its `id` is the app's).
    pub app: AppDefinition,
}

/// A [`TaskAssignment`] naming its definition by app id and version instead of carrying it
/// (or carrying it, from a master that sends [`Assignments`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRef {
    /// As [`TaskAssignment::instance_id`].
    pub instance_id: InstanceId,
    /// The app, whose definition at `app_version` is in [`SharedAssignments::definitions`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<AppId>,
    /// The definition itself, from a master that sends [`Assignments`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppDefinition>,
    /// As [`TaskAssignment::app_version`].
    pub app_version: String,
    /// As [`TaskAssignment::ports`].
    pub ports: Vec<u64>,
    /// As [`TaskAssignment::goal`].
    pub goal: TaskGoal,
    /// As [`TaskAssignment::term`].
    pub term: u64,
}

impl SharedAssignments {
    /// The same assignments with every task carrying its definition; `Err` names a task
    /// whose definition the answer does not hold (a master's bug: nothing should be run
    /// from such an answer).
    pub fn expand(self) -> Result<Assignments, String> {
        let definitions: std::collections::HashMap<(&AppId, &str), &AppDefinition> = self
            .definitions
            .iter()
            .map(|d| ((&d.app.id, d.version.as_str()), &d.app))
            .collect();
        let tasks = self
            .tasks
            .into_iter()
            .map(|t| {
                let app = match (t.app, &t.app_id) {
                    (Some(app), _) => app,
                    (None, Some(id)) => definitions
                        .get(&(id, t.app_version.as_str()))
                        .map(|d| (*d).clone())
                        .ok_or_else(|| {
                            format!(
                                "task {} names app {id} version {} but the answer has no such definition",
                                t.instance_id, t.app_version
                            )
                        })?,
                    (None, None) => {
                        return Err(format!(
                            "task {} has neither a definition nor an app id",
                            t.instance_id
                        ));
                    }
                };
                Ok(TaskAssignment {
                    instance_id: t.instance_id,
                    app,
                    app_version: t.app_version,
                    ports: t.ports,
                    goal: t.goal,
                    term: t.term,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Assignments {
            term: self.term,
            revision: self.revision,
            tasks,
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn definition(id: &str) -> serde_json::Value {
        json!({"id": id, "cmd": "sleep 100", "instances": 2})
    }

    fn task(id: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut t = json!({"instance_id": id, "app_version": "v1", "ports": [31000], "goal": "running", "term": 4});
        for (k, v) in extra.as_object().into_iter().flatten() {
            t[k] = v.clone();
        }
        t
    }

    #[test]
    fn shared_assignments_expand_each_task_with_its_versions_definition() {
        let shared: SharedAssignments = serde_json::from_value(json!({
            "term": 4, "revision": 9,
            "definitions": [
                {"version": "v1", "app": definition("/web")},
                {"version": "v1", "app": definition("/db")},
            ],
            "tasks": [
                task("web.1", json!({"app_id": "/web"})),
                task("db.1", json!({"app_id": "/db"})),
                task("web.2", json!({"app_id": "/web"})),
            ],
        }))
        .unwrap();
        let full = shared.expand().unwrap();
        assert_eq!((full.term, full.revision), (4, 9));
        let apps: Vec<(&str, &str)> = full
            .tasks
            .iter()
            .map(|t| (t.instance_id.0.as_str(), t.app.id.as_str()))
            .collect();
        assert_eq!(
            apps,
            [("web.1", "/web"), ("db.1", "/db"), ("web.2", "/web")]
        );
        assert_eq!(full.tasks[0].ports, [31000]);
    }

    #[test]
    fn a_full_answer_reads_as_shared_assignments_too() {
        // A master that does not know `definitions=once` answers each task with its own.
        let full = json!({"term": 2, "revision": 3, "tasks": [task("web.1", json!({"app": definition("/web")}))]});
        let read: Assignments = serde_json::from_value(full.clone()).unwrap();
        let shared: SharedAssignments = serde_json::from_value(full).unwrap();
        assert_eq!(shared.expand().unwrap(), read);
    }

    #[test]
    fn a_task_whose_definition_is_missing_makes_the_answer_unreadable() {
        let shared: SharedAssignments = serde_json::from_value(json!({
            "term": 4, "revision": 9,
            "definitions": [{"version": "v0", "app": definition("/web")}],
            "tasks": [task("web.1", json!({"app_id": "/web"}))],
        }))
        .unwrap();
        assert_eq!(
            shared.clone().expand().unwrap_err(),
            "task web.1 names app /web version v1 but the answer has no such definition"
        );
        let mut bare = shared;
        bare.tasks[0].app_id = None;
        assert_eq!(
            bare.expand().unwrap_err(),
            "task web.1 has neither a definition nor an app id"
        );
    }

    fn agent() -> serde_json::Value {
        json!({"id": "a1", "hostname": "h1", "ip": "127.0.0.2"})
    }

    #[test]
    fn a_registration_without_a_protocol_is_from_an_agent_before_versions() {
        let reg: Registration =
            serde_json::from_value(json!({"agent": agent(), "version": "0.1.0"})).unwrap();
        assert_eq!(reg.protocol, 1);
        assert_eq!(unsupported_agent_protocol(reg.protocol), None);
        let answer: Registered = serde_json::from_value(json!({
            "agent_id": "a1", "term": 3, "heartbeat_interval_ms": 1000,
            "local_region": "local", "remote": false
        }))
        .unwrap();
        assert_eq!(answer.protocol, 1, "an answer of a master before versions");
    }

    #[test]
    fn protocols_outside_the_range_are_refused_saying_which_side_to_upgrade() {
        for p in OLDEST_AGENT_PROTOCOL..=AGENT_PROTOCOL {
            assert_eq!(unsupported_agent_protocol(p), None, "{p}");
        }
        let newer = unsupported_agent_protocol(AGENT_PROTOCOL + 1).unwrap();
        assert_eq!(
            newer,
            format!(
                "this agent speaks agent protocol {}; this master speaks {OLDEST_AGENT_PROTOCOL} to {AGENT_PROTOCOL}: upgrade the masters first, then the agents",
                AGENT_PROTOCOL + 1
            )
        );
        let older = unsupported_agent_protocol(0).unwrap();
        assert!(older.contains("agent protocol 0"), "{older}");
        assert!(older.contains("upgrade it"), "{older}");
    }

    #[test]
    fn unknown_fields_of_a_newer_agent_are_ignored_on_the_wire() {
        let mut newer = agent();
        newer["gpus"] = json!(2);
        newer["resources"] = json!({"cpus": 2, "mem": 512, "fpgas": 1});
        let reg: Registration = serde_json::from_value(json!({
            "agent": newer, "version": "9.0.0", "protocol": 2, "flavour": "new"
        }))
        .unwrap();
        assert_eq!(reg.agent.id.0, "a1");
        assert_eq!(
            (reg.agent.resources.cpus, reg.agent.resources.mem),
            (2.0, 512.0)
        );
    }
}
