//! `/v2/apps`: apps with their status, their versions, and the answers of changes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use domain::{AppDefinition, ValidationErrors};

use crate::deployments::DeploymentRef;
use crate::tasks::{Task, TaskFailure};

/// `GET /v2/apps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppList {
    /// The apps.
    pub apps: Vec<App>,
}

/// `GET /v2/apps/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppEnvelope {
    /// The app, with its tasks.
    pub app: App,
}

/// `GET /v2/apps/{id}/versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions {
    /// Newest first.
    pub versions: Vec<String>,
}

/// An app as Marathon lists it: its definition (Marathon's JSON, kept as it is: the domain
/// crate validates it), its version, task counts, deployments, and tasks when embedded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "RawApp")]
pub struct App {
    /// The definition's fields (`id`, `instances`, `cpus`, …).
    #[serde(flatten)]
    pub definition: Map<String, Value>,
    /// The app's current version (ISO 8601).
    pub version: String,
    /// When it last changed.
    #[serde(rename = "versionInfo")]
    pub version_info: VersionInfo,
    /// Its task counts (absent on a single version, `/v2/apps/{id}/versions/{v}`).
    #[serde(flatten)]
    pub counts: Option<TaskCounts>,
    /// Its deployments in progress (absent on a single version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployments: Option<Vec<DeploymentRef>>,
    /// Its live tasks, when embedded (`GET /v2/apps/{id}`, `?embed=apps.tasks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<Task>>,
    /// Its latest failed task still known (`GET /v2/apps/{id}`, `?embed=apps.lastTaskFailure`).
    #[serde(
        rename = "lastTaskFailure",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_task_failure: Option<TaskFailure>,
    /// Readiness check results of its live tasks (`?embed=apps.readiness`).
    #[serde(
        rename = "readinessCheckResults",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub readiness_check_results: Option<Vec<ReadinessCheckResult>>,
    /// Task statistics by version (`?embed=apps.taskStats`).
    #[serde(rename = "taskStats", default, skip_serializing_if = "Option::is_none")]
    pub task_stats: Option<TaskStatsByVersion>,
}

/// One readiness check's latest result for one task (Marathon's `ReadinessCheckResult`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessCheckResult {
    /// The check's `name`.
    pub name: String,
    /// The task.
    pub task_id: String,
    /// True once the check saw one of its ready status codes.
    pub ready: bool,
    /// The last answer, when the check has `preserveLastResponse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_response: Option<HttpResponse>,
}

/// An answer a readiness check kept (Marathon's `HttpResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header (empty without one).
    pub content_type: String,
    /// The body as text (at most 16 KiB of it).
    pub body: String,
}

/// `taskStats` of an app: its live tasks' statistics, by how their version relates to the
/// app's (each absent when no task falls in it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatsByVersion {
    /// Tasks started after the app's last scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_after_last_scaling: Option<Stats>,
    /// Tasks running the app's current configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_latest_config: Option<Stats>,
    /// Tasks running an older configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_outdated_config: Option<Stats>,
    /// Every live task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_summary: Option<Stats>,
}

/// One category of [`TaskStatsByVersion`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// The statistics.
    pub stats: TaskStats,
}

/// Counts and life times of some tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStats {
    /// How many are staged, running, healthy, unhealthy.
    pub counts: StatsCounts,
    /// How long they have lived, measured from `stagedAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub life_time: Option<LifeTime>,
}

/// `counts` of [`TaskStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsCounts {
    /// Scheduled, staging or starting.
    pub staged: u32,
    /// Running.
    pub running: u32,
    /// Passing their health checks.
    pub healthy: u32,
    /// Failing them.
    pub unhealthy: u32,
}

/// `lifeTime` of [`TaskStats`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifeTime {
    /// Mean seconds since staging.
    pub average_seconds: f64,
    /// Median seconds since staging.
    pub median_seconds: f64,
}

/// [`App`] as serde reads it: a flattened map keeps every field it sees, so the counts
/// (read into their own struct as well) are taken out of the definition afterwards.
#[derive(Deserialize)]
struct RawApp {
    #[serde(flatten)]
    definition: Map<String, Value>,
    version: String,
    #[serde(rename = "versionInfo")]
    version_info: VersionInfo,
    #[serde(flatten)]
    counts: Option<TaskCounts>,
    #[serde(default)]
    deployments: Option<Vec<DeploymentRef>>,
    #[serde(default)]
    tasks: Option<Vec<Task>>,
    #[serde(rename = "lastTaskFailure", default)]
    last_task_failure: Option<TaskFailure>,
    #[serde(rename = "readinessCheckResults", default)]
    readiness_check_results: Option<Vec<ReadinessCheckResult>>,
    #[serde(rename = "taskStats", default)]
    task_stats: Option<TaskStatsByVersion>,
}

/// The count fields, which are not part of a definition.
const COUNT_FIELDS: [&str; 4] = [
    "tasksStaged",
    "tasksRunning",
    "tasksHealthy",
    "tasksUnhealthy",
];

impl From<RawApp> for App {
    fn from(raw: RawApp) -> Self {
        let mut definition = raw.definition;
        if raw.counts.is_some() {
            for key in COUNT_FIELDS {
                definition.remove(key);
            }
        }
        App {
            definition,
            version: raw.version,
            version_info: raw.version_info,
            counts: raw.counts,
            deployments: raw.deployments,
            tasks: raw.tasks,
            last_task_failure: raw.last_task_failure,
            readiness_check_results: raw.readiness_check_results,
            task_stats: raw.task_stats,
        }
    }
}

/// `versionInfo` of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// The version of the last change.
    pub last_config_change_at: String,
    /// The version of the last scaling.
    pub last_scaling_at: String,
}

/// The counts Marathon puts on every app.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskCounts {
    /// Scheduled, staging or starting.
    pub tasks_staged: u32,
    /// Running.
    pub tasks_running: u32,
    /// Passing their health check.
    pub tasks_healthy: u32,
    /// Failing it.
    pub tasks_unhealthy: u32,
}

/// The answer of a change that starts a deployment (`PUT`, `POST …/restart`, `DELETE`,
/// rollback, `tasks/delete?scale=true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The app's new version.
    pub version: String,
    /// The deployment started, or `null` when nothing changed.
    pub deployment_id: Option<String>,
}

impl App {
    /// The app's id.
    pub fn id(&self) -> &str {
        self.definition
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// A field of the definition, `instances`, `cpus`.
    pub fn field(&self, name: &str) -> &Value {
        self.definition.get(name).unwrap_or(&Value::Null)
    }

    /// The value of label `key` (`labels.<key>`), None when the app has no such label.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.field("labels").get(key).and_then(Value::as_str)
    }

    /// The definition read as the master validates one (typed labels, constraints, health
    /// checks, ...); an error names the fields that are not a valid Marathon app.
    pub fn parse_definition(&self) -> Result<AppDefinition, ValidationErrors> {
        AppDefinition::from_json(&Value::Object(self.definition.clone()))
    }

    /// The counts, zero when absent.
    pub fn counts(&self) -> TaskCounts {
        self.counts.unwrap_or_default()
    }
}
