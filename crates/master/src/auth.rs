//! Who is calling, and may they: the ACL check every public request passes on the master
//! that answers it (the leader, after a follower forwarded it unchanged; or the follower
//! itself for the few questions it answers locally), so a revoked token stops working at
//! once everywhere. Missing, unknown or expired tokens get 401; a token whose policies do
//! not allow the request gets 403; both say what is missing and what to do.
//!
//! `--insecure` turns the check off. `/internal/*` is not checked here: masters and agents
//! prove who they are with certificates (the TLS half of issue 12).

pub mod access;
pub mod credential;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::AppId;
use serde_json::Value;
use state::acl::{Access, AclToken};

use crate::error::ApiError;
use crate::node::RaftNode;
use access::{AppTarget, Need};

/// The token a request was allowed with, for handlers that answer per caller (the event
/// stream, `GET /v1/acl/token/self`). Absent with `--insecure` and on open routes.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<AclToken>);

/// Middleware: refuses a request whose token does not allow it, otherwise runs it with
/// its [`Caller`] in the request's extensions.
pub async fn check(State(master): State<Arc<RaftNode>>, request: Request, next: Next) -> Response {
    if master.config().insecure {
        return next.run(request).await;
    }
    let need = access::need(request.method(), request.uri().path());
    if matches!(need, Need::Open | Need::Internal) {
        return next.run(request).await;
    }
    let token = match caller(&master, &request) {
        Ok(token) => token,
        Err(refusal) => {
            let mut answer = refusal.into_response();
            challenge(&mut answer);
            return answer;
        }
    };
    let mut request = match allow(&master, &token, need, request).await {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    request.extensions_mut().insert(Caller(token));
    next.run(request).await
}

/// The valid token of a request, or its 400/401 answer.
fn caller(master: &RaftNode, request: &Request) -> Result<Arc<AclToken>, ApiError> {
    let events = request.method() == Method::GET && is_event_stream(request.uri().path());
    let secret = credential::secret(request.headers(), request.uri().query(), events)
        .map_err(|e| e.answer())?;
    let hash = secret.hash();
    let now = master.clock().now_ms();
    let found = master.state().read(|a| {
        a.state
            .acl()
            .by_secret_hash(&hash)
            .map(|t| (t.expired(now), Arc::new(t.clone())))
    });
    match found {
        Some((false, token)) => Ok(token),
        Some((true, token)) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!(
                "The ACL token {} ({}) expired at {}; nothing was done. Ask an operator for a new token (drover acl token create) and use it instead.",
                token.accessor_id,
                token.name,
                token
                    .expires_at_ms
                    .map_or_else(String::new, crate::clock::iso)
            ),
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "The ACL token is not known to this cluster (mistyped, revoked, or from another cluster); nothing was done. Check the token you gave (--token, DROVER_TOKEN or the config of `drover login`).",
        )),
    }
}

fn is_event_stream(path: &str) -> bool {
    matches!(path, "/v2/events" | "/service/marathon/v2/events")
}

/// The request again (its body read back in when it had to be read) if `token` allows
/// it, or the 403 that says what it lacks.
async fn allow(
    master: &RaftNode,
    token: &AclToken,
    need: Need,
    request: Request,
) -> Result<Request, ApiError> {
    let access = match &need {
        Need::Open | Need::Internal | Need::Authenticated => Access::Authenticated,
        Need::Read => Access::Read,
        Need::Operate => Access::Operate,
        Need::Manage => Access::Manage,
        Need::WriteApps(_) => Access::WriteAllApps,
    };
    if token.may(access) {
        return Ok(request);
    }
    let Need::WriteApps(target) = need else {
        return Err(forbidden(token, &request, required(access)));
    };
    if token.app_prefixes().next().is_none() {
        return Err(forbidden(token, &request, "an apps-write:/PREFIX/ policy"));
    }
    let (request, apps) = apps_touched(master, target, request).await?;
    let outside: Vec<String> = match &apps {
        Some(apps) => apps
            .iter()
            .filter(|app| !token.may(Access::WriteApp(app)))
            .map(|app| app.as_str().to_string())
            .collect(),
        None => Vec::new(),
    };
    if apps.is_none() {
        let what = "an app id this request names cannot be read, so a prefix token may not make it";
        return Err(forbidden(token, &request, what));
    }
    if outside.is_empty() {
        return Ok(request);
    }
    let prefixes: Vec<&str> = token.app_prefixes().collect();
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        format!(
            "The ACL token {} ({}) may write only apps under {}, and this request ({} {}) touches {}; nothing was done. Use a token with apps-write for those apps, or management.",
            token.accessor_id,
            token.name,
            prefixes.join(", "),
            request.method(),
            request.uri().path(),
            outside.join(", ")
        ),
    ))
}

fn required(access: Access<'_>) -> &'static str {
    match access {
        Access::Authenticated | Access::Read => "the read policy",
        Access::WriteApp(_) | Access::WriteAllApps => "an apps-write:/PREFIX/ or management policy",
        Access::Operate => "the operator or management policy",
        Access::Manage => "the management policy",
    }
}

fn forbidden(token: &AclToken, request: &Request, needs: &str) -> ApiError {
    let has: Vec<String> = token.policies.iter().map(ToString::to_string).collect();
    ApiError::new(
        StatusCode::FORBIDDEN,
        format!(
            "The ACL token {} ({}) has the policies [{}]; {} {} needs {needs}. Nothing was done: use a token that has it.",
            token.accessor_id,
            token.name,
            has.join(", "),
            request.method(),
            request.uri().path()
        ),
    )
}

/// The apps a write touches (`None` when one cannot be read), and the request with its
/// body put back when it was read.
async fn apps_touched(
    master: &RaftNode,
    target: AppTarget,
    request: Request,
) -> Result<(Request, Option<Vec<AppId>>), ApiError> {
    match target {
        AppTarget::Unreadable => Ok((request, None)),
        AppTarget::Path { app, body: false } => Ok((request, Some(vec![app]))),
        // A group write touches what lies under the group: a prefix token may make it only
        // when the group itself is under its prefix (the root never is).
        AppTarget::Group { group, body } => {
            let (request, touched) = if body {
                let (request, value) = read_body(request).await?;
                let touched = match value.get("id") {
                    Some(Value::String(raw)) => group.resolve_group(raw).ok(),
                    _ => Some(group),
                };
                (request, touched)
            } else {
                (request, Some(group))
            };
            let app = touched.and_then(|g| g.as_app_id());
            Ok((request, app.map(|a| vec![a])))
        }
        AppTarget::Deployment(id) => {
            let apps = master.state().read(|a| {
                a.state
                    .deployments()
                    .get(&id)
                    .map(|d| d.affected_apps.clone())
                    .unwrap_or_default()
            });
            Ok((request, Some(apps)))
        }
        AppTarget::Path { app, body: true } => {
            let (request, body) = read_body(request).await?;
            let mut apps = ids_in(&body);
            if let Some(apps) = &mut apps {
                apps.push(app);
            }
            Ok((request, apps))
        }
        AppTarget::Body => {
            let (request, body) = read_body(request).await?;
            Ok((request, ids_in(&body)))
        }
        AppTarget::Tasks => {
            let (request, body) = read_body(request).await?;
            let ids: Vec<String> = body
                .get("ids")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            // Unknown ids touch nothing; the handler answers them.
            let apps = master.state().read(|a| {
                ids.iter()
                    .filter_map(|id| {
                        a.state
                            .instances()
                            .get(&state::InstanceId(id.clone()))
                            .map(|i| i.app_id.clone())
                    })
                    .collect()
            });
            Ok((request, Some(apps)))
        }
    }
}

/// The app ids a body names: its `id`, or each array element's. A body that is not JSON
/// names none (the handler refuses it); an id that does not parse makes the answer `None`.
fn ids_in(body: &Value) -> Option<Vec<AppId>> {
    let items: Vec<&Value> = match body {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut apps = Vec::new();
    for item in items {
        match item.get("id") {
            None | Some(Value::Null) => {}
            Some(Value::String(id)) => apps.push(AppId::parse(id).ok()?),
            Some(_) => return None,
        }
    }
    Some(apps)
}

/// Reads the body (within the API's limit) as JSON for a look at its ids, and puts it back.
async fn read_body(request: Request) -> Result<(Request, Value), ApiError> {
    let (parts, body) = request.into_parts();
    let limit = crate::api::PUBLIC_BODY_LIMIT;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        if crate::forward::is_length_limit(&e) {
            crate::api::body_too_large(limit)
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("Cannot read the request body: {e}; nothing was done."),
            )
        }
    })?;
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((Request::from_parts(parts, Body::from(bytes)), value))
}

/// Adds `WWW-Authenticate` to 401 answers, so HTTP clients know the scheme.
fn challenge(response: &mut Response) {
    if response.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"drover\""),
        );
    }
}
