//! The Mesos master read endpoints drover answers for DC/OS tooling
//! (`/mesos/master/state`, `state-summary`, `slaves`) and the Mesos-DNS host lists.

use domain::{Attributes, Resources};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `GET /mesos/master/state` (and `state.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MesosState {
    /// `drover-<version>`.
    pub version: String,
    /// The cluster's id, once initialized.
    pub id: Option<String>,
    /// Always `drover`.
    pub cluster: String,
    /// `master@HOST:PORT` of the leader, when known.
    pub leader: Option<String>,
    /// The leader's address and fault domain.
    pub leader_info: LeaderInfo,
    /// The answering master's host.
    pub hostname: String,
    /// The answering master's fault domain (`{"fault_domain": {"region": {"name"}, …}}`).
    pub domain: Value,
    /// Agents that are active.
    pub activated_slaves: usize,
    /// Always 0.
    pub deactivated_slaves: usize,
    /// Agents that are unreachable.
    pub unreachable_slaves: usize,
    /// Every agent.
    pub slaves: Vec<Slave>,
    /// The one framework, Marathon, with its tasks.
    pub frameworks: Vec<Framework>,
}

/// `GET /mesos/master/state-summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateSummary {
    /// The answering master's host.
    pub hostname: String,
    /// Always `drover`.
    pub cluster: String,
    /// The leader's address and fault domain.
    pub leader_info: LeaderInfo,
    /// Every agent.
    pub slaves: Vec<Slave>,
    /// The one framework, without its tasks.
    pub frameworks: Vec<Framework>,
}

/// `GET /mesos/master/slaves`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slaves {
    /// Every agent.
    pub slaves: Vec<Slave>,
}

/// The leader as Mesos describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderInfo {
    /// Its Raft id as text, when a leader is known.
    pub id: Option<String>,
    /// Its host (empty without a leader).
    pub hostname: String,
    /// Its host (empty without a leader).
    pub ip: String,
    /// Its port (0 without a leader).
    pub port: u16,
    /// The answering master's fault domain.
    pub domain: Value,
}

/// An agent as Mesos describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slave {
    /// Its agent id.
    pub id: String,
    /// Its hostname.
    pub hostname: String,
    /// `slave(1)@IP:5051`.
    pub pid: String,
    /// Whether it is active.
    pub active: bool,
    /// When it registered, in seconds since the epoch.
    pub registered_time: f64,
    /// What it offers.
    pub resources: Resources,
    /// What live instances reserve of it.
    pub used_resources: UsedResources,
    /// Its attributes.
    pub attributes: Attributes,
    /// Its fault domain, when it has one.
    pub domain: Option<Value>,
    /// Live instances on it.
    #[serde(rename = "TASK_RUNNING")]
    pub task_running: usize,
}

/// `used_resources` of an agent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UsedResources {
    /// CPU shares.
    pub cpus: f64,
    /// Memory in MiB.
    pub mem: f64,
    /// Disk in MiB.
    pub disk: f64,
}

/// The Marathon framework.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Framework {
    /// The cluster's id.
    pub id: Option<String>,
    /// Always `marathon`.
    pub name: String,
    /// Always true.
    pub active: bool,
    /// Its live tasks (in `state`, not in `state-summary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<FrameworkTask>>,
}

/// A task as Mesos describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameworkTask {
    /// The instance id.
    pub id: String,
    /// The app's path without the leading `/`.
    pub name: String,
    /// The cluster's id.
    pub framework_id: Option<String>,
    /// Its agent's id.
    pub slave_id: String,
    /// Mesos' task state, `TASK_RUNNING`.
    pub state: String,
    /// Always empty.
    pub resources: Map<String, Value>,
    /// Its agent's region.
    pub region: Option<String>,
    /// Its agent's zone.
    pub zone: Option<String>,
}

/// One host of a Mesos-DNS answer (`/mesos_dns/v1/hosts/{master,leader}.mesos`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsHost {
    /// `master.mesos.` or `leader.mesos.`.
    pub host: String,
    /// The master's host.
    pub ip: String,
}
