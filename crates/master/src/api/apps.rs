//! `/v2/apps`: create, read, replace and delete app definitions, with their versions.
//!
//! Deployments come with the scheduler; until then a deployable operation still answers with
//! a deployment id (header `Marathon-Deployment-Id`) so Marathon clients keep working.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use client::{App, AppEnvelope, AppList, Change, DeploymentRef, ErrorBody, VersionInfo, Versions};
use domain::{AppDefinition, AppId};
use serde_json::{Map, Value};
use state::machine::AppVersion;
use state::{Command, Response as Applied};

use super::app_changes::{self, Kind};
use super::app_query::{self, AppEmbeds, AppQuery};
use crate::agents::AgentView;
use crate::deployments::{self, Action};
use crate::error::ApiError;
use crate::events::{Event, EventBus};
use crate::node::RaftNode;

/// Marathon's header naming the deployment an operation started.
const DEPLOYMENT_HEADER: &str = "marathon-deployment-id";

/// A definition as Marathon's JSON object.
pub fn definition_map(app: &AppDefinition) -> Map<String, Value> {
    match app.to_json() {
        Value::Object(fields) => fields,
        // A definition always serializes to an object; anything else has no fields to show.
        _ => Map::new(),
    }
}

pub(super) fn app_json(v: &AppVersion) -> App {
    let mut definition = definition_map(&v.app);
    // The version fields are the record's, not the definition's.
    definition.remove("version");
    definition.remove("versionInfo");
    App {
        definition,
        version: v.version.clone(),
        version_info: VersionInfo {
            last_config_change_at: v.version.clone(),
            last_scaling_at: v.version.clone(),
        },
        counts: None,
        deployments: None,
        tasks: None,
        last_task_failure: None,
        readiness_check_results: None,
        task_stats: None,
    }
}

/// An app as JSON, for events.
pub(super) fn app_value(app: Option<App>) -> Value {
    app.and_then(|a| serde_json::to_value(a).ok())
        .unwrap_or(Value::Null)
}

/// An app as Marathon lists it: the definition and what `embeds` asks for: task counts,
/// deployments, tasks, the last task failure, readiness, task statistics at `now_ms` (see
/// [`super::tasks::task_json`] for `agents` and `own_region`).
pub(super) fn app_with_status(
    agents: &AgentView,
    own_region: &str,
    state: &state::ClusterState,
    v: &AppVersion,
    embeds: AppEmbeds,
    now_ms: u64,
) -> App {
    let mut out = app_json(v);
    let id = &v.app.id;
    if embeds.counts {
        out.counts = Some(super::tasks::counts(agents, state, id));
    }
    if embeds.deployments {
        out.deployments = Some(
            state
                .deployments()
                .values()
                .filter(|d| d.affected_apps.contains(id))
                .map(|d| DeploymentRef { id: d.id.clone() })
                .collect(),
        );
    }
    if embeds.tasks {
        out.tasks = Some(super::tasks::tasks_of(agents, own_region, state, id));
    }
    if embeds.last_task_failure {
        out.last_task_failure = app_query::last_task_failure(state, id);
    }
    if embeds.readiness {
        out.readiness_check_results = Some(super::tasks::readiness_results(agents, state, id));
    }
    if embeds.task_stats {
        out.task_stats = super::tasks::task_stats(agents, state, id, now_ms);
    }
    out
}

/// The query parameters of an apps read, with a 400 naming what is wrong in a label query.
fn app_query(pairs: &[(String, String)]) -> Result<AppQuery, ApiError> {
    AppQuery::from_pairs(pairs).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))
}

pub(super) fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid JSON: {e}. Send a Marathon app definition as a JSON object."),
        )
    })
}

pub(super) fn app_id(raw: &str) -> Result<AppId, ApiError> {
    AppId::parse(raw).map_err(|msg| {
        let mut errors = domain::ValidationErrors::default();
        errors.add("/id", msg);
        ApiError::invalid(&errors)
    })
}

pub(super) fn deployment_headers(id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(id) {
        headers.insert(DEPLOYMENT_HEADER, v);
    }
    headers
}

/// `GET /v2/apps[?cmd=&id=&label=&embed=…]`: the apps that pass every filter given.
pub async fn list(
    State(m): State<Arc<RaftNode>>,
    State(agents): State<Arc<AgentView>>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<AppList>, ApiError> {
    let query = app_query(&pairs)?;
    let embeds = query.embeds(AppEmbeds::for_list());
    m.linearizable().await?;
    let apps = listed(&m, &agents, embeds, |app| query.matches(app));
    Ok(Json(AppList { apps }))
}

/// The apps (pods aside) that `keep` keeps, as `GET /v2/apps` lists them with `embeds`.
pub(super) fn listed(
    m: &RaftNode,
    agents: &AgentView,
    embeds: AppEmbeds,
    keep: impl Fn(&AppDefinition) -> bool,
) -> Vec<App> {
    m.state().read(|a| {
        a.state
            .apps()
            .values()
            .filter(|r| !r.current().app.is_pod() && keep(&r.current().app))
            .map(|r| {
                app_with_status(
                    agents,
                    &m.config().domain.region,
                    &a.state,
                    r.current(),
                    embeds,
                    m.clock().now_ms(),
                )
            })
            .collect()
    })
}

/// `POST /v2/apps`: create; 409 when the id is taken.
pub async fn create(
    State(m): State<Arc<RaftNode>>,
    State(agents): State<Arc<AgentView>>,
    State(events): State<Arc<EventBus>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let app = Kind::App.validate(&parse_body(&body)?)?;
    let region = m.config().domain.region.clone();
    let now_ms = m.clock().now_ms();
    app_changes::create(&m, &events, app, |state, v| {
        app_value(Some(app_with_status(
            &agents,
            &region,
            state,
            v,
            AppEmbeds::for_list(),
            now_ms,
        )))
    })
    .await
}

/// Records a deployment for a change just committed, and announces it.
pub(super) async fn start_deployment(
    m: &RaftNode,
    events: &EventBus,
    app: &AppId,
    version: &str,
    action: Action,
    force: bool,
) -> Result<String, ApiError> {
    let deployment = deployments::new(app, version, action, m.clock().now_ms());
    let id = deployment.id.clone();
    let plan = deployments::wire(&deployment);
    m.write(Command::PutDeployment { deployment, force })
        .await?;
    events.publish(Event::DeploymentInfo {
        current_step: plan.steps.first().cloned(),
        plan: (&plan).into(),
    });
    Ok(id)
}

/// 409 when a deployment holds the app and the change is not forced (Marathon's answer).
pub(super) fn check_lock(m: &RaftNode, app: &AppId, force: bool) -> Result<(), ApiError> {
    if force {
        return Ok(());
    }
    let locking = m
        .state()
        .read(|a| deployments::of_app(&a.state, app).map(|d| d.id.clone()));
    match locking {
        Some(id) => Err(ApiError {
            status: StatusCode::CONFLICT,
            body: ErrorBody {
                deployments: Some(vec![DeploymentRef { id: id.clone() }]),
                ..ErrorBody::new(format!(
                    "App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/{id}'."
                ))
            },
        }),
        None => Ok(()),
    }
}

pub(super) async fn commit_app(
    m: &RaftNode,
    app: AppDefinition,
    version: String,
) -> Result<(), ApiError> {
    match m.write(Command::PutApp { app, version }).await? {
        Applied::AppVersion { .. } | Applied::Ok => Ok(()),
        Applied::Conflict { message } => Err(ApiError::new(StatusCode::CONFLICT, message)),
        other => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected answer from the state machine: {other:?}"),
        )),
    }
}

/// What a path under `/v2/apps/` asks for.
enum AppPath<'a> {
    App(&'a str),
    /// `/v2/apps/{group}/*`: the apps under a group.
    Under(&'a str),
    Tasks(&'a str),
    Versions(&'a str),
    Version(&'a str, &'a str),
}

fn split(path: &str) -> AppPath<'_> {
    if path == "*" || path.ends_with("/*") {
        return AppPath::Under(path.trim_end_matches('*'));
    }
    if let Some(id) = path.strip_suffix("/tasks") {
        return AppPath::Tasks(id);
    }
    if let Some(id) = path.strip_suffix("/versions") {
        return AppPath::Versions(id);
    }
    if let Some((id, version)) = path.rsplit_once("/versions/")
        && !version.contains('/')
    {
        return AppPath::Version(id, version);
    }
    AppPath::App(path)
}

/// `GET /v2/apps/{id}[?embed=…]`, `…/tasks`, `…/versions`, `…/versions/{version}`.
pub async fn get(
    State(m): State<Arc<RaftNode>>,
    State(agents): State<Arc<AgentView>>,
    Path(path): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let embeds = app_query(&pairs)?.embeds(AppEmbeds::for_one());
    m.linearizable().await?;
    let (raw, version) = match split(&path) {
        AppPath::Tasks(id) => {
            let id = app_id(id)?;
            return m.state().read(|a| {
                a.state
                    .app(&id)
                    .filter(|r| !r.current().app.is_pod())
                    .ok_or_else(|| ApiError::app_not_found(id.as_str()))?;
                Ok(Json(client::Tasks {
                    tasks: super::tasks::tasks_of(
                        &agents,
                        &m.config().domain.region,
                        &a.state,
                        &id,
                    ),
                })
                .into_response())
            });
        }
        AppPath::Under(group) => {
            let group = domain::GroupId::parse(group).map_err(|why| {
                let mut errors = domain::ValidationErrors::default();
                errors.add("/id", why);
                ApiError::invalid(&errors)
            })?;
            let embeds = app_query(&pairs)?.embeds(AppEmbeds::for_list());
            let apps = m.state().read(|a| {
                a.state
                    .apps()
                    .iter()
                    .filter(|(id, r)| group.holds(id.as_str()) && !r.current().app.is_pod())
                    .map(|(_, r)| {
                        app_with_status(
                            &agents,
                            &m.config().domain.region,
                            &a.state,
                            r.current(),
                            embeds,
                            m.clock().now_ms(),
                        )
                    })
                    .collect()
            });
            return Ok(Json(AppList { apps }).into_response());
        }
        AppPath::App(id) => (id, None),
        AppPath::Versions(id) => (id, Some(None)),
        AppPath::Version(id, v) => (id, Some(Some(v))),
    };
    let id = app_id(raw)?;
    m.state().read(|a| {
        let record = a
            .state
            .app(&id)
            .filter(|r| !r.current().app.is_pod())
            .ok_or_else(|| ApiError::app_not_found(id.as_str()))?;
        Ok(match version {
            None => Json(AppEnvelope {
                app: app_with_status(
                    &agents,
                    &m.config().domain.region,
                    &a.state,
                    record.current(),
                    embeds,
                    m.clock().now_ms(),
                ),
            })
            .into_response(),
            Some(None) => Json(Versions {
                versions: record.versions().rev().map(|v| v.version.clone()).collect(),
            })
            .into_response(),
            Some(Some(v)) => Json(app_json(record.version(v).ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("App '{id}' has no version {v}"),
                )
            })?))
            .into_response(),
        })
    })
}

/// `PUT /v2/apps/{id}`: create, or update (fields not given keep their values, as
/// Marathon's default `partialUpdate=true`; `?partialUpdate=false` replaces the definition).
/// `POST /v2/apps/{id}/restart` also lands here.
pub async fn put(
    State(m): State<Arc<RaftNode>>,
    State(events): State<Arc<EventBus>>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let partial = super::query_flag(&query, "partialUpdate", true);
    super::app_changes::update(&m, &events, &path, &query, body, partial, true).await
}

/// `PATCH /v2/apps/{id}`: update the fields given.
pub async fn patch(
    State(m): State<Arc<RaftNode>>,
    State(events): State<Arc<EventBus>>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    super::app_changes::update(&m, &events, &path, &query, body, true, false).await
}

/// `POST /v2/apps/{id}/restart`.
pub async fn post(
    State(m): State<Arc<RaftNode>>,
    State(events): State<Arc<EventBus>>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let Some(raw) = path.strip_suffix("/restart") else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("POST /v2/apps/{path}: only /v2/apps/{{id}}/restart takes a POST"),
        ));
    };
    let id = app_id(raw)?;
    let force = super::query_flag(&query, "force", false);
    let _serial = m.exclusive().await;
    m.linearizable().await?;
    check_lock(&m, &id, force)?;
    let current = m
        .state()
        .read(|a| a.state.app(&id).map(|r| r.current().clone()))
        .filter(|c| !c.app.is_pod())
        .ok_or_else(|| ApiError::app_not_found(id.as_str()))?;
    let version = m.next_version(Some(&current.version));
    commit_app(&m, current.app, version.clone()).await?;
    let deployment = start_deployment(
        &m,
        &events,
        &id,
        &version,
        Action::RestartApplication,
        force,
    )
    .await?;
    Ok((
        StatusCode::OK,
        deployment_headers(&deployment),
        Json(Change {
            version,
            deployment_id: Some(deployment),
        }),
    )
        .into_response())
}

/// `DELETE /v2/apps/{id}`, `…/tasks`, `…/tasks/{task}`.
pub async fn delete(
    State(m): State<Arc<RaftNode>>,
    State(agents): State<Arc<AgentView>>,
    State(events): State<Arc<EventBus>>,
    Path(path): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    if let Some(raw) = path.strip_suffix("/tasks") {
        return super::app_tasks::kill_all(&m, &agents, &events, app_id(raw)?, &pairs).await;
    }
    if let Some((raw, task)) = path.rsplit_once("/tasks/")
        && !task.is_empty()
        && !task.contains('/')
    {
        return super::app_tasks::kill_one(&m, &agents, &events, app_id(raw)?, task, &pairs).await;
    }
    let (headers, deployment) =
        app_changes::delete(&m, &events, Kind::App, &app_id(&path)?).await?;
    let version = m.next_version(None);
    Ok((
        StatusCode::OK,
        headers,
        Json(Change {
            version,
            deployment_id: Some(deployment),
        }),
    )
        .into_response())
}
