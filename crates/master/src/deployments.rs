//! Deployments: the record of a change to an app (start, scale, restart, upgrade) from the
//! moment it is accepted until the app has converged on it. The scheduler does the work
//! (replacing old instances within the app's `upgradeStrategy`); a deployment locks its app
//! against other changes unless they are forced, and says what is in progress.

use domain::AppId;
use state::{ClusterState, Deployment, DeploymentAction, DeploymentStep, Instance};

/// What a deployment does to its app (Marathon's action names).
pub use state::ActionKind as Action;

/// A new deployment of `app` at `version`, created at `now_ms`.
pub fn new(app: &AppId, version: &str, action: Action, now_ms: u64) -> Deployment {
    Deployment {
        id: state::runtime::uuid_v4().to_string(),
        version: version.to_string(),
        affected_apps: vec![app.clone()],
        steps: vec![DeploymentStep {
            actions: vec![DeploymentAction {
                action,
                app: app.clone(),
            }],
        }],
        current_step: 1,
        created_at_ms: now_ms,
    }
}

/// Whether a deployment replaces every instance older than its version.
pub fn restarts(d: &Deployment) -> bool {
    d.steps
        .first()
        .and_then(|s| s.actions.first())
        .is_some_and(|a| a.action == Action::RestartApplication)
}

/// The deployment in progress for an app, if any.
pub fn of_app<'a>(state: &'a ClusterState, app: &AppId) -> Option<&'a Deployment> {
    state
        .deployments()
        .values()
        .find(|d| d.affected_apps.contains(app))
}

/// Whether an instance runs an outdated definition of its app: the definition differs (the
/// instance count aside), or a restart deployment is newer than the instance.
pub fn is_old(state: &ClusterState, inst: &Instance) -> bool {
    let Some(record) = state.app(&inst.app_id) else {
        return false;
    };
    let current = &record.current().app;
    let differs = match record.version(&inst.app_version) {
        Some(v) => {
            let mut theirs = v.app.clone();
            theirs.instances = current.instances;
            theirs != *current
        }
        None => true,
    };
    differs
        || of_app(state, &inst.app_id)
            .is_some_and(|d| restarts(d) && inst.app_version.as_str() < d.version.as_str())
}

/// Marathon's name of an action.
fn action_name(kind: Action) -> &'static str {
    match kind {
        Action::StartApplication => "StartApplication",
        Action::ScaleApplication => "ScaleApplication",
        Action::RestartApplication => "RestartApplication",
        Action::StopApplication => "StopApplication",
    }
}

/// A deployment as `/v2/deployments` shows it.
pub fn wire(d: &Deployment) -> client::Deployment {
    let current_actions = d
        .steps
        .first()
        .into_iter()
        .flat_map(|s| &s.actions)
        .map(|a| client::CurrentAction {
            action: action_name(a.action).to_string(),
            app: a.app.as_str().to_string(),
            readiness_check_results: Vec::new(),
        })
        .collect();
    client::Deployment {
        id: d.id.clone(),
        version: d.version.clone(),
        affected_apps: d
            .affected_apps
            .iter()
            .map(|a| a.as_str().to_string())
            .collect(),
        affected_pods: Vec::new(),
        steps: d
            .steps
            .iter()
            .map(|s| client::Step {
                actions: s
                    .actions
                    .iter()
                    .map(|a| client::StepAction {
                        action: action_name(a.action).to_string(),
                        app: a.app.as_str().to_string(),
                    })
                    .collect(),
            })
            .collect(),
        current_actions,
        current_step: d.current_step,
        total_steps: d.steps.len(),
    }
}
