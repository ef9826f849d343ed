//! A secure master's TLS: what it holds ([`MasterPki`]: the CA, its certificate, the
//! join tokens it made when it formed the cluster), where those come from at start
//! ([`prepare`]), the listener that serves TLS ([`TlsListener`]) and the guard on
//! `/internal/*` that knows the caller by its certificate ([`guard`]).

mod guard;
mod listener;
mod prepare;

pub use guard::{Caller, guard};
pub use listener::{PeerCertificate, TlsListener};
pub use prepare::{JOIN_TOKEN_FILES, PkiError, prepare};

use std::sync::Arc;

use state::tls::{ClusterCa, Identity, JoinToken, TlsError, config};

/// The file name of a master's own certificate in its data dir (`master.pem`,
/// `master-key.pem`).
pub const MASTER_IDENTITY: &str = "master";

/// What a secure master holds: the CA (every master keeps its key, so any leader can sign
/// a joiner's certificate after a failover), its own certificate, and the join tokens it
/// made when it formed the cluster (until they are in the replicated state).
pub struct MasterPki {
    ca: ClusterCa,
    identity: Identity,
    bootstrap: Vec<JoinToken>,
}

impl std::fmt::Debug for MasterPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterPki({:?})", self.ca)
    }
}

impl MasterPki {
    /// A master's PKI from its parts.
    pub fn new(ca: ClusterCa, identity: Identity, bootstrap: Vec<JoinToken>) -> Self {
        MasterPki {
            ca,
            identity,
            bootstrap,
        }
    }

    /// The cluster CA.
    pub fn ca(&self) -> &ClusterCa {
        &self.ca
    }

    /// The join tokens this master made when it formed the cluster.
    pub fn bootstrap(&self) -> &[JoinToken] {
        &self.bootstrap
    }

    /// The server side: this master's certificate, client certificates optional.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        config::server_config(self.ca.cert(), &self.identity)
    }

    /// The client side (Raft, forwarding, peer questions): trusts only the cluster CA and
    /// presents this master's certificate.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        config::client_config(self.ca.cert(), Some(&self.identity))
    }
}
