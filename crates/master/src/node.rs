//! A master's Raft node ([`RaftNode`]): its role, the leader, linearizable reads, writes, the
//! version clock and planned leadership moves ([`handover`]).

mod handover;

pub use handover::{HandOverError, HandedOver, TRANSFER_PATH, TransferRequest};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

// tokio's Instant is the system's in production and follows a paused (simulated) runtime's time.
use tokio::time::Instant;

use axum::http::{HeaderValue, StatusCode};
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{BasicNode, ServerState};
use state::types::Raft;
use state::{Command, Response, StateReader};

use crate::clock::{self, Clock};
use crate::config::MasterConfig;
use crate::error::ApiError;
use crate::metrics::{Metrics, RaftFigures};
use crate::peer::PeerClient;

/// This master's Raft node and everything that speaks for it: its configuration, its view
/// of the replicated state, the write path (one command, one log entry), linearizable reads,
/// the version clock, handing leadership over, and its client for talking to peers.
///
/// It holds nothing only the leader knows (that is [`crate::agents::AgentView`] and the
/// scheduler's [`crate::scheduler::Queue`] and [`crate::scheduler::EvictionGuard`]) and does
/// not publish events ([`crate::events::EventBus`]).
pub struct RaftNode {
    config: MasterConfig,
    raft: Raft,
    state: StateReader,
    metrics: Metrics,
    peers: PeerClient,
    clock: Arc<dyn Clock>,
    /// Set while this master hands leadership over ([`RaftNode::hand_over`]): it takes no
    /// writes and does not call itself the leader.
    abdicating: AtomicBool,
    /// Held shared by every write from its check of `abdicating` to its commit, so that a
    /// handover, taking it exclusively once, knows no write it did not see is still adding
    /// to the log.
    writing: tokio::sync::RwLock<()>,
    /// Serialises multi-step API changes and scheduler passes on the leader, so neither sees
    /// half of the other (e.g. "create if absent", an app and its deployment).
    exclusive: tokio::sync::Mutex<()>,
    /// The last version timestamp this master issued, so versions never repeat.
    last_version_ms: AtomicU64,
    /// The leader header last made: leader id, address, value ([`RaftNode::leader_header`]).
    leader_header: std::sync::Mutex<Option<(u64, String, HeaderValue)>>,
    /// When the last quorum round that confirmed this master's leadership started
    /// ([`RaftNode::confirm_leadership`]).
    confirmed_at: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// One confirmation round at a time: the heartbeats that find it stale wait for it.
    confirming: tokio::sync::Mutex<()>,
    /// Agents' status reports waiting to be committed together ([`RaftNode::report`]).
    reports: crate::reports::ReportCommits,
    /// When each peer last answered this master's Raft RPCs.
    contacts: state::network::Contacts,
    /// Set when the leader removed this master from the membership (and it checked).
    removed: AtomicBool,
    /// Woken when `removed` is set.
    removed_notify: tokio::sync::Notify,
}

/// What a master is in the Raft group right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Leads.
    Leader,
    /// Follows a leader (or waits for one).
    Follower,
    /// Asks for votes.
    Candidate,
    /// Not a voter (not yet part of the cluster).
    Learner,
    /// Raft has stopped.
    Shutdown,
}

impl Role {
    /// Lower-case name used in `/health`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
            Role::Shutdown => "shutdown",
        }
    }
}

impl RaftNode {
    /// Wraps a started Raft node over `state`, talking to peers through `peers` and reading
    /// the time from `clock`.
    pub fn new(
        config: MasterConfig,
        raft: Raft,
        state: StateReader,
        peers: PeerClient,
        clock: Arc<dyn Clock>,
        contacts: state::network::Contacts,
    ) -> Self {
        RaftNode {
            config,
            raft,
            state,
            metrics: Metrics::default(),
            peers,
            clock,
            abdicating: AtomicBool::new(false),
            writing: tokio::sync::RwLock::new(()),
            exclusive: tokio::sync::Mutex::new(()),
            last_version_ms: AtomicU64::new(0),
            leader_header: std::sync::Mutex::new(None),
            confirmed_at: std::sync::Mutex::new(None),
            confirming: tokio::sync::Mutex::new(()),
            reports: crate::reports::ReportCommits::default(),
            contacts,
            removed: AtomicBool::new(false),
            removed_notify: tokio::sync::Notify::new(),
        }
    }

    /// When each peer last answered this master's Raft RPCs.
    pub fn contacts(&self) -> &state::network::Contacts {
        &self.contacts
    }

    /// Marks this master removed from the cluster: it stops ([`RaftNode::wait_removed`]).
    pub fn set_removed(&self) {
        self.removed.store(true, Ordering::SeqCst);
        self.removed_notify.notify_waiters();
    }

    /// Resolves once this master has been removed from the cluster.
    pub async fn wait_removed(&self) {
        loop {
            let notified = self.removed_notify.notified();
            if self.removed.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }

    /// The voters of the membership in force (of its newest half during a change), or
    /// `--masters` before the cluster is formed.
    pub fn voter_count(&self) -> usize {
        let watch = self.raft.metrics();
        let metrics = watch.borrow();
        let joint = metrics.membership_config.membership().get_joint_config();
        match joint.last() {
            Some(voters) if !voters.is_empty() => voters.len(),
            _ => self.config.masters.len(),
        }
    }

    /// This master's configuration.
    pub fn config(&self) -> &MasterConfig {
        &self.config
    }

    /// The Raft handle (for Raft's own RPCs, forming the cluster and watching its metrics).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The applied cluster state, as this master has applied it.
    pub fn state(&self) -> &StateReader {
        &self.state
    }

    /// This master's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The HTTP client for forwarding and talking to peers.
    pub fn peers(&self) -> &PeerClient {
        &self.peers
    }

    /// Where this master reads the time.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Waits for this master's turn to make a change of several steps (or a scheduler pass)
    /// that nothing else on this master may interleave with; the turn lasts as long as the
    /// guard.
    pub async fn exclusive(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.exclusive.lock().await
    }

    /// This master's role.
    pub fn role(&self) -> Role {
        match self.raft.metrics().borrow().state {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        }
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// The leader as this master knows it: its id and address. While this master abdicates it
    /// does not name itself.
    pub fn leader(&self) -> Option<(u64, String)> {
        self.with_leader(|id, addr| (id, addr.to_string()))
    }

    /// `f` of the leader's id and address, read in place: this runs for every request, so
    /// nothing is cloned (see [`RaftNode::leader`] for who counts as the leader).
    fn with_leader<T>(&self, f: impl FnOnce(u64, &str) -> T) -> Option<T> {
        let watch = self.raft.metrics();
        let metrics = watch.borrow();
        let id = metrics.current_leader?;
        if id == self.config.id && (self.abdicating() || metrics.state != ServerState::Leader) {
            return None;
        }
        let addr = match metrics.membership_config.membership().get_node(&id) {
            Some(node) => node.addr.as_str(),
            None => self.config.masters.get(&id)?.as_str(),
        };
        Some(f(id, addr))
    }

    /// True when this master leads and is not handing over.
    pub fn is_leader(&self) -> bool {
        self.with_leader(|id, _| id == self.config.id)
            .unwrap_or(false)
    }

    /// The `X-Marathon-Leader` value naming the leader (`http://HOST:PORT`), made once per
    /// leader and then reused: every answer carries it.
    pub fn leader_header(&self) -> Option<HeaderValue> {
        self.with_leader(|id, addr| {
            let mut cached = self
                .leader_header
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match &*cached {
                Some((cid, caddr, value)) if *cid == id && caddr == addr => Some(value.clone()),
                _ => {
                    let value = HeaderValue::from_str(&format!("http://{addr}")).ok()?;
                    *cached = Some((id, addr.to_string(), value.clone()));
                    Some(value)
                }
            }
        })
        .flatten()
    }

    /// True while leadership is being handed over.
    pub fn abdicating(&self) -> bool {
        self.abdicating.load(Ordering::SeqCst)
    }

    /// Raft members with their addresses.
    pub fn members(&self) -> BTreeMap<u64, String> {
        let metrics = self.raft.metrics().borrow().clone();
        metrics
            .membership_config
            .membership()
            .nodes()
            .map(|(id, n): (&u64, &BasicNode)| (*id, n.addr.clone()))
            .collect()
    }

    /// Figures for `/metrics` and `/v2/info`.
    pub fn raft_figures(&self) -> RaftFigures {
        let m = self.raft.metrics().borrow().clone();
        RaftFigures {
            id: self.config.id,
            term: m.current_term,
            is_leader: m.state == ServerState::Leader,
            applied: m.last_applied.map(|l| l.index).unwrap_or(0),
            last_log: m.last_log_index.unwrap_or(0),
        }
    }

    /// Confirms that this master still leads, with a quorum round at most once per
    /// `--election-timeout-min-ms`, for answers too frequent for a round each (agent
    /// heartbeats). Once a quorum acknowledged a round, no other leader can be elected within
    /// the shortest election timeout of its start, so the answer holds that long. Without
    /// this, a leader cut off from the other masters but not from the agents kept taking
    /// their heartbeats: they never moved to the new leader, which called them unreachable
    /// and could give them no work.
    pub async fn confirm_leadership(&self) -> Result<(), ApiError> {
        if self.abdicating() {
            return Err(Self::handing_over());
        }
        let lease = self.config.election_timeout_min;
        let fresh = || {
            self.confirmed_at
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_some_and(|at| at.elapsed() < lease)
        };
        if fresh() {
            return Ok(());
        }
        let _turn = self.confirming.lock().await;
        if fresh() {
            return Ok(());
        }
        let started = tokio::time::Instant::now();
        self.confirm_leadership_now().await?;
        *self
            .confirmed_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(started);
        Ok(())
    }

    /// One quorum round confirming that this master leads, without waiting for its state
    /// machine to apply what is committed (a heartbeat needs the leadership, not the
    /// state: while a deploy of 100,000 instances is being applied, waiting for it would
    /// make heartbeats time out and send every agent away from a healthy leader).
    async fn confirm_leadership_now(&self) -> Result<(), ApiError> {
        let round = async { self.raft.get_read_log_id().await.map(|_| None) };
        self.leadership_answer(round).await
    }

    /// Confirms with a quorum that this master still leads and that its state has applied
    /// everything committed before now; reads after this are linearizable.
    pub async fn linearizable(&self) -> Result<(), ApiError> {
        self.leadership_answer(self.raft.ensure_linearizable())
            .await
    }

    /// Turns a leadership check into the API's answer, giving it the write timeout.
    async fn leadership_answer(
        &self,
        check: impl Future<
            Output = Result<
                Option<state::types::LogId>,
                RaftError<
                    state::types::NodeId,
                    CheckIsLeaderError<state::types::NodeId, BasicNode>,
                >,
            >,
        >,
    ) -> Result<(), ApiError> {
        let wait = self.config.write_timeout;
        match tokio::time::timeout(wait, check).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_)))) => {
                Err(ApiError::unavailable(
                    "This master is no longer the leader; nothing was done. Retry: the request will go to the new leader.",
                ))
            }
            Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)))) | Err(_) => {
                self.metrics.write_failed();
                Err(self.no_quorum("nothing was done"))
            }
            Ok(Err(e)) => Err(ApiError::unavailable(format!(
                "This master cannot confirm its leadership ({e}); nothing was done."
            ))),
        }
    }

    /// The refusal of a write or a leadership check while this master hands over.
    fn handing_over() -> ApiError {
        ApiError::unavailable(
            "This master is handing leadership over to another; nothing was done. Retry: the request will go to the new leader.",
        )
    }

    fn no_quorum(&self, what: &str) -> ApiError {
        let n = self.voter_count();
        let wait = self.config.write_timeout;
        if n == 1 {
            // One master is its own quorum: only slowness (a slow disk, an overloaded machine)
            // keeps it from committing.
            return ApiError::unavailable(format!(
                "This master could not commit within {wait:?} (--write-timeout-ms): its disk or machine is too slow or overloaded; {what}. Check its log and load, then retry.",
            ));
        }
        ApiError::unavailable(format!(
            "No quorum within {wait:?}: fewer than {} of the {n} masters answered in time, so the cluster cannot agree on anything; {what}. Check the masters' /health and bring them back.",
            n / 2 + 1,
        ))
    }

    /// Commits a command through Raft and returns what applying it gave.
    ///
    /// Leadership and a quorum are confirmed first, so a write that cannot commit is usually
    /// refused before anything reaches the log. A write that times out after that may still
    /// be applied later, and the error says so.
    pub async fn write(&self, command: Command) -> Result<Response, ApiError> {
        self.check_size(&command)?;
        self.linearizable().await?;
        self.commit_checked(command).await
    }

    /// Commits one agent's status reports, together with those other agents sent meanwhile
    /// (one log entry for many reports; see [`crate::reports`]). Answers this agent's
    /// `Response::Reported`.
    pub async fn report(
        &self,
        agent_id: domain::AgentId,
        reports: Vec<state::InstanceReport>,
    ) -> Result<Response, ApiError> {
        self.reports.commit(self, agent_id, reports).await
    }

    /// Commits `command` without the leadership round [`RaftNode::write`] starts with: for
    /// idempotent changes whose sender retries, where an ambiguous answer costs nothing.
    pub(crate) async fn commit(&self, command: Command) -> Result<Response, ApiError> {
        self.check_size(&command)?;
        self.commit_checked(command).await
    }

    /// Refuses a command too large for the replicated log.
    fn check_size(&self, command: &Command) -> Result<(), ApiError> {
        // Every master must be able to receive, store and replay each entry: refuse what is
        // too large to replicate before it reaches the log (the API's limits keep client
        // writes far below this; hitting it is a bug, reported rather than replicated).
        let size = serde_json::to_vec(&command).map_or(0, |b| b.len());
        if size > state::network::MAX_COMMAND_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "This change is {size} bytes; the replicated log takes at most {} bytes per entry. Nothing was done: split it into smaller changes.",
                    state::network::MAX_COMMAND_BYTES
                ),
            ));
        }
        Ok(())
    }

    /// Proposes a command whose size was checked and waits for its commit and apply.
    async fn commit_checked(&self, command: Command) -> Result<Response, ApiError> {
        // A handover waits for a voter to hold the whole log: nothing may be added to it.
        let _writing = self.writing.read().await;
        if self.abdicating() {
            return Err(Self::handing_over());
        }
        let started = Instant::now();
        let result =
            tokio::time::timeout(self.config.write_timeout, self.raft.client_write(command)).await;
        match result {
            Ok(Ok(resp)) => {
                self.metrics.applied(started.elapsed());
                Ok(resp.data)
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                self.metrics.write_failed();
                Err(ApiError::unavailable(
                    "This master lost leadership during the request; it may not have been applied. Read it back, then retry.",
                ))
            }
            Ok(Err(e)) => {
                self.metrics.write_failed();
                Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("The write failed: {e}"),
                ))
            }
            Err(_) => {
                self.metrics.write_failed();
                Err(self.no_quorum("the write may still be applied if they return"))
            }
        }
    }

    /// A version timestamp for an app: now, but always after the app's current version and
    /// after every version this master issued before.
    pub fn next_version(&self, current: Option<&str>) -> String {
        let floor = current.and_then(clock::parse_iso).map_or(0, |v| v + 1);
        let mut candidate = self.clock.now_ms().max(floor);
        let mut last = self.last_version_ms.load(Ordering::SeqCst);
        loop {
            candidate = candidate.max(last + 1);
            match self.last_version_ms.compare_exchange(
                last,
                candidate,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return clock::iso(candidate),
                Err(actual) => last = actual,
            }
        }
    }

    /// `/health` of a peer, if it answers in time.
    pub async fn peer_health(&self, addr: &str) -> Option<client::ProcessHealth> {
        self.peers.health(addr).await
    }
}
