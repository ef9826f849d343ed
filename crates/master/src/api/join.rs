//! Joining a secure cluster (`POST /internal/join/master`, `POST /internal/join/agent`) and
//! its join tokens (`/internal/join-tokens`, masters only: `drover token` calls them with
//! a master's certificate).
//!
//! A master joins before the cluster exists (the forming master waits for a majority), so
//! its join is answered by whichever master it reaches; an agent's is forwarded to the
//! leader, which records the certificate it issues (so removing the agent revokes it).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use state::machine::JoinTokenRecord;
use state::tls::join::{JoinGrant, JoinRequest};
use state::tls::{Identity, JoinKind, JoinToken};
use state::{Command, Response};

use crate::error::ApiError;
use crate::node::RaftNode;
use crate::tls::MasterPki;

/// `POST /internal/join/master`: a master with a master join token gets a master
/// certificate for the hosts it names, and the CA key.
pub async fn master(
    State(node): State<Arc<RaftNode>>,
    State(pki): State<Option<Arc<MasterPki>>>,
    Json(request): Json<JoinRequest>,
) -> Result<Json<JoinGrant>, ApiError> {
    let pki = secure(pki)?;
    let token = admit(&node, &pki, &request.token, JoinKind::Master)?;
    if request.hosts.is_empty() {
        return Err(bad(
            "a joining master must name the hosts it is reached at (`hosts`)",
        ));
    }
    let identity = pki
        .ca()
        .issue_master(&request.hosts)
        .map_err(|e| bad(&e.to_string()))?;
    tracing::info!(token = %token.id, hosts = ?request.hosts, "a master joined");
    Ok(grant(&pki, &identity, Some(pki.ca().key_pem())))
}

/// `POST /internal/join/agent`: an agent with an agent join token gets a client
/// certificate naming its agent id, recorded in the state.
pub async fn agent(
    State(node): State<Arc<RaftNode>>,
    State(pki): State<Option<Arc<MasterPki>>>,
    Json(request): Json<JoinRequest>,
) -> Result<Json<JoinGrant>, ApiError> {
    let pki = secure(pki)?;
    let token = admit(&node, &pki, &request.token, JoinKind::Agent)?;
    let Some(agent_id) = request.agent_id else {
        return Err(bad("a joining agent must name its agent id (`agent_id`)"));
    };
    let identity = pki
        .ca()
        .issue_agent(&agent_id)
        .map_err(|e| bad(&e.to_string()))?;
    let fingerprint = identity
        .fingerprint()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    node.write(Command::PutAgentCertificate {
        agent_id: domain::AgentId(agent_id.clone()),
        fingerprint: fingerprint.to_string(),
    })
    .await?;
    tracing::info!(token = %token.id, agent = %agent_id, "an agent joined");
    Ok(grant(&pki, &identity, None))
}

/// What a joiner gets: the CA, its certificate and key, and the CA key for a master.
fn grant(pki: &MasterPki, identity: &Identity, ca_key_pem: Option<String>) -> Json<JoinGrant> {
    Json(JoinGrant {
        ca_pem: pki.ca().cert_pem().to_string(),
        chain_pem: identity.chain_pem().to_string(),
        key_pem: identity.key_pem().to_string(),
        ca_key_pem,
    })
}

/// A join token as `drover token list` shows it (never its secret or hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenView {
    /// Its id.
    pub id: String,
    /// Whom it admits.
    pub kind: JoinKind,
    /// When it was made, ms since the Unix epoch.
    pub created_ms: u64,
    /// When it expires, if it does.
    pub expires_ms: Option<u64>,
    /// Revoked.
    pub revoked: bool,
}

/// `GET /internal/join-tokens`.
pub async fn list(State(node): State<Arc<RaftNode>>) -> Json<Vec<TokenView>> {
    Json(node.state().read(|a| {
        a.state
            .credentials()
            .join_tokens()
            .values()
            .map(|t| TokenView {
                id: t.id.clone(),
                kind: t.kind,
                created_ms: t.created_ms,
                expires_ms: t.expires_ms,
                revoked: t.revoked,
            })
            .collect()
    }))
}

/// What `POST /internal/join-tokens` takes: a kind and a lifetime for a new token, or a
/// token made elsewhere (the forming master's, from its data dir) to keep.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Whom it admits.
    pub kind: JoinKind,
    /// How long it works, in ms; `None`: until revoked.
    #[serde(default)]
    pub ttl_ms: Option<u64>,
    /// A token to keep instead of a new one.
    #[serde(default)]
    pub token: Option<String>,
}

/// `POST /internal/join-tokens`: commits a join token (its hash) and answers the token,
/// shown this once.
pub async fn create(
    State(node): State<Arc<RaftNode>>,
    State(pki): State<Option<Arc<MasterPki>>>,
    Json(new): Json<NewToken>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let pki = secure(pki)?;
    let token = match &new.token {
        Some(text) => JoinToken::parse(text)
            .and_then(|t| t.expect(new.kind))
            .map_err(|e| bad(&e.to_string()))?,
        None => JoinToken::generate(pki.ca().fingerprint(), new.kind)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
    };
    if token.ca != pki.ca().fingerprint() {
        return Err(bad("the token pins another CA than this cluster's"));
    }
    let now = node.clock().now_ms();
    let expires_ms = new.ttl_ms.map(|ttl| now.saturating_add(ttl));
    let record = JoinTokenRecord::of(&token, now, expires_ms);
    match node.write(Command::PutJoinToken { token: record }).await? {
        Response::Ok => {}
        Response::Conflict { message } => return Err(ApiError::new(StatusCode::CONFLICT, message)),
        other => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("unexpected answer of the state: {other:?}"),
            ));
        }
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": token.id,
            "kind": token.kind,
            "expires_ms": expires_ms,
            "token": token.to_string(),
        })),
    ))
}

/// `DELETE /internal/join-tokens/{id}`.
pub async fn revoke(
    State(node): State<Arc<RaftNode>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match node
        .write(Command::RevokeJoinToken { id: id.clone() })
        .await?
    {
        Response::Ok => Ok(Json(json!({ "id": id, "revoked": true }))),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("there is no join token {id} (see `drover token list`)"),
        )),
    }
}

/// The PKI of a secure master; an insecure one has nothing to join.
fn secure(pki: Option<Arc<MasterPki>>) -> Result<Arc<MasterPki>, ApiError> {
    pki.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "this master runs with --insecure: there is no cluster CA to join; start the agent or master with --insecure too",
        )
    })
}

/// The token in `text`, if it admits a `kind` here: 400 when it is malformed, 401 when it
/// is unknown, expired or revoked, with a message either way.
fn admit(
    node: &RaftNode,
    pki: &MasterPki,
    text: &str,
    kind: JoinKind,
) -> Result<JoinToken, ApiError> {
    let token = JoinToken::parse(text)
        .and_then(|t| t.expect(kind))
        .map_err(|e| bad(&e.to_string()))?;
    let unauthorized = |m: String| ApiError::new(StatusCode::UNAUTHORIZED, m);
    if token.ca != pki.ca().fingerprint() {
        return Err(unauthorized(format!(
            "the join token pins CA {}, but this cluster's CA is {}: it is another cluster's token",
            token.ca,
            pki.ca().fingerprint()
        )));
    }
    let now = node.clock().now_ms();
    let verdict = node.state().read(|a| {
        a.state
            .credentials()
            .join_tokens()
            .get(&token.id)
            .map(|record| record.admits(&token, now))
    });
    match verdict {
        Some(Ok(())) => Ok(token),
        Some(Err(refusal)) => Err(unauthorized(refusal.to_string())),
        // The forming master's own tokens work before the state can keep them.
        None if pki.bootstrap().contains(&token) => Ok(token),
        None => Err(unauthorized(
            state::machine::JoinRefusal::Unknown.to_string(),
        )),
    }
}

fn bad(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message.to_string())
}
