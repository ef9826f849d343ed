//! The Raft network over HTTP: masters send each other JSON POSTs.
//!
//! Protocol (internal, not a stable API): `POST http://{addr}{path}` with the openraft request
//! as JSON; the answer is `200` with the JSON of `Result<response, RaftError>` as serde writes
//! it (`{"Ok":…}` or `{"Err":…}`). Paths are [`RaftRpc::path`]. The client side is
//! [`HttpNetwork`]; the server side is [`answer`], which the master's HTTP server calls.

use std::error::Error;
use std::fmt;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;
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
use crate::types::{Node, NodeId, Raft, TypeConfig};

/// Names the sender's cluster on Raft RPCs (and forwarded requests), so a master of another
/// cluster, e.g. one started on a copied data dir, is refused instead of obeyed.
pub const CLUSTER_ID_HEADER: &str = "x-drover-cluster-id";

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

/// The client side of the Raft network: one HTTP client shared by all peers.
#[derive(Clone)]
pub struct HttpNetwork<K = HttpConnector> {
    id: NodeId,
    client: Client<K, Full<Bytes>>,
    cluster: Option<StateReader>,
}

impl<K> fmt::Debug for HttpNetwork<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpNetwork")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl HttpNetwork {
    /// A network for the master with Raft node id `id`, over plain TCP.
    pub fn new(id: NodeId) -> Self {
        Self::with_connector(id, HttpConnector::new())
    }
}

impl<K> HttpNetwork<K>
where
    K: Connect + Clone + Send + Sync + 'static,
{
    /// A network over a custom connector (e.g. a simulated network in tests).
    pub fn with_connector(id: NodeId, connector: K) -> Self {
        HttpNetwork {
            id,
            client: Client::builder(TokioExecutor::new()).build(connector),
            cluster: None,
        }
    }

    /// Sends the cluster id found in `state` (once there is one) with every RPC, in
    /// [`CLUSTER_ID_HEADER`].
    pub fn with_cluster_id(mut self, state: StateReader) -> Self {
        self.cluster = Some(state);
        self
    }
}

impl<K> RaftNetworkFactory<TypeConfig> for HttpNetwork<K>
where
    K: Connect + Clone + Send + Sync + 'static,
{
    type Network = HttpPeer<K>;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Self::Network {
        HttpPeer {
            id: self.id,
            target,
            addr: node.addr.clone(),
            client: self.client.clone(),
            cluster: self.cluster.clone(),
        }
    }
}

/// The connection to one peer master.
pub struct HttpPeer<K = HttpConnector> {
    id: NodeId,
    target: NodeId,
    addr: String,
    client: Client<K, Full<Bytes>>,
    cluster: Option<StateReader>,
}

impl<K> fmt::Debug for HttpPeer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpPeer")
            .field("target", &self.target)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// How much of an error body goes into an error message.
const ERROR_BODY_LIMIT: usize = 512;

impl<K> HttpPeer<K>
where
    K: Connect + Clone + Send + Sync + 'static,
{
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
        let ttl = option.hard_ttl();
        match tokio::time::timeout(ttl, self.exchange(rpc, req)).await {
            Ok(result) => result,
            Err(_) => Err(RPCError::Timeout(Timeout {
                action: rpc.rpc_type(),
                id: self.id,
                target: self.target,
                timeout: ttl,
            })),
        }
    }

    async fn exchange<Req, Resp, E>(
        &self,
        rpc: RaftRpc,
        req: &Req,
    ) -> Result<Resp, RPCError<NodeId, Node, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: Error + DeserializeOwned,
    {
        let url = format!("http://{}{}", self.addr, rpc.path());
        let body = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut request = Request::post(&url).header(CONTENT_TYPE, "application/json");
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
            return Err(network(PeerError::Status { url, status, body }));
        }
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

/// Shorthand for the errors of the RPCs below.
type RpcError<E = openraft::error::Infallible> = RPCError<NodeId, Node, RaftError<NodeId, E>>;

impl<K> RaftNetwork<TypeConfig> for HttpPeer<K>
where
    K: Connect + Clone + Send + Sync + 'static,
{
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcError> {
        self.call(RaftRpc::Append, &rpc, &option).await
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
