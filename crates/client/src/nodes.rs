//! `GET /v1/nodes`: every master (the leader marked) and agent, with its fault domain.

use domain::{Attributes, Resources};
use serde::{Deserialize, Serialize};

/// How much of its disk an agent's work dir uses (`state::protocol::DiskUse` on the wire).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskUse {
    /// Bytes under the work dir (checkpoints and sandboxes).
    pub work_dir_bytes: u64,
    /// Sandboxes kept, of running and of ended tasks.
    pub sandboxes: u64,
    /// Bytes still available on the work dir's filesystem.
    pub available_bytes: u64,
    /// Size of the work dir's filesystem in bytes.
    pub total_bytes: u64,
}

/// The answer of `GET /v1/nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nodes {
    /// The masters' region: agents elsewhere are remote.
    pub local_region: String,
    /// Masters first (by id), then agents (local region first, then by region, zone, host).
    pub nodes: Vec<Node>,
}

/// A master or an agent, told apart by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Node {
    /// A master.
    Master(MasterNode),
    /// An agent.
    Agent(AgentNode),
}

/// A master of `/v1/nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterNode {
    /// Its Raft id, as text.
    pub id: String,
    /// The host of its address.
    pub hostname: String,
    /// The host of its address.
    pub ip: String,
    /// Its `HOST:PORT`.
    pub address: String,
    /// Whether it leads.
    pub leader: bool,
    /// Its region, when it registered one.
    pub region: Option<String>,
    /// Its zone, when it registered one.
    pub zone: Option<String>,
    /// Always false: masters are in the local region.
    pub remote: bool,
}

/// An agent's liveness as the leader judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Heartbeats arrive.
    Active,
    /// Heartbeats stopped; its instances may be replaced.
    Unreachable,
    /// Deregistered or expunged.
    Gone,
}

impl NodeState {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Active => "active",
            NodeState::Unreachable => "unreachable",
            NodeState::Gone => "gone",
        }
    }
}

/// An agent of `/v1/nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentNode {
    /// Its agent id.
    pub id: String,
    /// Its hostname.
    pub hostname: String,
    /// Its IP address.
    pub ip: String,
    /// Its region (the local one when it names none).
    pub region: String,
    /// Its zone, when it has one.
    pub zone: Option<String>,
    /// Whether its region is not the masters'.
    pub remote: bool,
    /// Its liveness.
    pub state: NodeState,
    /// Live instances on it.
    pub tasks: usize,
    /// What it offers.
    pub resources: Resources,
    /// What live instances reserve of it.
    pub used: Used,
    /// Its attributes (for constraints).
    pub attributes: Attributes,
    /// The round trip of its last heartbeat, when known.
    pub rtt_ms: Option<u64>,
    /// Its work dir's disk use as it last reported it, when known.
    pub disk_use: Option<DiskUse>,
    /// Whether `rtt_ms` is at or above the warning threshold.
    pub rtt_warning: bool,
    /// When it registered (ISO 8601).
    pub registered_at: String,
}

/// `used` of an agent: CPUs and memory reserved by its live instances.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Used {
    /// CPU shares.
    pub cpus: f64,
    /// Memory in MiB.
    pub mem: f64,
}

impl Node {
    /// The node's id.
    pub fn id(&self) -> &str {
        match self {
            Node::Master(m) => &m.id,
            Node::Agent(a) => &a.id,
        }
    }

    /// The node's hostname.
    pub fn hostname(&self) -> &str {
        match self {
            Node::Master(m) => &m.hostname,
            Node::Agent(a) => &a.hostname,
        }
    }
}
