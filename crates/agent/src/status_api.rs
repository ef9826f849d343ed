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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::checkpoint::Checkpoints;
    use crate::executor::{Executors, FakeExecutor};
    use crate::outbox::Outbox;
    use crate::supervisor::TaskContext;
    use crate::work_dir::WorkDir;

    async fn get(addr: std::net::SocketAddr, path: &str) -> Value {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let body = answer.split("\r\n\r\n").nth(1).unwrap();
        serde_json::from_str(body).unwrap()
    }

    #[tokio::test]
    async fn health_and_state_describe_the_agent() {
        let dir = tempfile::tempdir().unwrap();
        let work_dir = Arc::new(WorkDir::open(dir.path()).unwrap());
        let supervisor = Supervisor::new(TaskContext {
            hostname: "h".into(),
            ip: "127.0.0.1".into(),
            checkpoints: Checkpoints::new(work_dir.tasks_dir()),
            make_sandboxes: true,
            work_dir,
            outbox: Arc::new(Outbox::new()),
            executors: Executors::only(Arc::new(FakeExecutor::new())),
        });
        let agent: Agent = serde_json::from_value(json!({
            "id": "a-1", "hostname": "h", "ip": "127.0.0.1"
        }))
        .unwrap();
        let view = Arc::new(AgentView::new(agent, supervisor));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, view.clone()));

        let h = get(addr, "/health").await;
        assert_eq!(h["agent_id"], "a-1");
        assert_eq!(h["registered"], false);
        view.set_registered(Some("m1:8080".into()));
        let h = get(addr, "/health").await;
        assert_eq!(
            (h["registered"].clone(), h["master"].clone()),
            (json!(true), json!("m1:8080"))
        );
        let s = get(addr, "/state").await;
        assert_eq!(s["agent"]["hostname"], "h");
        assert_eq!(s["tasks"], json!([]));
        server.abort();
    }
}
