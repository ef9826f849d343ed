//! `GET /v2/deployments` and the answers of operations that start one.

use serde::{Deserialize, Serialize};

/// A deployment as Marathon shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// Its id.
    pub id: String,
    /// The app version it deploys.
    pub version: String,
    /// The apps it changes.
    pub affected_apps: Vec<String>,
    /// Always empty (no pods in drover).
    pub affected_pods: Vec<String>,
    /// Its steps.
    pub steps: Vec<Step>,
    /// The actions of the step in progress.
    pub current_actions: Vec<CurrentAction>,
    /// The step in progress, from 1.
    pub current_step: u32,
    /// How many steps.
    pub total_steps: usize,
}

/// One step: actions that run together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The actions.
    pub actions: Vec<StepAction>,
}

/// One action of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepAction {
    /// `StartApplication`, `ScaleApplication`, `RestartApplication`, `StopApplication`.
    pub action: String,
    /// The app.
    pub app: String,
}

/// One action in progress, with its readiness checks (always none in drover).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentAction {
    /// The action's name.
    pub action: String,
    /// The app.
    pub app: String,
    /// Always empty.
    pub readiness_check_results: Vec<serde_json::Value>,
}

/// A deployment named by id (on apps, in a 409's body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRef {
    /// The deployment's id.
    pub id: String,
}
