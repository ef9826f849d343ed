//! The task table: which tasks this agent runs, reconciled against the master's desired set,
//! and recovered from checkpoints after a restart.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex};

use state::protocol::{TaskAssignment, TaskGoal, TaskStatus};
use state::{Condition, InstanceId};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::checkpoint::{Checkpoint, Checkpoints};
use crate::clock::now_ms;
use crate::executor::{Executors, RunningTask};
use crate::outbox::Outbox;
use crate::runner;
use crate::work_dir::WorkDir;

/// What every task runner shares.
#[derive(Debug)]
pub struct TaskContext {
    /// The agent's advertised hostname.
    pub hostname: String,
    /// The agent's advertised IP: tasks' `HOST`, where Marathon-level health checks reach them.
    pub ip: String,
    /// The work dir (sandboxes).
    pub work_dir: Arc<WorkDir>,
    /// Task checkpoints.
    pub checkpoints: Checkpoints,
    /// Whether each task gets a sandbox directory under the work dir: false only for
    /// hollow agents, whose fake tasks never use one.
    pub make_sandboxes: bool,
    /// Where status updates go.
    pub outbox: Arc<Outbox>,
    /// What runs tasks (processes and Docker containers, or a fake).
    pub executors: Executors,
}

impl TaskContext {
    /// Tasks' `$HOST`, where Marathon-level health checks reach them too
    /// ([`crate::health::task_host`]).
    pub fn task_host(&self) -> &str {
        crate::health::task_host(&self.hostname, &self.ip)
    }
}

#[derive(Debug)]
enum Entry {
    /// Starting, running or being stopped; `true` in the channel asks it to stop.
    Active(watch::Sender<bool>),
    /// Over; kept while the master still lists it, so it is never started twice.
    Ended,
}

/// The tasks of this agent.
#[derive(Debug, Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) ctx: TaskContext,
    /// Every task tracked, ordered so that stops go out in the same order every time.
    table: Mutex<BTreeMap<InstanceId, Entry>>,
    /// The runner of every active task.
    runners: Mutex<JoinSet<()>>,
    /// Woken when a task ends (its sandbox may go).
    task_ended: tokio::sync::Notify,
}

impl Inner {
    fn table(&self) -> std::sync::MutexGuard<'_, BTreeMap<InstanceId, Entry>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by a runner when its task is over (its terminal status is queued).
    pub(crate) fn ended(&self, id: &InstanceId) {
        self.table().insert(id.clone(), Entry::Ended);
        self.task_ended.notify_one();
    }
}

/// What recovery found in the checkpoints.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Tasks still running, now watched again.
    pub running: Vec<InstanceId>,
    /// Tasks that ended while the agent was down (reported failed or killed).
    pub lost: Vec<InstanceId>,
    /// Checkpoint files that could not be read, with the reason.
    pub unreadable: Vec<String>,
}

impl Supervisor {
    /// A supervisor with no tasks yet.
    pub fn new(ctx: TaskContext) -> Self {
        Supervisor {
            inner: Arc::new(Inner {
                ctx,
                table: Mutex::new(BTreeMap::new()),
                runners: Mutex::new(JoinSet::new()),
                task_ended: tokio::sync::Notify::new(),
            }),
        }
    }

    /// Completes once a task has ended since the last call returned.
    pub async fn task_ended(&self) {
        self.inner.task_ended.notified().await;
    }

    /// The shared context.
    pub fn context(&self) -> &TaskContext {
        &self.inner.ctx
    }

    /// Finds the tasks of an earlier agent process again from their checkpoints: running
    /// ones are watched (not started again), vanished ones are reported. Must run inside a
    /// tokio runtime, before the first [`Supervisor::reconcile`].
    pub async fn recover(&self) -> io::Result<Recovered> {
        let mut found = Recovered::default();
        for cp in self.inner.ctx.checkpoints.load_all()? {
            let cp = match cp {
                Ok(cp) => cp,
                Err(reason) => {
                    tracing::warn!("ignoring an unreadable task checkpoint: {reason}");
                    found.unreadable.push(reason);
                    continue;
                }
            };
            let id = cp.instance_id().clone();
            if let Some(status) = &cp.terminal {
                // Over before the restart; its end may not have reached a master yet.
                self.inner.ctx.outbox.push(status.clone());
                self.inner.table().insert(id, Entry::Ended);
                continue;
            }
            match self.adopt(&cp).await {
                Some(workload) => {
                    tracing::info!("found task {id} again after the restart");
                    self.inner.ctx.outbox.seed(id.clone(), Condition::Running);
                    self.start_runner(id.clone(), cp.kill_requested, |inner, kill| {
                        runner::supervise(inner, cp, workload, kill)
                    });
                    found.running.push(id);
                }
                None => {
                    let (condition, message) = if cp.kill_requested {
                        (Condition::Killed, "killed while the agent was down")
                    } else if cp.process.is_none() && cp.container.is_none() {
                        (
                            Condition::Failed,
                            "the agent stopped while launching it; it may not have started",
                        )
                    } else {
                        (Condition::Failed, "exited while the agent was down")
                    };
                    tracing::warn!("task {id} {message}");
                    let status = TaskStatus {
                        instance_id: id.clone(),
                        condition,
                        message: Some(message.to_string()),
                        exit_code: None,
                        health: None,
                        readiness: None,
                        containers: Vec::new(),
                        at_ms: now_ms(),
                    };
                    let mut cp = cp;
                    cp.terminal = Some(status.clone());
                    if let Err(e) = self.inner.ctx.checkpoints.save(&cp) {
                        tracing::warn!("cannot checkpoint the end of task {id}: {e}");
                    }
                    self.inner.ctx.outbox.push(status);
                    self.inner.table().insert(id.clone(), Entry::Ended);
                    found.lost.push(id);
                }
            }
        }
        Ok(found)
    }

    async fn adopt(&self, cp: &Checkpoint) -> Option<Box<dyn RunningTask>> {
        self.inner
            .ctx
            .executors
            .for_app(&cp.assignment.app)
            .recover(cp)
            .await
    }

    fn start_runner<F, Fut>(&self, id: InstanceId, kill_now: bool, run: F)
    where
        F: FnOnce(Arc<Inner>, watch::Receiver<bool>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = watch::channel(kill_now);
        self.inner.table().insert(id, Entry::Active(tx));
        let mut runners = self.inner.runners.lock().unwrap_or_else(|p| p.into_inner());
        while runners.try_join_next().is_some() {}
        runners.spawn(run(self.inner.clone(), rx));
    }

    /// Stops watching every task without touching the tasks themselves, as the agent's
    /// exit does: a later supervisor over the same work dir finds them again. Returns once
    /// every runner is gone.
    pub async fn detach(&self) {
        let mut runners =
            std::mem::take(&mut *self.inner.runners.lock().unwrap_or_else(|p| p.into_inner()));
        runners.shutdown().await;
    }

    /// Stops every task (each with its kill grace period) and returns once each has ended
    /// and its end is checkpointed and queued: what an agent told to take its tasks with it
    /// ([`crate::TasksOnExit::Stop`]) does on its way out.
    pub async fn stop_all(&self) {
        for entry in self.inner.table().values() {
            if let Entry::Active(kill) = entry {
                kill.send_replace(true);
            }
        }
        let mut runners =
            std::mem::take(&mut *self.inner.runners.lock().unwrap_or_else(|p| p.into_inner()));
        while runners.join_next().await.is_some() {}
    }

    /// Makes the tasks match the master's whole desired set: starts tasks whose goal is
    /// running and that never ran here, stops tasks whose goal is killed and running tasks
    /// that are not listed, and forgets ended tasks the master no longer lists (once their
    /// end has been delivered).
    pub fn reconcile(&self, tasks: &[TaskAssignment]) {
        let ctx = &self.inner.ctx;
        let listed: HashSet<&InstanceId> = tasks.iter().map(|t| &t.instance_id).collect();
        let mut to_start = Vec::new();
        {
            let mut table = self.inner.table();
            for task in tasks {
                match (table.get(&task.instance_id), task.goal) {
                    (None, TaskGoal::Running) => to_start.push(task.clone()),
                    (None, TaskGoal::Killed) => {
                        ctx.outbox.push(TaskStatus {
                            instance_id: task.instance_id.clone(),
                            condition: Condition::Killed,
                            message: Some("killed before it started on this agent".into()),
                            exit_code: None,
                            health: None,
                            readiness: None,
                            containers: Vec::new(),
                            at_ms: now_ms(),
                        });
                        table.insert(task.instance_id.clone(), Entry::Ended);
                    }
                    (Some(Entry::Active(kill)), TaskGoal::Killed) => {
                        kill.send_replace(true);
                    }
                    (Some(_), _) => {}
                }
            }
            let mut forget = Vec::new();
            for (id, entry) in table.iter() {
                if listed.contains(id) {
                    continue;
                }
                match entry {
                    Entry::Active(kill) => {
                        if !*kill.borrow() {
                            tracing::info!("stopping task {id}: the master no longer lists it");
                        }
                        kill.send_replace(true);
                    }
                    Entry::Ended if !ctx.outbox.has_pending(id) => forget.push(id.clone()),
                    Entry::Ended => {}
                }
            }
            for id in forget {
                table.remove(&id);
                ctx.outbox.forget(&id);
                if let Err(e) = ctx.checkpoints.remove(&id) {
                    tracing::warn!("cannot remove the checkpoint of task {id}: {e}");
                }
            }
        }
        for task in to_start {
            if self.inner.table().contains_key(&task.instance_id) {
                continue; // listed twice
            }
            tracing::info!("starting task {} of {}", task.instance_id, task.app.id);
            self.start_runner(task.instance_id.clone(), false, |inner, kill| {
                runner::launch(inner, task, kill)
            });
        }
    }

    /// Instances that have not ended (announced in registrations).
    pub fn running(&self) -> Vec<InstanceId> {
        let mut ids: Vec<InstanceId> = self
            .inner
            .table()
            .iter()
            .filter(|(_, e)| matches!(e, Entry::Active(_)))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Every instance the agent tracks, with true for the ones still active.
    pub fn tasks(&self) -> Vec<(InstanceId, bool)> {
        let mut ids: Vec<(InstanceId, bool)> = self
            .inner
            .table()
            .iter()
            .map(|(id, e)| (id.clone(), matches!(e, Entry::Active(_))))
            .collect();
        ids.sort();
        ids
    }
}

#[cfg(test)]
mod tests;
