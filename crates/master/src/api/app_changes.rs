//! Changing apps and pods: creating one (`POST /v2/apps`, `POST /v2/pods`), changing one
//! (`PUT`, `PATCH /v2/apps/{id}`, `PUT /v2/pods/{id}`) or several apps (`PUT /v2/apps`),
//! each checked against the state before anything is committed, and deleting one. A pod is
//! an app record carrying its containers, so both go through the same checks here; only
//! the JSON they are read from and shown as differs ([`Kind`]).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use client::Change;
use domain::{AppDefinition, AppId};
use serde_json::{Value, json};
use state::machine::AppVersion;
use state::{ClusterState, Command, Response as Applied};

use super::apps::{
    app_id, app_json, app_value, check_lock, commit_app, deployment_headers, parse_body,
    start_deployment,
};
use crate::deployments::{self, Action};
use crate::error::ApiError;
use crate::events::{Event, EventBus};
use crate::node::RaftNode;

/// What a definition is served as: an app (`/v2/apps`) or a pod (`/v2/pods`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Marathon's app JSON.
    App,
    /// Marathon's pod JSON.
    Pod,
}

impl Kind {
    /// The kind of a stored definition.
    pub(super) fn of(app: &AppDefinition) -> Kind {
        if app.is_pod() { Kind::Pod } else { Kind::App }
    }

    /// The collection's path: `/v2/apps` or `/v2/pods`.
    pub(super) fn base(self) -> &'static str {
        match self {
            Kind::App => "/v2/apps",
            Kind::Pod => "/v2/pods",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::App => "app",
            Kind::Pod => "pod",
        }
    }

    /// Reads and validates a definition of this kind (422 with Marathon's body).
    pub(super) fn validate(self, value: &Value) -> Result<AppDefinition, ApiError> {
        match self {
            Kind::App => AppDefinition::from_json(value),
            Kind::Pod => AppDefinition::pod_from_json(value),
        }
        .map_err(|errors| ApiError::invalid(&errors))
    }

    /// 404 for an id with no definition of this kind, saying where to look.
    pub(super) fn not_found(self, id: &AppId) -> ApiError {
        match self {
            Kind::App => ApiError::app_not_found(id.as_str()),
            Kind::Pod => ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "Pod '{id}' does not exist: list the pods with GET /v2/pods, or create it with POST /v2/pods"
                ),
            ),
        }
    }

    /// The current version of `id` if it is of this kind.
    pub(super) fn current<'a>(self, state: &'a ClusterState, id: &AppId) -> Option<&'a AppVersion> {
        state
            .app(id)
            .map(|r| r.current())
            .filter(|v| Kind::of(&v.app) == self)
    }

    /// A version as this kind's JSON (what `ApiPostEvent` carries).
    fn shown(self, v: &AppVersion) -> Value {
        match self {
            Kind::App => app_value(Some(app_json(v))),
            Kind::Pod => super::pods::pod_json(v),
        }
    }
}

/// 409 when another definition has the id (apps and pods share one namespace), 422 when a
/// group has it. The caller holds the change lock.
fn check_free(m: &RaftNode, kind: Kind, id: &AppId) -> Result<(), ApiError> {
    if let Some(taken) = m
        .state()
        .read(|a| a.state.app(id).map(|r| Kind::of(&r.current().app)))
    {
        let what = match taken {
            Kind::App => "An app",
            Kind::Pod => "A pod",
        };
        let how = if taken == kind {
            format!("change it with PUT {}{id}", kind.base())
        } else {
            format!("give the {} another id", kind.noun())
        };
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{what} with id [{id}] already exists: {how}."),
        ));
    }
    match m
        .state()
        .read(|a| crate::groups::clashes_with_group(&a.state, id))
    {
        Some(why) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, why)),
        None => Ok(()),
    }
}

/// `POST /v2/apps`, `POST /v2/pods`: creates `def` and starts its deployment; answers 201
/// with what `show` makes of the new version, the deployment header and the Location.
pub(super) async fn create(
    m: &RaftNode,
    events: &EventBus,
    def: AppDefinition,
    show: impl FnOnce(&ClusterState, &AppVersion) -> Value,
) -> Result<Response, ApiError> {
    let kind = Kind::of(&def);
    let _serial = m.exclusive().await;
    m.linearizable().await?;
    check_free(m, kind, &def.id)?;
    let version = m.next_version(None);
    let id = def.id.clone();
    commit_app(m, def, version.clone()).await?;
    let deployment =
        start_deployment(m, events, &id, &version, Action::StartApplication, false).await?;
    let body = m
        .state()
        .read(|a| a.state.app(&id).map(|r| show(&a.state, r.current())))
        .unwrap_or(Value::Null);
    events.publish(Event::ApiPostEvent {
        client_ip: None,
        uri: kind.base().into(),
        app_definition: body.clone(),
    });
    let mut headers = deployment_headers(&deployment);
    if let Ok(v) = HeaderValue::from_str(&format!("{}{id}", kind.base())) {
        headers.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, headers, Json(body)).into_response())
}

/// `DELETE /v2/apps/{id}`, `DELETE /v2/pods/{id}`: deletes the definition (its instances
/// are decommissioned in the same apply) and cancels a deployment that held it; answers
/// the deployment id Marathon clients expect.
pub(super) async fn delete(
    m: &RaftNode,
    events: &EventBus,
    kind: Kind,
    id: &AppId,
) -> Result<(HeaderMap, String), ApiError> {
    let _serial = m.exclusive().await;
    m.linearizable().await?;
    if m.state().read(|a| kind.current(&a.state, id).is_none()) {
        return Err(kind.not_found(id));
    }
    let locking = m
        .state()
        .read(|a| crate::deployments::of_app(&a.state, id).map(|d| d.id.clone()));
    if let Some(d) = locking {
        m.write(Command::DeleteDeployment { id: d }).await?;
    }
    match m.write(Command::DeleteApp { id: id.clone() }).await? {
        Applied::NotFound { .. } => Err(kind.not_found(id)),
        Applied::Conflict { message } => Err(ApiError::new(StatusCode::CONFLICT, message)),
        _ => {
            events.publish(Event::AppTerminatedEvent {
                app_id: id.to_string(),
            });
            let deployment = state::runtime::uuid_v4().to_string();
            Ok((deployment_headers(&deployment), deployment))
        }
    }
}

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
    let prepared = prepare(m, Kind::App, &id, changes, partial, may_create, force)?;
    let created = prepared.created;
    let change = apply(m, events, prepared, force).await?;
    let deployment = change.deployment_id.clone();
    Ok(changed(created, deployment.as_deref(), change))
}

/// The answer to a change: 201 when it created the app or pod, else 200, with the
/// deployment header when it started one.
pub(super) fn changed(
    created: bool,
    deployment: Option<&str>,
    body: impl serde::Serialize,
) -> Response {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let headers = deployment.map(deployment_headers).unwrap_or_default();
    (status, headers, Json(body)).into_response()
}

/// A change of one app or pod, checked and ready to commit.
pub(super) struct Prepared {
    kind: Kind,
    id: AppId,
    /// The new definition and how it deploys; `None` when nothing changes.
    app: Option<(AppDefinition, Action)>,
    /// The current version, if the app exists.
    current_version: Option<String>,
    /// True when the change creates it.
    pub(super) created: bool,
}

/// Checks a change of app or pod `id` (fields in `changes`, merged into the current
/// definition when `partial`) against the state, without committing it. The caller holds
/// the change lock.
pub(super) fn prepare(
    m: &RaftNode,
    kind: Kind,
    id: &AppId,
    mut changes: Value,
    partial: bool,
    may_create: bool,
    force: bool,
) -> Result<Prepared, ApiError> {
    let Some(obj) = changes.as_object_mut() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Send the {}'s fields as a JSON object.", kind.noun()),
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
    if current.as_ref().is_some_and(|c| Kind::of(&c.app) != kind) {
        // The id is the other kind's: the 409 saying so.
        check_free(m, kind, id)?;
    }
    // Marathon: a PUT may create the app, a PATCH only changes one that exists.
    if current.is_none() && !may_create {
        return Err(kind.not_found(id));
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
    let app = kind.validate(&merged)?;
    match current {
        None => check_free(m, kind, id)?,
        Some(_) => check_lock(m, id, force)?,
    }
    let action = deployments::action_for(current.as_ref().map(|c| &c.app), &app);
    let unchanged = current.as_ref().is_some_and(|c| c.app == app);
    Ok(Prepared {
        kind,
        id: id.clone(),
        app: (!unchanged).then_some((app, action)),
        created: current.is_none(),
        current_version: current.map(|c| c.version),
    })
}

/// Commits a prepared change and starts its deployment; nothing when nothing changes (then
/// Marathon answers with the current version and no deployment).
pub(super) async fn apply(
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
    let kind = prepared.kind;
    let definition = m
        .state()
        .read(|a| a.state.app(&id).map(|r| kind.shown(r.current())))
        .unwrap_or(Value::Null);
    events.publish(Event::ApiPostEvent {
        client_ip: None,
        uri: format!("{}{id}", kind.base()),
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
        prepared.push(prepare(&m, Kind::App, &id, item, partial, true, force)?);
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
