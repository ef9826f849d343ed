//! The invariants the simulation checks, on what it can see without asking the cluster:
//! each master's simulated disk (its Raft log and vote, and the state it applied) and each
//! agent's fake executor.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use agent::executor::FakeExecutor;
use domain::{AgentId, Field, Operator};
use openraft::storage::{RaftLogReader, RaftLogStorage};
use state::{ClusterState, Command, Condition, Goal, InstanceId, MemDisk};

/// Runs a future that never waits (the in-memory stores' calls) to its end.
pub fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// The leaders each master's log and vote witness. openraft 0.9 (without its
/// `single-term-leader` feature, which drover does not use) names a leader by
/// `(term, node id)` and orders leaders that way, so two masters can both be elected in one
/// term, the higher node id superseding the lower (a voter that granted `T-N1` may still
/// grant `T-N3`): "one leader per term" is not a rule of this Raft. What is: on every
/// disk, the log's entries are written by non-decreasing leaders along the index (a log
/// never goes back to an older leader after a newer one, the log matching property), and
/// the committed vote is at least the leader of the last entry; that committed logs agree
/// is [`logs_agree`].
#[derive(Debug, Default)]
pub struct Terms {
    /// Every leader seen, by term (for the failure message).
    leaders: BTreeMap<u64, BTreeSet<u64>>,
    /// Per master, the committed index up to which its log was read (committed entries
    /// never change, so they are read once), and the leader of that entry.
    read_upto: BTreeMap<u64, (u64, (u64, u64))>,
}

impl Terms {
    /// Checks what master `id`'s disk says of its leaders now: its log's entries after what
    /// was read before go by non-decreasing leader, and its committed vote is not older
    /// than its last entry's leader.
    pub fn observe(&mut self, id: u64, disk: &MemDisk) -> Result<(), String> {
        let mut log = disk.log();
        let (from, mut last) = match self.read_upto.get(&id) {
            Some(&(index, leader)) => (index + 1, leader),
            None => (0, (0, 0)),
        };
        let entries = now(log.try_get_log_entries(from..)).unwrap_or_default();
        let committed = now(log.read_committed()).ok().flatten();
        for e in &entries {
            let leader = (e.log_id.leader_id.term, e.log_id.leader_id.node_id);
            self.leaders.entry(leader.0).or_default().insert(leader.1);
            if leader < last {
                return Err(format!(
                    "master {id}'s log goes back from leader T{}-N{} to T{}-N{} at index {}",
                    last.0, last.1, leader.0, leader.1, e.log_id.index
                ));
            }
            last = leader;
            if committed.is_some_and(|c| c.index == e.log_id.index) {
                self.read_upto.insert(id, (e.log_id.index, leader));
            }
        }
        if let Ok(Some(vote)) = now(log.read_vote())
            && vote.committed
        {
            let voted = (vote.leader_id.term, vote.leader_id.node_id);
            self.leaders.entry(voted.0).or_default().insert(voted.1);
            if voted < last {
                return Err(format!(
                    "master {id}'s committed vote T{}-N{} is older than the leader T{}-N{} of its last log entry (leaders seen by term: {:?})",
                    voted.0, voted.1, last.0, last.1, self.leaders
                ));
            }
        }
        Ok(())
    }
}

/// The committed prefixes of two logs agree: same index, same entry author, same command.
pub fn logs_agree(a: (u64, &MemDisk), b: (u64, &MemDisk)) -> Result<(), String> {
    let committed = |d: &MemDisk| {
        now(d.log().read_committed())
            .ok()
            .flatten()
            .map_or(0, |c| c.index)
    };
    let upto = committed(a.1).min(committed(b.1));
    let read = |d: &MemDisk| now(d.log().try_get_log_entries(..=upto)).unwrap_or_default();
    let (ea, eb) = (read(a.1), read(b.1));
    let by_index = |es: &[state::types::Entry]| {
        es.iter()
            .map(|e| (e.log_id.index, e.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let (ma, mb) = (by_index(&ea), by_index(&eb));
    for (index, x) in &ma {
        if let Some(y) = mb.get(index)
            && (x.log_id != y.log_id
                || serde_json::to_string(&x.payload).ok() != serde_json::to_string(&y.payload).ok())
        {
            return Err(format!(
                "committed entry {index} differs: master {} has {}, master {} has {}",
                a.0, x.log_id, b.0, y.log_id
            ));
        }
    }
    Ok(())
}

/// No agent's resources or ports are over-committed by the instances that hold them (at
/// every check), and, with `constraints` (once settled), `UNIQUE`, `MAX_PER` and `IS` hold
/// for every instance of an app's current version. While agents come and go, an instance
/// of an unreachable agent is replaced without counting for the constraints, and counts
/// again when its agent returns until the scheduler stops the excess: so constraints are
/// not checked during the faults.
pub fn state_is_sound(master: u64, s: &ClusterState, constraints: bool) -> Result<(), String> {
    for (id, record) in s.agents() {
        let total = &record.agent.resources;
        let mut used = (0u64, 0u64, 0u64);
        let mut ports = BTreeSet::new();
        for inst in s.instances_on(id).filter(|i| !i.condition.is_terminal()) {
            if let Some(r) = s.reserved(inst) {
                used.0 += r.cpus;
                used.1 += r.mem;
                used.2 += r.disk;
            }
            for p in &inst.ports {
                if !ports.insert(*p) {
                    return Err(format!(
                        "master {master}: port {p} of agent {id} is held by two live instances"
                    ));
                }
            }
        }
        let cap = (
            domain::resources::to_millis(total.cpus),
            domain::resources::to_millis(total.mem),
            domain::resources::to_millis(total.disk),
        );
        if used.0 > cap.0 || used.1 > cap.1 || used.2 > cap.2 {
            return Err(format!(
                "master {master}: agent {id} is over-committed: cpus/mem/disk {used:?} of {cap:?} (thousandths)"
            ));
        }
    }
    if !constraints {
        return Ok(());
    }
    for (app, record) in s.apps() {
        let def = &record.current().app;
        let live: Vec<_> = s
            .instances_of(app)
            .filter(|i| i.goal == Goal::Running && !i.condition.is_terminal())
            .filter(|i| i.app_version == record.current().version)
            .collect();
        for c in &def.constraints {
            let value_of = |agent: &AgentId| -> Option<String> {
                let a = &s.agent(agent)?.agent;
                match &c.field {
                    Field::Hostname => Some(a.hostname.clone()),
                    Field::Zone => a.domain.as_ref().map(|d| d.zone.clone()),
                    Field::Region => a.domain.as_ref().map(|d| d.region.clone()),
                    Field::Attribute(_) => None,
                }
            };
            let mut per: BTreeMap<Option<String>, usize> = BTreeMap::new();
            for i in &live {
                *per.entry(value_of(&i.agent_id)).or_default() += 1;
            }
            let limit = match c.operator {
                Operator::Unique => Some(1),
                Operator::MaxPer => c.value.as_deref().and_then(|v| v.parse::<usize>().ok()),
                _ => None,
            };
            if let Some(limit) = limit
                && let Some((value, n)) = per.iter().find(|(_, n)| **n > limit)
            {
                let which: Vec<String> = live
                    .iter()
                    .filter(|i| &value_of(&i.agent_id) == value)
                    .map(|i| {
                        let agent = s.agent(&i.agent_id).map(|r| (&r.agent.hostname, r.state));
                        format!("{} on {agent:?} {:?} rev {}", i.id, i.condition, i.revision)
                    })
                    .collect();
                return Err(format!(
                    "master {master}: app {app} has {n} live instances with {}={value:?}, its constraint {:?} allows {limit}: {}",
                    c.field_name,
                    c.operator,
                    which.join(", ")
                ));
            }
            if c.operator == Operator::Is
                && let Some(want) = &c.value
                && let Some((Some(value), _)) = per.iter().find(|(v, _)| v.as_ref() != Some(want))
            {
                return Err(format!(
                    "master {master}: app {app} has a live instance with {}={value}, its constraint IS allows only {want}",
                    c.field_name
                ));
            }
        }
    }
    Ok(())
}

/// What the cluster runs against what its state says, once healed: `None` when they match
/// (every app has exactly its instances running, nothing stuck, no orphan, no duplicate);
/// else what differs.
pub fn converged(s: &ClusterState, agents: &[(AgentId, FakeExecutor)]) -> Option<String> {
    let mut problems = Vec::new();
    for (app, record) in s.apps() {
        let want = record.current().app.instances as usize;
        let running = s
            .instances_of(app)
            .filter(|i| i.goal == Goal::Running && i.condition == Condition::Running)
            .count();
        if running != want {
            problems.push(format!("{app}: {running} running of {want}"));
        }
    }
    for inst in s.instances().values() {
        let settled = inst.condition.is_terminal()
            || (inst.condition == Condition::Running && inst.goal == Goal::Running);
        if !settled {
            problems.push(format!(
                "{} is {:?} with goal {:?}",
                inst.id, inst.condition, inst.goal
            ));
        }
    }
    let mut where_running: BTreeMap<InstanceId, Vec<AgentId>> = BTreeMap::new();
    for (agent, tasks) in agents {
        for id in tasks.running() {
            where_running.entry(id).or_default().push(agent.clone());
        }
    }
    for (id, on) in &where_running {
        match s.instances().get(id) {
            None => problems.push(format!(
                "orphan task {id} on {on:?}: the state has no such instance"
            )),
            Some(_) if on.len() > 1 => {
                problems.push(format!("{id} runs on {} agents: {on:?}", on.len()))
            }
            Some(inst) if on[0] != inst.agent_id => problems.push(format!(
                "{id} runs on {} but the state assigns it to {}",
                on[0], inst.agent_id
            )),
            Some(inst) if inst.condition != Condition::Running => problems.push(format!(
                "{id} runs on {} but the state says {:?}",
                on[0], inst.condition
            )),
            Some(_) => {}
        }
    }
    for inst in s.instances().values() {
        if inst.condition == Condition::Running && !where_running.contains_key(&inst.id) {
            problems.push(format!(
                "{} is running in the state but no agent runs it",
                inst.id
            ));
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// What the committed log decided about instances: where each was placed, which were
/// told to stop (a goal other than running, forgotten), and which apps were deleted.
#[derive(Debug, Default)]
pub struct Decisions {
    /// Every placed instance, with its agent and app.
    pub placed: BTreeMap<InstanceId, (AgentId, domain::AppId)>,
    /// Instances given a goal other than running, or forgotten.
    pub stopped: BTreeSet<InstanceId>,
    /// Apps deleted at least once.
    pub deleted_apps: BTreeSet<domain::AppId>,
}

impl Decisions {
    /// Whether a committed decision told `id` to stop (its own goal, its app deleted, its
    /// record forgotten).
    pub fn stop_decided(&self, id: &InstanceId) -> bool {
        self.stopped.contains(id)
            || self
                .placed
                .get(id)
                .is_some_and(|(_, app)| self.deleted_apps.contains(app))
    }

    /// Adds what `disk`'s committed log decided.
    pub fn read(&mut self, disk: &MemDisk) {
        let mut log = disk.log();
        let committed = now(log.read_committed())
            .ok()
            .flatten()
            .map_or(0, |c| c.index);
        for e in now(log.try_get_log_entries(..=committed)).unwrap_or_default() {
            if let openraft::EntryPayload::Normal(cmd) = &e.payload {
                self.walk(cmd);
            }
        }
    }

    fn walk(&mut self, cmd: &Command) {
        match cmd {
            Command::Batch { commands } => commands.iter().for_each(|c| self.walk(c)),
            Command::PlaceInstances { instances } | Command::PutInstances { instances } => {
                for i in instances {
                    self.placed
                        .insert(i.id.clone(), (i.agent_id.clone(), i.app_id.clone()));
                    if i.goal != Goal::Running {
                        self.stopped.insert(i.id.clone());
                    }
                }
            }
            Command::SetGoals { changes, .. } => {
                for c in changes.iter().filter(|c| c.goal != Goal::Running) {
                    self.stopped.insert(c.instance_id.clone());
                }
            }
            Command::ForgetInstances { instances } => {
                self.stopped
                    .extend(instances.iter().map(|d| d.instance_id.clone()));
            }
            Command::RemoveInstances { ids } => self.stopped.extend(ids.iter().cloned()),
            Command::DeleteApp { id } => {
                self.deleted_apps.insert(id.clone());
            }
            _ => {}
        }
    }
}

/// `GROUP_BY` is balanced where capacity allows (every agent has room for every app, so it
/// always does): for every app whose current version groups by `@zone` and runs in the
/// local region, its running instances differ by at most one between the local zones that
/// have an active agent (a zone without instances counts as none). `None` when balanced,
/// else which app is not and how its instances lie. The scheduler's rebalancing
/// (`master/src/scheduler/rebalance.rs`) launches one instance at a time where the app is
/// emptiest once it is settled, so a settled cluster must get here.
pub fn group_by_unbalanced(s: &ClusterState) -> Option<String> {
    let local = super::plan::LOCAL_REGION;
    let zones: BTreeSet<String> = s
        .agents()
        .values()
        .filter(|r| r.state == state::AgentState::Active)
        .filter(|r| r.agent.region().unwrap_or(local) == local)
        .filter_map(|r| r.agent.zone().map(str::to_string))
        .collect();
    let mut problems = Vec::new();
    for (app, record) in s.apps() {
        let current = record.current();
        let def = &current.app;
        let grouped = def
            .constraints
            .iter()
            .any(|c| c.field == Field::Zone && c.operator == Operator::GroupBy);
        if !grouped || def.region().is_some_and(|r| r != local) {
            continue;
        }
        let mut per: BTreeMap<String, usize> = zones.iter().map(|z| (z.clone(), 0)).collect();
        for i in s.instances_of(app).filter(|i| {
            i.goal == Goal::Running
                && i.condition == Condition::Running
                && i.app_version == current.version
        }) {
            if let Some(zone) = s.agent(&i.agent_id).and_then(|r| r.agent.zone()) {
                *per.entry(zone.to_string()).or_default() += 1;
            }
        }
        let (min, max) = (
            per.values().min().copied().unwrap_or(0),
            per.values().max().copied().unwrap_or(0),
        );
        if max > min + 1 {
            problems.push(format!(
                "{app} (@zone GROUP_BY) is not balanced over the zones with active agents: {per:?}"
            ));
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}
