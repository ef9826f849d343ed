//! Placement: choose agents for an app's missing instances, or say why they cannot go anywhere.
//!
//! A pipeline over a snapshot, in the manner of Nomad's scheduler:
//!
//! 1. **Feasibility.** Every agent is checked once against what does not change while
//!    placing: the region rule (the local region by default, the `@region` one when given),
//!    the constraints that look only at the agent (`LIKE`, `UNLIKE`, `IS`, `CLUSTER` with a
//!    value, and "the field must exist"), and room for one instance. Each rejection is
//!    counted under its reason.
//! 2. **Partitions.** Feasible agents are grouped by their values of the `GROUP_BY` fields.
//!    Partitions sit in a min-heap keyed by how many instances their values already hold,
//!    so the least-filled value is always on top; agents inside a partition sit in a
//!    min-heap keyed by how many instances of the app they run, then by id.
//! 3. **Choice.** Each instance pops the least-filled partition and its least-loaded agent
//!    that still fits (resources, ports, `UNIQUE`, `MAX_PER`, `CLUSTER`). Every check there
//!    only ever turns from pass to fail as instances are placed, so an agent or partition
//!    that fails once is dropped for good. Each instance costs O(log agents), not a scan.
//!
//! The same input always gives the same output: ties are broken by agent id and value name.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use crate::agent::{Agent, AgentId};
use crate::app::AppDefinition;
use crate::constraint::{Constraint, Field, Operator};
use crate::ranges::Ranges;
use crate::resources::to_millis;

/// An instance of the app that already runs (or is staged) and counts for its constraints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingInstance {
    /// Agent the instance is on; instances on agents not in the snapshot are ignored.
    pub agent_id: AgentId,
}

/// What placement looks at.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// The masters' region: where apps without an `@region` constraint go.
    pub local_region: &'a str,
    /// Agents that may take work, each with the resources it has free now.
    pub agents: &'a [Agent],
    /// The app's instances that already count for its constraints.
    pub existing: &'a [ExistingInstance],
}

/// One new instance's place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Index of the agent in [`Snapshot::agents`].
    pub agent_index: usize,
    /// The agent's id.
    pub agent_id: AgentId,
    /// Host ports assigned to the instance, one per port definition.
    pub ports: Vec<u64>,
}

/// The outcome: where instances go, and for those that cannot go anywhere, why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlacementResult {
    /// Placements in the order they were made.
    pub placements: Vec<Placement>,
    /// Instances left unplaced.
    pub unplaced: u32,
    /// When instances are left unplaced: how many agents each reason ruled out.
    pub reasons: BTreeMap<String, u32>,
}

/// The reason given for agents outside the local region when the app names no region.
pub const REASON_REMOTE_REGION: &str = "remote region";

/// Places `count` new instances of `app` on the snapshot's agents.
pub fn place(app: &AppDefinition, count: u32, snapshot: &Snapshot<'_>) -> PlacementResult {
    Planner::new(app, snapshot).run(count)
}

/// What one instance needs, in exact units.
struct Need {
    cpus: u64,
    mem: u64,
    disk: u64,
    fixed_ports: Vec<u64>,
    any_ports: usize,
}

impl Need {
    fn of(app: &AppDefinition) -> Self {
        let (fixed, any): (Vec<u64>, Vec<u64>) = app
            .port_definitions
            .iter()
            .map(|p| {
                if app.require_ports {
                    u64::from(p.port)
                } else {
                    0
                }
            })
            .partition(|p| *p != 0);
        Need {
            cpus: to_millis(app.cpus),
            mem: to_millis(app.mem),
            disk: to_millis(app.disk),
            fixed_ports: fixed,
            any_ports: any.len(),
        }
    }

    fn needs_ports(&self) -> bool {
        self.any_ports > 0 || !self.fixed_ports.is_empty()
    }
}

/// An agent's free resources while placing.
struct Free {
    cpus: u64,
    mem: u64,
    disk: u64,
    ports: Ranges,
}

impl Free {
    /// The first resource that is short, as a reason.
    fn shortfall(&self, need: &Need) -> Option<&'static str> {
        if self.cpus < need.cpus {
            Some("insufficient cpus")
        } else if self.mem < need.mem {
            Some("insufficient mem")
        } else if self.disk < need.disk {
            Some("insufficient disk")
        } else if need.needs_ports()
            && (self.ports.count() < (need.fixed_ports.len() + need.any_ports) as u64
                || !need.fixed_ports.iter().all(|p| self.ports.contains(*p)))
        {
            Some("insufficient ports")
        } else {
            None
        }
    }

    fn take(&mut self, need: &Need) -> Vec<u64> {
        self.cpus -= need.cpus;
        self.mem -= need.mem;
        self.disk -= need.disk;
        let mut ports = Vec::with_capacity(need.fixed_ports.len() + need.any_ports);
        for p in &need.fixed_ports {
            self.ports.remove(*p);
            ports.push(*p);
        }
        if need.any_ports > 0 {
            ports.extend(self.ports.take_lowest(need.any_ports).unwrap_or_default());
        }
        ports
    }
}

/// A constraint whose verdict depends on where instances are.
#[derive(Clone, Copy)]
enum Rule {
    /// Not a constraint: zones are balanced by default, as a preference that never refuses.
    Spread,
    /// At most `n` instances per value (`UNIQUE` is 1).
    MaxPer(i64),
    /// Every instance on one value, the first one used.
    SameValue,
    /// Spread evenly, over at most `n` values (0 = any number).
    GroupBy(i64),
}

/// A dynamic constraint with every agent's value interned.
struct Tracked<'c> {
    /// The constraint; `None` for the default zone spread.
    constraint: Option<&'c Constraint>,
    rule: Rule,
    /// Value id per agent; `None` where the agent lacks the field.
    value_of_agent: Vec<Option<u32>>,
    /// Instances per value id.
    count: Vec<u32>,
    /// Value names, by id.
    names: Vec<String>,
    /// How many values hold at least one instance.
    in_use: usize,
    /// For `SameValue`: the value every instance must share.
    pinned: Option<u32>,
}

impl<'c> Tracked<'c> {
    /// Interns every agent's value, in rank order so ids are deterministic.
    fn new<'x>(
        constraint: Option<&'c Constraint>,
        rule: Rule,
        agents: &'x [Agent],
        by_rank: &[usize],
        value_of: impl Fn(&'x Agent) -> Option<std::borrow::Cow<'x, str>>,
    ) -> Self {
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut names = Vec::new();
        let mut value_of_agent = vec![None; agents.len()];
        for &a in by_rank {
            if let Some(v) = value_of(&agents[a]) {
                let next = names.len() as u32;
                let id = *ids.entry(v.clone().into_owned()).or_insert_with(|| {
                    names.push(v.into_owned());
                    next
                });
                value_of_agent[a] = Some(id);
            }
        }
        Tracked {
            constraint,
            rule,
            value_of_agent,
            count: vec![0; names.len()],
            names,
            in_use: 0,
            pinned: None,
        }
    }

    fn add(&mut self, value: u32) {
        let c = &mut self.count[value as usize];
        if *c == 0 {
            self.in_use += 1;
        }
        *c += 1;
        if matches!(self.rule, Rule::SameValue) && self.pinned.is_none() {
            self.pinned = Some(value);
        }
    }

    /// Whether one more instance may go on an agent with this value.
    fn admits(&self, value: u32) -> bool {
        match self.rule {
            Rule::MaxPer(n) => i64::from(self.count[value as usize]) < n,
            Rule::SameValue => self.pinned.is_none_or(|p| p == value),
            Rule::GroupBy(n) => {
                n <= 0 || self.count[value as usize] > 0 || (self.in_use as i64) < n
            }
            Rule::Spread => true,
        }
    }
}

struct Partition {
    /// Value id per `GROUP_BY` rule, in rule order.
    values: Vec<u32>,
    /// Agents as `(instances of the app on it, rank)`, least loaded first.
    agents: BinaryHeap<Reverse<(u32, u32)>>,
}

struct Planner<'a> {
    app: &'a AppDefinition,
    snapshot: &'a Snapshot<'a>,
    need: Need,
    free: Vec<Free>,
    on_agent: Vec<u32>,
    tracked: Vec<Tracked<'a>>,
    group_rules: Vec<usize>,
    rejected: Vec<Option<String>>,
    /// Agents in id order; an agent's rank is its position here.
    by_rank: Vec<usize>,
}

impl<'a> Planner<'a> {
    fn new(app: &'a AppDefinition, snapshot: &'a Snapshot<'a>) -> Self {
        let agents = snapshot.agents;
        let local = snapshot.local_region;
        let mut by_rank: Vec<usize> = (0..agents.len()).collect();
        by_rank.sort_by(|a, b| agents[*a].id.cmp(&agents[*b].id));

        let mut tracked = Vec::new();
        for c in &app.constraints {
            let rule = match (c.operator, c.value.as_deref()) {
                (Operator::Unique, _) => Rule::MaxPer(1),
                (Operator::MaxPer, _) => Rule::MaxPer(c.count_value()),
                (Operator::GroupBy, _) => Rule::GroupBy(c.count_value()),
                (Operator::Cluster, None | Some("")) => Rule::SameValue,
                _ => continue,
            };
            tracked.push(Tracked::new(Some(c), rule, agents, &by_rank, |a| {
                c.value_of(a, local)
            }));
        }
        // Unless the app groups by zone itself, balance zones as a preference: among
        // otherwise equal choices, the zone with the fewest instances of the app comes first.
        let zone_grouped = app
            .constraints
            .iter()
            .any(|c| c.field == Field::Zone && c.operator == Operator::GroupBy);
        if !zone_grouped {
            tracked.push(Tracked::new(None, Rule::Spread, agents, &by_rank, |a| {
                Some(a.zone().unwrap_or_default().into())
            }));
        }
        let group_rules = (0..tracked.len())
            .filter(|t| matches!(tracked[*t].rule, Rule::GroupBy(_) | Rule::Spread))
            .collect();

        let need = Need::of(app);
        let free = agents
            .iter()
            .map(|a| Free {
                cpus: to_millis(a.resources.cpus),
                mem: to_millis(a.resources.mem),
                disk: to_millis(a.resources.disk),
                ports: if need.needs_ports() {
                    a.resources.ports.clone()
                } else {
                    Ranges::default()
                },
            })
            .collect();

        let mut planner = Planner {
            app,
            snapshot,
            need,
            free,
            on_agent: vec![0; agents.len()],
            tracked,
            group_rules,
            rejected: vec![None; agents.len()],
            by_rank,
        };
        planner.count_existing();
        planner.check_feasibility();
        planner
    }

    fn count_existing(&mut self) {
        let index: HashMap<&str, usize> = self
            .snapshot
            .agents
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.0.as_str(), i))
            .collect();
        for inst in self.snapshot.existing {
            let Some(&a) = index.get(inst.agent_id.0.as_str()) else {
                continue;
            };
            self.on_agent[a] += 1;
            for t in &mut self.tracked {
                if let Some(v) = t.value_of_agent[a] {
                    t.add(v);
                }
            }
        }
    }

    /// Step 1: rule out agents for reasons that placing instances cannot change.
    fn check_feasibility(&mut self) {
        let local = self.snapshot.local_region;
        let region = self.app.region().unwrap_or(local);
        let region_constraint = self.app.constraints.iter().find(|c| c.region().is_some());
        for (a, agent) in self.snapshot.agents.iter().enumerate() {
            let reason = if agent.region().unwrap_or(local) != region {
                Some(match region_constraint {
                    Some(c) => format!("constraint {c}"),
                    None => REASON_REMOTE_REGION.to_string(),
                })
            } else if let Some(c) = self
                .app
                .constraints
                .iter()
                .filter(|c| c.field != Field::Region)
                .find(|c| !c.accepts_value(c.value_of(agent, local).as_deref()))
            {
                Some(format!("constraint {c}"))
            } else {
                self.free[a].shortfall(&self.need).map(str::to_string)
            };
            self.rejected[a] = reason;
        }
    }

    /// Whether agent `a` can take one more instance now.
    fn fits(&self, a: usize) -> bool {
        self.free[a].shortfall(&self.need).is_none()
            && self.tracked.iter().all(|t| match t.rule {
                Rule::GroupBy(_) => true,
                _ => t.value_of_agent[a].is_some_and(|v| t.admits(v)),
            })
    }

    /// A partition may take an instance unless a `GROUP_BY` n-limit keeps its value out.
    fn partition_open(&self, p: &Partition) -> bool {
        self.group_rules
            .iter()
            .zip(&p.values)
            .all(|(&t, &v)| self.tracked[t].admits(v))
    }

    fn partition_key(&self, p: &Partition) -> Vec<u32> {
        self.group_rules
            .iter()
            .zip(&p.values)
            .map(|(&t, &v)| self.tracked[t].count[v as usize])
            .collect()
    }

    fn partitions(&self) -> Vec<Partition> {
        let mut by_values: BTreeMap<Vec<&str>, Partition> = BTreeMap::new();
        for (rank, &a) in self.by_rank.iter().enumerate() {
            if self.rejected[a].is_some() {
                continue;
            }
            let values: Vec<u32> = self
                .group_rules
                .iter()
                .map(|&t| self.tracked[t].value_of_agent[a].unwrap_or(0))
                .collect();
            let names: Vec<&str> = self
                .group_rules
                .iter()
                .zip(&values)
                .map(|(&t, &v)| self.tracked[t].names[v as usize].as_str())
                .collect();
            by_values
                .entry(names)
                .or_insert_with(|| Partition {
                    values,
                    agents: BinaryHeap::new(),
                })
                .agents
                .push(Reverse((self.on_agent[a], rank as u32)));
        }
        by_values.into_values().collect()
    }

    fn run(mut self, count: u32) -> PlacementResult {
        let mut partitions = self.partitions();
        let mut heap: BinaryHeap<Reverse<(Vec<u32>, usize)>> = partitions
            .iter()
            .enumerate()
            .map(|(i, p)| Reverse((self.partition_key(p), i)))
            .collect();
        let mut result = PlacementResult {
            // Never in proportion to `count` alone: it may be far more than can be placed.
            placements: Vec::with_capacity((count as usize).min(self.snapshot.agents.len())),
            ..PlacementResult::default()
        };
        let mut closed = vec![false; partitions.len()];

        'instances: for placed in 0..count {
            loop {
                let Some(Reverse((key, p))) = heap.pop() else {
                    result.unplaced = count - placed;
                    break 'instances;
                };
                let current = self.partition_key(&partitions[p]);
                if current != key {
                    // Another partition sharing a value filled it since: requeue, fresher.
                    heap.push(Reverse((current, p)));
                    continue;
                }
                if !self.partition_open(&partitions[p]) {
                    closed[p] = true;
                    continue;
                }
                let Some((a, rank)) = self.take_agent(&mut partitions[p]) else {
                    continue;
                };
                let ports = self.free[a].take(&self.need);
                self.on_agent[a] += 1;
                for t in &mut self.tracked {
                    if let Some(v) = t.value_of_agent[a] {
                        t.add(v);
                    }
                }
                partitions[p].agents.push(Reverse((self.on_agent[a], rank)));
                result.placements.push(Placement {
                    agent_index: a,
                    agent_id: self.snapshot.agents[a].id.clone(),
                    ports,
                });
                heap.push(Reverse((self.partition_key(&partitions[p]), p)));
                continue 'instances;
            }
        }
        if result.unplaced > 0 {
            result.reasons = self.reasons(&partitions, &closed);
        }
        result
    }

    /// The least-loaded agent of a partition that still fits; agents that do not are dropped.
    fn take_agent(&self, p: &mut Partition) -> Option<(usize, u32)> {
        while let Some(Reverse((_, rank))) = p.agents.pop() {
            let a = self.by_rank[rank as usize];
            if self.fits(a) {
                return Some((a, rank));
            }
        }
        None
    }

    /// Why no agent can take another instance: one reason per agent, counted.
    fn reasons(&self, partitions: &[Partition], closed: &[bool]) -> BTreeMap<String, u32> {
        let mut reasons: BTreeMap<String, u32> = BTreeMap::new();
        // Partitions a `GROUP_BY` n-limit closed, by their values, with that constraint.
        let mut closed_by: HashMap<&[u32], String> = HashMap::new();
        for (part, _) in partitions.iter().zip(closed).filter(|(_, c)| **c) {
            let limit = self
                .group_rules
                .iter()
                .zip(&part.values)
                .find(|&(&t, &v)| !self.tracked[t].admits(v));
            if let Some(c) = limit.and_then(|(&t, _)| self.tracked[t].constraint) {
                closed_by.insert(&part.values, format!("constraint {c}"));
            }
        }
        let closed_reason = |a: usize| -> Option<&String> {
            let values: Vec<u32> = self
                .group_rules
                .iter()
                .map(|&t| self.tracked[t].value_of_agent[a].unwrap_or(0))
                .collect();
            closed_by.get(values.as_slice())
        };
        for a in 0..self.snapshot.agents.len() {
            let reason = if let Some(r) = &self.rejected[a] {
                r.clone()
            } else if let Some(r) = self.free[a].shortfall(&self.need) {
                r.to_string()
            } else if let Some(c) = self
                .tracked
                .iter()
                .find(|t| {
                    !matches!(t.rule, Rule::GroupBy(_) | Rule::Spread)
                        && !t.value_of_agent[a].is_some_and(|v| t.admits(v))
                })
                .and_then(|t| t.constraint)
            {
                format!("constraint {c}")
            } else if let Some(r) = closed_reason(a) {
                r.clone()
            } else {
                continue;
            };
            *reasons.entry(reason).or_default() += 1;
        }
        reasons
    }
}

#[cfg(test)]
mod tests;
