//! Changing apps: one app (`PUT`, `PATCH /v2/apps/{id}`) or several (`PUT /v2/apps`), each
//! checked against the state before anything is committed.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use client::Change;
use domain::{AppDefinition, AppId};
use serde_json::{Value, json};

use super::apps::{
    app_id, app_json, app_value, check_lock, commit_app, deployment_headers, parse_body,
    start_deployment, validate,
};
use crate::deployments::Action;
use crate::error::ApiError;
use crate::events::{Event, EventBus};
use crate::node::RaftNode;

/// A change of app `path` (PUT, PATCH): `partial` merges the fields given into the current
/// definition; `may_create` lets it create the app.
pub(super) async fn update(
    m: &RaftNode,
    events: &EventBus,
    path: &str,
    query: &Option<String>,
    body: Bytes,
    partial: bool,
    may_create: bool,
) -> Result<Response, ApiError> {
    let id = app_id(path)?;
    let force = super::query_flag(query, "force", false);
    let changes = parse_body(&body)?;
    let _serial = m.exclusive().await;
    m.linearizable().await?;
    let prepared = prepare(m, &id, changes, partial, may_create, force)?;
    let created = prepared.created;
    let change = apply(m, events, prepared, force).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let headers = change
        .deployment_id
        .as_deref()
        .map(deployment_headers)
        .unwrap_or_default();
    Ok((status, headers, Json(change)).into_response())
}

/// A change of one app, checked and ready to commit.
struct Prepared {
    id: AppId,
    /// The new definition and how it deploys; `None` when nothing changes.
    app: Option<(AppDefinition, Action)>,
    /// The current version, if the app exists.
    current_version: Option<String>,
    created: bool,
}

/// Checks a change of app `id` (fields in `changes`, merged into the current definition when
/// `partial`) against the state, without committing it. The caller holds the change lock.
fn prepare(
    m: &RaftNode,
    id: &AppId,
    mut changes: Value,
    partial: bool,
    may_create: bool,
    force: bool,
) -> Result<Prepared, ApiError> {
    let Some(obj) = changes.as_object_mut() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Send the app's fields as a JSON object.",
        ));
    };
    match obj.get("id").and_then(Value::as_str).map(AppId::parse) {
        Some(Ok(body_id)) if body_id != *id => {
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
    let current = m
        .state()
        .read(|a| a.state.app(id).map(|r| r.current().clone()));
    if current.as_ref().is_some_and(|c| c.app.is_pod()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("A pod with id [{id}] already exists: change it with PUT /v2/pods{id}."),
        ));
    }
    // Marathon: a PUT may create the app, a PATCH only changes one that exists.
    if current.is_none() && !may_create {
        return Err(ApiError::app_not_found(id.as_str()));
    }
    // Read-only fields Marathon clients send back are not part of the definition.
    for key in crate::groups::READ_ONLY_APP_FIELDS {
        obj.remove(*key);
    }
    let merged = match (&current, partial) {
        (Some(cur), true) => {
            let mut base = cur.app.to_json();
            if let (Some(b), Value::Object(c)) = (base.as_object_mut(), changes) {
                b.extend(c);
            }
            base
        }
        _ => changes,
    };
    // What is wrong with the change is said first (422), whether or not a deployment
    // holds the app (409), as Marathon does.
    let app = validate(&merged)?;
    if current.is_none()
        && let Some(why) = m
            .state()
            .read(|a| crate::groups::clashes_with_group(&a.state, id))
    {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, why));
    }
    if current.is_some() {
        check_lock(m, id, force)?;
    }
    let action = match &current {
        None => Action::StartApplication,
        Some(cur) => {
            let mut same = cur.app.clone();
            same.instances = app.instances;
            if same == app {
                Action::ScaleApplication
            } else {
                Action::RestartApplication
            }
        }
    };
    let unchanged = current.as_ref().is_some_and(|c| c.app == app);
    Ok(Prepared {
        id: id.clone(),
        app: (!unchanged).then_some((app, action)),
        created: current.is_none(),
        current_version: current.map(|c| c.version),
    })
}

/// Commits a prepared change and starts its deployment; nothing when nothing changes (then
/// Marathon answers with the current version and no deployment).
async fn apply(
    m: &RaftNode,
    events: &EventBus,
    prepared: Prepared,
    force: bool,
) -> Result<Change, ApiError> {
    let Some((app, action)) = prepared.app else {
        return Ok(Change {
            version: prepared.current_version.unwrap_or_default(),
            deployment_id: None,
        });
    };
    let id = prepared.id;
    let version = m.next_version(prepared.current_version.as_deref());
    commit_app(m, app, version.clone()).await?;
    let deployment = start_deployment(m, events, &id, &version, action, force).await?;
    let definition = app_value(
        m.state()
            .read(|a| a.state.app(&id).map(|r| app_json(r.current()))),
    );
    events.publish(Event::ApiPostEvent {
        client_ip: None,
        uri: format!("/v2/apps{id}"),
        app_definition: definition,
    });
    Ok(Change {
        version,
        deployment_id: Some(deployment),
    })
}

/// `PUT /v2/apps[?force=&partialUpdate=]`: create or update several apps (a JSON array of
/// definitions, each with its `id`). Every change is checked before any is committed, so a
/// bad one changes nothing; each app then deploys on its own, and the answer names the last
/// deployment (Marathon makes one deployment of them all).
pub async fn put_many(
    State(m): State<Arc<RaftNode>>,
    State(events): State<Arc<EventBus>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let force = super::query_flag(&query, "force", false);
    let partial = super::query_flag(&query, "partialUpdate", true);
    let Value::Array(items) = parse_body(&body)? else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Send a JSON array of app definitions, each with its id.",
        ));
    };
    let _serial = m.exclusive().await;
    m.linearizable().await?;
    let mut prepared = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let Some(raw) = item.get("id").and_then(Value::as_str) else {
            let mut errors = domain::ValidationErrors::default();
            errors.add(
                format!("/{i}/id"),
                "every app of a bulk update needs its id",
            );
            return Err(ApiError::invalid(&errors));
        };
        let id = app_id(raw)?;
        if prepared.iter().any(|p: &Prepared| p.id == id) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("App {id} is given twice: give each app once."),
            ));
        }
        prepared.push(prepare(&m, &id, item, partial, true, force)?);
    }
    let mut last = Change {
        version: String::new(),
        deployment_id: None,
    };
    for p in prepared {
        let change = apply(&m, &events, p, force).await?;
        if change.deployment_id.is_some() || last.deployment_id.is_none() {
            last = change;
        }
    }
    let headers = last
        .deployment_id
        .as_deref()
        .map(deployment_headers)
        .unwrap_or_default();
    Ok((StatusCode::OK, headers, Json(last)).into_response())
}
