//! Health kills, and what health means for the other policies: an instance whose checks
//! failed past its app's limit is decommissioned (and replaced); an instance is ready when it
//! runs and, if its app has health checks, its last check passed.

use domain::{AppDefinition, AppId};
use state::{ClusterState, Condition, Instance};

use super::reconcile::{Announcement, Observations, Requires};
use crate::events::Event;

/// Whether the instance's agent reported it failing its health checks beyond the limit.
pub fn should_kill(obs: &Observations, inst: &Instance) -> bool {
    obs.health.get(&inst.id).is_some_and(|h| h.should_kill)
}

/// Whether the instance runs and passes its app's health checks (if it has any).
pub fn ready(app: &AppDefinition, obs: &Observations, inst: &Instance) -> bool {
    inst.condition == Condition::Running
        && (app.health_checks.is_empty() || obs.health.get(&inst.id).is_some_and(|h| h.healthy))
}

/// Whether the instance runs but its health is not known yet (a new leader has not heard
/// from its agent): neither ready nor to be killed.
pub fn unknown(app: &AppDefinition, obs: &Observations, inst: &Instance) -> bool {
    inst.condition == Condition::Running
        && !app.health_checks.is_empty()
        && !obs.health.contains_key(&inst.id)
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
