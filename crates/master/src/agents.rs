//! What the leader knows about agents beyond the replicated registry: when each was last
//! heard from, its round-trip time, and its tasks' health. Not replicated: a new leader
//! rebuilds it from heartbeats and status reports, after giving every agent a grace period.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use domain::AgentId;
use state::protocol::{DiskUse, HealthReport};
use state::{AgentState, Command, InstanceId};

use crate::leadership::{LeaderService, ServiceFuture};
use crate::node::RaftNode;

/// An agent at or above this round-trip time to the leader is flagged (DC/OS's limit for
/// remote regions).
pub const RTT_WARNING_MS: u64 = 100;

/// Heartbeats, RTTs and health, in memory on the leader.
#[derive(Debug)]
pub struct AgentView {
    inner: Mutex<ViewInner>,
    /// Counts the changes the scheduler reads (a task's health verdict): passes wake on it,
    /// not on every heartbeat or report that repeats what was known.
    changed: tokio::sync::watch::Sender<u64>,
}

impl Default for AgentView {
    fn default() -> Self {
        AgentView {
            inner: Mutex::default(),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }
}

#[derive(Debug, Default)]
struct ViewInner {
    last_seen: HashMap<AgentId, Instant>,
    rtt_ms: HashMap<AgentId, u64>,
    disk: HashMap<AgentId, DiskUse>,
    health: HashMap<InstanceId, HealthReport>,
}

impl AgentView {
    fn lock(&self) -> MutexGuard<'_, ViewInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a sign of life, with the RTT the agent measured, if any.
    pub fn heard_from(&self, agent: &AgentId, rtt_ms: Option<u64>) {
        // Every heartbeat of every agent lands here: update in place, and copy the id only
        // the first time.
        let mut v = self.lock();
        put(&mut v.last_seen, agent, Instant::now());
        if let Some(rtt) = rtt_ms {
            put(&mut v.rtt_ms, agent, rtt);
        }
    }

    /// Records the work dir disk use an agent reported.
    pub fn set_disk(&self, agent: &AgentId, disk: DiskUse) {
        put(&mut self.lock().disk, agent, disk);
    }

    /// The agent's last reported work dir disk use.
    pub fn disk(&self, agent: &AgentId) -> Option<DiskUse> {
        self.lock().disk.get(agent).copied()
    }

    /// How long ago the agent was last heard from, if this master has heard from it (a new
    /// leader has heard from nobody yet).
    pub fn silent_for(&self, agent: &AgentId) -> Option<Duration> {
        self.last_seen(agent).map(|t| t.elapsed())
    }

    /// When the agent was last heard from by this master.
    pub fn last_seen(&self, agent: &AgentId) -> Option<Instant> {
        self.lock().last_seen.get(agent).copied()
    }

    /// The agents among `candidates` that `overdue` finds silent, given when each was last
    /// heard from (`None`: never, by this master). One look under one lock, however many
    /// agents there are.
    pub fn silent<'a>(
        &self,
        candidates: impl Iterator<Item = &'a AgentId>,
        overdue: impl Fn(Option<Instant>) -> bool,
    ) -> Vec<AgentId> {
        let v = self.lock();
        candidates
            .filter(|id| overdue(v.last_seen.get(*id).copied()))
            .cloned()
            .collect()
    }

    /// The agent's last measured round-trip time to the leader.
    pub fn rtt_ms(&self, agent: &AgentId) -> Option<u64> {
        self.lock().rtt_ms.get(agent).copied()
    }

    /// Records a task's health; signals [`AgentView::subscribe`] when its verdict (healthy,
    /// should be killed) is new or flipped.
    pub fn set_health(&self, instance: &InstanceId, report: HealthReport) {
        let verdict = (report.healthy, report.should_kill);
        let before = self
            .lock()
            .health
            .insert(instance.clone(), report)
            .map(|b| (b.healthy, b.should_kill));
        if before != Some(verdict) {
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// A receiver that sees a change whenever a task's health verdict is new or flipped
    /// (what the scheduler reads of this view). An agent's liveness is not signalled here:
    /// it changes through the replicated state (`SetAgentState`), whose applied index the
    /// scheduler watches already.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Every task's last health report.
    pub fn health_all(&self) -> HashMap<InstanceId, HealthReport> {
        self.lock().health.clone()
    }

    /// A task's last health report.
    pub fn health(&self, instance: &InstanceId) -> Option<HealthReport> {
        self.lock().health.get(instance).cloned()
    }

    /// Forgets the health of instances that no longer exist.
    pub fn retain_health(&self, keep: impl Fn(&InstanceId) -> bool) {
        self.lock().health.retain(|id, _| keep(id));
    }
}

/// How often liveness looks for silent agents: agents are marked unreachable up to this late.
pub const LIVENESS_TICK: Duration = Duration::from_millis(250);

/// Agents marked unreachable in one commit (a batch of a few hundred bytes each, far below
/// the log's entry limit).
const MARKS_PER_COMMIT: usize = 1_000;

/// Sets `map[agent]`, cloning the id only when the agent is new to the map.
fn put<V>(map: &mut HashMap<AgentId, V>, agent: &AgentId, value: V) {
    match map.get_mut(agent) {
        Some(slot) => *slot = value,
        None => {
            map.insert(agent.clone(), value);
        }
    }
}

/// Marks agents unreachable when they stop heartbeating, after a grace period that starts
/// when this master is elected (a new leader has heard from nobody yet).
pub struct Liveness {
    node: Arc<RaftNode>,
    agents: Arc<AgentView>,
}

impl Liveness {
    /// The service, reading heartbeats from `agents` and writing through `node`.
    pub fn new(node: Arc<RaftNode>, agents: Arc<AgentView>) -> Self {
        Liveness { node, agents }
    }
}

impl LeaderService for Liveness {
    fn name(&self) -> &'static str {
        "agent liveness"
    }

    fn run(&self, _term: u64) -> ServiceFuture {
        let (node, agents) = (self.node.clone(), self.agents.clone());
        Box::pin(async move {
            let elected = Instant::now();
            let grace = node.config().agent_reregistration_grace;
            let timeout = node.config().agent_unreachable_after;
            let mut tick = tokio::time::interval(LIVENESS_TICK);
            loop {
                tick.tick().await;
                let now = Instant::now();
                let overdue = |heard: Option<Instant>| {
                    let deadline = match heard {
                        Some(t) => (t + timeout).max(elected + grace),
                        None => elected + grace,
                    };
                    now > deadline
                };
                let lost = node.state().read(|a| {
                    let active = a
                        .state
                        .agents()
                        .values()
                        .filter(|r| r.state == AgentState::Active);
                    agents.silent(active.map(|r| &r.agent.id), overdue)
                });
                if lost.is_empty() {
                    continue;
                }
                // All agents found silent in this pass are marked together, in one commit
                // per batch and with no scheduler pass in between: mass eviction protection
                // must see them as one, and a lost zone of thousands of agents costs a few
                // writes, not thousands.
                let _serial = node.exclusive().await;
                for agent_id in &lost {
                    tracing::warn!(agent = %agent_id, "agent unreachable: no heartbeat for {timeout:?}");
                }
                let at_ms = node.clock().now_ms();
                for chunk in lost.chunks(MARKS_PER_COMMIT) {
                    let commands = chunk
                        .iter()
                        .map(|agent_id| Command::SetAgentState {
                            agent_id: agent_id.clone(),
                            state: AgentState::Unreachable,
                            at_ms,
                        })
                        .collect();
                    if let Err(e) = node.write(Command::Batch { commands }).await {
                        tracing::warn!(error = ?e.body, agents = chunk.len(), "cannot mark agents unreachable");
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(healthy: bool, should_kill: bool, at: u64) -> HealthReport {
        HealthReport {
            healthy,
            consecutive_failures: u32::from(!healthy),
            last_failure_cause: None,
            checked_at_ms: at,
            should_kill,
        }
    }

    #[test]
    fn the_scheduler_is_signalled_when_a_health_verdict_is_new_or_flips_not_when_it_repeats() {
        let view = AgentView::default();
        let mut changes = view.subscribe();
        let id = InstanceId::from("web.instance-1");
        view.set_health(&id, report(true, false, 1));
        assert!(changes.has_changed().unwrap_or(false), "a first verdict");
        changes.mark_unchanged();
        view.set_health(&id, report(true, false, 2));
        view.heard_from(&AgentId::from("a-1"), Some(3));
        assert!(
            !changes.has_changed().unwrap_or(true),
            "the same verdict, a heartbeat"
        );
        view.set_health(&id, report(false, false, 3));
        assert!(changes.has_changed().unwrap_or(false), "healthy flipped");
        changes.mark_unchanged();
        view.set_health(&id, report(false, true, 4));
        assert!(
            changes.has_changed().unwrap_or(false),
            "should_kill flipped"
        );
    }
}
