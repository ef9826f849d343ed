//! `/v2/pods`: Marathon's pods. A pod is stored and scheduled as an app whose definition
//! carries its containers (see `domain::app::pod`), so placement, deployments, kills and
//! replacement are the apps' own; this module only speaks Marathon's pod JSON.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::AppId;
use serde_json::{Value, json};
use state::Instance;
use state::machine::AppVersion;

use super::app_changes::{self, Kind};
use super::apps::parse_body;
use super::pod_status;
use crate::agents::AgentView;
use crate::error::ApiError;
use crate::events::EventBus;
use crate::node::RaftNode;

fn pod_id(raw: &str) -> Result<AppId, ApiError> {
    super::apps::app_id(raw)
}

/// A pod version as Marathon shows it.
pub(super) fn pod_json(v: &AppVersion) -> Value {
    match &v.app.pod {
        Some(pod) => pod.to_json(Some(&v.version)),
        None => Value::Null,
    }
}

/// `GET /v2/pods` (and `HEAD`, which Marathon clients use to find out that pods are served).
pub async fn list(State(m): State<Arc<RaftNode>>) -> Result<Json<Vec<Value>>, ApiError> {
    m.linearizable().await?;
    Ok(Json(m.state().read(|a| {
        a.state
            .apps()
            .values()
            .filter(|r| r.current().app.is_pod())
            .map(|r| pod_json(r.current()))
            .collect()
    })))
}

/// `POST /v2/pods`: create; 409 when an app or pod has the id.
pub async fn create(
    State(m): State<Arc<RaftNode>>,
    State(events): State<Arc<EventBus>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let pod = Kind::Pod.validate(&parse_body(&body)?)?;
    app_changes::create(&m, &events, pod, |_, v| pod_json(v)).await
}

/// What a path under `/v2/pods/` asks for (Marathon's `::` suffixes).
enum PodPath<'a> {
    Pod(&'a str),
    AllStatus,
    Status(&'a str),
    Versions(&'a str),
    Version(&'a str, &'a str),
    Instances(&'a str),
    Instance(&'a str, &'a str),
}

fn split(path: &str) -> PodPath<'_> {
    if path == "::status" {
        return PodPath::AllStatus;
    }
    let Some((id, suffix)) = path.split_once("::") else {
        return PodPath::Pod(path);
    };
    match suffix.split_once('/') {
        None if suffix == "status" => PodPath::Status(id),
        None if suffix == "versions" => PodPath::Versions(id),
        None if suffix == "instances" => PodPath::Instances(id),
        Some(("versions", v)) => PodPath::Version(id, v),
        Some(("instances", i)) => PodPath::Instance(id, i),
        // An unknown suffix is read as part of the id, which then does not parse: a 422.
        _ => PodPath::Pod(path),
    }
}

/// `GET /v2/pods/{id}`, `…::status`, `…::versions`, `…::versions/{version}`, and
/// `GET /v2/pods/::status` (every pod's status).
pub async fn get(
    State(m): State<Arc<RaftNode>>,
    State(agents): State<Arc<AgentView>>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    m.linearizable().await?;
    let (raw, what) = match split(&path) {
        PodPath::AllStatus => {
            let all: Vec<Value> = m.state().read(|a| {
                a.state
                    .apps()
                    .values()
                    .filter(|r| r.current().app.is_pod())
                    .map(|r| pod_status::pod_status(&agents, &a.state, r))
                    .collect()
            });
            return Ok(Json(all).into_response());
        }
        PodPath::Pod(id) => (id, 0),
        PodPath::Status(id) => (id, 1),
        PodPath::Versions(id) => (id, 2),
        PodPath::Version(id, _) => (id, 3),
        PodPath::Instances(_) | PodPath::Instance(..) => {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "pod instances are read in GET /v2/pods/{id}::status and killed with DELETE",
            ));
        }
    };
    let id = pod_id(raw)?;
    let version = match split(&path) {
        PodPath::Version(_, v) => Some(v.to_string()),
        _ => None,
    };
    m.state().read(|a| {
        let record = a
            .state
            .app(&id)
            .filter(|r| r.current().app.is_pod())
            .ok_or_else(|| Kind::Pod.not_found(&id))?;
        Ok(match (what, version) {
            (1, _) => Json(pod_status::pod_status(&agents, &a.state, record)).into_response(),
            (2, _) => Json(
                record
                    .versions()
                    .rev()
                    .map(|v| v.version.clone())
                    .collect::<Vec<_>>(),
            )
            .into_response(),
            (3, Some(v)) => Json(pod_json(record.version(&v).ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("Pod '{id}' has no version {v}: list its versions with GET /v2/pods{id}::versions"),
                )
            })?))
            .into_response(),
            _ => Json(pod_json(record.current())).into_response(),
        })
    })
}

/// `PUT /v2/pods/{id}[?force=]`: create or replace the pod (201 when created); answers the
/// pod as it now is, with the deployment the change started.
pub async fn put(
    State(m): State<Arc<RaftNode>>,
    State(events): State<Arc<EventBus>>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = pod_id(&path)?;
    let force = super::query_flag(&query, "force", false);
    let body = parse_body(&body)?;
    let _serial = m.exclusive().await;
    m.linearizable().await?;
    let prepared = app_changes::prepare(&m, Kind::Pod, &id, body, false, true, force)?;
    let created = prepared.created;
    let change = app_changes::apply(&m, &events, prepared, force).await?;
    let shown = m
        .state()
        .read(|a| Kind::Pod.current(&a.state, &id).map(pod_json))
        .unwrap_or(Value::Null);
    Ok(app_changes::changed(
        created,
        change.deployment_id.as_deref(),
        shown,
    ))
}

/// `DELETE /v2/pods/{id}` (stops every instance), `…::instances` (every instance, or those
/// whose ids a JSON array in the body names) and `…::instances/{instance}`: killed instances
/// are replaced, as Marathon does.
pub async fn delete(
    State(m): State<Arc<RaftNode>>,
    State(agents): State<Arc<AgentView>>,
    State(events): State<Arc<EventBus>>,
    Path(path): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (raw, instances): (&str, Option<Option<Vec<String>>>) = match split(&path) {
        PodPath::Pod(id) => (id, None),
        PodPath::Instances(id) => {
            let ids = if body.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                Some(serde_json::from_slice::<Vec<String>>(&body).map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("Send the instance ids to kill as a JSON array of strings: {e}"),
                    )
                })?)
            };
            (id, Some(ids))
        }
        PodPath::Instance(id, instance) => (id, Some(Some(vec![instance.to_string()]))),
        _ => {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("DELETE /v2/pods/{path}: delete a pod or its ::instances"),
            ));
        }
    };
    let id = pod_id(raw)?;
    if let Some(ids) = instances {
        let killed = super::tasks::kill(&m, &agents, &events, false, |state| {
            Kind::Pod
                .current(state, &id)
                .ok_or_else(|| Kind::Pod.not_found(&id))?;
            let live: Vec<Instance> = state
                .instances_of(&id)
                .filter(|i| !i.condition.is_terminal())
                .filter(|i| ids.as_ref().is_none_or(|ids| ids.contains(&i.id.0)))
                .cloned()
                .collect();
            if let Some(ids) = &ids
                && let Some(missing) = ids.iter().find(|x| !live.iter().any(|i| &i.id.0 == *x))
            {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("Instance '{missing}' does not exist: pod {id} has no live instance with this id. List them with GET /v2/pods{id}::status."),
                ));
            }
            Ok(live)
        })
        .await?;
        let ids: Vec<Value> = killed
            .tasks
            .iter()
            .map(|t| json!({"instanceId": {"idString": t.id}, "id": t.id}))
            .collect();
        return Ok(Json(ids).into_response());
    }
    let (headers, _) = app_changes::delete(&m, &events, Kind::Pod, &id).await?;
    Ok((StatusCode::ACCEPTED, headers).into_response())
}
