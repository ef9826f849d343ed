//! Deployments: the record of a change to an app (start, scale, restart, upgrade) from the
//! moment it is accepted until the app has converged on it. The scheduler does the work
//! (replacing old instances within the app's `upgradeStrategy`); a deployment locks its app
//! against other changes unless they are forced, and says what is in progress.

use domain::AppId;
use serde_json::{Value, json};
use state::{ClusterState, Deployment, DeploymentAction, DeploymentStep, Instance};

/// What a deployment does to its app (Marathon's action names).
pub use state::ActionKind as Action;

/// A new deployment of `app` at `version`, created at `now_ms`.
pub fn new(app: &AppId, version: &str, action: Action, now_ms: u64) -> Deployment {
    Deployment {
        id: uuid::Uuid::new_v4().to_string(),
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

/// Marathon's JSON for a deployment.
pub fn to_json(d: &Deployment) -> Value {
    let current: Vec<Value> = d
        .steps
        .first()
        .into_iter()
        .flat_map(|s| &s.actions)
        .map(|a| json!({"action": a.action, "app": a.app.as_str(), "readinessCheckResults": []}))
        .collect();
    json!({
        "id": d.id,
        "version": d.version,
        "affectedApps": d.affected_apps.iter().map(AppId::as_str).collect::<Vec<_>>(),
        "affectedPods": [],
        "steps": d.steps,
        "currentActions": current,
        "currentStep": d.current_step,
        "totalSteps": d.steps.len(),
    })
}
