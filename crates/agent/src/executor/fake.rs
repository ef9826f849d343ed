//! A fake executor: tasks that are only entries in a table. They start, run, fail and end
//! when the test (or a simulated agent) says so, with no process, no thread and no tokio
//! task of their own, so thousands of them cost only memory.
//!
//! A [`FakeExecutor`] is a cheap handle (clones share one table): give one clone to the
//! agent ([`crate::executor::Executors::only`]) and keep another to command its tasks.
//! Tasks outlive the supervisor that started them, as real ones outlive the agent: a new
//! supervisor over the same work dir and the same executor finds them again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use state::InstanceId;
use tokio::sync::watch;

use super::{
    BoxFuture, Executor, Exit, Launch, Record, Recovering, RunningTask, StartError, Starting,
    StopSignal,
};
use crate::checkpoint::Checkpoint;

/// The signal number a SIGTERM ends a fake task with.
const SIGTERM: i32 = 15;
/// The signal number a SIGKILL ends a fake task with.
const SIGKILL: i32 = 9;

/// Tasks without processes, commanded through this handle.
#[derive(Debug, Clone)]
pub struct FakeExecutor {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    table: Mutex<Table>,
    /// Bumped on every change of the table, for [`FakeExecutor::wait_until`].
    version: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Table {
    /// Tasks started and not ended, with the channel their end is sent on.
    live: HashMap<InstanceId, watch::Sender<Option<Exit>>>,
    /// Instances whose next start fails, with the message.
    start_failures: HashMap<InstanceId, String>,
    /// Instances that do not end on SIGTERM (only SIGKILL ends them).
    ignore_term: HashSet<InstanceId>,
    /// How many times each instance was started.
    starts: HashMap<InstanceId, u32>,
    /// The stop signals each instance received, in order.
    signals: HashMap<InstanceId, Vec<StopSignal>>,
}

impl Default for FakeExecutor {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeExecutor {
    /// An executor with no tasks; every task it starts runs until told otherwise.
    pub fn new() -> Self {
        FakeExecutor {
            shared: Arc::new(Shared {
                table: Mutex::new(Table::default()),
                version: watch::Sender::new(0),
            }),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.shared.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `change` on the table and wakes every [`FakeExecutor::wait_until`].
    fn change<T>(&self, change: impl FnOnce(&mut Table) -> T) -> T {
        let out = change(&mut self.table());
        self.shared.version.send_modify(|v| *v += 1);
        out
    }

    /// Makes the next start of `id` fail with `message` (the task crashes at start: the
    /// agent reports it `error`).
    pub fn fail_start(&self, id: impl Into<InstanceId>, message: impl Into<String>) {
        let (id, message) = (id.into(), message.into());
        self.change(|t| t.start_failures.insert(id, message));
    }

    /// Makes `id` ignore SIGTERM, so only SIGKILL (after the kill grace period) ends it.
    pub fn ignore_term(&self, id: impl Into<InstanceId>) {
        let id = id.into();
        self.change(|t| t.ignore_term.insert(id));
    }

    /// Ends running task `id` as `exit`; false when no such task runs.
    pub fn end(&self, id: &InstanceId, exit: Exit) -> bool {
        self.change(|t| end(t, id, exit))
    }

    /// Makes running task `id` exit with `code` (0: finished, otherwise failed); false when
    /// no such task runs.
    pub fn exit(&self, id: &InstanceId, code: i32) -> bool {
        self.end(id, Exit::Code(code))
    }

    /// Makes running task `id` die of signal `signal` (a crash); false when no such task runs.
    pub fn crash(&self, id: &InstanceId, signal: i32) -> bool {
        self.end(id, Exit::Signal(signal))
    }

    /// The tasks started and not ended, sorted.
    pub fn running(&self) -> Vec<InstanceId> {
        let mut ids: Vec<InstanceId> = self.table().live.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// True while task `id` runs.
    pub fn is_running(&self, id: &InstanceId) -> bool {
        self.table().live.contains_key(id)
    }

    /// How many times `id` was started (failed starts included).
    pub fn starts(&self, id: &InstanceId) -> u32 {
        self.table().starts.get(id).copied().unwrap_or(0)
    }

    /// The stop signals `id` received, in order.
    pub fn signals(&self, id: &InstanceId) -> Vec<StopSignal> {
        self.table().signals.get(id).cloned().unwrap_or_default()
    }

    /// Waits until `check` holds for this executor (checked now and after every change).
    pub async fn wait_until(&self, mut check: impl FnMut(&FakeExecutor) -> bool) {
        let mut version = self.shared.version.subscribe();
        while !check(self) {
            // The sender lives in `self`: `changed` cannot fail while we hold it.
            let _ = version.changed().await;
        }
    }
}

/// Ends a live task: it leaves the table and its waiters learn how it ended.
fn end(table: &mut Table, id: &InstanceId, exit: Exit) -> bool {
    match table.live.remove(id) {
        Some(sender) => {
            sender.send_replace(Some(exit));
            true
        }
        None => false,
    }
}

impl Executor for FakeExecutor {
    fn start<'a>(&'a self, launch: Launch<'a>, _record: Record<'a>) -> Starting<'a> {
        let id = launch.assignment.instance_id.clone();
        let started = self.change(|t| {
            *t.starts.entry(id.clone()).or_default() += 1;
            if let Some(message) = t.start_failures.remove(&id) {
                return Err(StartError::Failed(message));
            }
            let (sender, exit) = watch::channel(None);
            // A start of a task that runs already replaces it (the old one ends unknown).
            if let Some(old) = t.live.insert(id.clone(), sender) {
                old.send_replace(Some(Exit::Unknown("replaced by a new start".into())));
            }
            Ok(Box::new(self.task(id.clone(), exit)) as Box<dyn RunningTask>)
        });
        Box::pin(std::future::ready(started))
    }

    fn recover<'a>(&'a self, checkpoint: &'a Checkpoint) -> Recovering<'a> {
        let id = checkpoint.instance_id();
        let found = self.table().live.get(id).map(|sender| {
            Box::new(self.task(id.clone(), sender.subscribe())) as Box<dyn RunningTask>
        });
        Box::pin(std::future::ready(found))
    }
}

impl FakeExecutor {
    fn task(&self, id: InstanceId, exit: watch::Receiver<Option<Exit>>) -> FakeTask {
        FakeTask {
            id,
            exit,
            executor: self.clone(),
        }
    }
}

/// A running fake task.
#[derive(Debug)]
pub struct FakeTask {
    id: InstanceId,
    exit: watch::Receiver<Option<Exit>>,
    executor: FakeExecutor,
}

impl RunningTask for FakeTask {
    fn wait(&mut self) -> BoxFuture<'_, Exit> {
        Box::pin(async move {
            match self.exit.wait_for(Option::is_some).await {
                Ok(exit) => exit
                    .clone()
                    .unwrap_or_else(|| Exit::Unknown("ended".into())),
                Err(_) => Exit::Unknown("its fake executor is gone".into()),
            }
        })
    }

    fn signal(&self, signal: StopSignal) -> BoxFuture<'_, ()> {
        let id = &self.id;
        self.executor.change(|t| {
            t.signals.entry(id.clone()).or_default().push(signal);
            // A signal reaches only this start of the task, never a later one.
            let this_start = t
                .live
                .get(id)
                .is_some_and(|sender| sender.subscribe().same_channel(&self.exit));
            let exit = match signal {
                StopSignal::Term if t.ignore_term.contains(id) => None,
                StopSignal::Term => Some(Exit::Signal(SIGTERM)),
                StopSignal::Kill => Some(Exit::Signal(SIGKILL)),
            };
            if let (true, Some(exit)) = (this_start, exit) {
                end(t, id, exit);
            }
        });
        Box::pin(std::future::ready(()))
    }

    fn clean_up(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}
