//! drover's seams over turmoil: the connectors every HTTP client opens simulated TCP
//! connections with (drover's own traffic can be replayed: duplicated and reordered
//! requests), the listener a master serves on, and the simulated wall clock.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use state::transport::{Connector, Stream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::plan::Rng;

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
        let (host, port) = host_port(&uri)?;
        Ok(Stream::tokio(connect(&host, port).await?))
    })
}

/// As [`connector`], for drover's own traffic (Raft between masters, agents to masters):
/// while a [`Replay`] is on, some of its connections have what their client wrote sent
/// again later on a connection of its own ([`replay_later`]).
pub fn internal_connector() -> Connector {
    Connector::new(|uri: axum::http::Uri| async move {
        let (host, port) = host_port(&uri)?;
        let stream = connect(&host, port).await?;
        match REPLAY.with(Cell::get).and_then(Replay::draw) {
            Some(delay) => {
                let written = Arc::new(Mutex::new(Vec::new()));
                tokio::spawn(replay_later(host, port, delay, written.clone()));
                Ok(Stream::tokio(Recorded {
                    inner: stream,
                    written,
                }))
            }
            None => Ok(Stream::tokio(stream)),
        }
    })
}

fn host_port(uri: &axum::http::Uri) -> Result<(String, u16), String> {
    let host = uri.host().ok_or("a URI without a host")?.to_string();
    Ok((host, uri.port_u16().unwrap_or(80)))
}

async fn connect(host: &str, port: u16) -> std::io::Result<turmoil::net::TcpStream> {
    tokio::time::timeout(
        CONNECT_TIMEOUT,
        turmoil::net::TcpStream::connect((host, port)),
    )
    .await
    .map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("connecting to {host}:{port} timed out"),
        )
    })?
}

/// Requests duplicated and reordered: while on, `percent` of drover's internal
/// connections are replayed, each up to `max_delay` after it opened, so a status report,
/// heartbeat or Raft RPC arrives twice, the second time after newer ones. (turmoil's TCP is
/// reliable and ordered, so this happens at the request level: as a retrying proxy or a
/// client's own retry would do it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replay {
    /// Share of connections replayed, in percent.
    pub percent: u64,
    /// The longest delay before a replay.
    pub max_delay: Duration,
}

impl Replay {
    /// Whether this connection is replayed, and when.
    fn draw(self) -> Option<Duration> {
        RNG.with(|rng| {
            let mut rng = rng.borrow_mut();
            let rng = rng.as_mut()?;
            rng.chance(self.percent)
                .then(|| rng.ms(1, self.max_delay.as_millis() as u64))
        })
    }
}

thread_local! {
    /// The replay fault in force (every host of a run runs on the run's thread).
    static REPLAY: Cell<Option<Replay>> = const { Cell::new(None) };
    /// Connections replayed so far in the run.
    static REPLAYED: Cell<u64> = const { Cell::new(0) };
    /// The replays' draws, seeded per run.
    static RNG: RefCell<Option<Rng>> = const { RefCell::new(None) };
}

/// Starts a run's replay draws from `seed`, with no replay in force.
pub fn seed_replays(seed: u64) {
    RNG.with(|r| *r.borrow_mut() = Some(Rng::new(seed, 3)));
    REPLAY.with(|r| r.set(None));
    REPLAYED.with(|n| n.set(0));
}

/// How many connections were replayed so far in the run.
pub fn replayed() -> u64 {
    REPLAYED.with(Cell::get)
}

/// Puts `replay` in force (or none).
pub fn set_replay(replay: Option<Replay>) {
    REPLAY.with(|r| r.set(replay));
}

/// At most this much of what a connection's client wrote is kept for its replay.
const REPLAY_MAX_BYTES: usize = 256 * 1024;

/// A connection that keeps a copy of what its client wrote.
struct Recorded {
    inner: turmoil::net::TcpStream,
    written: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for Recorded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Recorded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled
            && let Ok(mut written) = self.written.lock()
            && written.len() < REPLAY_MAX_BYTES
        {
            written.extend_from_slice(&buf[..n]);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// After `delay`, sends what was written so far on a connection to `host:port` again, on a
/// new connection, and reads the answers until the server closes it (or 5 s); only
/// drover's internal requests (`POST /internal/…`) are replayed.
async fn replay_later(host: String, port: u16, delay: Duration, written: Arc<Mutex<Vec<u8>>>) {
    tokio::time::sleep(delay).await;
    let bytes = written.lock().map(|w| w.clone()).unwrap_or_default();
    if !bytes.starts_with(b"POST /internal/") {
        return;
    }
    let Ok(mut stream) = connect(&host, port).await else {
        return;
    };
    if stream.write_all(&bytes).await.is_err() {
        return;
    }
    REPLAYED.with(|n| n.set(n.get() + 1));
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut sink)).await;
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
