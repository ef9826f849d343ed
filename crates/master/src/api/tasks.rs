//! Tasks as Marathon shows them (`/v2/tasks`, `/v2/apps/{id}/tasks`, embedded in apps).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use client::{Change, HealthCheckResult, IpAddress, Task, TaskCounts, TaskIds, Tasks};
use state::{ClusterState, Condition, Instance};

use super::agents::mesos_task_state;
use crate::agents::AgentView;
use crate::clock;
use crate::error::ApiError;
use crate::events::EventBus;
use crate::node::RaftNode;

/// Marathon's task JSON for one instance, with drover's `region` and `zone` (an agent without
/// a region is in the cluster's local region, or else in `own_region`, this master's) and the
/// health the leader last heard of (`agents`).
pub fn task_json(agents: &AgentView, own_region: &str, state: &ClusterState, i: &Instance) -> Task {
    let agent = state.agent(&i.agent_id);
    let local = state.local_region().unwrap_or(own_region);
    let health = agents
        .health(&i.id)
        .map(|h| HealthCheckResult {
            instance_id: i.id.to_string(),
            alive: h.healthy,
            consecutive_failures: h.consecutive_failures,
            last_failure_cause: h.last_failure_cause.clone(),
            last_success: h.healthy.then(|| clock::iso(h.checked_at_ms)),
            last_failure: (!h.healthy).then(|| clock::iso(h.checked_at_ms)),
        })
        .into_iter()
        .collect();
    let host = agent.map(|r| r.agent.hostname.clone());
    let ip = agent.map(|r| r.agent.ip.clone());
    Task {
        id: i.id.to_string(),
        app_id: i.app_id.as_str().to_string(),
        host,
        ip_addresses: ip
            .map(|ip| {
                vec![IpAddress {
                    ip_address: ip,
                    protocol: "IPv4".into(),
                }]
            })
            .unwrap_or_default(),
        ports: i.ports.clone(),
        service_ports: service_ports(state, i),
        slave_id: i.agent_id.to_string(),
        state: mesos_task_state(i.condition).to_string(),
        staged_at: clock::iso(i.created_at_ms),
        started_at: i.started_at_ms.map(clock::iso),
        version: i.app_version.clone(),
        health_check_results: health,
        region: agent.map(|r| r.agent.region().unwrap_or(local).to_string()),
        zone: agent.and_then(|r| r.agent.zone().map(str::to_string)),
    }
}

/// The service ports of an instance: its app version's declared port definition ports, as
/// Marathon's tasks carry them (drover assigns no service ports of its own, so a definition
/// with port 0 gives 0).
fn service_ports(state: &ClusterState, i: &Instance) -> Vec<u64> {
    let Some(record) = state.app(&i.app_id) else {
        return Vec::new();
    };
    let version = record
        .version(&i.app_version)
        .unwrap_or_else(|| record.current());
    version
        .app
        .port_definitions
        .iter()
        .map(|d| u64::from(d.port))
        .collect()
}

/// The counts Marathon puts on every app.
pub fn counts(agents: &AgentView, state: &ClusterState, app: &domain::AppId) -> TaskCounts {
    let (mut staged, mut running, mut healthy, mut unhealthy) = (0, 0, 0, 0);
    for i in state
        .instances_of(app)
        .filter(|i| !i.condition.is_terminal())
    {
        match i.condition {
            Condition::Running => running += 1,
            Condition::Scheduled | Condition::Staging | Condition::Starting => staged += 1,
            _ => {}
        }
        match agents.health(&i.id).map(|h| h.healthy) {
            Some(true) => healthy += 1,
            Some(false) => unhealthy += 1,
            None => {}
        }
    }
    TaskCounts {
        tasks_staged: staged,
        tasks_running: running,
        tasks_healthy: healthy,
        tasks_unhealthy: unhealthy,
    }
}

/// Marathon's `taskStats` of an app at `now_ms`: its live tasks by version category, with
/// counts and life times (from staging). drover's `lastScalingAt` is the app's version, so
/// the tasks started after the last scaling are those of the current version.
pub fn task_stats(
    agents: &AgentView,
    state: &ClusterState,
    app: &domain::AppId,
    now_ms: u64,
) -> Option<client::TaskStatsByVersion> {
    let current = state.app(app)?.current().version.clone();
    let live: Vec<&Instance> = state
        .instances_of(app)
        .filter(|i| !i.condition.is_terminal())
        .collect();
    let stats = |of: &[&Instance]| -> Option<client::Stats> {
        if of.is_empty() {
            return None;
        }
        let mut counts = client::StatsCounts::default();
        for i in of {
            match i.condition {
                Condition::Running => counts.running += 1,
                Condition::Scheduled | Condition::Staging | Condition::Starting => {
                    counts.staged += 1
                }
                _ => {}
            }
            match agents.health(&i.id).map(|h| h.healthy) {
                Some(true) => counts.healthy += 1,
                Some(false) => counts.unhealthy += 1,
                None => {}
            }
        }
        let mut ages: Vec<f64> = of
            .iter()
            .map(|i| now_ms.saturating_sub(i.created_at_ms) as f64 / 1000.0)
            .collect();
        ages.sort_by(f64::total_cmp);
        let n = ages.len();
        let median = if n % 2 == 1 {
            ages[n / 2]
        } else {
            (ages[n / 2 - 1] + ages[n / 2]) / 2.0
        };
        Some(client::Stats {
            stats: client::TaskStats {
                counts,
                life_time: Some(client::LifeTime {
                    average_seconds: ages.iter().sum::<f64>() / n as f64,
                    median_seconds: median,
                }),
            },
        })
    };
    let (latest, outdated): (Vec<&Instance>, Vec<&Instance>) =
        live.iter().partition(|i| i.app_version == current);
    Some(client::TaskStatsByVersion {
        started_after_last_scaling: stats(&latest),
        with_latest_config: stats(&latest),
        with_outdated_config: stats(&outdated),
        total_summary: stats(&live),
    })
}

/// Marathon's `readinessCheckResults` of an app: each readiness check's latest result for
/// every live task whose agent has reported its readiness (what the leader heard; a new
/// leader shows them once the agents have told it again).
pub fn readiness_results(
    agents: &AgentView,
    state: &ClusterState,
    app: &domain::AppId,
) -> Vec<client::ReadinessCheckResult> {
    readiness_results_where(agents, state, app, |_| true)
}

/// [`readiness_results`] of the live tasks of `app` that `keep` accepts.
pub fn readiness_results_where(
    agents: &AgentView,
    state: &ClusterState,
    app: &domain::AppId,
    keep: impl Fn(&Instance) -> bool,
) -> Vec<client::ReadinessCheckResult> {
    state
        .instances_of(app)
        .filter(|i| !i.condition.is_terminal() && keep(i))
        .filter_map(|i| Some((i, agents.readiness(&i.id)?)))
        .flat_map(|(i, report)| {
            report
                .checks
                .into_iter()
                .map(move |c| client::ReadinessCheckResult {
                    name: c.name,
                    task_id: i.id.to_string(),
                    ready: c.ready,
                    last_response: c.last_response.map(|a| client::HttpResponse {
                        status: a.status,
                        content_type: a.content_type,
                        body: a.body,
                    }),
                })
        })
        .collect()
}

/// The live (not yet terminal) tasks of an app (see [`task_json`]).
pub fn tasks_of(
    agents: &AgentView,
    own_region: &str,
    state: &ClusterState,
    app: &domain::AppId,
) -> Vec<Task> {
    state
        .instances_of(app)
        .filter(|i| !i.condition.is_terminal())
        .map(|i| task_json(agents, own_region, state, i))
        .collect()
}

/// Marathon's values of `GET /v2/tasks?status=` (`TaskStatusCondition`), with the task
/// `state` each selects.
pub const STATUS_FILTERS: [(&str, &str); 2] =
    [("running", "TASK_RUNNING"), ("staging", "TASK_STAGING")];

/// The task states that `status` (and `status[]`) parameters select, Marathon's way: any of
/// them (case as given is ignored); `None` without the parameter (every task). A value that
/// is not one of [`STATUS_FILTERS`] is a 400 naming the values there are.
pub fn status_filter(pairs: &[(String, String)]) -> Result<Option<Vec<&'static str>>, ApiError> {
    let mut states = Vec::new();
    let mut given = false;
    for (key, value) in pairs {
        if key != "status" && key != "status[]" {
            continue;
        }
        given = true;
        let wanted = value.to_ascii_lowercase();
        match STATUS_FILTERS.iter().find(|(name, _)| *name == wanted) {
            Some((_, state)) => states.push(*state),
            None => {
                let names: Vec<&str> = STATUS_FILTERS.iter().map(|(n, _)| *n).collect();
                return Err(ApiError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    format!(
                        "status '{value}' is not a task status: use {} (give status several times for more than one)",
                        names.join(" or ")
                    ),
                ));
            }
        }
    }
    Ok(given.then_some(states))
}

/// `GET /v2/tasks[?status=running|staging]`: the live tasks, those in the given states only
/// when `status` is given.
pub async fn list(
    State(m): State<Arc<RaftNode>>,
    State(agents): State<Arc<AgentView>>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Tasks>, ApiError> {
    let states = status_filter(&pairs)?;
    m.linearizable().await?;
    let tasks: Vec<Task> = m.state().read(|a| {
        a.state
            .instances()
            .values()
            .filter(|i| !i.condition.is_terminal())
            .filter(|i| {
                states
                    .as_ref()
                    .is_none_or(|s| s.contains(&mesos_task_state(i.condition)))
            })
            .map(|i| task_json(&agents, &m.config().domain.region, &a.state, i))
            .collect()
    });
    Ok(Json(Tasks { tasks }))
}

/// `POST /v2/tasks/delete[?scale=true]`: kill tasks; without `scale` they are replaced, with
/// it their apps' instance counts go down by as many.
pub async fn delete(
    State(m): State<Arc<RaftNode>>,
    State(agents): State<Arc<AgentView>>,
    State(events): State<Arc<EventBus>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    Json(body): Json<TaskIds>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let scale = super::query_flag(&query, "scale", false);
    let killed = kill(&m, &agents, &events, scale, |state| {
        let live: Vec<Instance> = body
            .ids
            .iter()
            .filter_map(|id| state.instances().get(&state::InstanceId(id.clone())))
            .filter(|i| !i.condition.is_terminal())
            .cloned()
            .collect();
        let unknown: Vec<&String> = body
            .ids
            .iter()
            .filter(|id| !live.iter().any(|k| &k.id.0 == *id))
            .collect();
        if !unknown.is_empty() && live.is_empty() {
            return Err(ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                format!("No running task has the id(s) {unknown:?}"),
            ));
        }
        Ok(live)
    })
    .await?;
    if !scale {
        return Ok(Json(Tasks {
            tasks: killed.tasks,
        })
        .into_response());
    }
    Ok(match killed.change {
        Some(change) => Json(change).into_response(),
        // No app of the killed tasks is left to scale down: Marathon's empty answer.
        None => Json(serde_json::Map::new()).into_response(),
    })
}

/// What a kill did.
pub struct Killed {
    /// The killed tasks, as they were just before.
    pub tasks: Vec<Task>,
    /// With `scale`, the last app change (version and deployment) it made.
    pub change: Option<Change>,
}

/// Kills the live instances `select` picks from the state (read under the change lock, so
/// that nothing changes in between); without `scale` they are replaced, with it their apps'
/// instance counts go down by as many, in the same commit.
pub async fn kill(
    m: &RaftNode,
    agents: &AgentView,
    events: &EventBus,
    scale: bool,
    select: impl FnOnce(&ClusterState) -> Result<Vec<Instance>, ApiError>,
) -> Result<Killed, ApiError> {
    let _serial = m.exclusive().await;
    m.linearizable().await?;
    let now = m.clock().now_ms();
    let (killed, json_of_killed): (Vec<Instance>, Vec<Task>) = m.state().read(|a| {
        let chosen = select(&a.state)?;
        Ok::<_, ApiError>(
            chosen
                .into_iter()
                .map(|i| {
                    let t = task_json(agents, &m.config().domain.region, &a.state, &i);
                    (i, t)
                })
                .unzip(),
        )
    })?;
    let mut per_app: std::collections::BTreeMap<domain::AppId, u32> = Default::default();
    for k in &killed {
        *per_app.entry(k.app_id.clone()).or_default() += 1;
    }
    // The kills, and with `scale` each app's lower count and its deployment: one commit.
    let mut commands = vec![state::Command::SetGoals {
        changes: killed
            .iter()
            .map(|k| state::GoalChange {
                instance_id: k.id.clone(),
                revision: k.revision,
                goal: state::Goal::Decommissioned,
            })
            .collect(),
        at_ms: now,
    }];
    let mut last = None;
    if scale {
        for (app_id, n) in per_app {
            let current = m
                .state()
                .read(|a| a.state.app(&app_id).map(|r| r.current().clone()));
            let Some(current) = current else { continue };
            let mut app = current.app.clone();
            app.set_instances(app.instances.saturating_sub(n));
            let version = m.next_version(Some(&current.version));
            let deployment = crate::deployments::new(
                &app_id,
                &version,
                crate::deployments::Action::ScaleApplication,
                now,
            );
            last = Some(Change {
                version: version.clone(),
                deployment_id: Some(deployment.id.clone()),
            });
            commands.push(state::Command::PutApp { app, version });
            commands.push(state::Command::PutDeployment {
                deployment,
                force: true,
            });
        }
    }
    if !killed.is_empty() {
        m.write(state::Command::Batch { commands }).await?;
        // Balancers take them out now, while the agents' kill grace periods run.
        m.state().read(|a| {
            for inst in killed.iter().filter(|i| i.condition.is_live()) {
                events.publish(crate::events::status_update(
                    &a.state,
                    inst,
                    "TASK_KILLING",
                    Some("killed through the API".into()),
                ));
            }
        });
    }
    Ok(Killed {
        tasks: json_of_killed,
        change: last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn status_filters_select_marathons_task_states_and_refuse_others_with_the_names() {
        // A query, and the task states it selects.
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<Vec<&'a str>>);
        let cases: [Case; 6] = [
            (&[], None),
            (&[("embed", "x")], None),
            (&[("status", "running")], Some(vec!["TASK_RUNNING"])),
            (&[("status", "STAGING")], Some(vec!["TASK_STAGING"])),
            (
                &[("status[]", "running"), ("status[]", "staging")],
                Some(vec!["TASK_RUNNING", "TASK_STAGING"]),
            ),
            (
                &[("status", "running"), ("status", "staging")],
                Some(vec!["TASK_RUNNING", "TASK_STAGING"]),
            ),
        ];
        for (query, want) in cases {
            let got = status_filter(&pairs(query)).unwrap_or_else(|e| panic!("{query:?}: {e:?}"));
            assert_eq!(got, want, "{query:?}");
        }
        for bad in ["killed", "TASK_RUNNING", ""] {
            let e = status_filter(&pairs(&[("status", bad)])).expect_err(bad);
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{bad}");
            let message = e.body.message.clone();
            assert!(
                message.contains(&format!("status '{bad}'"))
                    && message.contains("running or staging"),
                "{bad}: {message}"
            );
        }
    }
}
