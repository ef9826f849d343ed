//! Every request goes to the leader: a follower forwards it and relays the answer (status,
//! headers and body, streamed), like Marathon's followers do.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use state::network::CLUSTER_ID_HEADER;

use crate::clock::Rarely;
use crate::error::ApiError;
use crate::node::RaftNode;

/// Names the leader on every answer.
pub const LEADER_HEADER: &str = "x-marathon-leader";
/// Lists the masters a forwarded request went through.
pub const VIA_HEADER: &str = "x-marathon-via";

/// Requests every master answers itself: its own health and metrics, Raft traffic, and
/// questions about leadership that must work without a leader.
fn answered_locally(method: &Method, path: &str) -> bool {
    let api = path.strip_prefix("/service/marathon").unwrap_or(path);
    matches!(path, "/health" | "/metrics" | "/ping" | "/")
        || (method == Method::GET && path == "/v1/info")
        || path.starts_with("/ui/")
        || path.starts_with("/internal/raft/")
        // Masters join before there is a leader.
        || path == "/internal/join/master"
        // The leader tells a removed master; it must not forward that back to the leader.
        || path == "/internal/masters/removed"
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
/// forward to the leader, waiting up to `leader_wait` for one to be known. A request another
/// master sent (Raft RPCs, forwarded requests) from another cluster is refused.
pub async fn to_leader(
    State(master): State<Arc<RaftNode>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(refusal) = other_cluster(&master, &request) {
        return refusal.into_response();
    }
    let mut response = if answered_locally(request.method(), request.uri().path()) {
        next.run(request).await
    } else {
        route(&master, request, next).await
    };
    if let Some(leader) = master.leader_header() {
        response.headers_mut().insert(LEADER_HEADER, leader);
    }
    response
}

/// The refusal of a request that names a cluster other than this master's, if it does.
/// A master that does not know its cluster id yet (a new cluster) accepts anything.
fn other_cluster(master: &RaftNode, request: &Request) -> Option<ApiError> {
    let theirs = request.headers().get(CLUSTER_ID_HEADER)?;
    let theirs = String::from_utf8_lossy(theirs.as_bytes());
    // Compared in place (every Raft RPC and forwarded request carries the header); the id is
    // copied only for the refusal.
    let mine = master.state().read(|a| {
        a.state
            .cluster_id()
            .filter(|mine| *mine != theirs)
            .map(str::to_string)
    })?;
    let message = format!(
        "This master (id {}) belongs to cluster {mine}, but the request to {} came from a master of cluster {theirs}; it was refused and nothing was done. A master of another cluster is sending here: check the --masters of the sender, and never start a master on a data dir copied from another cluster.",
        master.config().id,
        request.uri().path()
    );
    if OTHER_CLUSTER_LOGGED.due(master.clock().now_ms()) {
        tracing::error!("{message}");
    }
    Some(ApiError::new(StatusCode::MISDIRECTED_REQUEST, message))
}

/// Refusals of another cluster's requests are logged at most once every ten seconds: a
/// master of another cluster retries its Raft RPCs many times a second.
static OTHER_CLUSTER_LOGGED: Rarely = Rarely::every(Duration::from_secs(10));

async fn route(master: &RaftNode, request: Request, next: Next) -> Response {
    // The leader answers whatever reaches it, and never forwards, so nothing it answers can
    // loop (a request forwarded to a master that has since been handed leadership included).
    if master.is_leader() {
        return next.run(request).await;
    }
    // The term this request arrived in: a leader this master learned of in a later term is
    // news the masters the request passed through could not have had.
    let arrived_in = master.term();
    let me = master.config().advertised().to_string();
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
    let deadline = tokio::time::Instant::now() + master.config().leader_wait;
    let mut request = Some(request);
    let mut buffered: Option<(Parts, Bytes)> = None;
    loop {
        // A master the request already passed through did not think it leads: unless this
        // master learned of its leadership in a later term than the request came in (a
        // handover to it, an election it won since), our news of it is stale, so wait for
        // the election instead of sending the request back.
        let leader = master
            .leader()
            .filter(|(_, addr)| !hops.contains(&addr.as_str()) || master.term() > arrived_in);
        match leader {
            Some((id, _)) if id == master.config().id => {
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
                    // The leader accepts no more than this, and would answer a larger body
                    // before reading it, breaking the forwarded connection.
                    let limit = crate::api::body_limit(parts.uri.path());
                    let announced = parts
                        .headers
                        .get(axum::http::header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                    // Refused before reading, as the leader would: a client still sending
                    // gets the answer rather than a broken pipe.
                    if announced.is_some_and(|n| n > limit as u64) {
                        return crate::api::body_too_large(limit).into_response();
                    }
                    match axum::body::to_bytes(body, limit).await {
                        Ok(bytes) => buffered = Some((parts, bytes)),
                        Err(e) if is_length_limit(&e) => {
                            return crate::api::body_too_large(limit).into_response();
                        }
                        Err(e) => {
                            return ApiError::new(
                                StatusCode::BAD_REQUEST,
                                format!("Cannot read the request body: {e}; nothing was done."),
                            )
                            .into_response();
                        }
                    }
                }
                let Some((parts, body)) = &buffered else {
                    return ApiError::unavailable("request lost").into_response();
                };
                let forwarded = forward(master, parts, body.clone(), &addr, &via, &me, deadline);
                match forwarded.await {
                    Forwarded::Answer(response) => return response,
                    Forwarded::Unreachable(e) if tokio::time::Instant::now() >= deadline => {
                        return ApiError::unavailable(format!(
                            "The leader at {addr} cannot be reached ({e}) and no other leader was elected within {} s. Retry in a moment.",
                            master.config().leader_wait.as_secs_f32()
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

/// True when reading a body failed because it is over the limit.
pub(crate) fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// What forwarding gave.
enum Forwarded {
    /// The leader's answer (or an error answer that must not be retried).
    Answer(Response),
    /// The leader could not be reached (nothing was sent), or a read failed on the way: safe
    /// to retry.
    Unreachable(String),
}

/// Sends the request to the leader and relays its answer (its refusals, 4xx, included).
///
/// A leader that has not answered by `deadline` (the end of `--leader-wait-ms`) is asked
/// for `/ping`: one that answers is working on the request (e.g. waiting for a quorum) and is
/// given up to the write timeout; one that does not (paused, cut off) is given up at once,
/// so the client hears within about `--leader-wait-ms`.
async fn forward(
    master: &RaftNode,
    parts: &Parts,
    body: Bytes,
    leader: &str,
    via: &str,
    me: &str,
    deadline: tokio::time::Instant,
) -> Forwarded {
    master.metrics().forwarded();
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
        if !hop_by_hop(name) && name.as_str() != VIA_HEADER && name.as_str() != CLUSTER_ID_HEADER {
            out = out.header(name, value);
        }
    }
    // The leader refuses it if it belongs to another cluster (see `other_cluster`).
    if let Some(cluster_id) = master
        .state()
        .read(|a| a.state.cluster_id().map(str::to_string))
    {
        out = out.header(CLUSTER_ID_HEADER, cluster_id);
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
    // is paused or cut off must not hold the client for that long.
    let started = tokio::time::Instant::now();
    let patience = master.config().write_timeout + master.config().leader_wait;
    let send = master.peers().send(out);
    tokio::pin!(send);
    let sent = match tokio::time::timeout_at(deadline.max(started), &mut send).await {
        Ok(sent) => sent,
        Err(_) if leader_alive(master, leader).await => {
            match tokio::time::timeout_at(started + patience, &mut send).await {
                Ok(sent) => sent,
                Err(_) => {
                    return Forwarded::Answer(
                        ApiError::unavailable(format!(
                            "The leader at {leader} did not answer within {} s; the request may or may not have been applied. Read it back, then retry.",
                            patience.as_secs()
                        ))
                        .into_response(),
                    );
                }
            }
        }
        Err(_) => {
            return Forwarded::Answer(
                ApiError::unavailable(format!(
                    "The leader at {leader} stopped answering (not even /ping) and no other leader was elected within {} s; the request may or may not have been applied. Read it back, then retry.",
                    master.config().leader_wait.as_secs_f32()
                ))
                .into_response(),
            );
        }
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
        // A read changes nothing, so it is sent again whatever broke: most often a pooled
        // connection to a leader that restarted since (the simulation's seed 89).
        Err(e) if parts.method.is_safe() => Forwarded::Unreachable(e.to_string()),
        Err(e) => Forwarded::Answer(
            ApiError::unavailable(format!(
                "The leader at {leader} did not answer the forwarded request ({e}); it may or may not have been applied. Read it back, then retry."
            ))
            .into_response(),
        ),
    }
}

/// True when the leader answers `/ping` quickly: it is alive, only slow with the request.
async fn leader_alive(master: &RaftNode, leader: &str) -> bool {
    let wait =
        (master.config().leader_wait / 2).clamp(Duration::from_millis(100), Duration::from_secs(1));
    master
        .peers()
        .call(crate::peer::Method::GET, leader, "/ping", None, wait)
        .await
        .is_ok_and(|(status, _)| status.is_success())
}
