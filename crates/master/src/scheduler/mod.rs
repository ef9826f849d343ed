//! The scheduler (leader only): keeps every app at its desired instance count.
//!
//! The decision is a pure function, [`reconcile`], of a snapshot of the state and explicit
//! observations; this module is the thin driver around it. Each pass:
//!
//! 1. takes a copy of the state (in the node's exclusive turn, so that an API change made of several
//!    writes is never seen half done, and released at once: nothing is locked while
//!    deciding), and gathers the [`Observations`] (task health, the eviction memory);
//! 2. calls [`reconcile`];
//! 3. records the queue, commits the decision's one batch through a [`Commit`] seam (under
//!    exclusive turn again), and only once that succeeded records the eviction memory and
//!    publishes the decision's events. Parts of the batch that went stale between snapshot
//!    and commit are refused by the state machine, and the next pass decides again.
//!
//! Passes run when the applied index moves (`StateReader::subscribe`), when a task's health
//! verdict flips ([`crate::agents::AgentView::subscribe`]), at the decision's
//! `next_wake_ms` (a backoff or an `unreachableStrategy` deadline, the settle delay, the
//! eviction interval), and every few seconds as a safety net. A pass with nothing to do
//! writes nothing.
//!
//! The policies, one module each: [`rolling`], [`backoff`], [`unreachable`], [`eviction`]
//! (zone states), [`rebalance`], [`health`], with [`placement`] as glue to `domain::place`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::AppId;
use state::{ClusterState, Command, InstanceId, Response};

use crate::agents::AgentView;
use crate::config::MasterConfig;
use crate::events::EventBus;
use crate::leadership::{LeaderService, ServiceFuture};
use crate::node::RaftNode;

pub mod backoff;
pub mod eviction;
pub mod health;
pub mod ids;
pub mod placement;
pub mod rebalance;
pub mod reconcile;
pub mod rolling;
pub mod unreachable;

#[cfg(test)]
pub(crate) mod harness;
#[cfg(test)]
mod tests;

pub use eviction::{Assessment, EvictionMemory, ZoneState};
pub use ids::{CountedIds, IdSource, UuidIds};
pub use placement::live_agents;
pub use reconcile::{Announcement, Decision, Observations, Policy, Requires, reconcile};

/// Why an app's instances are not all placed, as the last pass saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// Instances wanted but not placed.
    pub unplaced: u32,
    /// Agents ruled out, per reason.
    pub reasons: BTreeMap<String, u32>,
    /// Launches of the app are delayed until then (ms since the epoch), after failures.
    pub delayed_until_ms: Option<u64>,
    /// Deciding about the app failed in the last pass: why (a bug; nothing was changed).
    pub error: Option<String>,
}

/// The apps waiting for placement (leader's memory).
#[derive(Debug, Default)]
pub struct Queue {
    entries: Mutex<BTreeMap<AppId, QueueEntry>>,
}

impl Queue {
    /// The current entries.
    pub fn entries(&self) -> BTreeMap<AppId, QueueEntry> {
        self.entries.lock().map(|e| e.clone()).unwrap_or_default()
    }

    fn replace(&self, entries: BTreeMap<AppId, QueueEntry>) {
        if let Ok(mut e) = self.entries.lock() {
            *e = entries;
        }
    }
}

/// The leader's eviction memory between passes (see [`eviction`]), and the zones as the
/// last committed pass assessed them (for `/v1/cluster/health`).
#[derive(Debug, Default)]
pub struct EvictionGuard {
    inner: Mutex<EvictionMemory>,
}

impl EvictionGuard {
    fn lock(&self) -> std::sync::MutexGuard<'_, EvictionMemory> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The memory as the next pass starts from it.
    pub fn memory(&self) -> EvictionMemory {
        self.lock().clone()
    }

    /// The zones as the last committed pass assessed them.
    pub fn current(&self) -> Assessment {
        self.lock().last.clone()
    }

    fn record(&self, memory: EvictionMemory) {
        *self.lock() = memory;
    }
}

/// At most this many instances are placed in one pass (the rest in the next ones), so a
/// pass's work and its log entries stay bounded whatever the apps ask for.
pub const MAX_LAUNCHES_PER_PASS: usize = 5000;

/// The queue's reason for instances left for the next pass by [`MAX_LAUNCHES_PER_PASS`].
pub const REASON_NEXT_PASS: &str =
    "waiting for the next scheduler pass (at most 5000 launches per pass)";

/// At most this many placements go in one log entry; a pass that places more commits the
/// rest in further entries of this size. An entry must reach a follower, be decoded and
/// synced within one heartbeat interval (openraft's append timeout), and up to
/// `MAX_ENTRIES_PER_APPEND` entries travel together: a thousand placements are about
/// 300 KB. A pass costs the leader tens of milliseconds over a large state (`cargo bench
/// -p drover-master --bench pass`), a commit a few: so a pass places many, in entries of few.
pub const PLACEMENTS_PER_ENTRY: usize = 1000;

/// Splits a pass's batch so that no entry places more than [`PLACEMENTS_PER_ENTRY`]: the
/// batch itself, keeping its parts in their order and the first placements, then batches
/// of the remaining placements alone. Placements are independent of one another and of
/// the batch's other parts once those applied (the state machine checks each on its own),
/// so a later entry refused or lost costs only its instances, which the next pass places
/// again.
pub fn split_placements(command: Command) -> (Command, Vec<Command>) {
    let Command::Batch { mut commands } = command else {
        return (command, Vec::new());
    };
    let mut rest = Vec::new();
    for c in &mut commands {
        if let Command::PlaceInstances { instances } = c
            && instances.len() > PLACEMENTS_PER_ENTRY
        {
            let mut tail = instances.split_off(PLACEMENTS_PER_ENTRY);
            while !tail.is_empty() {
                let next = tail.split_off(tail.len().min(PLACEMENTS_PER_ENTRY));
                rest.push(Command::Batch {
                    commands: vec![Command::PlaceInstances { instances: tail }],
                });
                tail = next;
            }
        }
    }
    (Command::Batch { commands }, rest)
}

/// At most this many instances are changed by each kind of intent in one pass (the rest in
/// the next ones), so that one pass's commit stays far below the log's entry size limit.
pub const MAX_CHANGES_PER_PASS: usize = 10_000;

/// Debug builds: the scheduler panics while deciding about the app this names (a test's
/// stand-in for a bug, to show that it stays contained to that app).
pub const FAILPOINT_PANIC_APP: &str = "DROVER_FAILPOINT_PANIC_APP";

/// A pass runs at least this often, whatever else wakes it (a safety net: every rule that
/// changes with time names its deadline in `next_wake_ms`).
pub const SAFETY_PASS: Duration = Duration::from_secs(30);

/// Passes are at least this far apart, so that a burst of commits costs one pass, not one
/// per commit.
const MIN_PASS_GAP: Duration = Duration::from_millis(50);

/// The pause after a pass that took `took`: at least [`MIN_PASS_GAP`], and at least as long
/// as the pass itself, so that passes over a large state (100,000 instances) woken by every
/// commit take at most half of a core, leaving the rest to Raft and the API.
fn pass_gap(took: Duration) -> Duration {
    took.max(MIN_PASS_GAP)
}

/// Where a pass's one batch is committed: Raft in production, a counter in tests.
pub trait Commit {
    /// Commits `command` as one log entry and returns what applying it gave, or why it
    /// could not be committed.
    fn commit(&mut self, command: Command)
    -> impl Future<Output = Result<Response, String>> + Send;
}

/// Commits through the master's Raft node, in its exclusive turn.
struct ThroughRaft<'a>(&'a RaftNode);

impl Commit for ThroughRaft<'_> {
    async fn commit(&mut self, command: Command) -> Result<Response, String> {
        let _serial = self.0.exclusive().await;
        self.0.write(command).await.map_err(|e| e.body.to_string())
    }
}

/// What one pass did: its decision (its command taken out) and what committing it gave
/// (`Ok(None)` when there was nothing to commit).
#[derive(Debug)]
pub struct Outcome {
    /// The decision, without its command.
    pub decision: Decision,
    /// What the commit answered.
    pub committed: Result<Option<Response>, String>,
    /// What the commit applied, as far as the decision's events depend on it.
    pub applied: Applied,
}

/// The parts of a committed batch that events describe: goal changes and finished
/// deployments the state machine applied (a stale part is refused, and its event dropped).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Instances whose goal change applied.
    pub goals: BTreeSet<InstanceId>,
    /// Deployments deleted.
    pub deployments_deleted: BTreeSet<String>,
    /// Deployments moved on to their next step.
    pub deployments_advanced: BTreeSet<String>,
}

impl Applied {
    /// What `answer` says applied of `batch`, whose commands it answers in order.
    fn of(batch: &[Part], answer: &Response) -> Self {
        let mut applied = Applied::default();
        let Response::Batch { responses } = answer else {
            return applied;
        };
        for (part, response) in batch.iter().zip(responses) {
            match (part, response) {
                (Part::Goals, Response::Decided { applied: ids, .. }) => {
                    applied.goals.extend(ids.iter().cloned());
                }
                (Part::Deployment(id), Response::Ok) => {
                    applied.deployments_deleted.insert(id.clone());
                }
                (Part::Advance(id), Response::Ok) => {
                    applied.deployments_advanced.insert(id.clone());
                }
                _ => {}
            }
        }
        applied
    }

    /// Whether an event's condition holds.
    fn allows(&self, requires: Option<&Requires>) -> bool {
        match requires {
            None => true,
            Some(Requires::Goal(id)) => self.goals.contains(id),
            Some(Requires::DeploymentDeleted(id)) => self.deployments_deleted.contains(id),
            Some(Requires::DeploymentAdvanced(id)) => self.deployments_advanced.contains(id),
        }
    }
}

/// What a command of a batch is, as far as events depend on it.
enum Part {
    Goals,
    Deployment(String),
    Advance(String),
    Other,
}

/// The parts of a batch, in order.
fn parts(command: &Command) -> Vec<Part> {
    let Command::Batch { commands } = command else {
        return Vec::new();
    };
    commands
        .iter()
        .map(|c| match c {
            Command::SetGoals { .. } => Part::Goals,
            Command::DeleteDeployment { id } => Part::Deployment(id.clone()),
            Command::AdvanceDeployment { id, .. } => Part::Advance(id.clone()),
            _ => Part::Other,
        })
        .collect()
}

/// One pass over a snapshot: decide, then commit the decision's batch through `commit`
/// (at most one commit). `Err` when deciding failed (a bug; nothing was committed).
pub async fn pass(
    snapshot: &ClusterState,
    obs: &Observations,
    policy: &Policy,
    now_ms: u64,
    ids: &mut (impl IdSource + Send),
    commit: &mut impl Commit,
) -> Result<Outcome, String> {
    let decision = decide(snapshot, obs, policy, now_ms, ids)?;
    Ok(commit_decision(decision, commit).await)
}

/// The deciding half of [`pass`]: [`reconcile`], with a bug outside any one app's part
/// (those are contained in `reconcile`) costing this pass, never the scheduler or the
/// process.
pub fn decide(
    snapshot: &ClusterState,
    obs: &Observations,
    policy: &Policy,
    now_ms: u64,
    ids: &mut impl IdSource,
) -> Result<Decision, String> {
    let decided = std::panic::catch_unwind(AssertUnwindSafe(|| {
        reconcile(snapshot, obs, policy, now_ms, ids)
    }));
    decided.map_err(|panic| {
        format!(
            "the pass failed: {}",
            reconcile::panic_message(panic.as_ref())
        )
    })
}

/// The committing half of [`pass`]: the decision's batch through `commit`.
pub async fn commit_decision(mut decision: Decision, commit: &mut impl Commit) -> Outcome {
    let (committed, applied) = match decision.command.take() {
        None => (Ok(None), Applied::default()),
        Some(command) => {
            let (command, more) = split_placements(command);
            let batch = parts(&command);
            let committed = commit.commit(command).await;
            let applied = committed
                .as_ref()
                .map_or_else(|_| Applied::default(), |answer| Applied::of(&batch, answer));
            if committed.is_ok() {
                for entry in more {
                    if let Err(e) = commit.commit(entry).await {
                        tracing::warn!(error = %e, "scheduler could not commit some of its placements; the next pass places them again");
                        break;
                    }
                }
            }
            (committed.map(Some), applied)
        }
    };
    Outcome {
        decision,
        committed,
        applied,
    }
}

/// The scheduler as a leader-only service: the driver around [`reconcile`], with the parts
/// it reads (the node's state, task health, the eviction memory) and writes (the node, the
/// queue, the eviction memory, the event bus).
#[derive(Clone)]
pub struct Scheduler {
    node: Arc<RaftNode>,
    agents: Arc<AgentView>,
    queue: Arc<Queue>,
    eviction: Arc<EvictionGuard>,
    events: Arc<EventBus>,
}

impl Scheduler {
    /// The scheduler over these parts.
    pub fn new(
        node: Arc<RaftNode>,
        agents: Arc<AgentView>,
        queue: Arc<Queue>,
        eviction: Arc<EvictionGuard>,
        events: Arc<EventBus>,
    ) -> Self {
        Scheduler {
            node,
            agents,
            queue,
            eviction,
            events,
        }
    }

    /// The policy a master configured with `config` decides by in `term`.
    pub fn policy(config: &MasterConfig, term: u64) -> Policy {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Policy {
            eviction_threshold: config.eviction_threshold,
            eviction_interval_ms: ms(config.eviction_interval),
            // Agents are marked when liveness next looks, up to a tick after their timeout.
            settle_ms: ms(config.agent_heartbeat + crate::agents::LIVENESS_TICK),
            region: config.domain.region.clone(),
            launch_budget: MAX_LAUNCHES_PER_PASS,
            term,
        }
    }
}

/// Logs the parts of a committed batch that the state machine refused as stale.
fn log_refused(answer: &Response) {
    if let Response::Batch { responses } = answer {
        for r in responses {
            if let Response::Decided { refused, .. } = r
                && !refused.is_empty()
            {
                tracing::debug!(refused = ?refused, "decisions were stale; the next pass decides again");
            }
        }
    }
}

impl Scheduler {
    /// Runs one pass and records what it decided; returns when the next pass is due at the
    /// latest (ms since the epoch), and whether the pass failed.
    async fn drive(&self, policy: &Policy) -> (Option<u64>, bool) {
        let node = self.node.as_ref();
        // Copying and deciding over a large state take tens of milliseconds each (100,000
        // instances: `cargo bench -p drover-master --bench pass`): done on the blocking
        // pool, so that the runtime's workers go on sending Raft heartbeats meanwhile.
        let snapshot = {
            let _serial = node.exclusive().await;
            let reader = node.state().clone();
            state::runtime::off_worker(move || reader.snapshot().state).await
        };
        let Some(snapshot) = snapshot else {
            tracing::warn!("scheduler pass failed: copying the state panicked");
            return (None, true);
        };
        let obs = Observations {
            health: self.agents.health_all(),
            readiness: health::readiness_observations(&snapshot, &self.agents.readiness_all()),
            eviction: self.eviction.memory(),
        };
        let now = node.clock().now_ms();
        let policy = policy.clone();
        let decided = state::runtime::off_worker(move || {
            let decision = decide(&snapshot, &obs, &policy, now, &mut UuidIds);
            // The copy is dropped here too, off the runtime's workers.
            drop(snapshot);
            decision
        })
        .await
        .unwrap_or_else(|| Err("the pass failed: deciding panicked".into()));
        let outcome = match decided {
            Ok(decision) => Ok(commit_decision(decision, &mut ThroughRaft(node)).await),
            Err(e) => Err(e),
        };
        // Health of instances that no longer exist is of no use to anyone (read from the
        // state as it is now: an instance placed since the snapshot keeps its report).
        node.state().read(|a| {
            self.agents.retain_health(
                |id| a.state.instances().contains_key(id),
                |app| a.state.app(app).is_some(),
            )
        });
        record(outcome, &self.queue, &self.eviction, &mut |event| {
            self.events.publish(event)
        })
    }
}

/// Records what a pass decided: the queue always; the eviction memory and the events only
/// when its commit succeeded (or there was nothing to commit), since events describe what
/// has committed and a failed pass is decided again; an event about a part of the batch
/// that was refused as stale is dropped. Returns when the next pass is due at
/// the latest (ms since the epoch), and whether the pass failed.
pub fn record(
    outcome: Result<Outcome, String>,
    queue: &Queue,
    eviction: &EvictionGuard,
    publish: &mut impl FnMut(crate::events::Event),
) -> (Option<u64>, bool) {
    let Outcome {
        decision,
        committed,
        applied,
    } = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::warn!(error = %e, "scheduler pass failed");
            return (None, true);
        }
    };
    queue.replace(decision.queue);
    match committed {
        Ok(answer) => {
            if let Some(answer) = &answer {
                log_refused(answer);
            }
            eviction.record(decision.eviction);
            for event in decision.events {
                if applied.allows(event.requires.as_ref()) {
                    publish(event.event);
                }
            }
            (decision.next_wake_ms, false)
        }
        Err(e) => {
            tracing::warn!(error = %e, "scheduler could not commit its changes");
            (decision.next_wake_ms, true)
        }
    }
}

impl LeaderService for Scheduler {
    fn name(&self) -> &'static str {
        "scheduler"
    }

    fn run(&self, term: u64) -> ServiceFuture {
        let scheduler = self.clone();
        Box::pin(async move {
            let node = scheduler.node.clone();
            // A new leader has every committed entry in its log, but maybe not yet applied:
            // plan only from a state that includes everything committed before this term.
            while node.linearizable().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let policy = Scheduler::policy(node.config(), term);
            let mut applied = node.state().subscribe();
            let mut observed = scheduler.agents.subscribe();
            loop {
                let started = tokio::time::Instant::now();
                let (next_wake_ms, failed) = scheduler.drive(&policy).await;
                if failed {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                tokio::time::sleep(pass_gap(started.elapsed())).await;
                let until_wake = next_wake_ms.map_or(SAFETY_PASS, |at| {
                    Duration::from_millis(at.saturating_sub(node.clock().now_ms())).min(SAFETY_PASS)
                });
                // biased: whichever wakes the scheduler, the next pass reads everything; a
                // fixed order keeps a simulated run the same every time.
                tokio::select! {
                    biased;
                    r = applied.changed() => if r.is_err() { tokio::time::sleep(until_wake).await },
                    r = observed.changed() => if r.is_err() { tokio::time::sleep(until_wake).await },
                    () = tokio::time::sleep(until_wake) => {}
                }
            }
        })
    }
}
