//! `/v2/groups`: Marathon's application groups. Reads build the tree from the state
//! (explicit groups and those implied by app ids); a change is planned by
//! [`crate::groups::plan`] and committed as one batch with its deployment.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use client::{Change, DeploymentPlan, GroupState};
use domain::GroupId;
use serde_json::Value;
use state::{ClusterState, Command, Response as Applied};

use super::app_query::AppEmbeds;
use super::apps::{app_with_status, deployment_headers, parse_body};
use crate::agents::AgentView;
use crate::deployments;
use crate::error::ApiError;
use crate::events::{Event, EventBus};
use crate::groups::{self, Refusal, Request};
use crate::node::RaftNode;

/// What a group read embeds.
#[derive(Debug, Clone, Copy)]
struct GroupEmbeds {
    groups: bool,
    apps: bool,
    pods: bool,
    app: AppEmbeds,
}

impl GroupEmbeds {
    /// Marathon's: `group.groups`, `group.apps` and `group.pods` unless `embed` names others.
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        let given: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == "embed")
            .map(|(_, v)| v.as_str())
            .collect();
        let mut e = GroupEmbeds {
            groups: given.is_empty(),
            apps: given.is_empty(),
            pods: given.is_empty(),
            app: AppEmbeds::default(),
        };
        for g in given {
            match g {
                "group.groups" => e.groups = true,
                "group.apps" => e.apps = true,
                "group.pods" => e.pods = true,
                other if other.starts_with("group.apps.") => {
                    e.apps = true;
                    e.app.add(other);
                }
                _ => {}
            }
        }
        e
    }
}

fn group_id(raw: &str) -> Result<GroupId, ApiError> {
    GroupId::parse(raw).map_err(|why| {
        let mut errors = domain::ValidationErrors::default();
        errors.add("/id", why);
        ApiError::invalid(&errors)
    })
}

fn refusal(r: Refusal) -> ApiError {
    match r {
        Refusal::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
        Refusal::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
        Refusal::Invalid(errors) => ApiError::invalid(&errors),
    }
}

/// The group `id` as Marathon shows it, with what `embeds` asks for.
fn group_info(
    m: &RaftNode,
    agents: &AgentView,
    state: &ClusterState,
    id: &GroupId,
    embeds: GroupEmbeds,
) -> client::Group {
    let apps = embeds.apps.then(|| {
        groups::apps_in(state, id)
            .filter_map(|a| state.app(a))
            .filter(|r| !r.current().app.is_pod())
            .map(|r| {
                app_with_status(
                    agents,
                    &m.config().domain.region,
                    state,
                    r.current(),
                    embeds.app,
                    m.clock().now_ms(),
                )
            })
            .collect()
    });
    let subgroups = embeds.groups.then(|| {
        groups::children(state, id)
            .iter()
            .map(|g| group_info(m, agents, state, g, embeds))
            .collect()
    });
    client::Group {
        id: id.to_string(),
        apps,
        groups: subgroups,
        pods: embeds.pods.then(|| {
            groups::apps_in(state, id)
                .filter_map(|a| state.app(a))
                .filter_map(|r| {
                    let v = r.current();
                    v.app.pod.as_ref().map(|p| p.to_json(Some(&v.version)))
                })
                .collect()
        }),
        dependencies: state
            .groups()
            .get(id)
            .into_iter()
            .flat_map(|r| r.dependencies.iter().map(|d| d.to_string()))
            .collect(),
        version: groups::version(state, id),
    }
}

/// What a path under `/v2/groups` asks for.
enum GroupPath<'a> {
    Group(&'a str),
    Versions(&'a str),
    Version(&'a str, &'a str),
}

fn split(path: &str) -> GroupPath<'_> {
    if let Some(id) = path.strip_suffix("/versions") {
        return GroupPath::Versions(id);
    }
    if path == "versions" {
        return GroupPath::Versions("");
    }
    if let Some((id, version)) = path.rsplit_once("versions/")
        && (id.is_empty() || id.ends_with('/'))
        && !version.contains('/')
    {
        return GroupPath::Version(id, version);
    }
    GroupPath::Group(path)
}

/// `GET /v2/groups[?embed=…]`: the root group.
pub async fn get_root(
    State(m): State<Arc<RaftNode>>,
    State(agents): State<Arc<AgentView>>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    read(&m, &agents, "", &pairs).await
}

/// `GET /v2/groups/{id}[?embed=…]`, `…/versions`, `…/versions/{version}`.
pub async fn get(
    State(m): State<Arc<RaftNode>>,
    State(agents): State<Arc<AgentView>>,
    Path(path): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    read(&m, &agents, &path, &pairs).await
}

async fn read(
    m: &RaftNode,
    agents: &AgentView,
    path: &str,
    pairs: &[(String, String)],
) -> Result<Response, ApiError> {
    let embeds = GroupEmbeds::from_pairs(pairs);
    m.linearizable().await?;
    m.state().read(|a| {
        let state = &a.state;
        let (raw, version) = match split(path) {
            GroupPath::Group(id) => (id, None),
            GroupPath::Versions(id) => (id, Some(None)),
            GroupPath::Version(id, v) => (id, Some(Some(v))),
        };
        let id = group_id(raw)?;
        if !groups::exists(state, &id) {
            return Err(refusal(Refusal::NotFound(format!(
                "Group '{id}' does not exist"
            ))));
        }
        let stored = state.groups().get(&id).map(|r| r.versions.as_slice());
        Ok(match version {
            None => Json(group_info(m, agents, state, &id, embeds)).into_response(),
            Some(None) => {
                let versions: Vec<&str> = stored
                    .unwrap_or(&[])
                    .iter()
                    .rev()
                    .map(|v| v.version.as_str())
                    .collect();
                Json(versions).into_response()
            }
            Some(Some(v)) => {
                let found = stored
                    .unwrap_or(&[])
                    .iter()
                    .find(|s| s.version == v)
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::NOT_FOUND,
                            format!("Group '{id}' has no version {v}"),
                        )
                    })?;
                let mut definition = found.definition.clone();
                if let Some(obj) = definition.as_object_mut() {
                    obj.insert("version".into(), Value::String(found.version.clone()));
                }
                Json(definition).into_response()
            }
        })
    })
}

/// What a change answers.
enum Verb {
    Post,
    Put,
    Patch,
    Delete,
}

/// `POST /v2/groups[?force=]`: create the group the body's `id` names.
pub async fn post_root(
    State(m): State<Arc<RaftNode>>,
    State(events): State<Arc<EventBus>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    change(&m, &events, "", &query, Some(body), Verb::Post).await
}

/// `POST /v2/groups/{id}`: create a group (the body's `id`, read from `{id}`).
pub async fn post(
    State(m): State<Arc<RaftNode>>,
    State(events): State<Arc<EventBus>>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    change(&m, &events, &path, &query, Some(body), Verb::Post).await
}

/// `PUT /v2/groups[?force=&dryRun=]`: change the root group.
pub async fn put_root(
    State(m): State<Arc<RaftNode>>,
    State(events): State<Arc<EventBus>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    change(&m, &events, "", &query, Some(body), Verb::Put).await
}

/// `PUT /v2/groups/{id}[?force=&dryRun=]`: change (or create) a group; `{"scaleBy": f}`
/// scales every app under it, `{"version": v}` rolls it back to version `v`.
pub async fn put(
    State(m): State<Arc<RaftNode>>,
    State(events): State<Arc<EventBus>>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    change(&m, &events, &path, &query, Some(body), Verb::Put).await
}

/// `PATCH /v2/groups[/{id}]`: as `PUT`.
pub async fn patch_root(
    State(m): State<Arc<RaftNode>>,
    State(events): State<Arc<EventBus>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    change(&m, &events, "", &query, Some(body), Verb::Patch).await
}

/// `PATCH /v2/groups/{id}`: as `PUT`.
pub async fn patch(
    State(m): State<Arc<RaftNode>>,
    State(events): State<Arc<EventBus>>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    change(&m, &events, &path, &query, Some(body), Verb::Patch).await
}

/// `DELETE /v2/groups[?force=]`: delete every app and group.
pub async fn delete_root(
    State(m): State<Arc<RaftNode>>,
    State(events): State<Arc<EventBus>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    change(&m, &events, "", &query, None, Verb::Delete).await
}

/// `DELETE /v2/groups/{id}[?force=]`: delete the group, stopping everything under it.
pub async fn delete(
    State(m): State<Arc<RaftNode>>,
    State(events): State<Arc<EventBus>>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    change(&m, &events, &path, &query, None, Verb::Delete).await
}

/// Reads what a change asks for: the group it changes and the request.
fn request(path: &str, body: Option<Bytes>, verb: &Verb) -> Result<(GroupId, Request), ApiError> {
    let base = group_id(path)?;
    let Some(body) = body else {
        return Ok((base, Request::Delete));
    };
    let value = parse_body(&body).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "Invalid JSON: {}. Send a Marathon group as a JSON object.",
                serde_json::from_slice::<Value>(&body)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            ),
        )
    })?;
    let Some(obj) = value.as_object() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Send the group as a JSON object.",
        ));
    };
    match verb {
        Verb::Post => {
            // The body's id is read from the path's group; without one, the path names it.
            let id = match obj.get("id") {
                Some(Value::String(raw)) => base.resolve_group(raw).map_err(|why| {
                    let mut errors = domain::ValidationErrors::default();
                    errors.add("/id", why);
                    ApiError::invalid(&errors)
                })?,
                _ => base,
            };
            if id.is_root() {
                let mut errors = domain::ValidationErrors::default();
                errors.add("/id", "the root group exists: give the new group's id");
                return Err(ApiError::invalid(&errors));
            }
            let mut body = value.clone();
            if let Some(o) = body.as_object_mut() {
                o.insert("id".into(), Value::String(id.to_string()));
            }
            Ok((id, Request::Create(body)))
        }
        _ => {
            if let Some(v) = obj.get("version").filter(|v| !v.is_null()) {
                let Some(v) = v.as_str() else {
                    let mut errors = domain::ValidationErrors::default();
                    errors.add("/version", "must be a version string to roll back to");
                    return Err(ApiError::invalid(&errors));
                };
                return Ok((base, Request::Rollback(v.to_string())));
            }
            if let Some(f) = obj.get("scaleBy").filter(|v| !v.is_null()) {
                let Some(f) = f.as_f64() else {
                    let mut errors = domain::ValidationErrors::default();
                    errors.add("/scaleBy", "must be a number");
                    return Err(ApiError::invalid(&errors));
                };
                return Ok((base, Request::ScaleBy(f)));
            }
            Ok((base, Request::Update(value)))
        }
    }
}

/// A group's JSON as a deployment plan carries it, at `version`.
fn plan_group(mut json: Value, version: &str) -> GroupState {
    if let Some(obj) = json.as_object_mut() {
        obj.insert("version".into(), Value::String(version.to_string()));
    }
    serde_json::from_value(json).unwrap_or_else(|_| GroupState::root(version))
}

async fn change(
    m: &RaftNode,
    events: &EventBus,
    path: &str,
    query: &Option<String>,
    body: Option<Bytes>,
    verb: Verb,
) -> Result<Response, ApiError> {
    let force = super::query_flag(query, "force", false);
    let dry_run = super::query_flag(query, "dryRun", false);
    let (id, request) = request(path, body, &verb)?;
    let _serial = m.exclusive().await;
    m.linearizable().await?;
    let planned = m.state().read(|a| {
        let state = &a.state;
        // Later than every version the change replaces.
        let floor = state
            .apps()
            .values()
            .map(|r| r.current().version.as_str())
            .chain(state.groups().values().map(|r| r.version.as_str()))
            .max()
            .map(str::to_string);
        let version = m.next_version(floor.as_deref());
        groups::plan(state, &id, request, &version, force, m.clock().now_ms())
    });
    let change = planned.map_err(refusal)?;
    let plan = DeploymentPlan {
        id: change
            .deployment
            .as_ref()
            .map(|d| d.id.clone())
            .unwrap_or_default(),
        version: change.version.clone(),
        original: plan_group(change.original.clone(), &change.version),
        target: plan_group(change.target.clone(), &change.version),
        steps: change
            .deployment
            .iter()
            .flat_map(|d| d.steps.iter().map(deployments::wire_step))
            .collect(),
    };
    if dry_run {
        return Ok(Json(plan).into_response());
    }
    let answer = m
        .write(Command::Batch {
            commands: change.commands,
        })
        .await?;
    if let Applied::Batch { responses } = &answer
        && let Some(message) = responses.iter().find_map(|r| match r {
            Applied::Conflict { message } => Some(message.clone()),
            _ => None,
        })
    {
        return Err(ApiError::new(StatusCode::CONFLICT, message));
    }
    let deployment_id = match &change.deployment {
        Some(d) => {
            events.publish(Event::DeploymentInfo {
                current_step: plan.steps.first().cloned(),
                plan,
            });
            d.id.clone()
        }
        None => {
            // Nothing to deploy: the change is done once committed.
            events.publish(Event::GroupChangeSuccess {
                group_id: id.to_string(),
                version: change.version.clone(),
            });
            state::runtime::uuid_v4().to_string()
        }
    };
    let mut headers = deployment_headers(&deployment_id);
    let status = match verb {
        Verb::Post => {
            if let Ok(v) = HeaderValue::from_str(&format!("/v2/groups{id}")) {
                headers.insert(header::LOCATION, v);
            }
            StatusCode::CREATED
        }
        Verb::Put | Verb::Patch | Verb::Delete => StatusCode::OK,
    };
    Ok((
        status,
        headers,
        Json(Change {
            version: change.version,
            deployment_id: Some(deployment_id),
        }),
    )
        .into_response())
}
