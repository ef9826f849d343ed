//! The Raft network over HTTP: masters send each other JSON POSTs.
//!
//! Protocol (internal, not a stable API): `POST http://{addr}{path}` with the openraft request
//! as JSON; the answer is `200` with the JSON of `Result<response, RaftError>` as serde writes
//! it (`{"Ok":…}` or `{"Err":…}`). Paths are [`RaftRpc::path`]. The client side is
//! [`HttpNetwork`]; the server side is [`answer`], which the master's HTTP server calls.
//!
//! Every RPC names the master protocols its sender speaks ([`PROTOCOL_HEADER`],
//! [`OLDEST_PROTOCOL_HEADER`]; absent: 1). A master refuses, with a 409 naming both sides'
//! versions ([`MASTER_PROTOCOL_UNSUPPORTED`]), a peer with which it shares none, and the
//! sender logs the refusal.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use openraft::RPCTypes;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::state_machine::StateReader;
use crate::transport::Connector;
use crate::types::{Node, NodeId, Raft, TypeConfig};

/// The largest Raft RPC body a master accepts, bytes (64 MiB). Senders stay well below it:
/// appends are split at [`APPEND_BATCH_BYTES`], snapshots are sent in chunks of
/// [`SNAPSHOT_CHUNK_BYTES`], and no command over [`MAX_COMMAND_BYTES`] is ever written.
pub const MAX_RPC_BODY_BYTES: usize = 64 * 1024 * 1024;

/// An append is split so that each request carries at most about this many bytes of
/// entries (1 MiB); a single larger entry still goes alone. openraft gives every append one
/// heartbeat interval to complete, so a request must stay small enough to be sent, decoded
/// and fsynced in that time, whatever the backlog.
pub const APPEND_BATCH_BYTES: usize = 1024 * 1024;

/// The most snapshot data one install-snapshot request carries (1 MiB; as JSON, a byte
/// array takes up to four times that).
pub const SNAPSHOT_CHUNK_BYTES: u64 = 1024 * 1024;

/// The largest command the masters write to the log, as JSON (8 MiB): far above any
/// accepted app definition (512 KiB) or scheduler batch, far below [`MAX_RPC_BODY_BYTES`].
pub const MAX_COMMAND_BYTES: usize = 8 * 1024 * 1024;

/// Names the sender's cluster on Raft RPCs (and forwarded requests), so a master of another
/// cluster, e.g. one started on a copied data dir, is refused instead of obeyed.
pub const CLUSTER_ID_HEADER: &str = "x-drover-cluster-id";

/// The master protocol this build speaks: the Raft RPCs, the registry and join calls
/// between masters (`client::system::MasterAnnouncement`), and the replicated commands.
/// 2 added the versions themselves; 1 is every master released before them.
pub const MASTER_PROTOCOL: u32 = 2;

/// The oldest master protocol this build still speaks: a cluster works while masters of
/// two neighbouring releases run side by side (a rolling upgrade, one master at a time).
pub const OLDEST_MASTER_PROTOCOL: u32 = 1;

/// Names the newest master protocol the sender of a Raft RPC speaks (absent: 1, a master
/// released before versions). Answers carry the answering master's.
pub const PROTOCOL_HEADER: &str = "drover-protocol";

/// Names the oldest master protocol the sender speaks (absent: the same as
/// [`PROTOCOL_HEADER`]).
pub const OLDEST_PROTOCOL_HEADER: &str = "drover-oldest-protocol";

/// `reason` of the 409 to a Raft RPC, registration or join from a master that shares no
/// master protocol with the one answering.
pub const MASTER_PROTOCOL_UNSUPPORTED: &str = "master_protocol_unsupported";

/// Why this master cannot work with a master that speaks master protocols
/// `oldest..=newest` (`who` names it), saying what to upgrade; `None` when the two share a
/// protocol.
pub fn unsupported_master_protocol(who: &str, oldest: u32, newest: u32) -> Option<String> {
    let theirs = if oldest == newest {
        format!("master protocol {newest}")
    } else {
        format!("master protocols {oldest} to {newest}")
    };
    let ours = format!("this master speaks {OLDEST_MASTER_PROTOCOL} to {MASTER_PROTOCOL}");
    if oldest > MASTER_PROTOCOL {
        Some(format!(
            "{who} speaks {theirs}; {ours}: it is more than one release newer than this master. Upgrade the masters one release at a time, then the agents"
        ))
    } else if newest < OLDEST_MASTER_PROTOCOL {
        Some(format!(
            "{who} speaks {theirs}; {ours}: it is more than one release older than this master. Upgrade it to this release (one release at a time) before it joins"
        ))
    } else {
        None
    }
}

/// The master protocols (oldest, newest) a Raft RPC's sender speaks, from its headers.
pub fn sender_protocols(headers: &hyper::HeaderMap) -> (u32, u32) {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok())
    };
    let newest = number(PROTOCOL_HEADER).unwrap_or(1);
    let oldest = number(OLDEST_PROTOCOL_HEADER).unwrap_or(newest).min(newest);
    (oldest, newest)
}

/// The Raft RPCs masters exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaftRpc {
    /// Append entries (and heartbeats).
    Append,
    /// Request a vote.
    Vote,
    /// One chunk of a snapshot.
    Snapshot,
}

impl RaftRpc {
    /// Every RPC, for routing.
    pub const ALL: [RaftRpc; 3] = [RaftRpc::Append, RaftRpc::Vote, RaftRpc::Snapshot];

    /// The HTTP path the RPC is posted to.
    pub fn path(self) -> &'static str {
        match self {
            RaftRpc::Append => "/internal/raft/append",
            RaftRpc::Vote => "/internal/raft/vote",
            RaftRpc::Snapshot => "/internal/raft/snapshot",
        }
    }

    /// The RPC posted to `path`, if any.
    pub fn from_path(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.path() == path)
    }

    fn rpc_type(self) -> RPCTypes {
        match self {
            RaftRpc::Append => RPCTypes::AppendEntries,
            RaftRpc::Vote => RPCTypes::Vote,
            RaftRpc::Snapshot => RPCTypes::InstallSnapshot,
        }
    }
}

/// Answers one Raft RPC received over HTTP: decodes `body`, hands it to `raft`, and encodes
/// what the client expects. A decode error means a bad request (HTTP 400).
pub async fn answer(raft: &Raft, rpc: RaftRpc, body: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    match rpc {
        RaftRpc::Append => {
            let req: AppendEntriesRequest<TypeConfig> = serde_json::from_slice(body)?;
            serde_json::to_vec(&raft.append_entries(req).await)
        }
        RaftRpc::Vote => {
            let req: VoteRequest<NodeId> = serde_json::from_slice(body)?;
            serde_json::to_vec(&raft.vote(req).await)
        }
        RaftRpc::Snapshot => {
            let req: InstallSnapshotRequest<TypeConfig> = serde_json::from_slice(body)?;
            serde_json::to_vec(&raft.install_snapshot(req).await)
        }
    }
}

/// The candidate a vote request's `body` is from, if it decodes.
pub fn vote_candidate(body: &[u8]) -> Option<NodeId> {
    let req: VoteRequest<NodeId> = serde_json::from_slice(body).ok()?;
    Some(req.vote.leader_id.node_id)
}

/// Why a peer's answer could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The request could not be built (a bad peer address).
    #[error("cannot build a request to {url}: {source}")]
    Request {
        /// The URL.
        url: String,
        /// What http said.
        #[source]
        source: hyper::http::Error,
    },
    /// The peer answered with a status other than 200.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// The start of the body.
        body: String,
    },
    /// The answer's body could not be read or decoded.
    #[error("{url} sent an unreadable answer: {reason}")]
    Body {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// When each peer last answered a Raft RPC of this master (any RPC answered `200`,
/// heartbeats included): the "last contact" of `drover operator masters` and what the
/// dead-master clean-up measures. Clones share the record.
#[derive(Debug, Clone, Default)]
pub struct Contacts(Arc<Mutex<BTreeMap<NodeId, tokio::time::Instant>>>);

impl Contacts {
    /// Notes that `peer` answered just now.
    pub fn record(&self, peer: NodeId) {
        self.lock().insert(peer, tokio::time::Instant::now());
    }

    /// How long ago `peer` last answered; `None` if it never has (since this master
    /// started).
    pub fn since(&self, peer: NodeId) -> Option<std::time::Duration> {
        self.lock().get(&peer).map(|at| at.elapsed())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, tokio::time::Instant>> {
        // Only inserts and reads happen under the lock: a poisoned one holds a usable map.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The client side of the Raft network: one HTTP client shared by all peers.
#[derive(Clone)]
pub struct HttpNetwork {
    id: NodeId,
    client: Client<Connector, Full<Bytes>>,
    cluster: Option<StateReader>,
    contacts: Contacts,
}

impl fmt::Debug for HttpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpNetwork")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl HttpNetwork {
    /// A network for the master with Raft node id `id`, over plain TCP. No connect time
    /// limit of its own: every RPC has openraft's.
    pub fn new(id: NodeId) -> Self {
        Self::with_connector(id, Connector::tcp(None))
    }

    /// A network over `connector` (e.g. a simulated network in tests).
    pub fn with_connector(id: NodeId, connector: Connector) -> Self {
        HttpNetwork {
            id,
            client: crate::transport::client(connector),
            cluster: None,
            contacts: Contacts::default(),
        }
    }

    /// Records in `contacts` when each peer answers.
    pub fn with_contacts(mut self, contacts: Contacts) -> Self {
        self.contacts = contacts;
        self
    }

    /// Sends the cluster id found in `state` (once there is one) with every RPC, in
    /// [`CLUSTER_ID_HEADER`].
    pub fn with_cluster_id(mut self, state: StateReader) -> Self {
        self.cluster = Some(state);
        self
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = HttpPeer;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Self::Network {
        HttpPeer {
            id: self.id,
            target,
            addr: node.addr.clone(),
            client: self.client.clone(),
            cluster: self.cluster.clone(),
            contacts: self.contacts.clone(),
            protocol_warned: Mutex::new(None),
        }
    }
}

/// The connection to one peer master.
pub struct HttpPeer {
    id: NodeId,
    target: NodeId,
    addr: String,
    client: Client<Connector, Full<Bytes>>,
    cluster: Option<StateReader>,
    contacts: Contacts,
    /// When a refusal of this master's protocol was last logged.
    protocol_warned: Mutex<Option<tokio::time::Instant>>,
}

impl fmt::Debug for HttpPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpPeer")
            .field("target", &self.target)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// How often a peer's refusal of this master's protocol is logged (every RPC is refused).
const PROTOCOL_WARNING_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

impl HttpPeer {
    /// Logs that the peer refused this master's protocol, at most every
    /// [`PROTOCOL_WARNING_EVERY`].
    fn warn_protocol(&self, body: &str) {
        let mut last = self
            .protocol_warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < PROTOCOL_WARNING_EVERY) {
            return;
        }
        *last = Some(tokio::time::Instant::now());
        let message = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("message")?.as_str().map(str::to_string))
            .unwrap_or_else(|| body.to_string());
        tracing::error!(
            peer = self.target,
            addr = %self.addr,
            "master {} refuses this master's Raft RPCs: {message}",
            self.target
        );
    }
}

/// How much of an error body goes into an error message.
const ERROR_BODY_LIMIT: usize = 512;

impl HttpPeer {
    async fn call<Req, Resp, E>(
        &self,
        rpc: RaftRpc,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, Node, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: Error + DeserializeOwned,
    {
        let body = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.call_encoded(rpc, body, option).await
    }

    /// As [`HttpPeer::call`], with the request already encoded.
    async fn call_encoded<Resp, E>(
        &self,
        rpc: RaftRpc,
        body: Vec<u8>,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, Node, E>>
    where
        Resp: DeserializeOwned,
        E: Error + DeserializeOwned,
    {
        let ttl = option.hard_ttl();
        match tokio::time::timeout(ttl, self.exchange(rpc, body)).await {
            Ok(result) => result,
            Err(_) => Err(RPCError::Timeout(Timeout {
                action: rpc.rpc_type(),
                id: self.id,
                target: self.target,
                timeout: ttl,
            })),
        }
    }

    async fn exchange<Resp, E>(
        &self,
        rpc: RaftRpc,
        body: Vec<u8>,
    ) -> Result<Resp, RPCError<NodeId, Node, E>>
    where
        Resp: DeserializeOwned,
        E: Error + DeserializeOwned,
    {
        let url = format!("http://{}{}", self.addr, rpc.path());
        let mut request = Request::post(&url)
            .header(CONTENT_TYPE, "application/json")
            .header(PROTOCOL_HEADER, MASTER_PROTOCOL)
            .header(OLDEST_PROTOCOL_HEADER, OLDEST_MASTER_PROTOCOL);
        let cluster_id = self
            .cluster
            .as_ref()
            .and_then(|s| s.read(|a| a.state.cluster_id().map(str::to_string)));
        if let Some(cluster_id) = cluster_id {
            request = request.header(CLUSTER_ID_HEADER, cluster_id);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|source| {
                network(PeerError::Request {
                    url: url.clone(),
                    source,
                })
            })?;
        let response = self.client.request(request).await.map_err(|e| {
            // A refused or failed connection makes openraft back off before the next try.
            if e.is_connect() {
                RPCError::Unreachable(Unreachable::new(&e))
            } else {
                RPCError::Network(NetworkError::new(&e))
            }
        })?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?
            .to_bytes();
        if status != StatusCode::OK {
            let text = String::from_utf8_lossy(&bytes);
            let body: String = text.chars().take(ERROR_BODY_LIMIT).collect();
            if text.contains(MASTER_PROTOCOL_UNSUPPORTED) {
                self.warn_protocol(&body);
            }
            return Err(network(PeerError::Status { url, status, body }));
        }
        self.contacts.record(self.target);
        let answer: Result<Resp, E> = serde_json::from_slice(&bytes).map_err(|e| {
            network(PeerError::Body {
                url,
                reason: e.to_string(),
            })
        })?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

fn network<E>(e: PeerError) -> RPCError<NodeId, Node, E>
where
    E: Error,
{
    RPCError::Network(NetworkError::new(&e))
}

/// The JSON body of an append carrying the first of `rpc`'s entries that fit in `limit`
/// bytes (at least one), and, when that is not all of them, the last log id it carries.
fn encode_append(
    rpc: &AppendEntriesRequest<TypeConfig>,
    limit: usize,
) -> Result<(Vec<u8>, Option<crate::types::LogId>), serde_json::Error> {
    let mut entries = Vec::with_capacity(rpc.entries.len());
    let mut total = 0;
    let mut cut = None;
    for (i, entry) in rpc.entries.iter().enumerate() {
        let bytes = serde_json::to_vec(entry)?;
        if i > 0 && total + bytes.len() > limit {
            cut = Some(rpc.entries[i - 1].log_id);
            break;
        }
        total += bytes.len();
        entries.push(bytes);
    }
    // The request without entries, then the encoded entries spliced into its empty array.
    let head = AppendEntriesRequest::<TypeConfig> {
        vote: rpc.vote,
        prev_log_id: rpc.prev_log_id,
        leader_commit: rpc.leader_commit,
        entries: Vec::new(),
    };
    let head = serde_json::to_vec(&head)?;
    const EMPTY: &[u8] = b"\"entries\":[]";
    let at = head
        .windows(EMPTY.len())
        .position(|w| w == EMPTY)
        .map(|p| p + EMPTY.len() - 1)
        .ok_or_else(|| serde::ser::Error::custom("append request has no entries field"))?;
    let mut body = Vec::with_capacity(head.len() + total + entries.len());
    body.extend_from_slice(&head[..at]);
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(e);
    }
    body.extend_from_slice(&head[at..]);
    Ok((body, cut))
}

/// Shorthand for the errors of the RPCs below.
type RpcError<E = openraft::error::Infallible> = RPCError<NodeId, Node, RaftError<NodeId, E>>;

impl RaftNetwork<TypeConfig> for HttpPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcError> {
        // A catch-up batch of large entries could exceed what the peer accepts, or what it
        // can store within the RPC's time: send the first entries that fit and report a
        // partial success; openraft sends the rest next. Each entry is encoded once.
        let (body, sent) = encode_append(&rpc, APPEND_BATCH_BYTES)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let response = self.call_encoded(RaftRpc::Append, body, &option).await?;
        match (response, sent) {
            (AppendEntriesResponse::Success, Some(last)) => {
                Ok(AppendEntriesResponse::PartialSuccess(Some(last)))
            }
            (other, _) => Ok(other),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcError<InstallSnapshotError>> {
        self.call(RaftRpc::Snapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcError> {
        self.call(RaftRpc::Vote, &rpc, &option).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use crate::types::Entry;

    fn entry(index: u64, bytes: usize) -> Entry {
        Entry {
            log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
            payload: openraft::EntryPayload::Normal(Command::ClearBackoff {
                app_id: domain::AppId::parse(&"a".repeat(bytes.max(1))).unwrap(),
            }),
        }
    }

    fn request(entries: Vec<Entry>) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: openraft::Vote::new_committed(1, 1),
            prev_log_id: None,
            leader_commit: None,
            entries,
        }
    }

    #[test]
    fn masters_sharing_a_protocol_work_together_and_others_are_told_what_to_upgrade() {
        // Released before versions, this release, and the next (which speaks this one too).
        for (oldest, newest) in [(1, 1), (OLDEST_MASTER_PROTOCOL, MASTER_PROTOCOL)] {
            assert_eq!(unsupported_master_protocol("m", oldest, newest), None);
        }
        assert_eq!(
            unsupported_master_protocol("m", MASTER_PROTOCOL, MASTER_PROTOCOL + 1),
            None
        );
        let newer = unsupported_master_protocol(
            "master 4 (127.0.0.4:7070)",
            MASTER_PROTOCOL + 1,
            MASTER_PROTOCOL + 2,
        )
        .unwrap();
        assert!(
            newer.starts_with(&format!(
                "master 4 (127.0.0.4:7070) speaks master protocols {} to {}; this master speaks {OLDEST_MASTER_PROTOCOL} to {MASTER_PROTOCOL}",
                MASTER_PROTOCOL + 1,
                MASTER_PROTOCOL + 2
            )),
            "{newer}"
        );
        assert!(newer.contains("one release at a time"), "{newer}");
        let older = unsupported_master_protocol("m", 0, 0).unwrap();
        assert!(older.contains("master protocol 0;"), "{older}");
        assert!(older.contains("older"), "{older}");
    }

    #[test]
    fn a_raft_rpc_without_protocol_headers_is_from_a_master_before_versions() {
        let mut headers = hyper::HeaderMap::new();
        assert_eq!(sender_protocols(&headers), (1, 1));
        headers.insert(PROTOCOL_HEADER, MASTER_PROTOCOL.into());
        assert_eq!(
            sender_protocols(&headers),
            (MASTER_PROTOCOL, MASTER_PROTOCOL)
        );
        headers.insert(OLDEST_PROTOCOL_HEADER, OLDEST_MASTER_PROTOCOL.into());
        assert_eq!(
            sender_protocols(&headers),
            (OLDEST_MASTER_PROTOCOL, MASTER_PROTOCOL)
        );
    }

    #[test]
    fn small_batches_go_whole_and_large_ones_are_split_by_bytes() {
        let small = request((1..=300).map(|i| entry(i, 100)).collect());
        let (body, cut) = encode_append(&small, APPEND_BATCH_BYTES).unwrap();
        assert_eq!(cut, None);
        // The spliced body is exactly what serde writes for the whole request.
        assert_eq!(body, serde_json::to_vec(&small).unwrap());

        let large = request((1..=30).map(|i| entry(i, 400 * 1024)).collect());
        let (body, cut) = encode_append(&large, APPEND_BATCH_BYTES).unwrap();
        assert!(body.len() <= APPEND_BATCH_BYTES + 1024, "{}", body.len());
        let sent: AppendEntriesRequest<TypeConfig> = serde_json::from_slice(&body).unwrap();
        assert!((1..30).contains(&sent.entries.len()));
        assert_eq!(cut, sent.entries.last().map(|e| e.log_id));
        assert_eq!(sent.entries[..], large.entries[..sent.entries.len()]);

        // One entry larger than the batch still goes, alone.
        let huge = request(vec![entry(1, APPEND_BATCH_BYTES + 1), entry(2, 10)]);
        let (body, cut) = encode_append(&huge, APPEND_BATCH_BYTES).unwrap();
        let sent: AppendEntriesRequest<TypeConfig> = serde_json::from_slice(&body).unwrap();
        assert_eq!(sent.entries.len(), 1);
        assert_eq!(cut, Some(huge.entries[0].log_id));
    }
}
