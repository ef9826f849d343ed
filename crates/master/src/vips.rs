//! What an agent serving VIPs (`drover agent --vip-addr`) may read, and nothing more: the
//! apps projected to their routing fields (`client::routing`) with their tasks, and the
//! events that change routes, without app definitions. An agent's certificate reads these
//! on `/internal/agents/{id}/vips` and `…/vip-events`; it may not read `/v2/apps`, whose
//! definitions carry every app's `cmd`, `env` and secrets (see `docs/security.md`).

use client::{App, DeploymentPlan, Event, GroupState};
use serde_json::{Map, Value, json};

/// `app` (listed with its tasks) as an agent reads it: its definition cut down to its
/// routing fields (`client::routing`: health checks by protocol only), its version, its
/// tasks without health check failure causes (a check's output); no counts, deployments
/// or other embeds.
pub fn app(app: App) -> App {
    let definition = match app.routing().map(serde_json::to_value) {
        Ok(Ok(Value::Object(fields))) => fields,
        // A stored definition always reads and encodes; show nothing of one that does not.
        _ => Map::new(),
    };
    let tasks = app.tasks.map(|tasks| {
        tasks
            .into_iter()
            .map(|mut t| {
                for h in &mut t.health_check_results {
                    h.last_failure_cause = None;
                }
                t
            })
            .collect()
    });
    App {
        definition,
        version: app.version,
        version_info: app.version_info,
        counts: None,
        deployments: None,
        tasks,
        last_task_failure: None,
        readiness_check_results: None,
        task_stats: None,
    }
}

/// `event` as the agents' stream carries it: the events that change routes (or ask for a
/// read), with definitions taken out (an `api_post_event` names only its app, a deployment's
/// plan only its steps); none for the others (health check output, callback URLs, the
/// stream's own events).
pub fn event(event: &Event) -> Option<Event> {
    match event {
        Event::StatusUpdateEvent { .. }
        | Event::InstanceChangedEvent { .. }
        | Event::HealthStatusChangedEvent { .. }
        | Event::UnhealthyInstanceKillEvent { .. }
        | Event::AppTerminatedEvent { .. }
        | Event::GroupChangeSuccess { .. }
        | Event::GroupChangeFailed { .. } => Some(event.clone()),
        Event::ApiPostEvent {
            uri,
            app_definition,
            ..
        } => Some(Event::ApiPostEvent {
            client_ip: None,
            uri: uri.clone(),
            app_definition: json!({ "id": app_definition.get("id").cloned().unwrap_or(Value::Null) }),
        }),
        Event::DeploymentInfo { plan, current_step } => Some(Event::DeploymentInfo {
            plan: steps_only(plan),
            current_step: current_step.clone(),
        }),
        Event::DeploymentSuccess { id, plan } => Some(Event::DeploymentSuccess {
            id: id.clone(),
            plan: steps_only(plan),
        }),
        Event::DeploymentFailed { id, plan, reason } => Some(Event::DeploymentFailed {
            id: id.clone(),
            plan: steps_only(plan),
            reason: reason.clone(),
        }),
        Event::DeploymentStepSuccess { plan, current_step } => Some(Event::DeploymentStepSuccess {
            plan: steps_only(plan),
            current_step: current_step.clone(),
        }),
        Event::DeploymentStepFailure { plan, current_step } => Some(Event::DeploymentStepFailure {
            plan: steps_only(plan),
            current_step: current_step.clone(),
        }),
        Event::FailedHealthCheckEvent { .. }
        | Event::InstanceHealthChangedEvent { .. }
        | Event::EvictionProtectionEvent { .. }
        | Event::SubscribeEvent { .. }
        | Event::UnsubscribeEvent { .. }
        | Event::EventStreamAttached { .. }
        | Event::EventStreamDetached { .. } => None,
    }
}

/// `plan` without the groups' app definitions (a `/v2/groups` change lists them): its steps
/// name the apps it changes.
fn steps_only(plan: &DeploymentPlan) -> DeploymentPlan {
    DeploymentPlan {
        id: plan.id.clone(),
        version: plan.version.clone(),
        original: GroupState::root(&plan.original.version),
        target: GroupState::root(&plan.target.version),
        steps: plan.steps.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::AppDefinition;

    fn definition() -> AppDefinition {
        AppDefinition::from_json(&json!({
            "id": "/team/web",
            "cmd": "serve --password hunter2",
            "env": {"DB_PASSWORD": "hunter2"},
            "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example"},
            "portDefinitions": [
                {"port": 0, "name": "http", "labels": {"VIP_0": "/web:80"}},
                {"port": 0}
            ],
            "healthChecks": [{"protocol": "COMMAND", "command": {"value": "curl -u admin:hunter2 localhost"}}]
        }))
        .expect("a valid app")
    }

    fn listed(def: &AppDefinition) -> App {
        let task = json!({
            "id": "team_web.instance-1", "appId": "/team/web", "host": "h",
            "ipAddresses": [{"ipAddress": "10.0.0.5", "protocol": "IPv4"}],
            "ports": [31000, 31001], "servicePorts": [], "slaveId": "a", "agentId": "a",
            "state": "TASK_RUNNING", "stagedAt": "2026-01-01T00:00:00.000Z", "startedAt": null,
            "version": "v1", "region": "r", "zone": "z",
            "healthCheckResults": [{"instanceId": "team_web.instance-1", "alive": false,
                "consecutiveFailures": 1, "lastFailureCause": "curl: secret output",
                "lastSuccess": null, "lastFailure": "2026-01-01T00:00:01.000Z"}],
        });
        let mut v = def.to_json();
        v["version"] = json!("v1");
        v["versionInfo"] = json!({"lastConfigChangeAt": "v1", "lastScalingAt": "v1"});
        v["tasks"] = json!([task]);
        v["tasksRunning"] = json!(1);
        v["tasksStaged"] = json!(0);
        v["tasksHealthy"] = json!(0);
        v["tasksUnhealthy"] = json!(1);
        serde_json::from_value(v).expect("an app")
    }

    #[test]
    fn an_agent_reads_the_routing_fields_and_tasks_but_no_command_environment_or_check() {
        let def = definition();
        let full = listed(&def);
        let projected = app(full.clone());
        let text = serde_json::to_string(&projected).expect("encodes");
        for secret in [
            "cmd",
            "env",
            "hunter2",
            "command",
            "secret output",
            "tasksRunning",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let mut keys: Vec<&str> = projected.definition.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["healthChecks", "id", "labels", "portDefinitions"]);
        // What routes are made of reads the same from both.
        assert_eq!(projected.routing().ok(), full.routing().ok());
        let routing = projected.routing().expect("routing fields");
        assert_eq!(routing.port_definitions[0].labels["VIP_0"], "/web:80");
        assert_eq!(routing.health_checks.len(), 1);
        let back: App = serde_json::from_str(&text).expect("reads back as an app");
        assert_eq!(back.tasks.as_ref().map(Vec::len), Some(1));
        let task = &back.tasks.expect("tasks")[0];
        assert_eq!(task.ports, [31000, 31001]);
        assert!(!task.health_check_results[0].alive);
    }

    #[test]
    fn agents_stream_route_changes_without_definitions_or_subscribers() {
        let posted = Event::ApiPostEvent {
            client_ip: Some("10.1.1.1".into()),
            uri: "/v2/apps/team/web".into(),
            app_definition: definition().to_json(),
        };
        let Some(Event::ApiPostEvent { app_definition, .. }) = event(&posted) else {
            panic!("an api_post_event stays one");
        };
        assert_eq!(app_definition, json!({"id": "/team/web"}));

        let mut plan = DeploymentPlan {
            id: "d1".into(),
            version: "v2".into(),
            original: GroupState::root("v1"),
            target: GroupState::root("v2"),
            steps: Vec::new(),
        };
        plan.target.apps.push(definition().to_json());
        let Some(Event::DeploymentSuccess { plan: shown, .. }) = event(&Event::DeploymentSuccess {
            id: "d1".into(),
            plan,
        }) else {
            panic!("a deployment_success stays one");
        };
        assert!(shown.target.apps.is_empty() && shown.target.version == "v2");

        let gone = Event::AppTerminatedEvent {
            app_id: "/team/web".into(),
        };
        assert_eq!(event(&gone), Some(gone));
        let subscribed = Event::SubscribeEvent {
            client_ip: None,
            callback_url: "http://user:pass@hooks.example/".into(),
        };
        assert_eq!(event(&subscribed), None);
        let failed = Event::FailedHealthCheckEvent {
            app_id: "/team/web".into(),
            instance_id: "i".into(),
            task_id: "i".into(),
            version: "v".into(),
            cause: Some("output".into()),
        };
        assert_eq!(event(&failed), None);
    }
}
