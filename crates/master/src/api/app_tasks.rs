//! `DELETE /v2/apps/{id}/tasks[?host=&scale=&wipe=]` and `DELETE /v2/apps/{id}/tasks/{task}`:
//! killing an app's tasks as Marathon clients do (marathon-python's `kill_tasks`,
//! `kill_task`). Without `scale` the tasks are replaced; with it the app's instance count goes
//! down by as many, in a deployment. `wipe` kills as without it: drover has no resident tasks
//! whose reservations it would also drop.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use client::{Task, Tasks};
use domain::AppId;
use serde::Serialize;
use state::{ClusterState, Instance};

use super::tasks::{Killed, kill};
use crate::agents::AgentView;
use crate::error::ApiError;
use crate::events::EventBus;
use crate::node::RaftNode;

/// `{"task": …}`: the answer of `DELETE /v2/apps/{id}/tasks/{task}` without `scale`.
#[derive(Serialize)]
struct TaskEnvelope {
    task: Task,
}

/// The flags of an app task kill.
struct KillFlags {
    scale: bool,
    host: Option<String>,
}

fn flags(pairs: &[(String, String)]) -> Result<KillFlags, ApiError> {
    let flag = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .is_some_and(|(_, v)| v.eq_ignore_ascii_case("true"))
    };
    if flag("scale") && flag("wipe") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "You cannot use scale and wipe at the same time: give one of them.",
        ));
    }
    Ok(KillFlags {
        scale: flag("scale"),
        host: pairs
            .iter()
            .rev()
            .find(|(k, _)| k == "host")
            .map(|(_, v)| v.clone())
            .filter(|h| !h.is_empty() && h != "*"),
    })
}

/// The live instances of `app`, 404 when there is no such app.
fn live_of(state: &ClusterState, app: &AppId) -> Result<Vec<Instance>, ApiError> {
    state
        .app(app)
        .ok_or_else(|| ApiError::app_not_found(app.as_str()))?;
    Ok(state
        .instances_of(app)
        .filter(|i| !i.condition.is_terminal())
        .cloned()
        .collect())
}

/// The hostname of an instance's agent.
fn host_of(state: &ClusterState, i: &Instance) -> Option<String> {
    state.agent(&i.agent_id).map(|r| r.agent.hostname.clone())
}

/// Marathon's answer: the deployment with `scale`, else the killed tasks as `wrap` shapes them.
fn answer(killed: Killed, scale: bool, wrap: impl FnOnce(Vec<Task>) -> Response) -> Response {
    if scale {
        return match killed.change {
            Some(change) => Json(change).into_response(),
            None => Json(serde_json::Map::new()).into_response(),
        };
    }
    wrap(killed.tasks)
}

/// `DELETE /v2/apps/{id}/tasks[?host=&scale=&wipe=]`: every live task of the app (on `host`
/// only, when given).
pub async fn kill_all(
    m: &RaftNode,
    agents: &AgentView,
    events: &EventBus,
    app: AppId,
    pairs: &[(String, String)],
) -> Result<Response, ApiError> {
    let f = flags(pairs)?;
    let killed = kill(m, agents, events, f.scale, |state| {
        let live = live_of(state, &app)?;
        Ok(live
            .into_iter()
            .filter(|i| {
                f.host
                    .as_deref()
                    .is_none_or(|h| host_of(state, i).as_deref() == Some(h))
            })
            .collect())
    })
    .await?;
    Ok(answer(killed, f.scale, |tasks| {
        Json(Tasks { tasks }).into_response()
    }))
}

/// `DELETE /v2/apps/{id}/tasks/{task}[?scale=&wipe=]`: one task of the app; 404 when the app
/// has no such live task.
pub async fn kill_one(
    m: &RaftNode,
    agents: &AgentView,
    events: &EventBus,
    app: AppId,
    task: &str,
    pairs: &[(String, String)],
) -> Result<Response, ApiError> {
    let f = flags(pairs)?;
    let killed = kill(m, agents, events, f.scale, |state| {
        let live = live_of(state, &app)?;
        let one: Vec<Instance> = live.into_iter().filter(|i| i.id.0 == task).collect();
        if one.is_empty() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("Task '{task}' does not exist: app {app} has no live task with this id. List them with GET /v2/apps{app}/tasks."),
            ));
        }
        Ok(one)
    })
    .await?;
    Ok(answer(killed, f.scale, |mut tasks| match tasks.pop() {
        Some(task) => Json(TaskEnvelope { task }).into_response(),
        None => Json(Tasks { tasks }).into_response(),
    }))
}
