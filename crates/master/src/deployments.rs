//! Deployments: the record of a change to an app (start, scale, restart, upgrade) from the
//! moment it is accepted until the app has converged on it. The scheduler does the work
//! (replacing old instances within the app's `upgradeStrategy`); a deployment locks its app
//! against other changes unless they are forced, and says what is in progress.
//!
//! A deployment of a group has several steps, in dependency order: an app of a later step
//! waits ([`waits`]) until every app of the earlier steps is done, and [`progress`] is the
//! one place that decides when a step is over.

use domain::{AppDefinition, AppId, GroupId};
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
        group: None,
    }
}

/// A new deployment of a change to `group` at `version`: `steps` in order, each with the
/// actions that run together.
pub fn of_group(
    group: &GroupId,
    version: &str,
    steps: Vec<Vec<(AppId, Action)>>,
    now_ms: u64,
) -> Deployment {
    let steps: Vec<DeploymentStep> = steps
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(|s| DeploymentStep {
            actions: s
                .into_iter()
                .map(|(app, action)| DeploymentAction { action, app })
                .collect(),
        })
        .collect();
    let mut affected_apps: Vec<AppId> = steps
        .iter()
        .flat_map(|s| s.actions.iter().map(|a| a.app.clone()))
        .collect();
    affected_apps.sort();
    affected_apps.dedup();
    Deployment {
        id: state::runtime::uuid_v4().to_string(),
        version: version.to_string(),
        affected_apps,
        steps,
        current_step: 1,
        created_at_ms: now_ms,
        group: Some(group.clone()),
    }
}

/// The step (from 0) that holds `app`'s action, and the action.
fn step_of<'a>(d: &'a Deployment, app: &AppId) -> Option<(usize, &'a DeploymentAction)> {
    d.steps.iter().enumerate().find_map(|(i, s)| {
        s.actions
            .iter()
            .find(|a| a.app == *app)
            .map(|action| (i, action))
    })
}

/// Whether a deployment replaces every instance of `app` older than its version.
pub fn restarts(d: &Deployment, app: &AppId) -> bool {
    step_of(d, app).is_some_and(|(_, a)| a.action == Action::RestartApplication)
}

/// Whether `app` waits for an earlier step of its deployment: nothing is started, stopped
/// or replaced for it until its own step is in progress.
pub fn waits(d: &Deployment, app: &AppId) -> bool {
    step_of(d, app).is_some_and(|(i, _)| i + 1 > d.current_step as usize)
}

/// Where a deployment stands, decided from which of its actions are done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The step in progress has actions not done yet.
    Working,
    /// Step `from_step` (from 1) is done and another follows.
    Advance {
        /// The step that is done.
        from_step: u32,
    },
    /// The last step is done: the deployment is over.
    Finished,
}

/// The one decision of how a deployment moves on: its step in progress is over when `done`
/// holds for every action of it (an app stopped is done when it is gone; any other when it
/// runs its wanted count of current, ready instances, or is gone).
pub fn progress(d: &Deployment, done: impl Fn(&DeploymentAction) -> bool) -> Progress {
    let index = (d.current_step.max(1) - 1) as usize;
    let Some(step) = d.steps.get(index) else {
        return Progress::Finished;
    };
    if !step.actions.iter().all(done) {
        Progress::Working
    } else if index + 1 < d.steps.len() {
        Progress::Advance {
            from_step: index as u32 + 1,
        }
    } else {
        Progress::Finished
    }
}

/// The step in progress (or the last one, once all are done).
pub fn current(d: &Deployment) -> Option<&DeploymentStep> {
    let index = (d.current_step.max(1) - 1) as usize;
    d.steps.get(index).or(d.steps.last())
}

/// The deployment in progress for an app, if any.
pub fn of_app<'a>(state: &'a ClusterState, app: &AppId) -> Option<&'a Deployment> {
    state
        .deployments()
        .values()
        .find(|d| d.affected_apps.contains(app))
}

/// How a change of an app (or pod) from `current` (none: it is new) to `next` deploys: a
/// start, a scale (only the count differs), or a restart.
pub fn action_for(current: Option<&AppDefinition>, next: &AppDefinition) -> Action {
    match current {
        None => Action::StartApplication,
        Some(cur) if next.same_but_instances(cur) => Action::ScaleApplication,
        Some(_) => Action::RestartApplication,
    }
}

/// Whether an instance runs an outdated definition of its app: the definition differs (the
/// instance count aside), or a restart deployment is newer than the instance.
pub fn is_old(state: &ClusterState, inst: &Instance) -> bool {
    let Some(record) = state.app(&inst.app_id) else {
        return false;
    };
    let current = &record.current().app;
    let differs = match record.version(&inst.app_version) {
        Some(v) => !v.app.same_but_instances(current),
        None => true,
    };
    differs
        || of_app(state, &inst.app_id).is_some_and(|d| {
            restarts(d, &inst.app_id) && inst.app_version.as_str() < d.version.as_str()
        })
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

/// One step as Marathon's JSON shows it.
pub fn wire_step(s: &DeploymentStep) -> client::Step {
    client::Step {
        actions: s
            .actions
            .iter()
            .map(|a| client::StepAction {
                action: action_name(a.action).to_string(),
                app: a.app.as_str().to_string(),
            })
            .collect(),
    }
}

/// A deployment as `/v2/deployments` shows it.
pub fn wire(d: &Deployment) -> client::Deployment {
    let current_actions = current(d)
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
        steps: d.steps.iter().map(wire_step).collect(),
        current_actions,
        current_step: d.current_step,
        total_steps: d.steps.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> AppId {
        AppId::parse(s).expect("id")
    }

    fn chain() -> Deployment {
        of_group(
            &GroupId::parse("/p").expect("group"),
            "v1",
            vec![
                vec![(id("/p/db"), Action::StartApplication)],
                vec![
                    (id("/p/api"), Action::StartApplication),
                    (id("/p/worker"), Action::RestartApplication),
                ],
                vec![(id("/p/web"), Action::StartApplication)],
            ],
            0,
        )
    }

    #[test]
    fn apps_of_later_steps_wait_for_the_step_in_progress() {
        let mut d = chain();
        assert!(!waits(&d, &id("/p/db")));
        assert!(waits(&d, &id("/p/api")) && waits(&d, &id("/p/web")));
        assert!(!waits(&d, &id("/p/other")), "an app outside it never waits");
        d.current_step = 2;
        assert!(!waits(&d, &id("/p/api")) && waits(&d, &id("/p/web")));
        assert!(restarts(&d, &id("/p/worker")) && !restarts(&d, &id("/p/api")));
    }

    #[test]
    fn a_step_is_over_only_when_every_action_of_it_is_done() {
        let mut d = chain();
        assert_eq!(progress(&d, |_| false), Progress::Working);
        assert_eq!(
            progress(&d, |a| a.app == id("/p/db")),
            Progress::Advance { from_step: 1 }
        );
        d.current_step = 2;
        // One of two done: the step goes on, whatever the later steps look like.
        assert_eq!(
            progress(&d, |a| a.app != id("/p/worker")),
            Progress::Working
        );
        assert_eq!(progress(&d, |_| true), Progress::Advance { from_step: 2 });
        d.current_step = 3;
        assert_eq!(progress(&d, |_| true), Progress::Finished);
        assert_eq!(current(&d).map(|s| s.actions.len()), Some(1));
    }

    #[test]
    fn a_deployment_without_steps_is_finished() {
        let d = of_group(&GroupId::root(), "v1", vec![vec![]], 0);
        assert!(d.steps.is_empty());
        assert_eq!(progress(&d, |_| false), Progress::Finished);
    }
}
