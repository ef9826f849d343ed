//! The instance history, replayed from the committed log: **no agent's report is lost**.
//!
//! An agent is the authority on its instances' conditions, so a condition changes only by
//! that agent's report of it, by the leader's unreachable mark (while the agent is
//! unreachable), or back to running when an unreachable agent returns; an ended condition
//! never changes. A whole-record write decided from an older copy of an instance breaks
//! this when a report committed in between: the copy's condition overwrites the report.
//! The end state may still heal (the agent reports again, or the task ends), so this is
//! checked on every committed command, not on the settled state.

use std::collections::BTreeMap;

use state::{AgentState, ClusterState, Command, Condition, InstanceId, MemDisk};

use super::checks::now;
use openraft::storage::{RaftLogReader, RaftLogStorage};

/// The committed log applied command by command to a replica of the state, checking each
/// instance's condition changes.
#[derive(Debug, Default)]
pub struct History {
    state: ClusterState,
    /// The next log index to replay.
    next: u64,
}

impl History {
    /// Replays every entry some master has committed since the last call (committed logs
    /// agree, so any master's copy of an entry is the entry), and checks each change of
    /// condition it makes. Returns a line per entry for the run's trace.
    pub fn follow(&mut self, disks: &[MemDisk]) -> Result<Vec<String>, String> {
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
            if let openraft::EntryPayload::Normal(cmd) = entry.payload {
                let commands = match cmd {
                    Command::Batch { commands } => commands,
                    cmd => vec![cmd],
                };
                for cmd in commands {
                    line.push(' ');
                    line.push_str(&command_name(&cmd));
                    self.apply(index, cmd)?;
                }
            }
            lines.push(line);
            self.next = index + 1;
        }
        Ok(lines)
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
