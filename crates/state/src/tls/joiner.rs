//! The joiner's side of `POST /internal/join/{master,agent}`: ask the masters in turn,
//! over a connection that trusts only a server presenting the CA the token pins.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};

use super::TlsError;
use super::join::{JoinGrant, JoinKind, JoinRequest, JoinToken, pinned_client_config};
use crate::transport::Connector;

/// How long one join attempt at one master may take.
const ATTEMPT: Duration = Duration::from_secs(10);

/// Why joining failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// A master refused the token (or the request): trying again will not help.
    #[error("master {master} refused to let this {kind} join ({status}): {message}")]
    Refused {
        /// Who refused.
        master: String,
        /// Who was joining.
        kind: JoinKind,
        /// The HTTP status.
        status: u16,
        /// The master's words.
        message: String,
    },
    /// No master could be asked (down, or not the cluster the token pins).
    #[error("no master could be asked to let this {1} join: {0}")]
    Unreachable(String, JoinKind),
    /// The client could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Asks each of `masters` (`HOST:PORT`) in turn to admit the holder of `token`; the first
/// grant wins. Opens connections with `tcp` (plain; TLS pinned to the token's CA is added).
pub async fn join(
    masters: &[String],
    token: &JoinToken,
    request: &JoinRequest,
    tcp: Connector,
) -> Result<JoinGrant, JoinError> {
    let connector = tcp.with_tls(pinned_client_config(&token.ca)?);
    let client = crate::transport::client::<Full<Bytes>>(connector);
    let path = match token.kind {
        JoinKind::Master => "/internal/join/master",
        JoinKind::Agent => "/internal/join/agent",
    };
    let body = serde_json::to_vec(request).map_err(|e| {
        JoinError::Unreachable(format!("cannot encode the request: {e}"), token.kind)
    })?;
    let mut failures = Vec::new();
    for master in masters {
        let http = Request::builder()
            .method(Method::POST)
            .uri(format!("http://{master}{path}"))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.clone())));
        let http = match http {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{master}: {e}"));
                continue;
            }
        };
        let answer = tokio::time::timeout(ATTEMPT, async {
            let response = client
                .request(http)
                .await
                .map_err(|e| crate::error::chain(&e))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, bytes))
        })
        .await;
        match answer {
            Err(_) => failures.push(format!("{master}: no answer within {ATTEMPT:?}")),
            Ok(Err(e)) => failures.push(format!("{master}: {e}")),
            Ok(Ok((status, bytes))) if status.is_success() => {
                match serde_json::from_slice::<JoinGrant>(&bytes) {
                    Ok(grant) => return Ok(grant),
                    Err(e) => failures.push(format!("{master}: an unreadable grant: {e}")),
                }
            }
            Ok(Ok((status, bytes))) if status.is_client_error() => {
                return Err(JoinError::Refused {
                    master: master.clone(),
                    kind: token.kind,
                    status: status.as_u16(),
                    message: message(&bytes),
                });
            }
            Ok(Ok((status, bytes))) => {
                failures.push(format!("{master}: {status} {}", message(&bytes)));
            }
        }
    }
    Err(JoinError::Unreachable(failures.join("; "), token.kind))
}

/// [`join`], asked again every half second while no master can be asked (masters that
/// are still starting), logging why now and then; a refusal or a grant ends it.
pub async fn join_patiently(
    masters: &[String],
    token: &JoinToken,
    request: &JoinRequest,
    tcp: Connector,
) -> Result<JoinGrant, JoinError> {
    let mut attempts = 0u32;
    loop {
        match join(masters, token, request, tcp.clone()).await {
            Err(JoinError::Unreachable(why, kind)) => {
                if attempts.is_multiple_of(10) {
                    tracing::warn!("waiting for a master to let this {kind} join: {why}");
                }
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            answer => return answer,
        }
    }
}

/// An answer's `message`, or its text.
fn message(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).chars().take(300).collect())
}
