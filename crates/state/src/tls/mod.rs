//! The cluster's own PKI: its certificate authority, the certificates it issues to masters
//! and agents, the rustls configurations built from them, and join tokens.
//!
//! - [`ca`]: the cluster CA (ECDSA P-256), created once by the master that forms the cluster;
//!   it issues master certificates (serving and client, naming `master.drover` and the
//!   master's address) and agent client certificates (naming `<agent-id>.agent.drover`).
//! - [`identity`]: a certificate chain and its key, kept as PEM files (mode 0600).
//! - [`config`]: rustls server and client configurations that trust only the cluster CA, and
//!   what a verified peer certificate says about its holder ([`config::is_master`],
//!   [`config::names_agent`]).
//! - [`join`]: join tokens, `drover-join.<ca-fingerprint>.<kind>.<id>.<secret>`, and the
//!   client configuration that trusts only a server whose chain holds the pinned CA;
//!   [`joiner`]: asking the masters for a certificate with one.
//!
//! Certificates are told apart by their names, checked by webpki against the names they
//! carry, so nothing here parses a certificate by hand.

pub mod ca;
pub mod config;
pub mod identity;
pub mod join;
pub mod joiner;

pub use ca::{ClusterCa, Fingerprint};
pub use identity::Identity;
pub use join::{JoinKind, JoinToken};

use std::path::PathBuf;
use std::sync::Arc;

/// Why a certificate, key, configuration or token could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("{path}: {what}")]
    Pem {
        /// The file (or what the PEM came from).
        path: PathBuf,
        /// What was wrong.
        what: String,
    },
    /// rcgen could not make a key or a certificate.
    #[error("cannot make a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused a configuration (a key that does not match its certificate, …).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The client certificate verifier could not be built.
    #[error("TLS client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// A name that cannot go into a certificate.
    #[error("`{0}` cannot be named in a certificate (it is not a DNS name or an IP address)")]
    Name(String),
    /// The system's random number generator failed.
    #[error("the system's random number generator failed")]
    Random,
}

/// The one crypto provider drover's TLS uses: ring (never aws-lc, see STACK.md).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `n` random bytes from the system's generator, hex-encoded (secrets, ids).
pub fn random_hex(n: usize) -> Result<String, TlsError> {
    use ring::rand::SecureRandom;
    let mut bytes = vec![0u8; n];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| TlsError::Random)?;
    Ok(hex(&bytes))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `bytes`, hex-encoded: how join token secrets are kept in the state.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

#[cfg(test)]
mod tests;
