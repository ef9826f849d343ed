//! Helpers shared by the agent's integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::checkpoint::{Checkpoint, Checkpoints};
use agent::executor::{ContainerRuntime, Executors};
use agent::outbox::Outbox;
use agent::supervisor::{Supervisor, TaskContext};
use agent::work_dir::WorkDir;
use domain::AppDefinition;
use state::InstanceId;
use state::protocol::{TaskAssignment, TaskGoal, TaskStatus};

/// Generous: these deadlines only stop a broken test from hanging.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `check` until it gives a value, or panics after [`DEADLINE`] naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An assignment of app `app` (Marathon JSON) as instance `id`.
pub fn assignment(id: &str, app: serde_json::Value, ports: Vec<u64>) -> TaskAssignment {
    TaskAssignment {
        instance_id: id.into(),
        app: AppDefinition::from_json(&app).expect("a valid app"),
        app_version: "2026-01-01T00:00:00.000Z".into(),
        ports,
        goal: TaskGoal::Running,
        term: 1,
    }
}

/// A supervisor over `dir`, as the agent builds one, without Docker.
pub fn supervisor(dir: &Path, outbox: Arc<Outbox>) -> Supervisor {
    supervisor_with(
        dir,
        outbox,
        ContainerRuntime::unavailable("no engine in this test"),
    )
}

/// A supervisor over `dir` with the given container runtime.
pub fn supervisor_with(
    dir: &Path,
    outbox: Arc<Outbox>,
    containers: ContainerRuntime,
) -> Supervisor {
    let work_dir = Arc::new(WorkDir::open(dir).expect("work dir"));
    Supervisor::new(TaskContext {
        hostname: "test-host".into(),
        ip: "127.0.0.1".into(),
        checkpoints: Checkpoints::new(work_dir.tasks_dir()),
        make_sandboxes: true,
        work_dir,
        outbox,
        executors: Executors::host(containers),
    })
}

/// Every update queued so far (the outbox is never acknowledged in these tests).
pub fn updates(outbox: &Outbox) -> Vec<TaskStatus> {
    outbox.peek(usize::MAX)
}

/// Waits for an update about `id` that satisfies `pred`.
pub async fn status_where(
    outbox: &Outbox,
    id: &str,
    pred: impl Fn(&TaskStatus) -> bool,
) -> TaskStatus {
    let id = InstanceId::from(id);
    eventually(&format!("a status of {id}"), || {
        let found = updates(outbox)
            .into_iter()
            .find(|u| u.instance_id == id && pred(u));
        async move { found }
    })
    .await
}

/// The checkpoint of `id` in `dir`.
pub fn checkpoint(dir: &Path, id: &str) -> Checkpoint {
    let text = std::fs::read(dir.join("tasks").join(format!("{id}.json"))).expect("checkpoint");
    serde_json::from_slice(&text).expect("checkpoint JSON")
}
