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

/// One action in progress, with the readiness results of the instances it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentAction {
    /// The action's name.
    pub action: String,
    /// The app.
    pub app: String,
    /// Each readiness check's latest result for every live instance of the app's new
    /// version (empty for an app without readiness checks, or before its agents reported).
    #[serde(default)]
    pub readiness_check_results: Vec<crate::ReadinessCheckResult>,
}

/// A deployment plan as Marathon's events carry it (`deployment_info`, `deployment_success`,
/// `deployment_failed`, `deployment_step_success`): its id, version and steps, and the root
/// group before (`original`) and after (`target`). Strict clients (marathon-python's
/// `MarathonDeploymentPlan`) take exactly these fields, not `/v2/deployments`' ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentPlan {
    /// The deployment's id.
    pub id: String,
    /// The version it deploys.
    pub version: String,
    /// The root group before the deployment.
    pub original: GroupState,
    /// The root group after it.
    pub target: GroupState,
    /// Its steps.
    pub steps: Vec<Step>,
}

/// A group in a [`DeploymentPlan`]: for a `/v2/groups` change, the group changed, with its
/// apps' definitions; for a change of one app, the root group with no apps listed (the
/// steps name the apps the deployment changes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    /// `/`.
    pub id: String,
    /// Its apps' definitions (none listed yet).
    pub apps: Vec<serde_json::Value>,
    /// Its groups (none).
    pub groups: Vec<serde_json::Value>,
    /// Its pods (none).
    pub pods: Vec<serde_json::Value>,
    /// Its dependencies (none).
    pub dependencies: Vec<String>,
    /// The version.
    pub version: String,
}

impl GroupState {
    /// The root group with nothing listed, at `version`.
    pub fn root(version: &str) -> Self {
        GroupState {
            id: "/".into(),
            apps: Vec::new(),
            groups: Vec::new(),
            pods: Vec::new(),
            dependencies: Vec::new(),
            version: version.to_string(),
        }
    }
}

impl From<&Deployment> for DeploymentPlan {
    fn from(d: &Deployment) -> Self {
        DeploymentPlan {
            id: d.id.clone(),
            version: d.version.clone(),
            original: GroupState::root(&d.version),
            target: GroupState::root(&d.version),
            steps: d.steps.clone(),
        }
    }
}

impl DeploymentPlan {
    /// The apps its steps change, each once, in step order.
    pub fn affected_apps(&self) -> Vec<String> {
        let mut apps: Vec<String> = Vec::new();
        for a in self.steps.iter().flat_map(|s| &s.actions) {
            if !apps.contains(&a.app) {
                apps.push(a.app.clone());
            }
        }
        apps
    }
}

/// A deployment named by id (on apps, in a 409's body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRef {
    /// The deployment's id.
    pub id: String,
}
