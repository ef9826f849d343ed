//! The instance history, replayed from the committed log: **no agent's report is lost**.
//!
//! An agent is the authority on its instances' conditions, so a condition changes only by
//! that agent's report of it, by the leader's unreachable mark (while the agent is
//! unreachable), or back to running when an unreachable agent returns; an ended condition
//! never changes. A whole-record write decided from an older copy of an instance breaks
//! this when a report committed in between: the copy's condition overwrites the report.
//! The end state may still heal (the agent reports again, or the task ends), so this is
//! checked on every committed command, not on the settled state.
//!
//! The same replay checks **mass-eviction protection** as `master/src/scheduler/eviction.rs`
//! documents it. The sim's apps keep Marathon's default `unreachableStrategy` (replace and
//! expunge at once), so the leader's decision to replace an unreachable agent's instance is
//! exactly a committed `ForgetInstances` of it while its agent is unreachable. Judged by the
//! zones as the committed state shows them just before that entry:
//! - a leader cut off from every agent (every zone `cut-off`) forgets nothing;
//! - in a partly unreachable zone, releases are paced: under one leader (the pacing memory
//!   is the leader's own, so a new leader may release at once), a newly released agent
//!   comes at least [`PACE`] after the one before (the interval less a margin for the time
//!   an entry takes to commit);
//! - a wholly cut-off zone while every other zone is healthy (`outage`) is released at once:
//!   its instances are forgotten without pacing (every forgotten instance of an outage zone
//!   is counted, [`History::outage_releases`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use domain::AgentId;
use master::scheduler::eviction::{ZoneState, assess};

use state::{AgentState, ClusterState, Command, Condition, InstanceId, MemDisk};

use super::checks::now;
use openraft::storage::{RaftLogReader, RaftLogStorage};

/// The masters' eviction threshold (`master_config`).
pub const EVICTION_THRESHOLD: f64 = 0.55;
/// Two agents of a partly unreachable zone released by one leader are at least this far
/// apart: the masters' eviction interval (10 s, `master_config`) less 2 s for an entry's
/// time to commit (the release time is when the sim sees the entry committed).
pub const PACE: Duration = Duration::from_secs(8);

/// The committed log applied command by command to a replica of the state, checking each
/// instance's condition changes.
#[derive(Debug, Default)]
pub struct History {
    state: ClusterState,
    /// The next log index to replay.
    next: u64,
    /// Per leader `(term, node)`: the agents of paced zones it released, and when the last
    /// newly released one was seen committed.
    paced: BTreeMap<(u64, u64), (BTreeSet<AgentId>, Option<Duration>)>,
    /// Instances of an outage zone forgotten (replaced at once).
    pub outage_releases: usize,
    /// Instances of a paced zone forgotten.
    pub paced_releases: usize,
}

impl History {
    /// Replays every entry some master has committed since the last call (committed logs
    /// agree, so any master's copy of an entry is the entry), and checks each change of
    /// condition it makes. Returns a line per entry for the run's trace.
    pub fn follow(&mut self, disks: &[MemDisk], t: Duration) -> Result<Vec<String>, String> {
        let mut lines = Vec::new();
        let committed: Vec<u64> = disks
            .iter()
            .map(|d| {
                now(d.log().read_committed())
                    .ok()
                    .flatten()
                    .map_or(0, |c| c.index)
            })
            .collect();
        let upto = committed.iter().copied().max().unwrap_or(0);
        while self.next <= upto {
            let index = self.next;
            let entry = disks.iter().zip(&committed).find_map(|(d, &c)| {
                (index <= c)
                    .then(|| now(d.log().try_get_log_entries(index..=index)).ok())
                    .flatten()
                    .and_then(|mut es| es.pop())
            });
            let Some(entry) = entry else {
                if index == 0 {
                    // openraft's logs start at index 0 or 1 (the first membership entry).
                    self.next = 1;
                    continue;
                }
                return Err(format!(
                    "the history check cannot read committed entry {index}: no master has it in its log (purged after a snapshot?)"
                ));
            };
            let mut line = format!("commit {}", entry.log_id);
            let leader = (entry.log_id.leader_id.term, entry.log_id.leader_id.node_id);
            if let openraft::EntryPayload::Normal(cmd) = entry.payload {
                let commands = match cmd {
                    Command::Batch { commands } => commands,
                    cmd => vec![cmd],
                };
                for cmd in commands {
                    line.push(' ');
                    line.push_str(&command_name(&cmd));
                    self.evictions(index, leader, t, &cmd)?;
                    self.apply(index, cmd)?;
                }
            }
            lines.push(line);
            self.next = index + 1;
        }
        Ok(lines)
    }

    /// Checks a `ForgetInstances` against the zone rules (see the module's comment), on the
    /// state before it applies.
    fn evictions(
        &mut self,
        index: u64,
        leader: (u64, u64),
        t: Duration,
        cmd: &Command,
    ) -> Result<(), String> {
        let Command::ForgetInstances { instances } = cmd else {
            return Ok(());
        };
        let zones = assess(&self.state, EVICTION_THRESHOLD);
        for d in instances {
            let Some(inst) = self.state.instances().get(&d.instance_id) else {
                continue;
            };
            let Some(agent) = self.state.agent(&inst.agent_id) else {
                continue;
            };
            // Only a replacement: an instance its app still wants (goal running), of an app
            // that exists, on an unreachable agent. An instance told to stop on an
            // unreachable agent is forgotten at once (nobody would report it), as is one
            // that ended.
            if agent.state != AgentState::Unreachable
                || inst.condition.is_terminal()
                || inst.goal != state::Goal::Running
                || self.state.app(&inst.app_id).is_none()
            {
                continue;
            }
            let zone = agent.agent.zone().unwrap_or("");
            match zones.state(zone) {
                ZoneState::CutOff => {
                    return Err(format!(
                        "mass-eviction protection: committed entry {index} (leader T{}-N{}) forgot {} of unreachable agent {} while every zone was cut off (zones: {:?}); a leader cut off from every agent must replace nothing",
                        leader.0, leader.1, d.instance_id, inst.agent_id, zones.zones
                    ));
                }
                ZoneState::PartlyUnreachable => {
                    self.paced_releases += 1;
                    let (released, last) = self.paced.entry(leader).or_default();
                    if released.contains(&inst.agent_id) {
                        continue;
                    }
                    if let Some(last) = *last
                        && t < last + PACE
                    {
                        return Err(format!(
                            "mass-eviction protection: committed entry {index} (leader T{}-N{}) released agent {} of partly unreachable zone {zone} {:?} after the last release (agents already released: {released:?}; zones: {:?}); one agent per interval",
                            leader.0,
                            leader.1,
                            inst.agent_id,
                            t - last,
                            zones.zones
                        ));
                    }
                    released.insert(inst.agent_id.clone());
                    *last = Some(t);
                }
                ZoneState::Outage => self.outage_releases += 1,
                ZoneState::Healthy => {}
            }
        }
        Ok(())
    }

    fn apply(&mut self, index: u64, cmd: Command) -> Result<(), String> {
        let before: BTreeMap<InstanceId, Condition> = self
            .state
            .instances()
            .iter()
            .map(|(id, i)| (id.clone(), i.condition))
            .collect();
        let what = command_name(&cmd);
        let reported: Vec<(InstanceId, Condition)> = match &cmd {
            Command::ReportInstances { reports, .. } => reports
                .iter()
                .map(|r| (r.instance_id.clone(), r.condition))
                .collect(),
            _ => Vec::new(),
        };
        let reporter = match &cmd {
            Command::ReportInstances { agent_id, .. } => Some(agent_id.clone()),
            _ => None,
        };
        self.state.apply(cmd);
        for (id, inst) in self.state.instances() {
            let Some(&was) = before.get(id) else { continue };
            let is = inst.condition;
            if was == is {
                continue;
            }
            let agent = self.state.agent(&inst.agent_id).map(|r| r.state);
            let by_its_agent = reporter.as_ref() == Some(&inst.agent_id)
                && reported.iter().any(|(r, c)| r == id && *c == is);
            let marked = is == Condition::Unreachable && agent == Some(AgentState::Unreachable);
            let returned = was == Condition::Unreachable
                && is == Condition::Running
                && agent == Some(AgentState::Active);
            if was.is_terminal() || !(by_its_agent || marked || returned) {
                return Err(format!(
                    "a report was lost: committed entry {index} ({what}) changed {id} from {was:?} to {is:?} (its agent {} is {agent:?}); only its agent's report, an unreachable mark of an unreachable agent's instance, or its agent's return may change a condition, and never an ended one",
                    inst.agent_id
                ));
            }
        }
        Ok(())
    }
}

/// A command's name, for the failure message.
fn command_name(cmd: &Command) -> String {
    let debug = format!("{cmd:?}");
    debug
        .split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_string()
}
