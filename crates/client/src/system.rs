//! `/v2/leader`, `/v2/info` and `/health`: who leads, what this master is, whether it lives.

use serde::{Deserialize, Serialize};

/// `GET /v2/leader`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leader {
    /// The leader's `HOST:PORT`.
    pub leader: String,
}

/// An answer that is only a message (`DELETE /v2/leader`, `POST /internal/masters`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// What was done.
    pub message: String,
}

/// `GET /health`: this process, whatever the cluster's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessHealth {
    /// This master's id.
    pub id: u64,
    /// `leader`, `follower`, `candidate`, …
    pub role: String,
    /// The Raft term it knows.
    pub term: u64,
    /// The leader's address, when one is known.
    pub leader: Option<String>,
    /// This master's region.
    pub region: String,
    /// This master's zone.
    pub zone: String,
    /// Whether its log holds anything.
    pub initialized: bool,
    /// The cluster's id, once initialized.
    pub cluster_id: Option<String>,
    /// The masters that have registered with the cluster (each does once it serves, on its
    /// first start): a master with an empty data dir that is listed here lost its data.
    #[serde(default)]
    pub registered_masters: Vec<u64>,
    /// The Raft members (voters and learners) as this master knows them; empty before the
    /// cluster is formed or this master has joined it.
    #[serde(default)]
    pub members: Vec<u64>,
}

/// `GET /v1/operator/masters`: the Raft membership as the leader sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MastersList {
    /// The leader's id.
    pub leader: u64,
    /// The leader's last log index.
    pub last_log_index: u64,
    /// Every member, by id.
    pub masters: Vec<MasterMember>,
}

/// A master naming itself to the leader: `POST /internal/masters` (the registry of masters'
/// addresses and fault domains) and `POST /internal/masters/join` (a master started with
/// `--join` asking to be added to the membership). Unknown fields are ignored, so that a
/// newer master can announce itself to an older leader during a rolling upgrade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MasterAnnouncement {
    /// Its Raft id.
    pub id: u64,
    /// `HOST:PORT` the other masters reach it at.
    pub addr: String,
    /// Its region and zone.
    pub domain: domain::FaultDomain,
    /// The newest master protocol it speaks (`state::network::MASTER_PROTOCOL` of its
    /// build; absent from masters released before versions: 1).
    #[serde(default = "first_protocol")]
    pub protocol: u32,
    /// The oldest master protocol it speaks (absent: the same as `protocol`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_protocol: Option<u32>,
}

/// The version of masters released before protocol versions existed (they send none).
fn first_protocol() -> u32 {
    1
}

impl MasterAnnouncement {
    /// The master protocols it speaks, (oldest, newest).
    pub fn protocols(&self) -> (u32, u32) {
        let oldest = self.oldest_protocol.unwrap_or(self.protocol);
        (oldest.min(self.protocol), self.protocol)
    }
}

/// One member of [`MastersList`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MasterMember {
    /// Its Raft id.
    pub id: u64,
    /// The `host:port` the others reach it at.
    pub address: String,
    /// Its zone, once it has registered.
    pub zone: Option<String>,
    /// `voter` or `learner`.
    pub role: String,
    /// True for the leader.
    pub leader: bool,
    /// Milliseconds since it last answered the leader's Raft RPCs (0 for the leader; `None`
    /// when it has not answered since this leader was elected).
    pub last_contact_ms: Option<u64>,
    /// Log entries it lacks behind the leader's last index (`None` when unknown).
    pub log_lag: Option<u64>,
    /// The newest master protocol it speaks, as it last registered (`None` before it
    /// registered, and from leaders released before protocol versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u32>,
}

/// `GET /v2/info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// Always `drover`.
    pub name: String,
    /// drover's version.
    pub version: String,
    /// The leader's address, when one is known.
    pub leader: Option<String>,
    /// Whether the answering master leads (and is not abdicating).
    pub elected: bool,
    /// The cluster's id (Marathon's framework id).
    #[serde(rename = "frameworkId")]
    pub framework_id: Option<String>,
    /// The port the master listens on.
    pub http_config: HttpConfig,
    /// What Marathon reports of its configuration, as far as drover has it.
    pub marathon_config: MarathonConfig,
    /// Always empty: drover keeps its state without ZooKeeper (Marathon clients expect the
    /// object).
    pub zookeeper_config: ZooKeeperConfig,
}

/// `marathon_config` of `/v2/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarathonConfig {
    /// Always `drover`.
    pub framework_name: String,
    /// Whether several masters share the work (more than one is configured).
    pub ha: bool,
    /// The address the answering master listens on.
    pub hostname: String,
    /// Marathon's optional features; none.
    pub features: Vec<String>,
}

/// `zookeeper_config` of `/v2/info`: no fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZooKeeperConfig {}

/// `http_config` of `/v2/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpConfig {
    /// The API port.
    pub http_port: u16,
}

/// `GET /v1/info`: the answering master and its Raft figures (drover's own, apart from
/// Marathon's `/v2/info`, whose strict clients refuse fields Marathon never sends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroverInfo {
    /// This master's id.
    pub id: u64,
    /// Its region.
    pub region: String,
    /// Its zone.
    pub zone: String,
    /// Its Raft figures.
    pub raft: RaftInfo,
}

/// `raft` of `/v1/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftInfo {
    /// The current term.
    pub term: u64,
    /// This master's role.
    pub state: String,
    /// The voters.
    pub members: Vec<RaftMember>,
    /// The last applied index.
    #[serde(rename = "commitIndex")]
    pub commit_index: u64,
    /// The last index in the log.
    #[serde(rename = "lastLogIndex")]
    pub last_log_index: u64,
}

/// One voter of `raft.members` in `/v1/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftMember {
    /// The master's id.
    pub id: u64,
    /// Its `HOST:PORT`.
    pub address: String,
}
