//! The HTTP API: Marathon v2 (at `/v2` and `/service/marathon/v2`), health, metrics, and the
//! internal endpoints masters use among themselves.

mod acl;
mod agents;
mod app_changes;
mod app_query;
mod app_tasks;
mod apps;
mod deployments;
mod groups;
mod health;
mod join;
mod label_selector;
pub mod masters;
mod mesos;
mod nodes;
pub mod operator;
mod plan;
mod pod_status;
mod pods;
mod queue;
mod subscriptions;
mod system;
mod tasks;
mod ui;
mod vips;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

use crate::error::ApiError;
use crate::forward;
use crate::parts::Parts;

/// The largest request body the API accepts (1 MiB); a larger one is answered 413.
pub const PUBLIC_BODY_LIMIT: usize = 1024 * 1024;

/// The largest body of a Raft RPC one master accepts from another: senders split appends
/// and chunk snapshots well below it (see `state::network`).
pub const RAFT_BODY_LIMIT: usize = state::network::MAX_RPC_BODY_BYTES;

/// The body limit of the endpoint at `path`.
pub fn body_limit(path: &str) -> usize {
    if path.starts_with("/internal/raft/") {
        RAFT_BODY_LIMIT
    } else if path == "/v1/operator/restore" {
        operator::RESTORE_BODY_LIMIT
    } else {
        PUBLIC_BODY_LIMIT
    }
}

/// The 413 answer to a body over `limit`.
pub fn body_too_large(limit: usize) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, too_large_message(limit))
}

fn too_large_message(limit: usize) -> String {
    format!(
        "Request body too large: the limit is {limit} bytes ({} KiB); nothing was done. Send a smaller body.",
        limit / 1024
    )
}

/// The whole API of a master; each handler takes the parts it uses.
pub fn router(master: Parts) -> Router {
    let v2 = Router::new()
        .route(
            "/apps",
            get(apps::list)
                .post(apps::create)
                .put(app_changes::put_many),
        )
        .route(
            "/apps/{*path}",
            get(apps::get)
                .put(apps::put)
                .patch(apps::patch)
                .post(apps::post)
                .delete(apps::delete),
        )
        .route("/pods", get(pods::list).post(pods::create))
        .route(
            "/pods/{*path}",
            get(pods::get).put(pods::put).delete(pods::delete),
        )
        .route("/leader", get(system::leader).delete(system::abdicate))
        .route("/info", get(system::info))
        .route("/queue", get(queue::list))
        .route(
            "/queue/{*path}",
            get(queue::get_delay).delete(queue::reset_delay),
        )
        .route("/tasks", get(tasks::list))
        .route("/tasks/delete", post(tasks::delete))
        .route(
            "/groups",
            get(groups::get_root)
                .post(groups::post_root)
                .put(groups::put_root)
                .patch(groups::patch_root)
                .delete(groups::delete_root),
        )
        .route(
            "/groups/{*path}",
            get(groups::get)
                .post(groups::post)
                .put(groups::put)
                .patch(groups::patch)
                .delete(groups::delete),
        )
        .route("/deployments", get(deployments::list))
        .route(
            "/deployments/{id}",
            axum::routing::delete(deployments::delete),
        )
        .route("/events", get(crate::events::stream))
        .route(
            "/eventSubscriptions",
            get(subscriptions::list)
                .post(subscriptions::subscribe)
                .delete(subscriptions::unsubscribe),
        );
    let public = Router::new()
        .nest("/v2", v2.clone())
        .nest("/service/marathon/v2", v2)
        .route("/ping", get(system::ping))
        .route("/service/marathon/ping", get(system::ping))
        .route("/", get(ui::index))
        .route("/ui/{file}", get(ui::asset))
        .route("/health", get(system::health))
        .route("/metrics", get(system::metrics))
        .route("/internal/masters", post(system::register_master))
        .route("/internal/masters/join", post(masters::join))
        .route("/internal/masters/removed", post(masters::removed))
        .route("/internal/agents/register", post(agents::register))
        .route("/internal/agents/{id}/heartbeat", post(agents::heartbeat))
        .route(
            "/internal/agents/{id}/assignments",
            get(agents::assignments),
        )
        .route("/internal/agents/{id}/status", post(agents::status))
        .route("/internal/agents/{id}/vips", get(vips::apps))
        .route(
            "/internal/agents/{id}/vip-events",
            get(crate::events::vip_stream),
        )
        .route("/internal/join/master", post(join::master))
        .route("/internal/join/agent", post(join::agent))
        .route("/internal/join-tokens", get(join::list).post(join::create))
        .route(
            "/internal/join-tokens/{id}",
            axum::routing::delete(join::revoke),
        )
        .route("/v1/info", get(system::drover_info))
        .route("/v1/acl/bootstrap", post(acl::bootstrap))
        .route("/v1/acl/tokens", get(acl::list).post(acl::create))
        .route(
            "/v1/acl/tokens/{accessor}",
            axum::routing::delete(acl::revoke),
        )
        .route("/v1/acl/token/self", get(acl::token_self))
        // Join tokens for operators with a management token (`drover token`).
        .route("/v1/join-tokens", get(join::list).post(join::create))
        .route("/v1/join-tokens/{id}", axum::routing::delete(join::revoke))
        .route("/v1/nodes", get(nodes::list))
        .route("/v1/nodes/{id}", axum::routing::delete(nodes::remove))
        .route("/v1/operator/masters", get(masters::list))
        .route(
            "/v1/operator/masters/{id}",
            axum::routing::delete(masters::remove),
        )
        .route("/v1/operator/snapshot", get(operator::snapshot))
        .route(
            "/v1/operator/restore",
            post(operator::restore).layer(DefaultBodyLimit::max(operator::RESTORE_BODY_LIMIT)),
        )
        .route("/v1/cluster/health", get(health::health))
        .route("/v1/plan", post(plan::plan))
        .route("/mesos/master/state", get(mesos::state))
        .route("/mesos/master/state.json", get(mesos::state))
        .route("/mesos/master/state-summary", get(mesos::state_summary))
        .route("/mesos/master/slaves", get(mesos::slaves))
        .route("/mesos_dns/v1/hosts/master.mesos", get(mesos::dns_masters))
        .route("/mesos_dns/v1/hosts/leader.mesos", get(mesos::dns_leader))
        .layer(DefaultBodyLimit::max(PUBLIC_BODY_LIMIT));
    let raft = Router::new()
        .route(crate::node::TRANSFER_PATH, post(system::take_over))
        .route("/internal/raft/{rpc}", post(system::raft_rpc))
        .layer(DefaultBodyLimit::max(RAFT_BODY_LIMIT));
    public
        .merge(raft)
        .fallback(system::no_route)
        // Inside forwarding: the master that answers (the leader, for all but local
        // questions) decides with its own state.
        .layer(middleware::from_fn_with_state(
            master.node().clone(),
            crate::auth::check,
        ))
        .layer(middleware::from_fn_with_state(
            master.node().clone(),
            forward::to_leader,
        ))
        // Outside forwarding: a follower checks the caller's certificate before it
        // forwards in its own name.
        .layer(middleware::from_fn_with_state(
            master.clone(),
            crate::tls::guard,
        ))
        .layer(middleware::from_fn(json_errors))
        .with_state(master)
}

/// Error answers that are not JSON yet (axum's own: 413, 405, a bad path or query) become
/// Marathon's `{"message": …}`, keeping the status and headers.
async fn json_errors(request: Request, next: Next) -> Response {
    // Kept for the message of an error (a clone shares the URI's bytes: every request passes
    // here, heartbeats included).
    let method = request.method().clone();
    let uri = request.uri().clone();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // axum's error bodies are one line; anything longer is cut, not buffered.
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => too_large_message(body_limit(uri.path())),
        // axum adds the Allow header outside this layer, so the message points at it.
        StatusCode::METHOD_NOT_ALLOWED => format!(
            "{method} is not allowed on {}; the Allow header lists the methods that are",
            uri.path()
        ),
        _ if text.is_empty() => format!(
            "{} ({method} {})",
            status.canonical_reason().unwrap_or("Error"),
            uri.path()
        ),
        _ => text,
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = serde_json::to_vec(&client::ErrorBody::new(message)).unwrap_or_default();
    Response::from_parts(parts, Body::from(body))
}

/// A boolean query parameter (`?force=true`), or `default` when it is absent.
fn query_flag(query: &Option<String>, name: &str, default: bool) -> bool {
    let mut pairs = query.as_deref().unwrap_or("").split('&');
    // Case as Java's Boolean.parseBoolean reads it: Python clients send `True`.
    match pairs.find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')) {
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        _ => default,
    }
}
