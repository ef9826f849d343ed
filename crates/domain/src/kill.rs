//! Kill selection for scale-down: which instances go first.
//!
//! Order of preference: keep every `GROUP_BY` balanced (kill from the fullest value), then
//! kill instances that are unreachable, then staging, then unhealthy, then by the app's
//! `killSelection` (`YOUNGEST_FIRST` by default), then by instance id so the choice is
//! always the same for the same input.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use crate::agent::{Agent, AgentId};
use crate::app::{AppDefinition, KillSelection};
use crate::constraint::Operator;

/// The condition of an instance, as far as kill preference goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Running (healthy or not; see [`KillCandidate::healthy`]).
    Running,
    /// Launched but not yet running.
    Staging,
    /// On an agent that stopped answering.
    Unreachable,
}

/// An instance that may be killed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillCandidate {
    /// Instance id (the final tie-breaker).
    pub instance_id: String,
    /// Agent it runs on; an agent missing from the snapshot counts as unreachable.
    pub agent_id: AgentId,
    /// Its condition.
    pub condition: Condition,
    /// Its health, if it has health checks and a result.
    pub healthy: Option<bool>,
    /// When it started, in any monotonic unit (e.g. milliseconds since the epoch).
    pub started_at: u64,
}

/// Chooses `count` of `candidates` to kill; returns their indices, in kill order.
pub fn select_to_kill(
    app: &AppDefinition,
    agents: &[Agent],
    local_region: &str,
    candidates: &[KillCandidate],
    count: usize,
) -> Vec<usize> {
    let index: HashMap<&str, &Agent> = agents.iter().map(|a| (a.id.0.as_str(), a)).collect();
    let group_bys: Vec<_> = app
        .constraints
        .iter()
        .filter(|c| c.operator == Operator::GroupBy)
        .collect();

    // Instances grouped by their GROUP_BY values; each group's list ends with its first victim.
    let mut groups: BTreeMap<Vec<Option<String>>, Vec<usize>> = BTreeMap::new();
    for (i, cand) in candidates.iter().enumerate() {
        let agent = index.get(cand.agent_id.0.as_str());
        let values = group_bys
            .iter()
            .map(|c| agent.and_then(|a| c.value_of(a, local_region).map(|v| v.into_owned())))
            .collect();
        groups.entry(values).or_default().push(i);
    }
    let known = |i: usize| index.contains_key(candidates[i].agent_id.0.as_str());
    let preference = |a: usize, b: usize| -> Ordering {
        let rank = |i: usize| {
            let c = &candidates[i];
            match (c.condition, known(i)) {
                (Condition::Unreachable, _) | (_, false) => 3,
                (Condition::Staging, _) => 2,
                (Condition::Running, _) if c.healthy == Some(false) => 1,
                _ => 0,
            }
        };
        let age = |i: usize| candidates[i].started_at;
        rank(a)
            .cmp(&rank(b))
            .then_with(|| match app.kill_selection {
                KillSelection::YoungestFirst => age(a).cmp(&age(b)),
                KillSelection::OldestFirst => age(b).cmp(&age(a)),
            })
            .then_with(|| candidates[b].instance_id.cmp(&candidates[a].instance_id))
    };
    let mut groups: Vec<(Vec<Option<String>>, Vec<usize>)> = groups.into_iter().collect();
    for (_, members) in &mut groups {
        members.sort_by(|a, b| preference(*a, *b));
    }

    // Instances per value, per GROUP_BY constraint.
    let mut per_value: Vec<HashMap<Option<String>, usize>> = vec![HashMap::new(); group_bys.len()];
    for (values, members) in &groups {
        for (g, v) in values.iter().enumerate() {
            *per_value[g].entry(v.clone()).or_default() += members.len();
        }
    }

    let mut chosen = Vec::with_capacity(count.min(candidates.len()));
    while chosen.len() < count {
        let best = groups
            .iter()
            .enumerate()
            .filter(|(_, (_, m))| !m.is_empty())
            .max_by(|(_, (va, ma)), (_, (vb, mb))| {
                let fill = |values: &Vec<Option<String>>| -> Vec<usize> {
                    values
                        .iter()
                        .enumerate()
                        .map(|(g, v)| per_value[g][v])
                        .collect()
                };
                fill(va)
                    .cmp(&fill(vb))
                    .then_with(|| preference(*ma.last().unwrap_or(&0), *mb.last().unwrap_or(&0)))
            })
            .map(|(g, _)| g);
        let Some(g) = best else { break };
        let (values, members) = &mut groups[g];
        if let Some(victim) = members.pop() {
            for (gi, v) in values.iter().enumerate() {
                if let Some(n) = per_value[gi].get_mut(v) {
                    *n -= 1;
                }
            }
            chosen.push(victim);
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fault_domain::FaultDomain;

    fn agent(id: &str, zone: &str) -> Agent {
        Agent {
            id: id.into(),
            hostname: id.into(),
            ip: "127.0.0.1".into(),
            domain: Some(FaultDomain::new("r", zone)),
            resources: Default::default(),
            attributes: Default::default(),
        }
    }

    fn cand(
        id: &str,
        agent: &str,
        condition: Condition,
        healthy: Option<bool>,
        t: u64,
    ) -> KillCandidate {
        KillCandidate {
            instance_id: id.into(),
            agent_id: agent.into(),
            condition,
            healthy,
            started_at: t,
        }
    }

    #[test]
    fn keeps_groups_balanced_before_anything_else() {
        let app = AppDefinition::from_json(
            &json!({"id":"a","cmd":"x","constraints":[["@zone","GROUP_BY"]]}),
        )
        .unwrap();
        let agents = [agent("a1", "a"), agent("b1", "b")];
        let cands = [
            cand("1", "a1", Condition::Running, None, 1),
            cand("2", "a1", Condition::Running, None, 2),
            cand("3", "a1", Condition::Running, None, 3),
            cand("4", "b1", Condition::Unreachable, None, 4),
        ];
        // Zone a holds 3, zone b 1: the first two kills come from a, the youngest first.
        let chosen = select_to_kill(&app, &agents, "r", &cands, 2);
        assert_eq!(chosen, vec![2, 1]);
    }

    #[test]
    fn prefers_unreachable_then_staging_then_unhealthy_then_youngest() {
        let app = AppDefinition::from_json(&json!({"id":"a","cmd":"x"})).unwrap();
        let agents = [agent("a1", "a")];
        let cands = [
            cand("old", "a1", Condition::Running, Some(true), 1),
            cand("young", "a1", Condition::Running, Some(true), 9),
            cand("sick", "a1", Condition::Running, Some(false), 2),
            cand("staging", "a1", Condition::Staging, None, 3),
            cand("lost", "a1", Condition::Unreachable, None, 4),
            cand("gone", "zz", Condition::Running, None, 5),
        ];
        let order: Vec<&str> = select_to_kill(&app, &agents, "r", &cands, 6)
            .into_iter()
            .map(|i| cands[i].instance_id.as_str())
            .collect();
        assert_eq!(order, ["gone", "lost", "staging", "sick", "young", "old"]);

        let oldest =
            AppDefinition::from_json(&json!({"id":"a","cmd":"x","killSelection":"OLDEST_FIRST"}))
                .unwrap();
        let first = select_to_kill(&oldest, &agents, "r", &cands[..2], 1);
        assert_eq!(first, vec![0]);
    }
}
