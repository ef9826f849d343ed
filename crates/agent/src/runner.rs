//! One task's life on the agent: sandbox, checkpoint, start, health checks, stop, and the
//! status updates along the way.

use std::sync::Arc;
use std::time::Duration;

use state::protocol::{HealthReport, ReadinessReport, TaskAssignment, TaskStatus};
use state::{Condition, InstanceId};
use tokio::sync::watch;

use crate::checkpoint::Checkpoint;
use crate::clock::now_ms;
use crate::env::task_env;
use crate::executor::{Exit, Launch, Locator, RunningTask, StartError};
use crate::health::{self, Target};
use crate::readiness;
use crate::supervisor::Inner;

/// Marathon's default `taskKillGracePeriodSeconds` is unset; drover waits this long.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(3);

fn status(id: &InstanceId, condition: Condition, message: Option<String>) -> TaskStatus {
    TaskStatus {
        instance_id: id.clone(),
        condition,
        message,
        exit_code: None,
        health: None,
        readiness: None,
        containers: Vec::new(),
        at_ms: now_ms(),
    }
}

/// The terminal status for how a task ended.
pub fn terminal_status(id: &InstanceId, exit: &Exit, kill_requested: bool) -> TaskStatus {
    let (condition, message) = exit.outcome(kill_requested);
    TaskStatus {
        exit_code: exit.code(),
        ..status(id, condition, Some(message))
    }
}

/// Starts a new task and supervises it to its end.
pub(crate) async fn launch(
    inner: Arc<Inner>,
    assignment: TaskAssignment,
    kill: watch::Receiver<bool>,
) {
    let ctx = &inner.ctx;
    let id = assignment.instance_id.clone();
    ctx.outbox.push(status(&id, Condition::Staging, None));
    let fail = |condition: Condition, message: String| {
        tracing::warn!("task {id} could not start: {message}");
        ctx.outbox.push(status(&id, condition, Some(message)));
        inner.ended(&id);
    };
    let sandbox = match ctx.work_dir.sandbox(&id) {
        Ok(s) => s,
        Err(e) => return fail(Condition::Error, e.to_string()),
    };
    if ctx.make_sandboxes
        && let Err(e) = std::fs::create_dir_all(&sandbox)
    {
        return fail(
            Condition::Failed,
            format!("cannot create the sandbox {}: {e}", sandbox.display()),
        );
    }
    let executor = ctx.executors.for_app(&assignment.app);
    let mut cp = Checkpoint {
        assignment,
        sandbox,
        started_at_ms: now_ms(),
        process: None,
        container: None,
        pod_processes: Vec::new(),
        kill_requested: false,
        terminal: None,
    };
    // Checkpoint before starting, so a crash in between is noticed after a restart; a task
    // whose checkpoint cannot be written is never started.
    if let Err(e) = ctx.checkpoints.save(&cp) {
        return fail(Condition::Failed, not_checkpointed(ctx, &e));
    }
    if *kill.borrow() {
        return finish(
            &inner,
            cp,
            status(
                &id,
                Condition::Killed,
                Some("killed before it started".into()),
            ),
        );
    }
    let env = task_env(&cp.assignment, ctx.task_host(), &cp.sandbox);
    let mut recorded = None;
    let started = {
        let written = &cp;
        // The executor calls this before the task's command runs: the checkpoint then says
        // where a restarted agent finds the task.
        let mut record = |locator: Locator| {
            let mut next = written.clone();
            locate(&mut next, locator.clone());
            ctx.checkpoints
                .save(&next)
                .map_err(|e| not_checkpointed(ctx, &e))?;
            recorded = Some(locator);
            Ok(())
        };
        let launch = Launch {
            assignment: &cp.assignment,
            sandbox: &cp.sandbox,
            env: &env,
        };
        executor.start(launch, &mut record).await
    };
    if let Some(locator) = recorded {
        locate(&mut cp, locator);
    }
    let workload = match started {
        Ok(w) => w,
        Err(StartError::Unrecorded(message)) => {
            tracing::warn!("task {id} could not start: {message}");
            return finish(&inner, cp, status(&id, Condition::Failed, Some(message)));
        }
        Err(StartError::Failed(message)) => {
            tracing::warn!("task {id} could not start: {message}");
            let st = status(&id, Condition::Error, Some(message));
            return finish(&inner, cp, st);
        }
    };
    ctx.outbox.push(status(&id, Condition::Running, None));
    supervise(inner.clone(), cp, workload, kill).await;
}

/// Writes where a task is into its checkpoint.
fn locate(cp: &mut Checkpoint, locator: Locator) {
    match locator {
        Locator::Process(identity) => cp.process = Some(identity),
        Locator::Container(name) => cp.container = Some(name),
        Locator::Pod(identities) => cp.pod_processes = identities,
    }
}

/// Watches a running task (new, or found again after a restart) until it ends: runs its
/// health and readiness checks, stops it when asked, and reports how it ended.
pub(crate) async fn supervise(
    inner: Arc<Inner>,
    mut cp: Checkpoint,
    mut workload: Box<dyn RunningTask>,
    mut kill: watch::Receiver<bool>,
) {
    let ctx = &inner.ctx;
    let id = cp.instance_id().clone();
    // Only tasks with checks pay for their target (the environment is built for it).
    let target = || {
        let host = ctx.task_host();
        Target {
            host: host.to_string(),
            ports: cp.assignment.ports.clone(),
            env: task_env(&cp.assignment, host, &cp.sandbox),
            sandbox: cp.sandbox.clone(),
        }
    };
    let checks = cp.assignment.app.health_checks.clone();
    let health = (!checks.is_empty()).then(|| {
        let outbox = ctx.outbox.clone();
        let hid = id.clone();
        let sink: health::HealthSink = Arc::new(move |report: HealthReport| {
            tracing::info!(
                "task {hid} is {}",
                if report.healthy {
                    "healthy"
                } else {
                    "unhealthy"
                }
            );
            outbox.push(TaskStatus {
                health: Some(report),
                ..status(&hid, Condition::Running, None)
            });
        });
        AbortOnDrop(tokio::spawn(health::run_checks(
            checks,
            target(),
            cp.started_at_ms,
            sink,
        )))
    });
    let readiness = (!cp.assignment.app.readiness_checks.is_empty()).then(|| {
        let app = cp.assignment.app.clone();
        let target = target();
        let outbox = ctx.outbox.clone();
        let rid = id.clone();
        let sink: readiness::ReadinessSink = Arc::new(move |report: ReadinessReport| {
            tracing::info!(
                "task {rid} is {}",
                if report.ready {
                    "ready"
                } else {
                    "not ready yet"
                }
            );
            outbox.push(TaskStatus {
                readiness: Some(report),
                ..status(&rid, Condition::Running, None)
            });
        });
        AbortOnDrop(tokio::spawn(async move {
            readiness::run_checks(&app, target, sink).await;
        }))
    });
    let wants_kill = async {
        if kill.wait_for(|k| *k).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    // biased: an exit that is ready wins over a kill asked at the same moment (the same
    // every time, for the simulation).
    let exit = tokio::select! {
        biased;
        exit = workload.wait() => exit,
        () = wants_kill => {
            cp.kill_requested = true;
            if let Err(e) = ctx.checkpoints.save(&cp) {
                tracing::warn!("cannot checkpoint the kill of task {id}: {e}");
            }
            let grace = cp
                .assignment
                .app
                .task_kill_grace_period_seconds
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .unwrap_or(DEFAULT_KILL_GRACE);
            tracing::info!("stopping task {id} (grace period {}s)", grace.as_secs_f64());
            workload.stop(grace).await
        }
    };
    drop(health);
    drop(readiness);
    workload.clean_up().await;
    let st = TaskStatus {
        containers: workload.containers(),
        ..terminal_status(&id, &exit, cp.kill_requested)
    };
    tracing::info!(
        "task {id} is {:?}: {}",
        st.condition,
        st.message.as_deref().unwrap_or("")
    );
    finish(&inner, cp, st);
}

/// A spawned task that ends with its owner: health checks stop when their runner does,
/// even when the runner is aborted.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why a task was not started when its checkpoint could not be written.
fn not_checkpointed(ctx: &crate::supervisor::TaskContext, e: &std::io::Error) -> String {
    let dir = ctx
        .checkpoints
        .dir()
        .map_or("memory".to_string(), |d| d.display().to_string());
    format!(
        "not started: its checkpoint cannot be written to {dir}: {e}; a task runs only once a restarted agent could find it again (free space on the work dir's filesystem)"
    )
}

/// Records a task's end: checkpoint, status update, table.
fn finish(inner: &Inner, mut cp: Checkpoint, st: TaskStatus) {
    let id = cp.instance_id().clone();
    cp.terminal = Some(st.clone());
    if let Err(e) = inner.ctx.checkpoints.save(&cp) {
        tracing::warn!("cannot checkpoint the end of task {id}: {e}");
    }
    inner.ctx.outbox.push(st);
    inner.ended(&id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_map_to_conditions() {
        let id = InstanceId::from("a.instance-1");
        let cases = [
            (
                Exit::Code(0),
                false,
                Condition::Finished,
                "exited with code 0",
            ),
            (
                Exit::Code(2),
                false,
                Condition::Failed,
                "exited with code 2",
            ),
            (
                Exit::Signal(9),
                false,
                Condition::Failed,
                "was ended by signal SIGKILL (9)",
            ),
            (
                Exit::Signal(15),
                true,
                Condition::Killed,
                "killed on request; it was ended by signal SIGTERM (15)",
            ),
            (
                Exit::Code(143),
                true,
                Condition::Killed,
                "killed on request; it exited with code 143",
            ),
            (
                Exit::Unknown("gone".into()),
                true,
                Condition::Killed,
                "killed on request",
            ),
            (
                Exit::Unknown("gone".into()),
                false,
                Condition::Failed,
                "gone",
            ),
        ];
        for (exit, killed, condition, message) in cases {
            let st = terminal_status(&id, &exit, killed);
            assert_eq!(st.condition, condition, "{exit:?}");
            assert_eq!(st.message.as_deref(), Some(message), "{exit:?}");
        }
        assert_eq!(
            terminal_status(&id, &Exit::Code(2), false).exit_code,
            Some(2)
        );
        assert_eq!(
            terminal_status(&id, &Exit::Signal(9), false).exit_code,
            None
        );
    }
}
