//! Tasks as Marathon shows them: `/v2/tasks`, `/v2/apps/{id}/tasks`, embedded in apps, and
//! the body of `POST /v2/tasks/delete`.

use serde::{Deserialize, Serialize};

/// `{"tasks": […]}`: `GET /v2/tasks`, `GET /v2/apps/{id}/tasks`, `POST /v2/tasks/delete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tasks {
    /// The tasks.
    pub tasks: Vec<Task>,
}

/// One task (a live instance), exactly the fields of Marathon's `Task` (RAML `task.raml`);
/// `region` and `zone` are Marathon's fault domain fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// The instance id.
    pub id: String,
    /// Its app.
    pub app_id: String,
    /// Its agent's hostname, when the agent is known.
    pub host: Option<String>,
    /// Its agent's address.
    pub ip_addresses: Vec<IpAddress>,
    /// Host ports.
    pub ports: Vec<u64>,
    /// The app's declared port definition ports (drover assigns no service ports itself).
    pub service_ports: Vec<u64>,
    /// The agent's id (Mesos' name; Marathon's task has no `agentId`, and strict clients such
    /// as marathon-python refuse one).
    pub slave_id: String,
    /// Mesos' task state, `TASK_RUNNING`.
    pub state: String,
    /// When it was scheduled (ISO 8601).
    pub staged_at: String,
    /// When it started running.
    pub started_at: Option<String>,
    /// The app version it runs.
    pub version: String,
    /// Its health check's last result (none without health checks).
    pub health_check_results: Vec<HealthCheckResult>,
    /// Its agent's region.
    pub region: Option<String>,
    /// Its agent's zone.
    pub zone: Option<String>,
}

/// One `ipAddresses` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpAddress {
    /// The address.
    pub ip_address: String,
    /// `IPv4`.
    pub protocol: String,
}

/// A task's health as its agent last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckResult {
    /// The instance id.
    pub instance_id: String,
    /// Whether the last check passed.
    pub alive: bool,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Why the last failure failed.
    pub last_failure_cause: Option<String>,
    /// When it last passed (set when `alive`).
    pub last_success: Option<String>,
    /// When it last failed (set when not `alive`).
    pub last_failure: Option<String>,
}

/// An app's `lastTaskFailure` (Marathon's `TaskFailure`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskFailure {
    /// The app.
    pub app_id: String,
    /// The agent's hostname.
    pub host: String,
    /// Why it failed (empty: drover's state keeps the condition, not the message).
    pub message: String,
    /// Mesos' task state, `TASK_FAILED`.
    pub state: String,
    /// The task id.
    pub task_id: String,
    /// When it failed (ISO 8601).
    pub timestamp: String,
    /// The app version it ran.
    pub version: String,
    /// The agent's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slave_id: Option<String>,
}

/// Body of `POST /v2/tasks/delete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskIds {
    /// The task ids to kill.
    pub ids: Vec<String>,
}

impl Task {
    /// Its health as one word: `healthy`, `unhealthy`, or `-` without health checks.
    pub fn health(&self) -> &'static str {
        let r = &self.health_check_results;
        if r.is_empty() {
            "-"
        } else if r.iter().all(|h| h.alive) {
            "healthy"
        } else {
            "unhealthy"
        }
    }

    /// Its host ports, comma-separated, or `-`.
    pub fn ports_text(&self) -> String {
        if self.ports.is_empty() {
            return "-".into();
        }
        let ports: Vec<String> = self.ports.iter().map(u64::to_string).collect();
        ports.join(",")
    }
}
