//! What the leader knows about agents beyond the replicated registry: when each was last
//! heard from, its round-trip time, its tasks' health and readiness, and how pod instances'
//! containers ended. Not replicated: a new leader rebuilds it from heartbeats and status
//! reports, after giving every agent a grace period (and starts with no pod terminations).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

// tokio's Instant is the system's in production and follows a paused (simulated) runtime's time.
use tokio::time::Instant;

use domain::{AgentId, AppId};
use state::protocol::{ContainerEnd, DiskUse, HealthReport, ReadinessReport};
use state::{AgentState, Command, InstanceId};

use crate::leadership::{LeaderService, ServiceFuture};
use crate::node::RaftNode;

/// An agent at or above this round-trip time to the leader is flagged (DC/OS's limit for
/// remote regions).
pub const RTT_WARNING_MS: u64 = 100;

/// How many ended instances of each pod the leader remembers (Marathon's
/// `terminationHistory`: "not many").
pub const TERMINATIONS_KEPT: usize = 10;

/// A pod instance's end, as its agent reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct Termination {
    /// The instance.
    pub instance_id: InstanceId,
    /// When it started running, if it did (ms since the Unix epoch).
    pub started_at_ms: Option<u64>,
    /// When it ended (the agent's clock).
    pub terminated_at_ms: u64,
    /// For people: why the instance ended.
    pub message: String,
    /// How each of its containers ended.
    pub containers: Vec<ContainerEnd>,
}

/// Heartbeats, RTTs, health and readiness, in memory on the leader.
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
    readiness: HashMap<InstanceId, ReadinessReport>,
    /// Per pod, its last instances' ends, oldest first.
    terminations: HashMap<AppId, VecDeque<Termination>>,
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

    /// Which of `candidates` are silent at `now`, given each one's deadline (from when it was
    /// last heard from, `None`: never by this master), and the earliest deadline of the
    /// others: nothing can be silent before it, since heartbeats only move deadlines later.
    /// One look under one lock, however many agents there are.
    pub fn silent<'a>(
        &self,
        candidates: impl Iterator<Item = &'a AgentId>,
        deadline: impl Fn(Option<Instant>) -> Instant,
        now: Instant,
    ) -> Silence {
        let v = self.lock();
        let mut silence = Silence::default();
        for id in candidates {
            let due = deadline(v.last_seen.get(id).copied());
            if now > due {
                silence.lost.push(id.clone());
            } else {
                silence.next = Some(silence.next.map_or(due, |n: Instant| n.min(due)));
            }
        }
        silence
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

    /// Records a task's readiness; signals [`AgentView::subscribe`] when it is new or turned
    /// ready (what deployments wait for).
    pub fn set_readiness(&self, instance: &InstanceId, report: ReadinessReport) {
        let ready = report.ready;
        let before = self
            .lock()
            .readiness
            .insert(instance.clone(), report)
            .map(|b| b.ready);
        if before != Some(ready) {
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// Every task's last readiness report.
    pub fn readiness_all(&self) -> HashMap<InstanceId, ReadinessReport> {
        self.lock().readiness.clone()
    }

    /// A task's last readiness report.
    pub fn readiness(&self, instance: &InstanceId) -> Option<ReadinessReport> {
        self.lock().readiness.get(instance).cloned()
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

    /// Forgets the health and readiness of instances that no longer exist, and the
    /// terminations of pods that no longer exist.
    pub fn retain_health(
        &self,
        keep: impl Fn(&InstanceId) -> bool,
        keep_app: impl Fn(&AppId) -> bool,
    ) {
        let mut v = self.lock();
        v.health.retain(|id, _| keep(id));
        v.readiness.retain(|id, _| keep(id));
        v.terminations.retain(|id, _| keep_app(id));
    }

    /// Records how an instance of pod `app` ended (once: a repeated report is ignored);
    /// keeps the last [`TERMINATIONS_KEPT`].
    pub fn record_termination(&self, app: &AppId, termination: Termination) {
        let mut v = self.lock();
        let kept = v.terminations.entry(app.clone()).or_default();
        if kept
            .iter()
            .any(|t| t.instance_id == termination.instance_id)
        {
            return;
        }
        kept.push_back(termination);
        while kept.len() > TERMINATIONS_KEPT {
            kept.pop_front();
        }
    }

    /// Pod `app`'s last instances' ends, newest first.
    pub fn terminations(&self, app: &AppId) -> Vec<Termination> {
        self.lock()
            .terminations
            .get(app)
            .map(|t| t.iter().rev().cloned().collect())
            .unwrap_or_default()
    }
}

/// Liveness looks for silent agents at the earliest deadline among them, but at most this
/// often: agents are marked unreachable up to this late (at rest, with heartbeats every
/// second, it looks once per unreachable timeout, not four times a second).
pub const LIVENESS_TICK: Duration = Duration::from_millis(250);

/// What one look for silent agents found ([`AgentView::silent`]).
#[derive(Debug, Default)]
pub struct Silence {
    /// Agents past their deadline.
    pub lost: Vec<AgentId>,
    /// The earliest deadline of the others (`None`: no other agent).
    pub next: Option<Instant>,
}

/// A liveness look this much later than planned means the master itself was not running.
const PAUSED_AFTER: Duration = Duration::from_secs(1);

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
/// when this master is elected or returns from a pause (a new leader has heard from nobody yet,
/// and a paused one could hear from nobody).
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
            // Agents' silence counts from here: the election, or this master's return from
            // a pause (below).
            let mut grace_from = Instant::now();
            let grace = node.config().agent_reregistration_grace;
            let timeout = node.config().agent_unreachable_after;
            loop {
                let now = Instant::now();
                let deadline = |heard: Option<Instant>| match heard {
                    Some(t) => (t + timeout).max(grace_from + grace),
                    None => grace_from + grace,
                };
                let Silence { lost, next } = node.state().read(|a| {
                    let active = a
                        .state
                        .agents()
                        .values()
                        .filter(|r| r.state == AgentState::Active);
                    agents.silent(active.map(|r| &r.agent.id), deadline, now)
                });
                // The next look: just after the earliest deadline, never sooner than a tick.
                // A tick from now when no agent is active (one that registers or comes back
                // has a deadline a whole timeout away), or when some were found silent (in
                // case marking them fails).
                let wake = match next {
                    Some(n) if lost.is_empty() => {
                        (n + Duration::from_millis(1)).max(now + LIVENESS_TICK)
                    }
                    _ => now + LIVENESS_TICK,
                };
                mark_unreachable(&node, lost, timeout).await;
                tokio::time::sleep_until(wake).await;
                // Woken far later than asked: this master itself was not running (paused,
                // starved, its machine frozen), so no heartbeat could reach it. That silence
                // is its own, not the agents': every agent gets the re-registration grace
                // again, as after an election.
                let late = Instant::now().saturating_duration_since(wake);
                if late > PAUSED_AFTER {
                    tracing::warn!(
                        "this master did not run for {late:?}; every agent gets {grace:?} to be heard from before any is called unreachable"
                    );
                    grace_from = Instant::now();
                }
            }
        })
    }
}

/// Marks `lost` agents unreachable, all together: in one commit per batch and with no
/// scheduler pass in between, since mass eviction protection must see them as one, and a
/// lost zone of thousands of agents costs a few writes, not thousands.
async fn mark_unreachable(node: &RaftNode, lost: Vec<AgentId>, timeout: Duration) {
    if lost.is_empty() {
        return;
    }
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
    fn a_look_for_silent_agents_finds_those_past_their_deadline_and_the_next_deadline() {
        let view = AgentView::default();
        // `a` is heard from (deadline a second later); `c` never is (a later deadline).
        let (a, c) = (AgentId::from("a"), AgentId::from("c"));
        view.heard_from(&a, None);
        let heard = view.last_seen(&a).expect("heard");
        let never = heard + Duration::from_secs(100);
        let deadline = |seen: Option<Instant>| match seen {
            Some(t) => t + Duration::from_secs(1),
            None => never,
        };
        // Before any deadline: nobody is lost, and the next look is a's deadline.
        let early = view.silent([&a, &c].into_iter(), deadline, heard);
        assert!(early.lost.is_empty());
        assert_eq!(early.next, Some(heard + Duration::from_secs(1)));
        // Past a's deadline only: a is lost; the next is c's.
        let later = heard + Duration::from_secs(2);
        let found = view.silent([&a, &c].into_iter(), deadline, later);
        assert_eq!(found.lost, std::slice::from_ref(&a));
        assert_eq!(found.next, Some(never));
        // Past every deadline: both lost, no next.
        let all = view.silent(
            [&a, &c].into_iter(),
            deadline,
            never + Duration::from_secs(1),
        );
        assert_eq!(all.lost, [a, c]);
        assert_eq!(all.next, None);
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
