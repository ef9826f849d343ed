//! The supervisor and runner driven through a [`FakeExecutor`]: a task's whole life (start,
//! exit, crash, failure to start, kill with its grace period, recovery after a restart)
//! without a process. Time is tokio's paused clock, so a grace period passes at once.

use std::sync::Arc;
use std::time::Duration;

use domain::AppDefinition;
use serde_json::json;
use state::protocol::{TaskAssignment, TaskGoal, TaskStatus};
use state::{Condition, InstanceId};

use super::{Supervisor, TaskContext};
use crate::checkpoint::Checkpoints;
use crate::executor::{Executors, FakeExecutor, StopSignal};
use crate::outbox::Outbox;
use crate::work_dir::WorkDir;

/// Only turns a hang into a failure (virtual time: it costs nothing).
const DEADLINE: Duration = Duration::from_secs(600);

struct Agent {
    supervisor: Supervisor,
    outbox: Arc<Outbox>,
    fake: FakeExecutor,
    _dir: Arc<tempfile::TempDir>,
}

fn agent_over(dir: Arc<tempfile::TempDir>, fake: &FakeExecutor) -> Agent {
    let work_dir = Arc::new(WorkDir::open(dir.path()).expect("work dir"));
    let outbox = Arc::new(Outbox::new());
    let supervisor = Supervisor::new(TaskContext {
        hostname: "fake-host".into(),
        ip: "127.0.0.1".into(),
        checkpoints: Checkpoints::new(work_dir.tasks_dir()),
        make_sandboxes: true,
        work_dir,
        outbox: outbox.clone(),
        executors: Executors::only(Arc::new(fake.clone())),
    });
    Agent {
        supervisor,
        outbox,
        fake: fake.clone(),
        _dir: dir,
    }
}

fn agent() -> Agent {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    agent_over(dir, &FakeExecutor::new())
}

fn task(id: &str, goal: TaskGoal, app: serde_json::Value) -> TaskAssignment {
    TaskAssignment {
        instance_id: id.into(),
        app: AppDefinition::from_json(&app).expect("a valid app"),
        app_version: "2026-01-01T00:00:00.000Z".into(),
        ports: vec![],
        goal,
        term: 1,
    }
}

fn web(id: &str, goal: TaskGoal) -> TaskAssignment {
    task(
        id,
        goal,
        json!({"id": "/web", "cmd": "never run", "cpus": 0.1, "mem": 16}),
    )
}

impl Agent {
    /// Waits for a queued update about `id` that satisfies `pred`.
    async fn status(&self, id: &str, pred: impl Fn(&TaskStatus) -> bool) -> TaskStatus {
        let id = InstanceId::from(id);
        let found = async {
            loop {
                let found = self
                    .outbox
                    .peek(usize::MAX)
                    .into_iter()
                    .find(|u| u.instance_id == id && pred(u));
                if let Some(u) = found {
                    return u;
                }
                self.outbox.changed().await;
            }
        };
        tokio::time::timeout(DEADLINE, found)
            .await
            .unwrap_or_else(|_| panic!("no matching status of {id}: {:?}", self.outbox.peek(99)))
    }

    async fn terminal(&self, id: &str) -> TaskStatus {
        self.status(id, |u| u.condition.is_terminal()).await
    }

    async fn running(&self, id: &str) {
        self.status(id, |u| u.condition == Condition::Running).await;
    }

    fn conditions(&self, id: &str) -> Vec<Condition> {
        let id = InstanceId::from(id);
        self.outbox
            .peek(usize::MAX)
            .into_iter()
            .filter(|u| u.instance_id == id)
            .map(|u| u.condition)
            .collect()
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_is_staged_then_running_and_its_exit_is_reported() {
    let a = agent();
    a.supervisor.reconcile(&[
        web("web.i-1", TaskGoal::Running),
        web("web.i-2", TaskGoal::Running),
    ]);
    a.running("web.i-1").await;
    a.running("web.i-2").await;
    assert_eq!(a.fake.running(), ["web.i-1".into(), "web.i-2".into()]);
    assert_eq!(a.supervisor.running(), a.fake.running());
    assert_eq!(
        a.conditions("web.i-1"),
        [Condition::Staging, Condition::Running]
    );

    assert!(a.fake.exit(&"web.i-1".into(), 0));
    assert!(a.fake.exit(&"web.i-2".into(), 3));
    let done = a.terminal("web.i-1").await;
    assert_eq!(
        (done.condition, done.exit_code, done.message.as_deref()),
        (Condition::Finished, Some(0), Some("exited with code 0"))
    );
    let failed = a.terminal("web.i-2").await;
    assert_eq!(
        (
            failed.condition,
            failed.exit_code,
            failed.message.as_deref()
        ),
        (Condition::Failed, Some(3), Some("exited with code 3"))
    );
    assert!(a.supervisor.running().is_empty());
    // Ended tasks stay ended: listing them again does not start them again.
    a.supervisor.reconcile(&[web("web.i-1", TaskGoal::Running)]);
    assert_eq!(a.fake.starts(&"web.i-1".into()), 1);
}

#[tokio::test(start_paused = true)]
async fn a_crash_is_reported_failed_with_its_signal() {
    let a = agent();
    a.supervisor.reconcile(&[web("web.i-1", TaskGoal::Running)]);
    a.running("web.i-1").await;
    assert!(a.fake.crash(&"web.i-1".into(), 11));
    let st = a.terminal("web.i-1").await;
    assert_eq!(st.condition, Condition::Failed);
    assert_eq!(
        st.message.as_deref(),
        Some("was ended by signal SIGSEGV (11)")
    );
    // The checkpoint keeps the end until the master has it.
    let cp = a
        .supervisor
        .context()
        .checkpoints
        .load(&"web.i-1".into())
        .expect("checkpoint");
    assert_eq!(cp.terminal.map(|t| t.condition), Some(Condition::Failed));
}

#[tokio::test(start_paused = true)]
async fn a_task_that_cannot_start_is_reported_error_and_never_runs() {
    let a = agent();
    a.fake.fail_start("web.i-1", "image not found");
    a.supervisor.reconcile(&[web("web.i-1", TaskGoal::Running)]);
    let st = a.terminal("web.i-1").await;
    assert_eq!(st.condition, Condition::Error);
    assert_eq!(st.message.as_deref(), Some("image not found"));
    assert_eq!(
        a.conditions("web.i-1"),
        [Condition::Staging, Condition::Error]
    );
    assert!(a.fake.running().is_empty());
    assert!(a.supervisor.running().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_kill_sends_term_and_kills_once_the_grace_period_has_passed() {
    let a = agent();
    let app = json!({"id": "/slow", "cmd": "x", "taskKillGracePeriodSeconds": 7});
    a.fake.ignore_term("slow.i-1");
    a.supervisor.reconcile(&[
        task("slow.i-1", TaskGoal::Running, app.clone()),
        web("web.i-2", TaskGoal::Running),
    ]);
    a.running("slow.i-1").await;
    a.running("web.i-2").await;

    let asked = tokio::time::Instant::now();
    a.supervisor.reconcile(&[
        task("slow.i-1", TaskGoal::Killed, app),
        web("web.i-2", TaskGoal::Killed),
    ]);
    let slow = a.terminal("slow.i-1").await;
    assert_eq!(slow.condition, Condition::Killed);
    assert_eq!(
        slow.message.as_deref(),
        Some("killed on request; it was ended by signal SIGKILL (9)")
    );
    assert_eq!(
        a.fake.signals(&"slow.i-1".into()),
        [StopSignal::Term, StopSignal::Kill]
    );
    // Virtual time: SIGKILL came exactly when the task's own grace period was over.
    assert!(
        asked.elapsed() >= Duration::from_secs(7),
        "{:?}",
        asked.elapsed()
    );

    // A task that honours SIGTERM gets nothing more.
    let web = a.terminal("web.i-2").await;
    assert_eq!(
        web.message.as_deref(),
        Some("killed on request; it was ended by signal SIGTERM (15)")
    );
    assert_eq!(a.fake.signals(&"web.i-2".into()), [StopSignal::Term]);
    assert!(a.fake.running().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_task_the_master_no_longer_lists_is_stopped() {
    let a = agent();
    a.supervisor.reconcile(&[web("web.i-1", TaskGoal::Running)]);
    a.running("web.i-1").await;
    a.supervisor.reconcile(&[]);
    let st = a.terminal("web.i-1").await;
    assert_eq!(st.condition, Condition::Killed);
    assert_eq!(a.fake.signals(&"web.i-1".into()), [StopSignal::Term]);
}

#[tokio::test(start_paused = true)]
async fn a_restarted_agent_finds_its_fake_tasks_again() {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let fake = FakeExecutor::new();
    let first = agent_over(dir.clone(), &fake);
    first.supervisor.reconcile(&[
        web("web.i-1", TaskGoal::Running),
        web("web.i-2", TaskGoal::Running),
    ]);
    first.running("web.i-1").await;
    first.running("web.i-2").await;
    first.supervisor.detach().await;
    drop(first); // the work dir's lock goes with it, as with an agent's exit
    // While no agent watches: one task ends, the other keeps running.
    assert!(fake.exit(&"web.i-2".into(), 0));

    let second = agent_over(dir, &fake);
    let found = second.supervisor.recover().await.expect("recover");
    assert_eq!(found.running, ["web.i-1".into()]);
    assert_eq!(found.lost, ["web.i-2".into()]);
    assert_eq!(
        fake.starts(&"web.i-1".into()),
        1,
        "found again, not started again"
    );
    // The task found again is watched: its exit reaches the new agent's outbox.
    assert!(fake.exit(&"web.i-1".into(), 4));
    let st = second.terminal("web.i-1").await;
    assert_eq!((st.condition, st.exit_code), (Condition::Failed, Some(4)));
}

/// A hollow agent's supervisor: checkpoints in memory, no sandboxes.
fn hollow_agent(dir: Arc<tempfile::TempDir>) -> Agent {
    let work_dir = Arc::new(WorkDir::open(dir.path()).expect("work dir"));
    let outbox = Arc::new(Outbox::new());
    let fake = FakeExecutor::new();
    let supervisor = Supervisor::new(TaskContext {
        hostname: "hollow-1".into(),
        ip: "127.0.0.1".into(),
        checkpoints: Checkpoints::in_memory(),
        make_sandboxes: false,
        work_dir,
        outbox: outbox.clone(),
        executors: Executors::only(Arc::new(fake.clone())),
    });
    Agent {
        supervisor,
        outbox,
        fake,
        _dir: dir,
    }
}

/// The names in a directory of the work dir.
fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("readable")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(start_paused = true)]
async fn a_hollow_agent_runs_kills_and_forgets_tasks_without_writing_a_file() {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let a = hollow_agent(dir.clone());
    a.supervisor.reconcile(&[
        web("web.i-1", TaskGoal::Running),
        web("web.i-2", TaskGoal::Running),
    ]);
    a.running("web.i-1").await;
    a.running("web.i-2").await;
    assert_eq!(entries(&dir.path().join("tasks")), Vec::<String>::new());
    assert_eq!(entries(&dir.path().join("sandboxes")), Vec::<String>::new());

    // Its tasks still end, are killed and are forgotten as a real agent's are.
    assert!(a.fake.exit(&"web.i-1".into(), 3));
    assert_eq!(a.terminal("web.i-1").await.condition, Condition::Failed);
    a.supervisor.reconcile(&[web("web.i-2", TaskGoal::Killed)]);
    assert_eq!(a.terminal("web.i-2").await.condition, Condition::Killed);
    let checkpoints = &a.supervisor.context().checkpoints;
    assert!(
        checkpoints
            .load(&"web.i-2".into())
            .is_ok_and(|cp| cp.terminal.is_some())
    );
    a.outbox.acknowledge(usize::MAX);
    a.supervisor.reconcile(&[]);
    assert!(checkpoints.load(&"web.i-2".into()).is_err());
    assert_eq!(a.supervisor.tasks(), []);
    assert_eq!(entries(&dir.path().join("tasks")), Vec::<String>::new());
}
