//! `/v1/acl/…`: bootstrap once, then create, list and revoke tokens (Nomad's model). A
//! secret is made here, answered once, and only its hash is committed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use client::{AclTokens, CreatedToken, NewToken};
use state::acl::{AclToken, Policy};
use state::{Command, Response as Applied};

use crate::auth::Caller;
use crate::auth::credential;
use crate::clock::iso;
use crate::error::ApiError;
use crate::node::RaftNode;

/// The longest a token may be made to live: ten years (a longer TTL is a typo).
pub const MAX_TTL_SECONDS: u64 = 10 * 365 * 24 * 60 * 60;

/// `POST /v1/acl/bootstrap`: the first management token, answered with its secret; once.
pub async fn bootstrap(State(m): State<Arc<RaftNode>>) -> Result<Response, ApiError> {
    let (token, secret) = new_token(&m, "bootstrap token".into(), vec![Policy::Management], None)?;
    match m
        .write(Command::BootstrapAcl {
            token: token.clone(),
        })
        .await?
    {
        Applied::Ok => Ok((StatusCode::OK, Json(created(&token, secret))).into_response()),
        Applied::Conflict { .. } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "ACL bootstrap was done already: its management token was shown then, once, and is not stored. Use that token (or one made with it: drover acl token create); nothing was done.",
        )),
        other => Err(unexpected(&other)),
    }
}

/// `GET /v1/acl/tokens`: every token, without secrets.
pub async fn list(State(m): State<Arc<RaftNode>>) -> Result<Json<AclTokens>, ApiError> {
    m.linearizable().await?;
    let tokens = m
        .state()
        .read(|a| a.state.acl().tokens().values().map(wire).collect());
    Ok(Json(AclTokens { tokens }))
}

/// `POST /v1/acl/tokens` with a [`NewToken`]: a new token, answered with its secret once.
pub async fn create(State(m): State<Arc<RaftNode>>, body: Bytes) -> Result<Response, ApiError> {
    let wanted: NewToken = serde_json::from_slice(&body).map_err(|e| {
        bad_request(format!(
            "The body is not a token request ({e}); send {{\"name\": \"ci\", \"policies\": [\"read\"], \"ttlSeconds\": 3600}} (ttlSeconds optional)."
        ))
    })?;
    let name = wanted.name.trim().to_string();
    if name.is_empty() || name.len() > 200 {
        return Err(bad_request(
            "A token needs a name of 1 to 200 characters, for people to tell it apart.",
        ));
    }
    if wanted.policies.is_empty() {
        return Err(bad_request(
            "A token needs at least one policy: read, apps-write:/PREFIX/, operator or management.",
        ));
    }
    let policies = wanted
        .policies
        .iter()
        .map(|p| p.parse::<Policy>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_request(e.to_string()))?;
    if let Some(ttl) = wanted.ttl_seconds
        && (ttl == 0 || ttl > MAX_TTL_SECONDS)
    {
        return Err(bad_request(format!(
            "ttlSeconds {ttl} is out of range: give 1 to {MAX_TTL_SECONDS} (ten years), or leave it out for a token that does not expire."
        )));
    }
    let (token, secret) = new_token(&m, name, policies, wanted.ttl_seconds)?;
    match m
        .write(Command::PutAclToken {
            token: token.clone(),
        })
        .await?
    {
        Applied::Ok => Ok((StatusCode::CREATED, Json(created(&token, secret))).into_response()),
        other => Err(unexpected(&other)),
    }
}

/// `DELETE /v1/acl/tokens/{accessor}`: revokes a token; it stops working on every master as
/// soon as the change is applied there.
pub async fn revoke(
    State(m): State<Arc<RaftNode>>,
    Path(accessor): Path<String>,
) -> Result<Json<client::AclToken>, ApiError> {
    let known = m
        .state()
        .read(|a| a.state.acl().tokens().get(&accessor).map(wire));
    let Some(token) = known else {
        return Err(not_found(&accessor));
    };
    match m
        .write(Command::RevokeAclToken {
            accessor_id: accessor.clone(),
        })
        .await?
    {
        Applied::Ok => Ok(Json(token)),
        Applied::NotFound { .. } => Err(not_found(&accessor)),
        other => Err(unexpected(&other)),
    }
}

/// `GET /v1/acl/token/self`: the caller's own token.
pub async fn token_self(
    caller: Option<Extension<Caller>>,
) -> Result<Json<client::AclToken>, ApiError> {
    match caller {
        Some(Extension(Caller(token))) => Ok(Json(wire(&token))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "This master runs with --insecure: ACL tokens are not checked, so the request has no token to show.",
        )),
    }
}

/// A token as the API shows it.
fn wire(token: &AclToken) -> client::AclToken {
    client::AclToken {
        accessor_id: token.accessor_id.clone(),
        name: token.name.clone(),
        policies: token.policies.iter().map(ToString::to_string).collect(),
        create_time: iso(token.created_at_ms),
        expiration_time: token.expires_at_ms.map(iso),
    }
}

fn created(token: &AclToken, secret: String) -> CreatedToken {
    CreatedToken {
        token: wire(token),
        secret_id: secret,
    }
}

/// A new token with a fresh accessor id and secret, and the secret.
fn new_token(
    m: &RaftNode,
    name: String,
    policies: Vec<Policy>,
    ttl_seconds: Option<u64>,
) -> Result<(AclToken, String), ApiError> {
    let secret = credential::new_secret()?;
    let now = m.clock().now_ms();
    let token = AclToken {
        accessor_id: uuid::Uuid::new_v4().to_string(),
        secret_hash: credential::hash(&secret),
        name,
        policies,
        created_at_ms: now,
        expires_at_ms: ttl_seconds.map(|s| now.saturating_add(s.saturating_mul(1000))),
    };
    Ok((token, secret))
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

fn not_found(accessor: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "No ACL token has the accessor id {accessor}; nothing was done. `drover acl token list` shows them."
        ),
    )
}

fn unexpected(applied: &Applied) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!(
            "The ACL change was answered {applied:?}; nothing more is known. Read the tokens back."
        ),
    )
}
