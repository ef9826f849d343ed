//! Every request goes to the leader: a follower forwards it and relays the answer (status,
//! headers and body, streamed), like Marathon's followers do.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::node::Master;

/// Names the leader on every answer.
pub const LEADER_HEADER: &str = "x-marathon-leader";
/// Lists the masters a forwarded request went through.
pub const VIA_HEADER: &str = "x-marathon-via";

/// Requests every master answers itself: its own health and metrics, Raft traffic, and
/// questions about leadership that must work without a leader.
fn answered_locally(method: &Method, path: &str) -> bool {
    let api = path.strip_prefix("/service/marathon").unwrap_or(path);
    matches!(path, "/health" | "/metrics" | "/ping" | "/")
        || path.starts_with("/ui/")
        || path.starts_with("/internal/raft/")
        || (method == Method::GET && matches!(api, "/v2/leader" | "/v2/info" | "/ping"))
}

/// Hop-by-hop headers are not relayed.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "proxy-connection" | "te" | "trailer" | "upgrade" | "host"
    )
}

/// Middleware: answer here when this master leads (or for local questions); otherwise
/// forward to the leader, waiting up to `leader_wait` for one to be known.
pub async fn to_leader(
    State(master): State<Arc<Master>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = if answered_locally(request.method(), request.uri().path()) {
        next.run(request).await
    } else {
        route(&master, request, next).await
    };
    if let Some((_, addr)) = master.leader()
        && let Ok(v) = HeaderValue::from_str(&format!("http://{addr}"))
    {
        response.headers_mut().insert(LEADER_HEADER, v);
    }
    response
}

async fn route(master: &Arc<Master>, request: Request, next: Next) -> Response {
    let me = master.config.advertised().to_string();
    let via = request
        .headers()
        .get(VIA_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let hops: Vec<&str> = via
        .split(',')
        .filter_map(|hop| hop.split_whitespace().last())
        .collect();
    if hops.contains(&me.as_str()) {
        return ApiError::new(StatusCode::BAD_GATEWAY, "Detected proxying loop.").into_response();
    }
    let deadline = tokio::time::Instant::now() + master.config.leader_wait;
    let mut request = Some(request);
    let mut buffered: Option<(Parts, Bytes)> = None;
    loop {
        // A master the request already passed through did not think it leads: our news of
        // it is stale, so wait for the election instead of sending the request back.
        let leader = master
            .leader()
            .filter(|(_, addr)| !hops.contains(&addr.as_str()));
        match leader {
            Some((id, _)) if id == master.config.id => {
                let request = match (request.take(), buffered.take()) {
                    (Some(r), _) => r,
                    (None, Some((parts, body))) => Request::from_parts(parts, Body::from(body)),
                    (None, None) => return ApiError::unavailable("request lost").into_response(),
                };
                return next.run(request).await;
            }
            Some((_, addr)) => {
                // Buffer the body once, so a leader that cannot be reached can be retried.
                if let Some(r) = request.take() {
                    let (parts, body) = r.into_parts();
                    match axum::body::to_bytes(body, MAX_FORWARDED_BODY).await {
                        Ok(bytes) => buffered = Some((parts, bytes)),
                        Err(e) => {
                            return ApiError::new(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                format!("cannot read the request body: {e}"),
                            )
                            .into_response();
                        }
                    }
                }
                let Some((parts, body)) = &buffered else {
                    return ApiError::unavailable("request lost").into_response();
                };
                match forward(master, parts, body.clone(), &addr, &via, &me).await {
                    Forwarded::Answer(response) => return response,
                    Forwarded::Unreachable(e) if tokio::time::Instant::now() >= deadline => {
                        return ApiError::unavailable(format!(
                            "The leader at {addr} cannot be reached ({e}) and no other leader was elected within {} s. Retry in a moment.",
                            master.config.leader_wait.as_secs_f32()
                        ))
                        .into_response();
                    }
                    Forwarded::Unreachable(_) => {
                        tokio::time::sleep(Duration::from_millis(25)).await
                    }
                }
            }
            None if tokio::time::Instant::now() >= deadline => {
                return ApiError::unavailable("Could not determine the current leader")
                    .into_response();
            }
            None => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}

/// Forwarded bodies are buffered (for retries) up to this size.
const MAX_FORWARDED_BODY: usize = 16 * 1024 * 1024;

/// What forwarding gave.
enum Forwarded {
    /// The leader's answer (or an error answer that must not be retried).
    Answer(Response),
    /// The leader could not be reached; nothing was sent, so it is safe to retry.
    Unreachable(String),
}

async fn forward(
    master: &Arc<Master>,
    parts: &Parts,
    body: Bytes,
    leader: &str,
    via: &str,
    me: &str,
) -> Forwarded {
    master.metrics.forwarded();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("http://{leader}{path}").parse::<Uri>() else {
        return Forwarded::Answer(
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("Cannot forward to the leader at {leader}"),
            )
            .into_response(),
        );
    };
    let mut out = axum::http::Request::builder()
        .method(parts.method.clone())
        .uri(uri);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) && name.as_str() != VIA_HEADER {
            out = out.header(name, value);
        }
    }
    let hops = if via.is_empty() {
        format!("1.1 {me}")
    } else {
        format!("{via}, 1.1 {me}")
    };
    out = out.header(VIA_HEADER, hops);
    let Ok(out) = out.body(Body::from(body)) else {
        return Forwarded::Answer(
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "Cannot build the forwarded request",
            )
            .into_response(),
        );
    };
    // The leader answers (at least with headers) within its own write timeout; a leader that
    // is paused or cut off must not hold the client forever.
    let patience = master.config.write_timeout + master.config.leader_wait;
    let Ok(sent) = tokio::time::timeout(patience, master.peers.send(out)).await else {
        return Forwarded::Answer(
            ApiError::unavailable(format!(
                "The leader at {leader} did not answer within {} s; the request may or may not have been applied. Read it back, then retry.",
                patience.as_secs()
            ))
            .into_response(),
        );
    };
    match sent {
        Ok(answer) => {
            let (parts, body) = answer.into_parts();
            let mut response = Response::new(Body::new(body));
            *response.status_mut() = parts.status;
            for (name, value) in &parts.headers {
                if !hop_by_hop(name) {
                    response.headers_mut().append(name, value.clone());
                }
            }
            Forwarded::Answer(response)
        }
        Err(e) if e.is_connect() => Forwarded::Unreachable(e.to_string()),
        Err(e) => Forwarded::Answer(
            ApiError::unavailable(format!(
                "The leader at {leader} did not answer the forwarded request ({e}); it may or may not have been applied. Read it back, then retry."
            ))
            .into_response(),
        ),
    }
}
