//! `GET /v2/events`: Marathon's event stream (Server-Sent Events), one [`Stamped`] event in
//! each message's data, its `eventType` also the SSE event name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::deployments::{DeploymentPlan, Step};

/// `GET /v2/eventSubscriptions`: the HTTP callback URLs subscribed to events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSubscriptions {
    /// The URLs, each POSTed every event.
    pub callback_urls: Vec<String>,
}

/// The event types drover publishes that Marathon does not: a stream (or an HTTP callback)
/// carries them only to a reader that asks for them by name (`?event_type=…`), because
/// strict Marathon clients refuse an event type they do not know (marathon-python's
/// `MarathonEvent` classes raise on one, ending the client's stream).
pub const DROVER_EVENT_TYPES: &[&str] = &["eviction_protection_event"];

/// Whether a reader that asked for no event type by name gets events of this type: Marathon's
/// types only.
pub fn shown_unasked(event_type: &str) -> bool {
    !DROVER_EVENT_TYPES.contains(&event_type)
}

/// An event as the stream carries it: the event, and when the master published it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    /// The event, with its `eventType`.
    #[serde(flatten)]
    pub event: Event,
    /// When it was published (ISO 8601, the publishing master's clock).
    pub timestamp: String,
}

/// An event of Marathon's event bus, with the fields Marathon's JSON carries (camelCase; the
/// variant is `eventType`). Published after the change it describes has committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "eventType",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    /// An instance's condition changed (Mesos's task status update).
    StatusUpdateEvent {
        /// The app.
        app_id: String,
        /// The task (= instance) id.
        task_id: String,
        /// The instance id.
        instance_id: String,
        /// Mesos's name for the condition, `TASK_RUNNING` etc.
        task_status: String,
        /// What the agent said about it, if anything.
        message: Option<String>,
        /// The agent's hostname.
        host: String,
        /// The agent.
        agent_id: String,
        /// The agent, under Mesos's name.
        slave_id: String,
        /// Host ports.
        ports: Vec<u64>,
        /// The app version it runs.
        version: String,
        /// The agent's region.
        region: Option<String>,
        /// The agent's zone.
        zone: Option<String>,
    },
    /// An instance's condition changed (Marathon's instance view).
    InstanceChangedEvent {
        /// The instance.
        instance_id: String,
        /// The app.
        run_spec_id: String,
        /// The agent.
        agent_id: String,
        /// The agent's hostname.
        host: String,
        /// The app version.
        run_spec_version: String,
        /// The new condition, `Running` etc.
        condition: String,
    },
    /// A task's health changed.
    HealthStatusChangedEvent {
        /// The app.
        app_id: String,
        /// The instance.
        instance_id: String,
        /// The app version.
        version: String,
        /// Healthy or not.
        alive: bool,
    },
    /// An instance's health changed (Marathon's instance view of
    /// `health_status_changed_event`, published beside it).
    InstanceHealthChangedEvent {
        /// The instance.
        instance_id: String,
        /// The app.
        run_spec_id: String,
        /// The app version.
        run_spec_version: String,
        /// Healthy or not (`null` while unknown, in Marathon).
        healthy: Option<bool>,
    },
    /// A health check failed.
    FailedHealthCheckEvent {
        /// The app.
        app_id: String,
        /// The instance.
        instance_id: String,
        /// The task (= instance).
        task_id: String,
        /// The app version.
        version: String,
        /// Why, as the check saw it.
        cause: Option<String>,
    },
    /// An instance is killed for failing its health checks.
    UnhealthyInstanceKillEvent {
        /// The app.
        app_id: String,
        /// The instance.
        instance_id: String,
        /// The task (= instance).
        task_id: String,
        /// The app version.
        version: String,
        /// Why.
        reason: String,
        /// The agent's hostname.
        host: Option<String>,
    },
    /// An app was created or changed through the API.
    ApiPostEvent {
        /// The caller's address (not recorded).
        client_ip: Option<String>,
        /// The request's path.
        uri: String,
        /// The definition as stored (with its status after a create, as `POST /v2/apps`
        /// answers; the definition alone after a change).
        app_definition: Value,
    },
    /// A deployment started.
    DeploymentInfo {
        /// The plan.
        plan: DeploymentPlan,
        /// Its current step (none for a plan without steps).
        current_step: Option<Step>,
    },
    /// A deployment finished.
    DeploymentSuccess {
        /// Its id.
        id: String,
        /// The plan.
        plan: DeploymentPlan,
    },
    /// A deployment was rolled back or cancelled.
    DeploymentFailed {
        /// Its id.
        id: String,
        /// The plan.
        plan: DeploymentPlan,
        /// `rolled back` or `cancelled`.
        reason: String,
    },
    /// A step of a deployment finished.
    DeploymentStepSuccess {
        /// The plan.
        plan: DeploymentPlan,
        /// The step that finished (none for a plan without steps).
        current_step: Option<Step>,
    },
    /// The step a deployment was in when it failed (published just before its
    /// `deployment_failed`).
    DeploymentStepFailure {
        /// The plan.
        plan: DeploymentPlan,
        /// The step it was in (none for a plan without steps).
        current_step: Option<Step>,
    },
    /// A group change was deployed.
    GroupChangeSuccess {
        /// The group.
        group_id: String,
        /// The version of the change.
        version: String,
    },
    /// A group change did not deploy (its deployment was rolled back or cancelled).
    GroupChangeFailed {
        /// The group.
        group_id: String,
        /// The version of the change.
        version: String,
        /// Why.
        reason: String,
    },
    /// An app was deleted.
    AppTerminatedEvent {
        /// The app.
        app_id: String,
    },
    /// Mass eviction protection changed (drover's own event).
    EvictionProtectionEvent {
        /// Whether it holds anything back.
        engaged: bool,
        /// Every zone looks unreachable.
        cut_off: bool,
        /// The zones that are not healthy.
        zones: Vec<String>,
        /// Every zone's state: `healthy`, `partly-unreachable`, `outage` or `cut-off`.
        zone_states: BTreeMap<String, String>,
        /// For people.
        reason: String,
    },
    /// An HTTP callback URL subscribed to events (`POST /v2/eventSubscriptions`).
    SubscribeEvent {
        /// The caller's address (not recorded).
        client_ip: Option<String>,
        /// The URL.
        callback_url: String,
    },
    /// An HTTP callback URL unsubscribed (`DELETE /v2/eventSubscriptions`).
    UnsubscribeEvent {
        /// The caller's address (not recorded).
        client_ip: Option<String>,
        /// The URL.
        callback_url: String,
    },
    /// A subscriber attached to the stream.
    EventStreamAttached {
        /// Its address (not recorded).
        remote_address: String,
    },
    /// A subscriber went away.
    EventStreamDetached {
        /// Its address (not recorded).
        remote_address: String,
    },
}

impl Event {
    /// The apps this event is about (none for events about the cluster or the stream): a
    /// token that may read only some apps sees an event only when it may read all of them.
    pub fn apps(&self) -> Vec<&str> {
        match self {
            Event::StatusUpdateEvent { app_id, .. }
            | Event::HealthStatusChangedEvent { app_id, .. }
            | Event::FailedHealthCheckEvent { app_id, .. }
            | Event::UnhealthyInstanceKillEvent { app_id, .. }
            | Event::AppTerminatedEvent { app_id } => vec![app_id.as_str()],
            Event::InstanceChangedEvent { run_spec_id, .. }
            | Event::InstanceHealthChangedEvent { run_spec_id, .. } => vec![run_spec_id.as_str()],
            Event::GroupChangeSuccess { group_id, .. }
            | Event::GroupChangeFailed { group_id, .. } => vec![group_id.as_str()],
            // A definition without an id names no app anyone may read: shown to no prefix token.
            Event::ApiPostEvent { app_definition, .. } => {
                vec![
                    app_definition
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                ]
            }
            Event::DeploymentInfo { plan, .. }
            | Event::DeploymentSuccess { plan, .. }
            | Event::DeploymentFailed { plan, .. }
            | Event::DeploymentStepSuccess { plan, .. }
            | Event::DeploymentStepFailure { plan, .. } => {
                let mut apps: Vec<&str> = plan
                    .steps
                    .iter()
                    .flat_map(|s| s.actions.iter().map(|a| a.app.as_str()))
                    .collect();
                apps.sort_unstable();
                apps.dedup();
                if apps.is_empty() {
                    // A plan that names no app is shown to no prefix token either.
                    apps.push("");
                }
                apps
            }
            Event::EvictionProtectionEvent { .. }
            | Event::SubscribeEvent { .. }
            | Event::UnsubscribeEvent { .. }
            | Event::EventStreamAttached { .. }
            | Event::EventStreamDetached { .. } => Vec::new(),
        }
    }

    /// Marathon's name for the event, as `eventType` and the SSE event name carry it.
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::StatusUpdateEvent { .. } => "status_update_event",
            Event::InstanceChangedEvent { .. } => "instance_changed_event",
            Event::HealthStatusChangedEvent { .. } => "health_status_changed_event",
            Event::InstanceHealthChangedEvent { .. } => "instance_health_changed_event",
            Event::FailedHealthCheckEvent { .. } => "failed_health_check_event",
            Event::UnhealthyInstanceKillEvent { .. } => "unhealthy_instance_kill_event",
            Event::ApiPostEvent { .. } => "api_post_event",
            Event::DeploymentInfo { .. } => "deployment_info",
            Event::DeploymentSuccess { .. } => "deployment_success",
            Event::DeploymentFailed { .. } => "deployment_failed",
            Event::DeploymentStepSuccess { .. } => "deployment_step_success",
            Event::DeploymentStepFailure { .. } => "deployment_step_failure",
            Event::AppTerminatedEvent { .. } => "app_terminated_event",
            Event::GroupChangeSuccess { .. } => "group_change_success",
            Event::GroupChangeFailed { .. } => "group_change_failed",
            Event::EvictionProtectionEvent { .. } => "eviction_protection_event",
            Event::SubscribeEvent { .. } => "subscribe_event",
            Event::UnsubscribeEvent { .. } => "unsubscribe_event",
            Event::EventStreamAttached { .. } => "event_stream_attached",
            Event::EventStreamDetached { .. } => "event_stream_detached",
        }
    }
}
