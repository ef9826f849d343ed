//! Protection against mass eviction, beyond what Marathon had (after Kubernetes' node
//! lifecycle controller): when many agents become unreachable together, the likelier cause
//! is a network partition or a failing zone switch, not that many machines died, and
//! replacing everything at once would overload the rest of the cluster.
//!
//! - A zone is **protected** when at least two of its agents, and at least the threshold
//!   (55 % by default) of them, are unreachable; the whole cluster is protected when that
//!   holds for all agents. In a protected scope, instances of one unreachable agent at a
//!   time are replaced, one agent per interval.
//! - When **every zone** looks unreachable, the leader assumes that it is the one cut off
//!   and replaces nothing.
//!
//! Both are visible in `/v1/cluster/health` and as `eviction_protection_event`s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use domain::AgentId;
use state::{AgentState, ClusterState};

use crate::events::{Event, EventBus};

/// How the cluster looks this pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assessment {
    /// Every zone looks unreachable: replace nothing.
    pub cut_off: bool,
    /// All agents are one protected scope.
    pub cluster_protected: bool,
    /// Protected zones.
    pub zones: BTreeSet<String>,
}

impl Assessment {
    /// Whether replacements on an agent in `zone` are rate-limited.
    pub fn limits(&self, zone: &str) -> bool {
        self.cluster_protected || self.zones.contains(zone)
    }

    /// Engaged at all.
    pub fn engaged(&self) -> bool {
        self.cut_off || self.cluster_protected || !self.zones.is_empty()
    }

    /// For people.
    pub fn describe(&self, interval: Duration) -> String {
        if self.cut_off {
            "every zone looks unreachable: this leader assumes it is cut off and replaces nothing"
                .into()
        } else if self.cluster_protected {
            format!(
                "most agents are unreachable: replacing the instances of one agent every {} s",
                interval.as_secs()
            )
        } else if self.zones.is_empty() {
            "not engaged".into()
        } else {
            let zones: Vec<&str> = self.zones.iter().map(String::as_str).collect();
            format!(
                "zones {} have most agents unreachable: replacing the instances of one agent every {} s there",
                zones.join(", "),
                interval.as_secs()
            )
        }
    }
}

/// Looks at the registry: which scopes are protected.
pub fn assess(state: &ClusterState, threshold: f64) -> Assessment {
    let mut zones: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in state
        .agents()
        .values()
        .filter(|r| r.state != AgentState::Gone)
    {
        let z = zones
            .entry(r.agent.zone().unwrap_or("").to_string())
            .or_default();
        z.0 += 1;
        if r.state == AgentState::Unreachable {
            z.1 += 1;
        }
    }
    let heavy = |total: usize, lost: usize| lost >= 2 && lost as f64 >= threshold * total as f64;
    let (total, lost) = zones
        .values()
        .fold((0, 0), |(t, l), (zt, zl)| (t + zt, l + zl));
    let cut_off = lost > 0
        && zones.len() > 1
        && zones
            .values()
            .all(|(t, l)| *l as f64 >= threshold * *t as f64 && *l > 0);
    Assessment {
        cut_off,
        cluster_protected: heavy(total, lost),
        zones: zones
            .iter()
            .filter(|(_, (t, l))| heavy(*t, *l))
            .map(|(z, _)| z.clone())
            .collect(),
    }
}

/// The leader's memory of which unreachable agents' instances may be replaced.
#[derive(Debug, Default)]
pub struct EvictionGuard {
    inner: Mutex<GuardInner>,
}

#[derive(Debug, Default)]
struct GuardInner {
    released: BTreeSet<AgentId>,
    last_release: Option<Instant>,
    last: Assessment,
}

impl EvictionGuard {
    /// Records this pass's assessment; publishes an event when it changes.
    pub fn observe(&self, now: &Assessment, events: &EventBus, interval: Duration) {
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.last != *now {
            events.publish(Event::EvictionProtectionEvent {
                engaged: now.engaged(),
                cut_off: now.cut_off,
                zones: now.zones.iter().cloned().collect(),
                reason: now.describe(interval),
            });
            g.last = now.clone();
        }
        if !now.engaged() {
            g.released.clear();
        }
    }

    /// The current assessment.
    pub fn current(&self) -> Assessment {
        self.inner
            .lock()
            .map(|g| g.last.clone())
            .unwrap_or_default()
    }

    /// Whether the instances of `agent` (in a protected scope) may be replaced now: agents
    /// already released may; one more is released per `interval`.
    pub fn permit(&self, agent: &AgentId, interval: Duration) -> bool {
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.released.contains(agent) {
            return true;
        }
        if g.last_release.is_none_or(|t| t.elapsed() >= interval) {
            g.released.insert(agent.clone());
            g.last_release = Some(Instant::now());
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{Agent, FaultDomain};
    use state::Command;

    fn cluster(zones: &[(&str, usize, usize)]) -> ClusterState {
        let mut s = ClusterState::default();
        let mut n = 0;
        for (zone, total, lost) in zones {
            for i in 0..*total {
                n += 1;
                let id = format!("{zone}-{i}");
                let agent = Agent {
                    id: id.as_str().into(),
                    hostname: id.clone(),
                    ip: format!("10.0.0.{n}"),
                    domain: Some(FaultDomain::new("r", *zone)),
                    resources: Default::default(),
                    attributes: Default::default(),
                };
                s.apply(Command::RegisterAgent {
                    agent,
                    remote: false,
                    at_ms: 0,
                });
                if i < *lost {
                    s.apply(Command::SetAgentState {
                        agent_id: id.as_str().into(),
                        state: AgentState::Unreachable,
                        at_ms: 1,
                    });
                }
            }
        }
        s
    }

    #[test]
    fn one_lost_agent_is_never_mass_eviction() {
        let a = assess(&cluster(&[("a", 1, 1), ("b", 1, 0), ("c", 1, 0)]), 0.55);
        assert!(!a.engaged());
    }

    #[test]
    fn a_zone_with_most_agents_lost_is_protected() {
        let a = assess(&cluster(&[("a", 3, 2), ("b", 3, 0), ("c", 3, 0)]), 0.55);
        assert_eq!(a.zones.iter().collect::<Vec<_>>(), ["a"]);
        assert!(!a.cluster_protected && !a.cut_off);
        let b = assess(&cluster(&[("a", 3, 1), ("b", 3, 0)]), 0.55);
        assert!(!b.engaged());
    }

    #[test]
    fn every_zone_unreachable_means_the_leader_is_cut_off() {
        let a = assess(&cluster(&[("a", 2, 2), ("b", 2, 2), ("c", 1, 1)]), 0.55);
        assert!(a.cut_off && a.cluster_protected);
    }

    #[test]
    fn one_agent_is_released_per_interval() {
        let guard = EvictionGuard::default();
        let interval = Duration::from_secs(3600);
        assert!(guard.permit(&"x".into(), interval));
        assert!(
            guard.permit(&"x".into(), interval),
            "a released agent stays released"
        );
        assert!(!guard.permit(&"y".into(), interval));
    }
}
