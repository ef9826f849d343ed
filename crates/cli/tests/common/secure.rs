//! Talking to secure masters (TLS with the cluster CA, client certificates): a blocking
//! client over drover's own TLS connector, and the start of a secure cluster whose first
//! master makes the CA and the join tokens.

use std::path::{Path, PathBuf};
use std::time::Duration;

use master::peer::{Method, PeerClient};
use serde_json::Value;
use state::tls::{Identity, config};
use state::transport::Connector;

use super::Cluster;

/// The CA certificate the first master wrote.
pub fn ca_file(cluster: &Cluster) -> PathBuf {
    cluster.master(1).data_dir.join("ca.pem")
}

/// A join token file the first master wrote (`master-join-token`, `agent-join-token`).
pub fn token_file(cluster: &Cluster, name: &str) -> PathBuf {
    cluster.master(1).data_dir.join(name)
}

/// Starts a secure cluster (see [`Cluster::insecure`]): master 1 first (it makes the CA
/// and the tokens), then the others with the master join token it wrote.
pub fn start_secure(cluster: &mut Cluster) {
    cluster.insecure = false;
    cluster.start_all();
}

/// One call over TLS trusting `ca` (a PEM file), presenting `identity` if given: the
/// status and JSON body, or why there is none.
pub fn call(
    addr: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
    ca: &Path,
    identity: Option<&Identity>,
) -> Result<(u16, Value), String> {
    let ca = state::tls::ca::read_ca_cert(ca).map_err(|e| e.to_string())?;
    let tls = config::client_config(&ca, identity).map_err(|e| e.to_string())?;
    let client =
        PeerClient::with_connector(Connector::tcp(Some(Duration::from_secs(2))).with_tls(tls));
    block_on(client.call(method, addr, path, body, Duration::from_secs(30)))
        .map(|(status, value)| (status.as_u16(), value))
        .map_err(|e| e.to_string())
}

/// Runs `future` to its end on a runtime of its own (the tests are blocking).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the test's client")
        .block_on(future)
}

/// The leader's address as `addr` reports it in its open `/health`, over TLS.
pub fn leader(addr: &str, ca: &Path) -> Option<String> {
    match call(addr, Method::GET, "/health", None, ca, None) {
        Ok((200, body)) => body.get("leader")?.as_str().map(str::to_string),
        _ => None,
    }
}
