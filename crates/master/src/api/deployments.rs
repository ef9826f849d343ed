//! `/v2/deployments`: list, roll back, or cancel.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use client::Change;
use domain::AppId;
use state::{ClusterState, Command};

use crate::agents::AgentView;
use crate::deployments::{self, Action};
use crate::error::ApiError;
use crate::events::{Event, EventBus};
use crate::node::RaftNode;

/// `GET /v2/deployments`: each deployment with, in its current actions, the readiness
/// results of the instances the step starts (see [`with_readiness`]).
pub async fn list(
    State(m): State<Arc<RaftNode>>,
    State(agents): State<Arc<AgentView>>,
) -> Result<Json<Vec<client::Deployment>>, ApiError> {
    m.linearizable().await?;
    let list = m.state().read(|a| {
        a.state
            .deployments()
            .values()
            .map(|d| with_readiness(deployments::wire(d), &agents, &a.state))
            .collect()
    });
    Ok(Json(list))
}

/// Fills each current action's `readinessCheckResults`, as Marathon does: the latest result
/// of every readiness check for each live instance of the app's current version (the
/// instances the step starts; old ones are not checked). What the leader heard from the
/// agents: a new leader shows them once the agents have reported again.
fn with_readiness(
    mut d: client::Deployment,
    agents: &AgentView,
    state: &ClusterState,
) -> client::Deployment {
    for action in &mut d.current_actions {
        let Ok(app) = AppId::parse(&action.app) else {
            continue;
        };
        let Some(version) = state.app(&app).map(|r| r.current().version.clone()) else {
            continue;
        };
        action.readiness_check_results =
            super::tasks::readiness_results_where(agents, state, &app, |i| {
                i.app_version == version
            });
    }
    d
}

/// `DELETE /v2/deployments/{id}[?force=true]`: without `force`, roll the app back to the
/// version before the deployment (a new deployment); with it, just stop tracking it.
pub async fn delete(
    State(m): State<Arc<RaftNode>>,
    State(events): State<Arc<EventBus>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let force = super::query_flag(&query, "force", false);
    let _serial = m.exclusive().await;
    m.linearizable().await?;
    let Some(deployment) = m.state().read(|a| a.state.deployments().get(&id).cloned()) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("DeploymentPlan {id} does not exist"),
        ));
    };
    m.write(Command::DeleteDeployment { id: id.clone() })
        .await?;
    let plan = deployments::wire(&deployment);
    // Marathon announces the step a failed deployment was in, then the deployment.
    events.publish(Event::DeploymentStepFailure {
        current_step: plan.steps.first().cloned(),
        plan: (&plan).into(),
    });
    events.publish(Event::DeploymentFailed {
        id: id.clone(),
        plan: (&plan).into(),
        reason: if force { "cancelled" } else { "rolled back" }.into(),
    });
    if let Some(group) = &deployment.group {
        events.publish(Event::GroupChangeFailed {
            group_id: group.to_string(),
            version: deployment.version.clone(),
            reason: if force { "cancelled" } else { "rolled back" }.into(),
        });
    }
    if force {
        return Ok((StatusCode::ACCEPTED, Json(serde_json::Map::new())).into_response());
    }
    // Roll back: every affected app returns to the version it had before.
    let mut rollback = None;
    for app_id in &deployment.affected_apps {
        let previous = m.state().read(|a| {
            a.state.app(app_id).and_then(|r| {
                r.versions()
                    .rev()
                    .find(|v| v.version.as_str() < deployment.version.as_str())
                    .cloned()
            })
        });
        match previous {
            Some(prev) => {
                let version = m.next_version(Some(&deployment.version));
                m.write(Command::PutApp {
                    app: prev.app,
                    version: version.clone(),
                })
                .await?;
                let d = deployments::new(
                    app_id,
                    &version,
                    Action::RestartApplication,
                    m.clock().now_ms(),
                );
                rollback = Some((d.id.clone(), version));
                m.write(Command::PutDeployment {
                    deployment: d,
                    force: true,
                })
                .await?;
            }
            None => {
                // A new app has nothing to roll back to: rolling back its start deletes it.
                m.write(Command::DeleteApp { id: app_id.clone() }).await?;
                let version = m.next_version(None);
                rollback = Some((state::runtime::uuid_v4().to_string(), version));
            }
        }
    }
    let (deployment_id, version) =
        rollback.unwrap_or_else(|| (state::runtime::uuid_v4().to_string(), m.next_version(None)));
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&deployment_id) {
        headers.insert("marathon-deployment-id", v);
    }
    Ok((
        StatusCode::OK,
        headers,
        Json(Change {
            version,
            deployment_id: Some(deployment_id),
        }),
    )
        .into_response())
}
