//! The agent's own small HTTP API (`--listen`): `GET /health` and `GET /state`, for people
//! and probes. Masters never call it.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use domain::Agent;
use serde_json::{Value, json};

use crate::supervisor::Supervisor;

/// What the status API shows.
#[derive(Debug)]
pub struct AgentView {
    agent: Agent,
    supervisor: Supervisor,
    registered_with: Mutex<Option<String>>,
}

impl AgentView {
    /// A view of `agent` and its tasks.
    pub fn new(agent: Agent, supervisor: Supervisor) -> Self {
        AgentView {
            agent,
            supervisor,
            registered_with: Mutex::new(None),
        }
    }

    /// Records the master the agent registered with (`None`: not registered now).
    pub fn set_registered(&self, master: Option<String>) {
        *self
            .registered_with
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = master;
    }

    fn registered_with(&self) -> Option<String> {
        self.registered_with
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The routes.
pub fn router(view: Arc<AgentView>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/state", get(state))
        .with_state(view)
}

/// Serves the status API on `listener` until aborted.
pub async fn serve(listener: tokio::net::TcpListener, view: Arc<AgentView>) {
    if let Err(e) = axum::serve(listener, router(view)).await {
        tracing::error!("the agent's status API stopped: {e}");
    }
}

async fn health(State(view): State<Arc<AgentView>>) -> Json<Value> {
    let master = view.registered_with();
    Json(json!({
        "status": "ok",
        "agent_id": view.agent.id,
        "registered": master.is_some(),
        "master": master,
    }))
}

async fn state(State(view): State<Arc<AgentView>>) -> Json<Value> {
    let tasks: Vec<Value> = view
        .supervisor
        .tasks()
        .into_iter()
        .map(|(id, active)| json!({"instance_id": id, "active": active}))
        .collect();
    Json(json!({
        "agent": view.agent,
        "registered_with": view.registered_with(),
        "tasks": tasks,
    }))
}
