//! `/v2/pods`: Marathon's pods. A pod is stored and scheduled as an app whose definition
//! carries its containers (see `domain::app::pod`), so placement, deployments, kills and
//! replacement are the apps' own; this module only speaks Marathon's pod JSON.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{AppDefinition, AppId};
use serde_json::{Value, json};
use state::machine::AppVersion;
use state::{ClusterState, Command, Condition, Instance, Response as Applied};

use super::apps::{check_lock, commit_app, deployment_headers, parse_body, start_deployment};
use crate::agents::AgentView;
use crate::clock;
use crate::deployments::{self, Action};
use crate::error::ApiError;
use crate::events::{Event, EventBus};
use crate::node::RaftNode;

fn pod_not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("Pod '{id}' does not exist"))
}

fn pod_id(raw: &str) -> Result<AppId, ApiError> {
    super::apps::app_id(raw)
}

fn validate(value: &Value) -> Result<AppDefinition, ApiError> {
    AppDefinition::pod_from_json(value).map_err(|errors| ApiError::invalid(&errors))
}

/// A pod version as Marathon shows it.
fn pod_json(v: &AppVersion) -> Value {
    match &v.app.pod {
        Some(pod) => pod.to_json(Some(&v.version)),
        None => Value::Null,
    }
}

/// The current version of pod `id`, if there is such a pod.
fn current_pod<'a>(state: &'a ClusterState, id: &AppId) -> Option<&'a state::machine::AppRecord> {
    state.app(id).filter(|r| r.current().app.is_pod())
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
    let pod = validate(&parse_body(&body)?)?;
    let _serial = m.exclusive().await;
    m.linearizable().await?;
    if let Some(existing) = m
        .state()
        .read(|a| a.state.app(&pod.id).map(|r| r.current().app.is_pod()))
    {
        let what = if existing { "A pod" } else { "An app" };
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{what} with id [{}] already exists.", pod.id),
        ));
    }
    if let Some(why) = m
        .state()
        .read(|a| crate::groups::clashes_with_group(&a.state, &pod.id))
    {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, why));
    }
    let version = m.next_version(None);
    let id = pod.id.clone();
    commit_app(&m, pod, version.clone()).await?;
    let deployment =
        start_deployment(&m, &events, &id, &version, Action::StartApplication, false).await?;
    let body = m
        .state()
        .read(|a| a.state.app(&id).map(|r| pod_json(r.current())))
        .unwrap_or(Value::Null);
    events.publish(Event::ApiPostEvent {
        client_ip: None,
        uri: "/v2/pods".into(),
        app_definition: body.clone(),
    });
    let mut headers = deployment_headers(&deployment);
    if let Ok(v) = HeaderValue::from_str(&format!("/v2/pods{id}")) {
        headers.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, headers, Json(body)).into_response())
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

/// Marathon's state of one pod instance.
fn instance_status(agents: &AgentView, i: &Instance, has_checks: bool) -> &'static str {
    match i.condition {
        Condition::Scheduled => "PENDING",
        Condition::Staging | Condition::Starting => "STAGING",
        Condition::Running => {
            let healthy = agents.health(&i.id).map(|h| h.healthy);
            if !has_checks || healthy == Some(true) {
                "STABLE"
            } else {
                "DEGRADED"
            }
        }
        Condition::Unreachable => "DEGRADED",
        _ => "TERMINAL",
    }
}

/// `PodStatus`: the spec, the pod's state, and each live instance with its containers.
fn pod_status(
    agents: &AgentView,
    state: &ClusterState,
    record: &state::machine::AppRecord,
) -> Value {
    let current = record.current();
    let app = &current.app;
    let id = &app.id;
    let has_checks = !app.health_checks.is_empty();
    let live: Vec<&Instance> = state
        .instances_of(id)
        .filter(|i| !i.condition.is_terminal())
        .collect();
    let instances: Vec<Value> = live
        .iter()
        .map(|i| {
            let spec = record.version(&i.app_version).unwrap_or(current);
            let status = instance_status(agents, i, !spec.app.health_checks.is_empty());
            let host = state.agent(&i.agent_id).map(|r| r.agent.hostname.clone());
            let since = clock::iso(i.updated_at_ms);
            let task_state = super::agents::mesos_task_state(i.condition);
            let containers: Vec<Value> = spec
                .app
                .pod
                .iter()
                .flat_map(|p| p.containers.iter())
                .map(|c| {
                    let endpoints: Vec<Value> = c
                        .endpoints
                        .iter()
                        .map(|name| {
                            let port = spec
                                .app
                                .port_definitions
                                .iter()
                                .position(|d| d.name.as_deref() == Some(name))
                                .and_then(|idx| i.ports.get(idx));
                            let mut e = json!({"name": name});
                            if let Some(p) = port {
                                e["allocatedHostPort"] = json!(p);
                            }
                            e
                        })
                        .collect();
                    json!({
                        "name": c.name,
                        "status": task_state,
                        "statusSince": since,
                        "containerId": format!("{}.{}", i.id, c.name),
                        "endpoints": endpoints,
                        "lastUpdated": since,
                        "lastChanged": since,
                    })
                })
                .collect();
            json!({
                "id": i.id.to_string(),
                "status": status,
                "statusSince": since,
                "agentHostname": host,
                "agentId": i.agent_id.to_string(),
                "resources": {"cpus": spec.app.cpus, "mem": spec.app.mem, "disk": spec.app.disk, "gpus": 0},
                "containers": containers,
                "specReference": format!("/v2/pods{id}::versions/{}", i.app_version),
                "lastUpdated": since,
                "lastChanged": since,
            })
        })
        .collect();
    let stable = live
        .iter()
        .filter(|i| {
            instance_status(agents, i, has_checks) == "STABLE" && i.app_version == current.version
        })
        .count();
    let status = if deployments::of_app(state, id).is_some() {
        "DEPLOYING"
    } else if stable >= app.instances as usize {
        "STABLE"
    } else {
        "DEGRADED"
    };
    let now = clock::iso(clock::now_ms());
    json!({
        "id": id.as_str(),
        "spec": pod_json(current),
        "status": status,
        "statusSince": now,
        "instances": instances,
        "lastUpdated": now,
        "lastChanged": now,
    })
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
                    .map(|r| pod_status(&agents, &a.state, r))
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
        let record = current_pod(&a.state, &id).ok_or_else(|| pod_not_found(id.as_str()))?;
        Ok(match (what, version) {
            (1, _) => Json(pod_status(&agents, &a.state, record)).into_response(),
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
                    format!("Pod '{id}' has no version {v}"),
                )
            })?))
            .into_response(),
            _ => Json(pod_json(record.current())).into_response(),
        })
    })
}

/// `PUT /v2/pods/{id}[?force=]`: create or replace the pod.
pub async fn put(
    State(m): State<Arc<RaftNode>>,
    State(events): State<Arc<EventBus>>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = pod_id(&path)?;
    let force = super::query_flag(&query, "force", false);
    let mut body = parse_body(&body)?;
    let Some(obj) = body.as_object_mut() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Send the pod definition as a JSON object.",
        ));
    };
    match obj.get("id").and_then(Value::as_str).map(AppId::parse) {
        Some(Ok(body_id)) if body_id != id => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "The id in the body ({body_id}) differs from the id in the path ({id}); leave it out or make them equal."
                ),
            ));
        }
        _ => {
            obj.insert("id".into(), json!(id.as_str()));
        }
    }
    let pod = validate(&body)?;
    let _serial = m.exclusive().await;
    m.linearizable().await?;
    let current = m
        .state()
        .read(|a| a.state.app(&id).map(|r| r.current().clone()));
    if current.as_ref().is_some_and(|c| !c.app.is_pod()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("An app with id [{id}] already exists: a pod cannot replace it."),
        ));
    }
    if current.is_none()
        && let Some(why) = m
            .state()
            .read(|a| crate::groups::clashes_with_group(&a.state, &id))
    {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, why));
    }
    if current.is_some() {
        check_lock(&m, &id, force)?;
    }
    let action = match &current {
        None => Action::StartApplication,
        Some(cur) => {
            let mut same = cur.app.clone();
            same.instances = pod.instances;
            if let (Some(s), Some(p)) = (same.pod.as_mut(), pod.pod.as_ref()) {
                s.definition
                    .insert("scaling".into(), p.definition["scaling"].clone());
            }
            if same == pod {
                Action::ScaleApplication
            } else {
                Action::RestartApplication
            }
        }
    };
    let created = current.is_none();
    if current.as_ref().is_some_and(|c| c.app == pod) {
        let cur = current.as_ref().map(pod_json).unwrap_or(Value::Null);
        return Ok((StatusCode::OK, Json(cur)).into_response());
    }
    let version = m.next_version(current.as_ref().map(|c| c.version.as_str()));
    commit_app(&m, pod, version.clone()).await?;
    let deployment = start_deployment(&m, &events, &id, &version, action, force).await?;
    let shown = m
        .state()
        .read(|a| a.state.app(&id).map(|r| pod_json(r.current())))
        .unwrap_or(Value::Null);
    events.publish(Event::ApiPostEvent {
        client_ip: None,
        uri: format!("/v2/pods{id}"),
        app_definition: shown.clone(),
    });
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, deployment_headers(&deployment), Json(shown)).into_response())
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
            current_pod(state, &id).ok_or_else(|| pod_not_found(id.as_str()))?;
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
    let _serial = m.exclusive().await;
    m.linearizable().await?;
    if m.state().read(|a| current_pod(&a.state, &id).is_none()) {
        return Err(pod_not_found(id.as_str()));
    }
    let locking = m
        .state()
        .read(|a| deployments::of_app(&a.state, &id).map(|d| d.id.clone()));
    if let Some(d) = locking {
        m.write(Command::DeleteDeployment { id: d }).await?;
    }
    match m.write(Command::DeleteApp { id: id.clone() }).await? {
        Applied::NotFound { .. } => Err(pod_not_found(id.as_str())),
        Applied::Conflict { message } => Err(ApiError::new(StatusCode::CONFLICT, message)),
        _ => {
            events.publish(Event::AppTerminatedEvent {
                app_id: id.to_string(),
            });
            let deployment = state::runtime::uuid_v4().to_string();
            Ok((StatusCode::ACCEPTED, deployment_headers(&deployment)).into_response())
        }
    }
}
