//! From flags to a serving master: check the data dir and the peers, open the store, start
//! Raft and the API, form the cluster once, register, and supervise leadership.

use std::collections::BTreeMap;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;

use openraft::BasicNode;
use openraft::error::{InitializeError, RaftError};
use serde_json::json;
use state::network::HttpNetwork;
use state::transport::Connector;
use state::types::Raft;

use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, MasterConfig};
use crate::events::EventBus;
use crate::leadership::{self, ExitReason};
use crate::node::RaftNode;
use crate::parts::Parts;
use crate::peer::PeerClient;
use crate::tls::{MasterPki, PeerCertificate, TlsListener};

/// Why a master refused to start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Bad flags.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// This master's region is not the cluster's.
    #[error(
        "this master is in region '{mine}', but the cluster's masters are in region '{theirs}' (master {peer} at {addr}). All masters must be in one region: fix --domain or the fault domain detect script"
    )]
    RegionMismatch {
        /// This master's region.
        mine: String,
        /// The cluster's region.
        theirs: String,
        /// The peer that said so.
        peer: u64,
        /// Its address.
        addr: String,
    },
    /// The data dir is empty but the cluster already exists.
    #[error(
        "the data dir {dir} is empty, but this master was part of the cluster before (master {peer} at {addr} lists it as registered). A master that lost its data must not rejoin with an empty log: it could vote twice in a term and lose acknowledged writes. Replace it: run `drover operator masters remove {id}` against the cluster, then start this master again with --join (docs/operations.md, \"Replace a dead master\")"
    )]
    LostData {
        /// This master's id.
        id: u64,
        /// The data dir.
        dir: String,
        /// A peer that is part of the cluster.
        peer: u64,
        /// Its address.
        addr: String,
    },
    /// The data dir belongs to another cluster than the masters `--masters` names.
    #[error(
        "the data dir {dir} belongs to cluster {mine}, but master {peer} at {addr} (in --masters) belongs to cluster {theirs}. This data dir was copied from another cluster, or --masters names the wrong masters. Give this master its own data dir (restore it from a backup of cluster {theirs}), or point --masters at the masters of cluster {mine}"
    )]
    ClusterMismatch {
        /// The data dir.
        dir: String,
        /// The cluster id in the data dir.
        mine: String,
        /// The cluster id the peer reports.
        theirs: String,
        /// The peer that said so.
        peer: u64,
        /// Its address.
        addr: String,
    },
    /// The data dir's Raft membership is not the masters `--masters` names.
    #[error(
        "the data dir {dir} belongs to {cluster} whose masters are {stored}, but --masters names {given}. A data dir copied from another cluster must never be used: this master would forward writes to that cluster's leader. Give this master its own data dir, or, if this data dir is its own, start it with the --masters the cluster was formed with"
    )]
    MembershipMismatch {
        /// The data dir.
        dir: String,
        /// "cluster ID", or a phrase for a cluster without an id yet.
        cluster: String,
        /// The masters the data dir names.
        stored: String,
        /// The masters `--masters` names.
        given: String,
    },
    /// A master with an empty data dir, not a member of the formed cluster, without `--join`.
    #[error(
        "master {id} is not a member of cluster {cluster} (master {peer} at {addr} lists members {members}). To add this master to the running cluster, start it with --join (docs/operations.md, \"Add capacity\")"
    )]
    NotMember {
        /// This master's id.
        id: u64,
        /// The cluster's id.
        cluster: String,
        /// The peer that said so.
        peer: u64,
        /// Its address.
        addr: String,
        /// The members it lists.
        members: String,
    },
    /// This master's data dir names it a member, but the leader's membership does not.
    #[error(
        "master {id} was removed from the cluster: the leader, master {peer} at {addr}, lists members {members}. Its data dir {dir} is no longer a member's. To bring it back, wipe the data dir and start it with --join (docs/operations.md, \"Replace a dead master\")"
    )]
    Removed {
        /// This master's id.
        id: u64,
        /// The data dir.
        dir: String,
        /// The leader.
        peer: u64,
        /// Its address.
        addr: String,
        /// The members it lists.
        members: String,
    },
    /// `--force-new-cluster` refused.
    #[error("--force-new-cluster: {0}")]
    ForceNewCluster(String),
    /// The registry refused this master (a region conflict found by the leader).
    #[error("the leader refused to register this master: {0}")]
    Refused(String),
    /// The data dir or the store could not be used.
    #[error("storage: {0}")]
    Storage(String),
    /// Raft could not start.
    #[error("raft: {0}")]
    Raft(String),
    /// `run_with` was given a configuration without `insecure`.
    #[error("a master without --insecure serves TLS: start it with run_secure and its cluster CA")]
    NeedsTls,
    /// The master's certificates could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The master's CA and certificate could not be made, read or fetched.
    #[error(transparent)]
    Pki(#[from] crate::tls::PkiError),
    /// The port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The store file inside the data dir.
pub(crate) const STORE_FILE: &str = "raft.redb";

/// Binds the master's port (API, UI and Raft share it).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, StartupError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Listen {
            addr: addr.to_string(),
            source,
        })
}

/// Installs the SIGTERM and SIGINT handlers now, and returns a future that resolves when
/// either arrives: the shutdown a master process passes to [`run_with`]. Install them before
/// anything can be asked of the master: a signal that arrives while it starts is then a
/// request to stop (exit 0), not the default action (death by signal).
pub fn stop_signals() -> Result<impl Future<Output = ()> + Send + 'static, StartupError> {
    let mut signals = StopSignals::install().map_err(|e| {
        StartupError::Raft(format!("cannot install the SIGTERM/SIGINT handlers: {e}"))
    })?;
    Ok(async move { signals.requested().await })
}

/// How long a master's connection attempt to a peer may take.
pub const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Most log entries one AppendEntries carries. openraft gives every AppendEntries only the
/// heartbeat interval (100 ms) to be answered, and a follower answers after its fsync; a
/// scheduler pass's entry places up to a thousand instances (hundreds of KB), and openraft's
/// default of 300 such entries in one request could not be sent, decoded and synced in that
/// time by a busy follower: the request timed out, was sent again whole, and the leader lost
/// its quorum while deploying 100,000 instances (the scale benchmark). 16 keeps a request to
/// a few MB at most; a follower far behind catches up in more, smaller round trips.
const MAX_ENTRIES_PER_APPEND: u64 = 16;

/// What a master takes from the world outside it, replaceable by a test or a simulation.
#[derive(Debug, Clone)]
pub struct Seams {
    /// Opens every connection to a peer: Raft, forwarding, peer questions.
    pub connector: Connector,
    /// Where the master reads the time.
    pub clock: Arc<dyn Clock>,
    /// Where the master keeps its Raft log, vote and snapshot.
    pub store: Store,
}

/// Where a master keeps its Raft log, vote and snapshot.
#[derive(Debug, Clone, Default)]
pub enum Store {
    /// The redb file in the data dir (production).
    #[default]
    Disk,
    /// A simulated disk in memory that outlives the master, so a simulation can crash and
    /// restart it with its log kept; no file, no blocking thread.
    Memory(state::MemDisk),
}

impl Seams {
    /// TCP (with [`PEER_CONNECT_TIMEOUT`]) and the system's clock.
    pub fn system() -> Self {
        Seams {
            connector: Connector::tcp(Some(PEER_CONNECT_TIMEOUT)),
            clock: Arc::new(SystemClock),
            store: Store::Disk,
        }
    }
}

/// Runs a master: serves its API on `listener` (a bound `TcpListener` for the binary, any
/// [`Listener`] for a test or a simulation), reaches its peers and reads the time through
/// `seams`, and runs until `shutdown` resolves (the binary passes [`stop_signals`]) or it must
/// end. Returns why it ended; the binary exits with [`ExitReason::exit_code`].
///
/// Whatever it started ends with it, so several masters can run in one process and a test
/// can stop one: when this returns (or is dropped) the listener closes, open connections are
/// closed after their request in flight, and the leader services and Raft stop.
pub async fn run_with<L>(
    config: MasterConfig,
    seams: Seams,
    listener: L,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<ExitReason, StartupError>
where
    L: Listener,
    L::Addr: std::fmt::Debug,
{
    if !config.insecure {
        return Err(StartupError::NeedsTls);
    }
    let bound = format!("{:?}", listener.local_addr().ok());
    let serve = move |router: axum::Router, stop: tokio::sync::oneshot::Receiver<()>| {
        tokio::spawn(
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.await;
                })
                .into_future(),
        )
    };
    run(config, seams, None, bound, serve, shutdown).await
}

/// Runs a secure master (see [`run_with`]): it serves TLS on `listener` with `pki`'s
/// certificate, asks for certificates on `/internal/*`, and reaches its peers over mutual
/// TLS that trusts only the cluster CA.
pub async fn run_secure(
    config: MasterConfig,
    pki: MasterPki,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<ExitReason, StartupError> {
    let tls = |e: state::tls::TlsError| StartupError::Tls(e.to_string());
    let server_config = pki.server_config().map_err(tls)?;
    let client_config = pki.client_config().map_err(tls)?;
    let seams = Seams {
        connector: Connector::tcp(Some(PEER_CONNECT_TIMEOUT)).with_tls(client_config),
        ..Seams::system()
    };
    let bound = format!("{:?}", listener.local_addr().ok());
    let serve = move |router: axum::Router, stop: tokio::sync::oneshot::Receiver<()>| {
        tokio::spawn(
            axum::serve(
                TlsListener::new(listener, server_config),
                router.into_make_service_with_connect_info::<PeerCertificate>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stop.await;
            })
            .into_future(),
        )
    };
    run(config, seams, Some(Arc::new(pki)), bound, serve, shutdown).await
}

/// What [`run_with`] and [`run_secure`] share: everything but how the API is served.
async fn run(
    config: MasterConfig,
    seams: Seams,
    pki: Option<Arc<MasterPki>>,
    bound: String,
    serve: impl FnOnce(
        axum::Router,
        tokio::sync::oneshot::Receiver<()>,
    ) -> tokio::task::JoinHandle<std::io::Result<()>>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<ExitReason, StartupError> {
    let Seams {
        connector,
        clock,
        store,
    } = seams;
    config.validate()?;
    tokio::pin!(shutdown);
    let peers = PeerClient::with_connector(connector.clone());
    let contacts = state::network::Contacts::default();
    let (raft, reader) = match store {
        Store::Disk => {
            std::fs::create_dir_all(&config.data_dir).map_err(|e| {
                StartupError::Storage(format!(
                    "cannot create data dir {}: {e}",
                    config.data_dir.display()
                ))
            })?;
            let store_path = config.data_dir.join(STORE_FILE);
            let fresh = !store_path.exists();
            let storage = |e: &dyn std::fmt::Display| {
                StartupError::Storage(format!("{}: {e}", store_path.display()))
            };
            let (mut log_store, state_machine) =
                state::open(&store_path).await.map_err(|e| storage(&e))?;
            if config.membership.force_new_cluster {
                force_new_cluster(&config, &peers, fresh, &mut log_store, &state_machine).await?;
            }
            start_raft(
                &config,
                &peers,
                RaftLinks {
                    connector,
                    contacts: contacts.clone(),
                },
                fresh,
                log_store,
                state_machine,
                storage,
            )
            .await?
        }
        Store::Memory(disk) => {
            if config.membership.force_new_cluster {
                return Err(StartupError::ForceNewCluster(
                    "a master on a memory store cannot be forced".into(),
                ));
            }
            let storage =
                |e: &dyn std::fmt::Display| StartupError::Storage(format!("memory store: {e}"));
            let fresh = disk.is_empty().await.map_err(|e| storage(&e))?;
            let (log_store, state_machine) = disk.open().await.map_err(|e| storage(&e))?;
            start_raft(
                &config,
                &peers,
                RaftLinks {
                    connector,
                    contacts: contacts.clone(),
                },
                fresh,
                log_store,
                state_machine,
                storage,
            )
            .await?
        }
    };

    let mut master = Parts::new(
        RaftNode::new(config, raft, reader, peers, clock.clone(), contacts),
        EventBus::with_clock(clock),
    );
    let bootstrap = pki
        .as_ref()
        .map(|p| p.bootstrap().to_vec())
        .unwrap_or_default();
    if let Some(pki) = pki {
        master = master.with_pki(pki);
    }
    let node = master.node().clone();
    let (id, listen) = (node.config().id, node.config().listen);
    tracing::info!(
        id,
        listen = %listen,
        bound = %bound,
        region = %node.config().domain.region,
        zone = %node.config().domain.zone,
        "master started"
    );
    if node.config().insecure {
        tracing::warn!(
            "--insecure: no TLS between cluster processes and no API tokens; anyone who \
             reaches {listen} can run any command on every agent"
        );
    }
    let (stop_serving, serving) = tokio::sync::oneshot::channel::<()>();
    let mut server = serve(master.router(), serving);
    let mut leadership = tokio::spawn(leadership::supervise(
        node.clone(),
        master.leader_services(),
    ));
    let forming = if node.config().membership.join {
        tokio::spawn(crate::membership::join(node.clone()))
    } else {
        tokio::spawn(form_cluster(node.clone()))
    };
    let membership = tokio::spawn(crate::membership::supervise(node.clone()));
    let mut registration = tokio::spawn(register(node.clone()));
    let keeping = tokio::spawn(keep_bootstrap_tokens(node.clone(), bootstrap));
    let _running = Running {
        tasks: vec![
            keeping.abort_handle(),
            leadership.abort_handle(),
            forming.abort_handle(),
            membership.abort_handle(),
            registration.abort_handle(),
        ],
        _stop_serving: stop_serving,
        node: node.clone(),
    };

    let removal = node.clone();
    let removed = removal.wait_removed();
    tokio::pin!(removed);
    tokio::select! {
        () = &mut shutdown => {
            tracing::info!("shutting down");
        }
        () = &mut removed => {
            tracing::error!(id, "this master was removed from the cluster; stopping");
            let _ = node.raft().shutdown().await;
            return Ok(ExitReason::Removed { id });
        }
        result = &mut registration => {
            if let Ok(Err(e)) = result {
                // Return at once: the error must reach the operator before anything else
                // notices Raft going away and exits with a vaguer message.
                return Err(e);
            }
            tokio::select! {
                () = &mut shutdown => tracing::info!("shutting down"),
                () = &mut removed => {
                    tracing::error!(id, "this master was removed from the cluster; stopping");
                    let _ = node.raft().shutdown().await;
                    return Ok(ExitReason::Removed { id });
                }
                ended = &mut leadership => {
                    if let Some(reason) = ended_with(id, ended) {
                        return Ok(reason);
                    }
                }
            }
        }
        ended = &mut leadership => {
            if let Some(reason) = ended_with(id, ended) {
                return Ok(reason);
            }
            (&mut shutdown).await;
        }
        result = &mut server => {
            let _ = node.raft().shutdown().await;
            return Err(StartupError::Listen {
                addr: listen.to_string(),
                source: std::io::Error::other(format!("the HTTP server stopped: {result:?}")),
            });
        }
    }
    // A planned stop of the leader (a rolling restart) hands leadership over first, so the
    // cluster waits a round trip instead of an election timeout. A follower, or a leader
    // with no other voter, is told so at once and says nothing.
    let _ = node.hand_over(HAND_OVER_ON_STOP).await;
    let _ = node.raft().shutdown().await;
    // Stop serving before returning: whoever sees this master end must not reach it any
    // more. The listener closes at once; open connections get until SERVER_DRAIN to finish
    // their request (an event stream or an agent's long poll never does), then are cut.
    drop(_running);
    let _ = tokio::time::timeout(SERVER_DRAIN, &mut server).await;
    server.abort();
    Ok(ExitReason::Requested)
}

/// How long a leader that was asked to stop may spend handing leadership over before it
/// stops anyway (the others then elect a leader as after a crash).
const HAND_OVER_ON_STOP: std::time::Duration = std::time::Duration::from_secs(3);

/// How long a master that was asked to stop waits for its open connections to finish.
const SERVER_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// How Raft reaches the peers: the connector, and where it records when each answered.
struct RaftLinks {
    connector: Connector,
    contacts: state::network::Contacts,
}

/// Checks the store and the peers, then starts Raft over `log_store` and `state_machine`:
/// Raft must not start on a data dir of another cluster (restored as that cluster's leader,
/// it would at once send entries to that cluster's masters).
async fn start_raft<LS>(
    config: &MasterConfig,
    peers: &PeerClient,
    network: RaftLinks,
    fresh: bool,
    mut log_store: LS,
    state_machine: state::StateMachineStore,
    storage: impl Fn(&dyn std::fmt::Display) -> StartupError,
) -> Result<(Raft, state::StateReader), StartupError>
where
    LS: openraft::storage::RaftLogStorage<state::TypeConfig>,
{
    let reader = state_machine.reader();
    let stored = StoredIdentity::read(&mut log_store, &reader)
        .await
        .map_err(|e| storage(&e))?;
    check_peers(config, peers, fresh, &stored).await?;
    stored.check_membership(config)?;
    let (election_timeout_min, election_timeout_max) = config.openraft_election_timeouts();
    let raft_config = openraft::Config {
        cluster_name: "drover".into(),
        heartbeat_interval: config.heartbeat.as_millis() as u64,
        election_timeout_min,
        election_timeout_max,
        snapshot_max_chunk_size: state::network::SNAPSHOT_CHUNK_BYTES,
        max_payload_entries: MAX_ENTRIES_PER_APPEND,
        ..Default::default()
    }
    .validate()
    .map_err(|e| StartupError::Raft(e.to_string()))?;
    let raft = Raft::new(
        config.id,
        Arc::new(raft_config),
        HttpNetwork::with_connector(config.id, network.connector)
            .with_cluster_id(reader.clone())
            .with_contacts(network.contacts),
        log_store,
        state_machine,
    )
    .await
    .map_err(|e| StartupError::Raft(e.to_string()))?;
    Ok((raft, reader))
}

/// What a running master started besides its Raft node, stopped when [`run_with`] ends by
/// any path (returned, failed, or dropped by its caller).
struct Running {
    /// The leadership supervisor (and with it the leader services), forming, registering.
    tasks: Vec<tokio::task::AbortHandle>,
    /// Dropped, it closes the listener and the open connections (after their request).
    _stop_serving: tokio::sync::oneshot::Sender<()>,
    /// Its Raft node, stopped in the background.
    node: Arc<RaftNode>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        // Not awaited: a master that must end fails fast (a process exit follows in the
        // binary); in a test process this stops the node's Raft core all the same. A
        // shutdown already done makes this one a no-op.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let node = self.node.clone();
            runtime.spawn(async move {
                let _ = node.raft().shutdown().await;
            });
        }
    }
}

/// The reason the leadership supervisor ended the master for, if it did. Leaves the
/// process at once (no Raft shutdown awaited): a fatal Raft error or a lost leadership under
/// `--exit-on-leadership-loss` is fail-fast, as the process exit it replaces was.
fn ended_with(
    id: u64,
    ended: Result<Option<ExitReason>, tokio::task::JoinError>,
) -> Option<ExitReason> {
    match ended {
        Ok(reason) => reason,
        Err(e) => Some(ExitReason::RaftFailed {
            id,
            reason: format!("the leadership supervisor failed: {e}"),
        }),
    }
}

/// SIGTERM and SIGINT, handled from the moment [`StopSignals::install`] returns.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves when either signal arrives.
    async fn requested(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// What a data dir says about the cluster it belongs to, read before Raft starts.
#[derive(Debug, Default)]
struct StoredIdentity {
    /// The cluster id, once an `InitCluster` entry is committed.
    cluster_id: Option<String>,
    /// The Raft membership: every master by id, with its address (empty before the cluster
    /// is formed).
    members: BTreeMap<u64, String>,
}

/// Log entries read at once while looking for the identity, so a long log is never all in
/// memory.
const IDENTITY_BATCH: u64 = 256;

impl StoredIdentity {
    /// The snapshot's identity, updated by the log after it: the last membership entry (in
    /// force once appended) and the first committed `InitCluster` (the one that counts).
    async fn read(
        log: &mut impl openraft::storage::RaftLogStorage<state::TypeConfig>,
        reader: &state::StateReader,
    ) -> Result<Self, openraft::StorageError<u64>> {
        use openraft::storage::RaftLogReader;
        let (mut cluster_id, mut members) = reader.read(|a| {
            let members = a
                .membership
                .membership()
                .nodes()
                .map(|(id, n)| (*id, n.addr.clone()))
                .collect::<BTreeMap<_, _>>();
            (a.state.cluster_id().map(str::to_string), members)
        });
        let committed = log.read_committed().await?.map(|c| c.index);
        let log_state = log.get_log_state().await?;
        let first = log_state.last_purged_log_id.map_or(0, |l| l.index + 1);
        let Some(last) = log_state.last_log_id.map(|l| l.index) else {
            return Ok(StoredIdentity {
                cluster_id,
                members,
            });
        };
        let mut reader = log.get_log_reader().await;
        let mut start = first;
        while start <= last {
            let end = last.min(start.saturating_add(IDENTITY_BATCH - 1));
            for entry in reader.try_get_log_entries(start..=end).await? {
                match entry.payload {
                    openraft::EntryPayload::Membership(m) => {
                        members = m.nodes().map(|(id, n)| (*id, n.addr.clone())).collect();
                    }
                    openraft::EntryPayload::Normal(state::Command::InitCluster {
                        cluster_id: id,
                    }) if cluster_id.is_none()
                        && committed.is_some_and(|c| entry.log_id.index <= c) =>
                    {
                        cluster_id = Some(id);
                    }
                    _ => {}
                }
            }
            start = end + 1;
        }
        Ok(StoredIdentity {
            cluster_id,
            members,
        })
    }

    /// A data dir that names other masters than `--masters` is another cluster's (drover
    /// never changes the membership after forming it).
    ///
    /// Once masters join and leave, the stored membership differs from `--masters`; it is
    /// still this master's own when it names this master at its address and agrees with
    /// `--masters` on the address of every master both name.
    fn check_membership(&self, config: &MasterConfig) -> Result<(), StartupError> {
        if self.members.is_empty() || self.members == config.masters {
            return Ok(());
        }
        let mine = self.members.get(&config.id).map(String::as_str) == Some(config.advertised());
        let agree = config
            .masters
            .iter()
            .all(|(id, addr)| self.members.get(id).is_none_or(|a| a == addr));
        if mine && agree {
            return Ok(());
        }
        let list = |m: &BTreeMap<u64, String>| {
            m.iter()
                .map(|(id, addr)| format!("{id}={addr}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        Err(StartupError::MembershipMismatch {
            dir: config.data_dir.display().to_string(),
            cluster: match &self.cluster_id {
                Some(id) => format!("cluster {id}"),
                None => "a cluster (not named yet)".to_string(),
            },
            stored: list(&self.members),
            given: list(&config.masters),
        })
    }
}

/// `--force-new-cluster`: rewrites the stored membership to this master alone (see
/// [`state::RedbLogStore::force_single_member`]), refused on an empty data dir and while
/// any other stored member answers (the cluster is not gone; or the flag was left on after
/// new masters joined).
async fn force_new_cluster(
    config: &MasterConfig,
    peers: &PeerClient,
    fresh: bool,
    log_store: &mut state::RedbLogStore,
    state_machine: &state::StateMachineStore,
) -> Result<(), StartupError> {
    if fresh {
        return Err(StartupError::ForceNewCluster(format!(
            "the data dir {} is empty: there is nothing to recover. Start it on the surviving master's data dir",
            config.data_dir.display()
        )));
    }
    let stored = StoredIdentity::read(log_store, &state_machine.reader())
        .await
        .map_err(|e| StartupError::Storage(e.to_string()))?;
    for (id, addr) in stored.members.iter().filter(|(id, _)| **id != config.id) {
        if peers.health(addr).await.is_some() {
            return Err(StartupError::ForceNewCluster(format!(
                "master {id} at {addr}, a member of this data dir's cluster, answers: the cluster is not gone. Forcing a new cluster now would split it in two; stop every other master for good first (or, if this flag was left on after new masters joined, remove it)"
            )));
        }
    }
    if stored.members.len() == 1 && stored.members.contains_key(&config.id) {
        tracing::warn!(
            "--force-new-cluster: the membership is this master alone already; nothing to rewrite"
        );
        return Ok(());
    }
    let log_id = log_store
        .force_single_member(config.id, BasicNode::new(config.advertised()))
        .await
        .map_err(|e| StartupError::Storage(e.to_string()))?;
    tracing::error!(
        id = config.id,
        %log_id,
        old_members = ?stored.members.keys().collect::<Vec<_>>(),
        "--force-new-cluster: the membership was rewritten to this master alone. It leads a cluster of one with every entry of its log, including any the old cluster had not committed. Add masters with --join, and remove --force-new-cluster from this master's flags"
    );
    Ok(())
}

/// Before Raft starts: every peer that answers must be in our region and, when this data dir
/// names a cluster, in that cluster; a master with an empty data dir must not join a cluster
/// that already exists.
async fn check_peers(
    config: &MasterConfig,
    client: &PeerClient,
    fresh: bool,
    stored: &StoredIdentity,
) -> Result<(), StartupError> {
    let checks = config.peers().map(|(id, addr)| {
        let client = client.clone();
        let addr = addr.to_string();
        async move { (id, client.health(&addr).await, addr) }
    });
    let answers = futures_join_all(checks).await;
    // Whose region counts: a peer of a formed cluster (it has a cluster id), or, while the
    // cluster is being formed, only the master with the lowest id. Masters started together
    // must not refuse each other on the word of a newcomer in the wrong region, who is the
    // one to be refused (it checks the lowest-id master too, here and in `register`).
    let authority = config.masters.keys().next().copied();
    for (peer, health, addr) in answers {
        let Some(health) = health else { continue };
        let formed = health.cluster_id.is_some();
        if health.region != config.domain.region && (formed || Some(peer) == authority) {
            return Err(StartupError::RegionMismatch {
                mine: config.domain.region.clone(),
                theirs: health.region,
                peer,
                addr,
            });
        }
        if let (Some(mine), Some(theirs)) = (&stored.cluster_id, &health.cluster_id)
            && mine != theirs
        {
            return Err(StartupError::ClusterMismatch {
                dir: config.data_dir.display().to_string(),
                mine: mine.clone(),
                theirs: theirs.clone(),
                peer,
                addr,
            });
        }
        // An empty data dir in a formed cluster is a first start (masters started together:
        // the others formed the cluster before this one looked) unless the cluster has seen
        // this master before: it registers once it serves, so a listed master lost its data.
        if fresh && health.registered_masters.contains(&config.id) {
            return Err(StartupError::LostData {
                id: config.id,
                dir: config.data_dir.display().to_string(),
                peer,
                addr,
            });
        }
        let list = |m: &[u64]| m.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        // A first start of a master the formed cluster does not know: it must ask to join.
        if fresh
            && !config.membership.join
            && !health.members.is_empty()
            && !health.members.contains(&config.id)
            && let Some(cluster) = &health.cluster_id
        {
            return Err(StartupError::NotMember {
                id: config.id,
                cluster: cluster.clone(),
                peer,
                addr,
                members: list(&health.members),
            });
        }
        // A member (by its own data dir) that the leader no longer lists was removed.
        if !fresh
            && health.role == "leader"
            && stored.members.contains_key(&config.id)
            && !health.members.is_empty()
            && !health.members.contains(&config.id)
        {
            return Err(StartupError::Removed {
                id: config.id,
                dir: config.data_dir.display().to_string(),
                peer,
                addr,
                members: list(&health.members),
            });
        }
    }
    Ok(())
}

/// Joins futures without pulling in the futures crate.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

/// The master with the lowest id initialises the membership (every listed master) once, when
/// a majority of them answer in its region; a master whose log is not empty never
/// initialises again.
async fn form_cluster(master: Arc<RaftNode>) {
    if master.config().membership.force_new_cluster {
        return;
    }
    let lowest = master.config().masters.keys().next().copied();
    if lowest != Some(master.config().id) {
        return;
    }
    loop {
        match master.raft().is_initialized().await {
            Ok(true) | Err(_) => return,
            Ok(false) => {}
        }
        // A majority that answers, in this master's region, is enough: the membership
        // names every listed master, so the others join when they come (a master in
        // another region exits instead, see `register`).
        let mut agreeing = 1;
        for (peer, addr) in master.config().peers() {
            let Some(health) = master.peer_health(addr).await else {
                continue;
            };
            let theirs = health.region;
            if theirs == master.config().domain.region {
                agreeing += 1;
            } else {
                tracing::error!(
                    "master {peer} at {addr} is in region '{theirs}', but this master, which forms the cluster, is in '{}'; all masters must be in one region",
                    master.config().domain.region
                );
            }
        }
        let all = agreeing > master.config().masters.len() / 2;
        if all {
            let members: BTreeMap<u64, BasicNode> = master
                .config()
                .masters
                .iter()
                .map(|(id, addr)| (*id, BasicNode::new(addr.clone())))
                .collect();
            match master.raft().initialize(members).await {
                Ok(()) => {
                    tracing::info!("cluster formed");
                    return;
                }
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => return,
                Err(e) => tracing::warn!("cannot form the cluster yet: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Announces this master (id, address, fault domain) to the leader, once one exists; the
/// leader refuses a master whose region differs from the cluster's. Until then, the master
/// with the lowest id (the one that forms the cluster) is the authority on the region: a
/// master in another region exits rather than take part in an election.
async fn register(master: Arc<RaftNode>) -> Result<(), StartupError> {
    let body = json!(master.config().announcement());
    loop {
        let known = master.state().read(|a| {
            a.state.masters().get(&master.config().id).is_some_and(|m| {
                m.addr == master.config().advertised()
                    && m.domain.as_ref() == Some(&master.config().domain)
                    && m.protocol == state::network::MASTER_PROTOCOL
            })
        });
        if known {
            return Ok(());
        }
        if let Some((&first, first_addr)) = master.config().masters.iter().next()
            && first != master.config().id
            && let Some(health) = master.peer_health(first_addr).await
            && health.region != master.config().domain.region
        {
            return Err(StartupError::RegionMismatch {
                mine: master.config().domain.region.clone(),
                theirs: health.region,
                peer: first,
                addr: first_addr.clone(),
            });
        }
        if let Some((_, leader)) = master.leader() {
            match master
                .peers()
                .post_json(&leader, "/internal/masters", &body, Duration::from_secs(6))
                .await
            {
                Some((status, _)) if status.is_success() => return Ok(()),
                Some((status, answer)) if status == axum::http::StatusCode::CONFLICT => {
                    let message = answer
                        .get("message")
                        .and_then(|m| m.as_str())
                        .unwrap_or("region conflict")
                        .to_string();
                    return Err(StartupError::Refused(message));
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The forming master keeps the join tokens it wrote into its data dir in the replicated
/// state once the cluster has formed, so every master admits their holders (after a
/// failover too) and `drover token list|revoke` knows them. It asks itself: the request is
/// forwarded to the leader like any other.
async fn keep_bootstrap_tokens(master: Arc<RaftNode>, tokens: Vec<state::tls::JoinToken>) {
    for token in tokens {
        loop {
            let kept = master.state().read(|a| {
                a.state.cluster_id().is_some()
                    && a.state.credentials().join_tokens().contains_key(&token.id)
            });
            if kept {
                break;
            }
            let formed = master.state().read(|a| a.state.cluster_id().is_some());
            if formed {
                let body = json!({ "kind": token.kind, "token": token.to_string() });
                let _ = master
                    .peers()
                    .post_json(
                        master.config().advertised(),
                        "/internal/join-tokens",
                        &body,
                        Duration::from_secs(6),
                    )
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
