//! drover's seams over turmoil: the connector every internal HTTP client opens simulated TCP
//! connections with, the listener a master serves on, and the simulated wall clock.

use std::net::SocketAddr;
use std::time::Duration;

use state::transport::{Connector, Stream};

/// The simulated wall clock starts here (2026-12-01T00:00:00Z), the same in every run.
pub const EPOCH_MS: u64 = 1_796_083_200_000;

/// How long a simulated connection attempt may take (as `Connector::tcp`'s timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Simulated time since [`EPOCH_MS`] as wall-clock ms; installed with
/// `state::runtime::set_wall_clock` and read by the masters' [`SimClock`].
pub fn wall_clock_ms() -> u64 {
    let elapsed = turmoil::sim_elapsed().unwrap_or_default();
    EPOCH_MS + u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// A master's clock in the simulation.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimClock;

impl master::clock::Clock for SimClock {
    fn now_ms(&self) -> u64 {
        wall_clock_ms()
    }
}

/// Opens connections over turmoil's TCP, resolving host names and IPs in the simulation.
pub fn connector() -> Connector {
    Connector::new(|uri: axum::http::Uri| async move {
        let host = uri.host().ok_or("a URI without a host")?.to_string();
        let port = uri.port_u16().unwrap_or(80);
        let stream = tokio::time::timeout(
            CONNECT_TIMEOUT,
            turmoil::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        .map_err(|_| format!("connecting to {host}:{port} timed out"))??;
        Ok(Stream::tokio(stream))
    })
}

/// A master's listener: turmoil's, as axum's [`axum::serve::Listener`].
pub struct SimListener(pub turmoil::net::TcpListener);

impl axum::serve::Listener for SimListener {
    type Io = turmoil::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok(accepted) => return accepted,
                // As axum's TCP listener does: a failed accept is retried after a pause.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}
