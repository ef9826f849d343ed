//! `GET /v1/cluster/health`: checks an operator reads before trusting the cluster, each with
//! pass, warn or fail and a reason in words.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use client::{Check, ClusterHealth, Status, ZoneHealth};
use domain::Operator;
use state::AgentState;

use crate::agents::{AgentView, RTT_WARNING_MS};
use crate::error::ApiError;
use crate::node::RaftNode;
use crate::scheduler::{Assessment, EvictionGuard, Queue};

fn check(name: &str, status: Status, reason: String) -> Check {
    Check::new(name, status, reason)
}

/// Each zone's state as the last scheduler pass assessed it, with its counts.
fn zones_json(a: &Assessment) -> Vec<ZoneHealth> {
    a.zones
        .iter()
        .map(|(name, z)| ZoneHealth {
            zone: name.clone(),
            state: z.state.as_str().to_string(),
            agents: z.agents,
            unreachable: z.unreachable,
        })
        .collect()
}

/// `GET /v1/cluster/health`: the checks, and `zones`, each zone's state (`healthy`,
/// `partly-unreachable`, `outage`, `cut-off`; see `scheduler::eviction`).
pub async fn health(
    State(m): State<Arc<RaftNode>>,
    State(agents): State<Arc<AgentView>>,
    State(queue): State<Arc<Queue>>,
    State(eviction): State<Arc<EvictionGuard>>,
) -> Result<Json<ClusterHealth>, ApiError> {
    m.linearizable().await?;
    let queue = queue.entries();
    let voters = crate::membership::View::of(&m).voters;
    let checks = m.state().read(|a| {
        let s = &a.state;
        let mut checks = Vec::new();
        let n = m.voter_count();
        checks.push(if n % 2 == 1 && n > 1 {
            check("masters-count", Status::Pass, format!("{n} masters: the cluster survives {} failures", n / 2))
        } else if n == 1 {
            check("masters-count", Status::Warn, "1 master: losing it stops every change; run 3 or 5 for high availability".into())
        } else {
            check("masters-count", Status::Fail, format!("{n} masters: run an odd number (3 or 5)"))
        });
        let domains: Vec<_> = s.masters().values().filter_map(|r| r.domain.clone()).collect();
        let regions: BTreeSet<&str> = domains.iter().map(|d| d.region.as_str()).collect();
        checks.push(if regions.len() <= 1 {
            check("masters-region", Status::Pass, format!("all masters are in region {}", regions.iter().next().unwrap_or(&"N/A")))
        } else {
            check("masters-region", Status::Fail, format!("masters span regions {regions:?}; all must be in one"))
        });
        // Voters only: a learner in a zone that has a voter costs no quorum when it is lost.
        let mut per_zone: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for (id, r) in s.masters() {
            if let Some(d) = r.domain.as_ref().filter(|_| voters.is_empty() || voters.contains(id)) {
                per_zone.entry(d.zone.as_str()).or_default().push(*id);
            }
        }
        let voting: usize = per_zone.values().map(Vec::len).sum();
        let shared: Vec<String> = per_zone
            .iter()
            .filter(|(_, ids)| ids.len() > 1)
            .map(|(zone, ids)| format!("zone {zone}: masters {}", ids.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")))
            .collect();
        checks.push(if n == 1 || shared.is_empty() {
            check("masters-zones", Status::Pass, format!("{voting} voting masters in {} zones", per_zone.len()))
        } else {
            check("masters-zones", Status::Warn, format!("voters share a zone ({}); losing that zone may cost the quorum — put each voter in its own zone, or remove one (`drover operator masters remove ID`) and add it back in another zone", shared.join("; ")))
        });
        let unreachable: Vec<String> = s
            .agents()
            .values()
            .filter(|r| r.state == AgentState::Unreachable)
            .map(|r| r.agent.hostname.clone())
            .collect();
        checks.push(if unreachable.is_empty() {
            check("agents-reachable", Status::Pass, format!("all {} agents answer", s.agents().len()))
        } else {
            check("agents-reachable", Status::Warn, format!("unreachable agents: {}", unreachable.join(", ")))
        });
        let slow: Vec<String> = s
            .agents()
            .values()
            .filter_map(|r| agents.rtt_ms(&r.agent.id).filter(|rtt| *rtt >= RTT_WARNING_MS).map(|rtt| format!("{} ({rtt} ms)", r.agent.hostname)))
            .collect();
        checks.push(if slow.is_empty() {
            check("agents-rtt", Status::Pass, format!("every agent answers the leader in under {RTT_WARNING_MS} ms"))
        } else {
            check("agents-rtt", Status::Warn, format!("agents at or above {RTT_WARNING_MS} ms from the leader: {}", slow.join(", ")))
        });
        // GROUP_BY spread over the values that are alive.
        let mut degraded = Vec::new();
        for (id, record) in s.apps() {
            for c in record.current().app.constraints.iter().filter(|c| c.operator == Operator::GroupBy) {
                let local = s.local_region().unwrap_or(m.config().domain.region.as_str());
                let mut per: BTreeMap<String, usize> = BTreeMap::new();
                for i in s.instances_of(id).filter(|i| !i.condition.is_terminal()) {
                    if let Some(v) = s.agent(&i.agent_id).and_then(|r| c.value_of(&r.agent, local)) {
                        *per.entry(v.into_owned()).or_default() += 1;
                    }
                }
                let (lo, hi) = (per.values().min().copied().unwrap_or(0), per.values().max().copied().unwrap_or(0));
                if hi > lo + 1 {
                    degraded.push(format!("{id} {c}: {per:?}"));
                }
            }
        }
        checks.push(if degraded.is_empty() {
            check("group-by-balance", Status::Pass, "every GROUP_BY is balanced within one".into())
        } else {
            check("group-by-balance", Status::Warn, format!("unbalanced: {}", degraded.join("; ")))
        });
        let protection = eviction.current();
        let interval_ms = u64::try_from(m.config().eviction_interval.as_millis()).unwrap_or(u64::MAX);
        let reason = protection.describe(interval_ms);
        let mut eviction = if protection.cut_off() {
            check("eviction-protection", Status::Fail, reason)
        } else if protection.engaged() {
            check("eviction-protection", Status::Warn, reason)
        } else {
            check("eviction-protection", Status::Pass, reason)
        };
        eviction.zones = Some(zones_json(&protection));
        checks.push(eviction);
        let failing: Vec<String> = queue
            .iter()
            .filter_map(|(id, e)| Some(format!("{id}: {}", e.error.as_ref()?)))
            .collect();
        checks.push(if failing.is_empty() {
            check("scheduler", Status::Pass, "every app was decided about in the last pass".into())
        } else {
            check("scheduler", Status::Fail, failing.join("; "))
        });
        let waiting: Vec<String> = queue
            .iter()
            .filter(|(_, e)| e.error.is_none())
            .map(|(id, e)| {
                let why: Vec<String> = e
                    .reasons
                    .iter()
                    .map(|(r, n)| if *n == 0 { r.clone() } else { format!("{r} ({n} agents)") })
                    .collect();
                format!("{id}: {} unplaced{}", e.unplaced, if why.is_empty() { String::new() } else { format!(" — {}", why.join(", ")) })
            })
            .collect();
        checks.push(if waiting.is_empty() {
            check("instances-placed", Status::Pass, "every instance is placed".into())
        } else {
            check("instances-placed", Status::Warn, waiting.join("; "))
        });
        checks
    });
    let status = checks
        .iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(Status::Pass);
    let zones = zones_json(&eviction.current());
    Ok(Json(ClusterHealth {
        status,
        checks,
        zones,
    }))
}
