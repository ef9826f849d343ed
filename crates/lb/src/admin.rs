//! The admin API of a balancer: `GET /metrics` (Prometheus text, per backend), `GET /routes`
//! (what it serves, and the last instances the masters' events took out, as JSON) and
//! `GET /health`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};

use crate::balancer::Balancer;
use crate::follow::Routes;

#[derive(Clone)]
struct Admin {
    balancer: Arc<Balancer>,
    routes: Routes,
}

/// The admin routes of `balancer` serving `routes`.
pub fn router(balancer: Arc<Balancer>, routes: Routes) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/routes", get(list_routes))
        .route("/health", get(|| async { "ok\n" }))
        .with_state(Admin { balancer, routes })
}

async fn metrics(State(a): State<Admin>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        a.balancer.render_metrics(),
    )
}

async fn list_routes(State(a): State<Admin>) -> axum::Json<Value> {
    let view = a.routes.current();
    let services: Vec<Value> = view
        .services
        .iter()
        .map(|s| {
            json!({
                "app": s.app_id,
                "port_index": s.port_index,
                "vips": s.vips.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "vip_hostnames": s.vips.iter().filter_map(|v| v.hostname()).collect::<Vec<_>>(),
                "edge": s.edge.as_ref().map(|e| json!({
                    "group": e.group, "mode": e.mode.to_string(),
                    "service_port": e.service_port, "vhosts": e.vhosts,
                })),
                "backends": s.backends.iter().map(|b| json!({
                    "instance": b.instance_id, "addr": b.addr.to_string(),
                    "region": b.region, "zone": b.zone, "ready": b.ready,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let removals: Vec<Value> = a
        .routes
        .removals()
        .iter()
        .map(|r| {
            json!({
                "instance": r.instance_id, "cause": r.cause,
                "event_at": r.event_at, "removed_at_ms": r.removed_at_ms,
            })
        })
        .collect();
    axum::Json(json!({ "services": services, "removals": removals }))
}
