//! Health kills, and what health and readiness mean for the other policies: an instance
//! whose checks failed past its app's limit is decommissioned (and replaced); an instance is
//! ready when it runs, its last health check passed (if its app has health checks), and its
//! readiness checks saw it ready (if its app version has readiness checks, as Marathon's
//! deployments wait for).

use std::collections::HashMap;

use domain::{AppDefinition, AppId};
use state::protocol::ReadinessReport;
use state::{ClusterState, Condition, Instance, InstanceId};

use super::reconcile::{Announcement, Observations, Requires};
use crate::events::Event;

/// Whether the instance's agent reported it failing its health checks beyond the limit.
pub fn should_kill(obs: &Observations, inst: &Instance) -> bool {
    obs.health.get(&inst.id).is_some_and(|h| h.should_kill)
}

/// Whether the instance runs, passes its app's health checks (if it has any), and was seen
/// ready by its readiness checks (if its app and its own version have any: see
/// [`readiness_observations`]).
pub fn ready(app: &AppDefinition, obs: &Observations, inst: &Instance) -> bool {
    inst.condition == Condition::Running
        && (app.health_checks.is_empty() || obs.health.get(&inst.id).is_some_and(|h| h.healthy))
        && (app.readiness_checks.is_empty()
            || obs
                .readiness
                .get(&inst.id)
                .is_none_or(|r| r.as_ref().is_some_and(|r| r.ready)))
}

/// Whether the instance runs but its health or readiness is not known yet (a new leader has
/// not heard from its agent): neither ready nor to be killed.
pub fn unknown(app: &AppDefinition, obs: &Observations, inst: &Instance) -> bool {
    inst.condition == Condition::Running
        && ((!app.health_checks.is_empty() && !obs.health.contains_key(&inst.id))
            || (!app.readiness_checks.is_empty()
                && matches!(obs.readiness.get(&inst.id), Some(None))))
}

/// The instances that must prove their readiness, with what their agents reported (`None`:
/// nothing yet). Those are the live instances of apps with readiness checks whose own
/// version has them too: an instance of an older version without readiness checks (the
/// app's first deployment with one replaces it) is never checked by its agent, and must not
/// wait for a report that never comes.
pub fn readiness_observations(
    state: &ClusterState,
    reported: &HashMap<InstanceId, ReadinessReport>,
) -> HashMap<InstanceId, Option<ReadinessReport>> {
    let mut out = HashMap::new();
    for (app_id, record) in state.apps() {
        if record.current().app.readiness_checks.is_empty() {
            continue;
        }
        for inst in state
            .instances_of(app_id)
            .filter(|i| !i.condition.is_terminal())
        {
            let checked = record
                .version(&inst.app_version)
                .is_some_and(|v| !v.app.readiness_checks.is_empty());
            if checked {
                out.insert(inst.id.clone(), reported.get(&inst.id).cloned());
            }
        }
    }
    out
}

/// The `unhealthy_instance_kill_event` for a health kill (published if the kill applied).
pub fn kill_event(state: &ClusterState, app_id: &AppId, inst: &Instance) -> Announcement {
    Announcement::new(Event::UnhealthyInstanceKillEvent {
        app_id: app_id.to_string(),
        instance_id: inst.id.to_string(),
        task_id: inst.id.to_string(),
        version: inst.app_version.clone(),
        reason: "failed health checks".into(),
        host: state
            .agent(&inst.agent_id)
            .map(|r| r.agent.hostname.clone()),
    })
    .requiring(Requires::Goal(inst.id.clone()))
}
