//! Who may call `/internal/*` on a secure master, known by the client certificate it
//! presented: Raft and master registration need a master's certificate; an agent's routes
//! need that agent's own certificate (or a master's: a follower forwards an agent's calls
//! to the leader); joining needs no certificate (the join token is the credential).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rustls::pki_types::CertificateDer;
use state::tls::{Fingerprint, config};

use super::{MasterPki, PeerCertificate};
use crate::error::ApiError;
use crate::node::RaftNode;

/// Who called, as the guard established it (a request extension on secure masters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A master of this cluster.
    Master,
    /// The agent with this id.
    Agent(String),
    /// Someone without a certificate (joining).
    Anonymous,
}

/// What a route under `/internal/` asks of its caller.
enum Needs<'a> {
    /// Nothing: the body carries the credential (a join token).
    Nothing,
    /// A master's certificate.
    Master,
    /// The certificate of agent `id` (or a master's).
    Agent(&'a str),
    /// An agent certificate naming the agent the body describes (or a master's).
    RegisteringAgent,
}

fn needs(path: &str) -> Needs<'_> {
    if path.starts_with("/internal/join/") {
        return Needs::Nothing;
    }
    if path == "/internal/agents/register" {
        return Needs::RegisteringAgent;
    }
    if let Some(rest) = path.strip_prefix("/internal/agents/")
        && let Some((id, _)) = rest.split_once('/')
    {
        return Needs::Agent(id);
    }
    Needs::Master
}

/// Middleware: on a secure master, refuses `/internal/*` calls whose certificate does not
/// allow them (403 with a message), and records the [`Caller`]. An insecure master (no
/// PKI) lets everything through, as `--insecure` says.
pub async fn guard(
    State(pki): State<Option<Arc<MasterPki>>>,
    State(node): State<Arc<RaftNode>>,
    request: Request,
    next: Next,
) -> Response {
    if pki.is_none() || !request.uri().path().starts_with("/internal/") {
        return next.run(request).await;
    }
    let cert = request
        .extensions()
        .get::<ConnectInfo<PeerCertificate>>()
        .and_then(|info| info.0.0.clone());
    let path = request.uri().path().to_string();
    let master = cert.as_ref().is_some_and(|c| config::is_master(c));
    let (caller, request) = match needs(&path) {
        Needs::Nothing => (Caller::Anonymous, request),
        _ if master => (Caller::Master, request),
        Needs::Master => {
            return refuse(format!(
                "{path} is for the masters of this cluster: the caller must present a master certificate issued by the cluster CA"
            ));
        }
        Needs::Agent(id) => match agent_certificate(&node, cert.as_ref(), id) {
            Ok(()) => (Caller::Agent(id.to_string()), request),
            Err(why) => return refuse(format!("{path}: {why}")),
        },
        Needs::RegisteringAgent => {
            let (parts, body) = request.into_parts();
            let bytes = match axum::body::to_bytes(body, crate::api::body_limit(&path)).await {
                Ok(b) => b,
                Err(e) => {
                    return ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("Cannot read the request body: {e}; nothing was done."),
                    )
                    .into_response();
                }
            };
            let id = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("agent")?.get("id")?.as_str().map(str::to_string))
                .unwrap_or_default();
            if let Err(why) = agent_certificate(&node, cert.as_ref(), &id) {
                return refuse(format!("registering agent '{id}': {why}"));
            }
            (
                Caller::Agent(id),
                Request::from_parts(parts, Body::from(bytes)),
            )
        }
    };
    let mut request = request;
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// Whether `cert` is agent `id`'s own, unrevoked certificate; why not otherwise.
fn agent_certificate(
    node: &RaftNode,
    cert: Option<&CertificateDer<'static>>,
    id: &str,
) -> Result<(), String> {
    let Some(cert) = cert else {
        return Err(
            "no client certificate: an agent joins with a join token (drover agent --join-token) and then presents the certificate it was given".to_string(),
        );
    };
    if !config::names_agent(cert, id) {
        return Err(format!(
            "the client certificate is not agent '{id}''s: an agent may act only for itself"
        ));
    }
    let fingerprint = Fingerprint::of(cert).to_string();
    if node
        .state()
        .read(|a| a.state.credentials().is_revoked(&fingerprint))
    {
        return Err(format!(
            "the certificate of agent '{id}' was revoked (the agent was removed); join it again with a new join token and a new work dir"
        ));
    }
    Ok(())
}

fn refuse(message: String) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, message).into_response()
}
