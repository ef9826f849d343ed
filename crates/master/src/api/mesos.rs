//! Mesos master read endpoints (and Mesos-DNS names) for DC/OS tooling: the leader and every
//! agent with `domain.fault_domain`, so `dcos node` and friends show regions and zones.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use client::mesos::{
    DnsHost, Framework, FrameworkTask, LeaderInfo, MesosState, Slave, Slaves, StateSummary,
    UsedResources,
};
use state::{AgentState, ClusterState};

use super::tasks::task_json;
use crate::agents::AgentView;
use crate::error::ApiError;
use crate::node::RaftNode;

fn host_port(addr: &str) -> (&str, u16) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().unwrap_or(0)),
        None => (addr, 0),
    }
}

fn slave_json(s: &ClusterState, r: &state::machine::AgentRecord) -> Slave {
    let a = &r.agent;
    let used = s.usage(&a.id);
    let thousandths = |v: u64| v as f64 / 1000.0;
    Slave {
        id: a.id.to_string(),
        hostname: a.hostname.clone(),
        pid: format!("slave(1)@{}:5051", a.ip),
        active: r.state == AgentState::Active,
        registered_time: r.registered_at_ms as f64 / 1000.0,
        resources: a.resources.clone(),
        used_resources: UsedResources {
            cpus: thousandths(used.cpus),
            mem: thousandths(used.mem),
            disk: thousandths(used.disk),
        },
        attributes: a.attributes.clone(),
        domain: a.domain.as_ref().map(|d| d.to_json()),
        task_running: used.tasks,
    }
}

fn framework(s: &ClusterState, tasks: Option<Vec<FrameworkTask>>) -> Framework {
    Framework {
        id: s.cluster_id().map(str::to_string),
        name: "marathon".into(),
        active: true,
        tasks,
    }
}

fn framework_json(agents: &AgentView, own_region: &str, s: &ClusterState) -> Framework {
    let tasks = s
        .instances()
        .values()
        .filter(|i| !i.condition.is_terminal())
        .map(|i| {
            let t = task_json(agents, own_region, s, i);
            FrameworkTask {
                id: i.id.to_string(),
                name: i.app_id.as_str().trim_start_matches('/').to_string(),
                framework_id: s.cluster_id().map(str::to_string),
                slave_id: i.agent_id.to_string(),
                state: t.state,
                resources: Default::default(),
                region: t.region,
                zone: t.zone,
            }
        })
        .collect();
    framework(s, Some(tasks))
}

fn leader_info(m: &RaftNode) -> LeaderInfo {
    let leader = m.leader();
    let (host, port) = leader.as_ref().map_or(("", 0), |(_, a)| host_port(a));
    LeaderInfo {
        id: leader.as_ref().map(|(id, _)| id.to_string()),
        hostname: host.to_string(),
        ip: host.to_string(),
        port,
        domain: m.config().domain.to_json(),
    }
}

/// `GET /mesos/master/state` (and `state.json`).
pub async fn state(
    State(m): State<Arc<RaftNode>>,
    State(agents): State<Arc<AgentView>>,
) -> Result<Json<MesosState>, ApiError> {
    m.linearizable().await?;
    let leader = m.leader().map(|(_, a)| a);
    Ok(Json(m.state().read(|a| {
        let s = &a.state;
        let count = |st: AgentState| s.agents().values().filter(|r| r.state == st).count();
        MesosState {
            version: format!("drover-{}", env!("CARGO_PKG_VERSION")),
            id: s.cluster_id().map(str::to_string),
            cluster: "drover".into(),
            leader: leader.as_ref().map(|l| format!("master@{l}")),
            leader_info: leader_info(&m),
            hostname: host_port(m.config().advertised()).0.to_string(),
            domain: m.config().domain.to_json(),
            activated_slaves: count(AgentState::Active),
            deactivated_slaves: 0,
            unreachable_slaves: count(AgentState::Unreachable),
            slaves: s.agents().values().map(|r| slave_json(s, r)).collect(),
            frameworks: vec![framework_json(&agents, &m.config().domain.region, s)],
        }
    })))
}

/// `GET /mesos/master/state-summary`.
pub async fn state_summary(State(m): State<Arc<RaftNode>>) -> Result<Json<StateSummary>, ApiError> {
    m.linearizable().await?;
    Ok(Json(m.state().read(|a| {
        let s = &a.state;
        StateSummary {
            hostname: host_port(m.config().advertised()).0.to_string(),
            cluster: "drover".into(),
            leader_info: leader_info(&m),
            slaves: s.agents().values().map(|r| slave_json(s, r)).collect(),
            frameworks: vec![framework(s, None)],
        }
    })))
}

/// `GET /mesos/master/slaves`.
pub async fn slaves(State(m): State<Arc<RaftNode>>) -> Result<Json<Slaves>, ApiError> {
    m.linearizable().await?;
    Ok(Json(m.state().read(|a| {
        Slaves {
            slaves: a
                .state
                .agents()
                .values()
                .map(|r| slave_json(&a.state, r))
                .collect(),
        }
    })))
}

/// `GET /mesos_dns/v1/hosts/master.mesos`: every master.
pub async fn dns_masters(State(m): State<Arc<RaftNode>>) -> Json<Vec<DnsHost>> {
    Json(
        m.members()
            .values()
            .map(|addr| dns_host("master.mesos.", addr))
            .collect(),
    )
}

fn dns_host(host: &str, addr: &str) -> DnsHost {
    DnsHost {
        host: host.to_string(),
        ip: host_port(addr).0.to_string(),
    }
}

/// `GET /mesos_dns/v1/hosts/leader.mesos`: the leader.
pub async fn dns_leader(State(m): State<Arc<RaftNode>>) -> Json<Vec<DnsHost>> {
    Json(
        m.leader()
            .map(|(_, addr)| dns_host("leader.mesos.", &addr))
            .into_iter()
            .collect(),
    )
}
