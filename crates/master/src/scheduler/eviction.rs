//! Protection against mass eviction, and the zone-outage rule (after Kubernetes' node
//! lifecycle controller): when many agents become unreachable together, what to replace
//! depends on how each zone looks.
//!
//! | zone state | when | instances on its unreachable agents |
//! |---|---|---|
//! | `healthy` | fewer than two, or fewer than the threshold (55 % by default), of its agents unreachable | replaced as their app's `unreachableStrategy` says |
//! | `partly-unreachable` | at least two and at least the threshold unreachable, but not a zone outage | paced: one more agent's instances per interval |
//! | `outage` | every agent of the zone unreachable while every other zone is healthy | replaced at once, as capacity allows, over the other zones |
//! | `cut-off` | every zone has at least the threshold of its agents unreachable | nothing replaced: the leader assumes it is the one cut off |
//!
//! A zone wholly lost while the others answer is what spreading over zones is for: pacing it
//! (one agent per 30 s) left a lost zone of 100 agents about 50 minutes without its
//! instances. A zone partly lost is likelier a failing switch or a partition that heals, so it
//! stays paced; a zone wholly lost while another zone is failing too is paced as well (the
//! cluster is in trouble, and the rest may not take the load). Whether a zone is
//! out depends on the other zones, and agents are found silent (or come back) one after
//! another, not in one instant: so the scheduler replaces nothing on an unreachable agent
//! until no agent anywhere has changed state for the settle delay (a heartbeat interval and
//! a liveness tick). The agents of a failing zone are then judged as one outage, and the
//! agents of a whole cluster coming back one by one are not taken, half-way, for zones
//! lost while others are healthy. Each transition is published as an `eviction_protection_event` and the
//! states show in `/v1/cluster/health`.

use std::collections::{BTreeMap, BTreeSet};

use crate::events::Event;
use domain::AgentId;
use state::{AgentState, ClusterState};

/// A zone's state, as one pass assesses it (see the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ZoneState {
    /// Replacements as usual.
    Healthy,
    /// Beyond the threshold, not an outage: replacements paced.
    PartlyUnreachable,
    /// Wholly unreachable while the other zones are healthy: everything replaced at once.
    Outage,
    /// Every zone is beyond the threshold: nothing replaced.
    CutOff,
}

impl ZoneState {
    /// The state's name in `/v1/cluster/health` and in events.
    pub fn as_str(self) -> &'static str {
        match self {
            ZoneState::Healthy => "healthy",
            ZoneState::PartlyUnreachable => "partly-unreachable",
            ZoneState::Outage => "outage",
            ZoneState::CutOff => "cut-off",
        }
    }
}

/// One zone as a pass saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// Its state.
    pub state: ZoneState,
    /// Its agents that are not gone.
    pub agents: usize,
    /// Of those, the unreachable ones.
    pub unreachable: usize,
}

/// How the cluster's zones look in one pass. Agents without a zone form the zone `""`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assessment {
    /// Every zone with agents, by name.
    pub zones: BTreeMap<String, Zone>,
    /// When an agent last changed state (was marked unreachable, came back, registered),
    /// ms since the epoch: zone states are trusted a settle delay after that.
    pub last_change_ms: Option<u64>,
}

impl Assessment {
    /// The state of `zone` (healthy when the zone has no agents).
    pub fn state(&self, zone: &str) -> ZoneState {
        self.zones.get(zone).map_or(ZoneState::Healthy, |z| z.state)
    }

    /// Every zone is unreachable: replace nothing.
    pub fn cut_off(&self) -> bool {
        self.zones.values().any(|z| z.state == ZoneState::CutOff)
    }

    /// Some zone is not healthy.
    pub fn engaged(&self) -> bool {
        self.zones.values().any(|z| z.state != ZoneState::Healthy)
    }

    /// The zones that are not healthy, with their states: a transition is a change of
    /// this (counts move without one, and a healthy zone appearing is none).
    pub fn states(&self) -> BTreeMap<&str, ZoneState> {
        self.zones
            .iter()
            .filter(|(_, z)| z.state != ZoneState::Healthy)
            .map(|(name, z)| (name.as_str(), z.state))
            .collect()
    }

    /// The zones that are not healthy.
    pub fn not_healthy(&self) -> Vec<&str> {
        self.zones
            .iter()
            .filter(|(_, z)| z.state != ZoneState::Healthy)
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// For people: what holds and what it means for replacements.
    pub fn describe(&self, interval_ms: u64) -> String {
        if self.cut_off() {
            return "every zone looks unreachable: this leader assumes it is cut off and replaces nothing".into();
        }
        let mut parts = Vec::new();
        for (name, z) in self
            .zones
            .iter()
            .filter(|(_, z)| z.state != ZoneState::Healthy)
        {
            let counts = format!("{} of {} agents unreachable", z.unreachable, z.agents);
            parts.push(match z.state {
                ZoneState::Outage => format!(
                    "zone {name} is out ({counts}): its instances are replaced at once in the other zones"
                ),
                _ => format!(
                    "zone {name} has {counts}: replacing the instances of one agent every {} s there",
                    interval_ms / 1000
                ),
            });
        }
        if parts.is_empty() {
            "not engaged: every zone is healthy".into()
        } else {
            parts.join("; ")
        }
    }

    /// The `eviction_protection_event` announcing this assessment.
    pub fn event(&self, interval_ms: u64) -> Event {
        Event::EvictionProtectionEvent {
            engaged: self.engaged(),
            cut_off: self.cut_off(),
            zones: self.not_healthy().into_iter().map(str::to_string).collect(),
            zone_states: self
                .zones
                .iter()
                .map(|(name, z)| (name.clone(), z.state.as_str().to_string()))
                .collect(),
            reason: self.describe(interval_ms),
        }
    }
}

/// Looks at the registry: each zone's state, with `threshold` the fraction of a zone's
/// agents that makes it more than a few lost machines.
pub fn assess(state: &ClusterState, threshold: f64) -> Assessment {
    let mut zones: BTreeMap<String, Zone> = BTreeMap::new();
    let mut last_change_ms = None;
    for r in state
        .agents()
        .values()
        .filter(|r| r.state != AgentState::Gone)
    {
        let z = zones
            .entry(r.agent.zone().unwrap_or("").to_string())
            .or_insert(Zone {
                state: ZoneState::Healthy,
                agents: 0,
                unreachable: 0,
            });
        z.agents += 1;
        if r.state == AgentState::Unreachable {
            z.unreachable += 1;
        }
        last_change_ms = last_change_ms.max(Some(r.state_since_ms));
    }
    let beyond = |z: &Zone| z.unreachable as f64 >= threshold * z.agents as f64;
    let heavy = |z: &Zone| z.unreachable >= 2 && beyond(z);
    let wholly = |z: &Zone| z.agents > 0 && z.unreachable == z.agents;
    let cut_off = zones.len() > 1 && zones.values().all(|z| z.unreachable > 0 && beyond(z));
    let failing: BTreeSet<String> = zones
        .iter()
        .filter(|(_, z)| heavy(z) || wholly(z))
        .map(|(name, _)| name.clone())
        .collect();
    let several = zones.len() > 1;
    for (name, z) in zones.iter_mut() {
        // A zone outage needs somewhere else to go: a lone zone wholly lost is paced.
        let others_healthy = several && failing.iter().all(|f| f == name);
        z.state = if cut_off {
            ZoneState::CutOff
        } else if wholly(z) && others_healthy {
            ZoneState::Outage
        } else if heavy(z) {
            ZoneState::PartlyUnreachable
        } else {
            ZoneState::Healthy
        };
    }
    Assessment {
        zones,
        last_change_ms,
    }
}

/// The leader's memory of pacing between passes (not replicated): which unreachable agents'
/// instances may be replaced, when the last one was released, and the last assessment (to
/// tell a transition).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvictionMemory {
    /// Agents whose instances may be replaced although their zone is paced.
    pub released: BTreeSet<AgentId>,
    /// When the last agent was released, ms since the epoch.
    pub last_release_ms: Option<u64>,
    /// The assessment of the last pass that committed.
    pub last: Assessment,
}

impl EvictionMemory {
    /// Whether the instances of `agent` (in a paced zone) may be replaced at `now_ms`:
    /// agents already released may; one more is released per `interval_ms`. Otherwise
    /// `Err` with when the next one may be.
    pub fn permit(&mut self, agent: &AgentId, now_ms: u64, interval_ms: u64) -> Result<(), u64> {
        if self.released.contains(agent) {
            return Ok(());
        }
        match self.last_release_ms {
            Some(t) if now_ms < t.saturating_add(interval_ms) => Err(t.saturating_add(interval_ms)),
            _ => {
                self.released.insert(agent.clone());
                self.last_release_ms = Some(now_ms);
                Ok(())
            }
        }
    }

    /// Takes in this pass's assessment: the event to publish if a zone's state changed, and
    /// no more released agents once no zone is paced.
    pub fn observe(&mut self, now: &Assessment, interval_ms: u64) -> Option<Event> {
        let event = (self.last.states() != now.states()).then(|| now.event(interval_ms));
        if !now.engaged() {
            self.released.clear();
        }
        self.last = now.clone();
        event
    }
}
