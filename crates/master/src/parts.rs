//! One master's parts, put together once: the API router and the leader-only services are
//! built from them, and each handler or service takes only the parts it uses (axum sub-states
//! through [`FromRef`], a small struct per service).

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;

use crate::agents::{AgentView, Liveness};
use crate::callbacks::{CallbackDelivery, CallbackMetrics};
use crate::events::EventBus;
use crate::leadership::{ClusterIdentity, LeaderService};
use crate::node::RaftNode;
use crate::scheduler::{EvictionGuard, Queue, Scheduler};
use crate::tls::MasterPki;

/// A master: its Raft node, the leader's memory (agents, the queue, the eviction guard), its
/// event bus and its callback subscribers' counts. Cloning shares the parts.
#[derive(Clone)]
pub struct Parts {
    node: Arc<RaftNode>,
    agents: Arc<AgentView>,
    queue: Arc<Queue>,
    eviction: Arc<EvictionGuard>,
    events: Arc<EventBus>,
    callbacks: Arc<CallbackMetrics>,
    /// The CA and certificates of a secure master; `None` under `--insecure`.
    pki: Option<Arc<MasterPki>>,
}

impl Parts {
    /// A master around a started Raft node and its event bus, with an empty memory (a new
    /// leader rebuilds it from heartbeats and reports).
    pub fn new(node: RaftNode, events: EventBus) -> Self {
        Parts {
            node: Arc::new(node),
            agents: Arc::default(),
            queue: Arc::default(),
            eviction: Arc::default(),
            events: Arc::new(events),
            callbacks: Arc::default(),
            pki: None,
        }
    }

    /// The same master, secure: it signs joiners' certificates with `pki`'s CA, and
    /// `/internal/*` asks for certificates.
    pub fn with_pki(mut self, pki: Arc<MasterPki>) -> Self {
        self.pki = Some(pki);
        self
    }

    /// The Raft node.
    pub fn node(&self) -> &Arc<RaftNode> {
        &self.node
    }

    /// The whole HTTP API over these parts.
    pub fn router(&self) -> Router {
        crate::api::router(self.clone())
    }

    /// The services only the leader runs, each holding the parts it uses.
    pub fn leader_services(&self) -> Vec<Arc<dyn LeaderService>> {
        vec![
            Arc::new(ClusterIdentity::new(self.node.clone())),
            Arc::new(Liveness::new(self.node.clone(), self.agents.clone())),
            Arc::new(Scheduler::new(
                self.node.clone(),
                self.agents.clone(),
                self.queue.clone(),
                self.eviction.clone(),
                self.events.clone(),
            )),
            Arc::new(CallbackDelivery::new(
                self.node.clone(),
                self.events.clone(),
                self.callbacks.clone(),
                self.node.config().callbacks,
            )),
        ]
    }
}

impl FromRef<Parts> for Arc<RaftNode> {
    fn from_ref(parts: &Parts) -> Self {
        parts.node.clone()
    }
}

impl FromRef<Parts> for Arc<AgentView> {
    fn from_ref(parts: &Parts) -> Self {
        parts.agents.clone()
    }
}

impl FromRef<Parts> for Arc<Queue> {
    fn from_ref(parts: &Parts) -> Self {
        parts.queue.clone()
    }
}

impl FromRef<Parts> for Arc<EvictionGuard> {
    fn from_ref(parts: &Parts) -> Self {
        parts.eviction.clone()
    }
}

impl FromRef<Parts> for Arc<EventBus> {
    fn from_ref(parts: &Parts) -> Self {
        parts.events.clone()
    }
}

impl FromRef<Parts> for Arc<CallbackMetrics> {
    fn from_ref(parts: &Parts) -> Self {
        parts.callbacks.clone()
    }
}

impl FromRef<Parts> for Option<Arc<MasterPki>> {
    fn from_ref(parts: &Parts) -> Self {
        parts.pki.clone()
    }
}
