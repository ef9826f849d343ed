//! The HTTP API: Marathon v2 (at `/v2` and `/service/marathon/v2`), health, metrics, and the
//! internal endpoints masters use among themselves.

mod agents;
mod apps;
mod deployments;
mod health;
mod mesos;
mod nodes;
mod plan;
mod system;
mod tasks;
mod ui;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};

use crate::forward;
use crate::node::Master;

/// The whole API of a master.
pub fn router(master: Arc<Master>) -> Router {
    let v2 = Router::new()
        .route("/apps", get(apps::list).post(apps::create))
        .route(
            "/apps/{*path}",
            get(apps::get)
                .put(apps::put)
                .patch(apps::patch)
                .post(apps::post)
                .delete(apps::delete),
        )
        .route("/leader", get(system::leader).delete(system::abdicate))
        .route("/info", get(system::info))
        .route("/queue", get(nodes::queue))
        .route("/tasks", get(tasks::list))
        .route("/tasks/delete", post(tasks::delete))
        .route("/deployments", get(deployments::list))
        .route(
            "/deployments/{id}",
            axum::routing::delete(deployments::delete),
        )
        .route("/events", get(crate::events::stream));
    Router::new()
        .nest("/v2", v2.clone())
        .nest("/service/marathon/v2", v2)
        .route("/ping", get(system::ping))
        .route("/service/marathon/ping", get(system::ping))
        .route("/", get(ui::index))
        .route("/ui/{file}", get(ui::asset))
        .route("/health", get(system::health))
        .route("/metrics", get(system::metrics))
        // Raft has its own, larger limit: senders split appends and chunk snapshots below it.
        .route(
            "/internal/raft/{rpc}",
            post(system::raft_rpc).layer(DefaultBodyLimit::max(state::network::MAX_RPC_BODY_BYTES)),
        )
        .route("/internal/masters", post(system::register_master))
        .route("/internal/agents/register", post(agents::register))
        .route("/internal/agents/{id}/heartbeat", post(agents::heartbeat))
        .route(
            "/internal/agents/{id}/assignments",
            get(agents::assignments),
        )
        .route("/internal/agents/{id}/status", post(agents::status))
        .route("/v1/nodes", get(nodes::list))
        .route("/v1/cluster/health", get(health::health))
        .route("/v1/plan", post(plan::plan))
        .route("/mesos/master/state", get(mesos::state))
        .route("/mesos/master/state.json", get(mesos::state))
        .route("/mesos/master/state-summary", get(mesos::state_summary))
        .route("/mesos/master/slaves", get(mesos::slaves))
        .route("/mesos_dns/v1/hosts/master.mesos", get(mesos::dns_masters))
        .route("/mesos_dns/v1/hosts/leader.mesos", get(mesos::dns_leader))
        .layer(middleware::from_fn_with_state(
            master.clone(),
            forward::to_leader,
        ))
        .with_state(master)
}

/// A boolean query parameter (`?force=true`), or `default` when it is absent.
fn query_flag(query: &Option<String>, name: &str, default: bool) -> bool {
    let mut pairs = query.as_deref().unwrap_or("").split('&');
    match pairs.find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')) {
        Some("true") => true,
        Some("false") => false,
        _ => default,
    }
}
