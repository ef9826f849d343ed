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

async fn connect(host: &str, port: u16) -> std::io::Result<SimStream> {
    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        turmoil::net::TcpStream::connect((host, port)),
    )
    .await
    .map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("connecting to {host}:{port} timed out"),
        )
    })??;
    Ok(SimStream::new(stream))
}

/// A simulated TCP connection (either end) that closes in a fixed order when its host
/// crashes.
///
/// A crash drops the host's tokio runtime, and with it every task and connection; each
/// connection dropped sends its FIN or RST, and turmoil draws each message's latency from
/// the run's rng in send order. The order in which the runtime drops its tasks is not the
/// run's: tokio keeps them in lists sharded by task id, and task ids come from one counter
/// for the whole process (two runs on two threads take turns with it); and a task drops a
/// `HashMap` of connections (hyper-util's pool) in its random order. So while a crash is in
/// progress ([`crash`]) a connection dropped is set aside, and the host's [`CloseInOrder`]
/// guard, dropped last, closes them all in the order they were opened.
pub struct SimStream {
    /// This run's number of the connection, in the order connections were opened.
    opened: u64,
    inner: Option<turmoil::net::TcpStream>,
}

thread_local! {
    /// Connections opened (either end) so far in the run.
    static OPENED: Cell<u64> = const { Cell::new(0) };
    /// While a host crashes: its connections dropped so far, to close in order.
    static CRASHING: RefCell<Option<Vec<(u64, turmoil::net::TcpStream)>>> =
        const { RefCell::new(None) };
}

impl SimStream {
    fn new(inner: turmoil::net::TcpStream) -> Self {
        let opened = OPENED.with(|n| {
            n.set(n.get() + 1);
            n.get()
        });
        SimStream {
            opened,
            inner: Some(inner),
        }
    }

    fn inner(&mut self) -> Pin<&mut turmoil::net::TcpStream> {
        Pin::new(
            self.inner
                .as_mut()
                .expect("a connection is only taken when dropped"),
        )
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let inner = CRASHING.with(|c| match c.borrow_mut().as_mut() {
            Some(set_aside) => {
                set_aside.push((self.opened, inner));
                None
            }
            None => Some(inner),
        });
        drop(inner);
    }
}

impl AsyncRead for SimStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.inner().poll_read(cx, buf)
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.inner().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.inner().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.inner().poll_shutdown(cx)
    }
}

/// Crashes host `name`, its connections closing in the order they were opened (see
/// [`SimStream`]). The host's software must hold a [`CloseInOrder`].
pub fn crash(sim: &mut turmoil::Sim<'_>, name: &str) {
    CRASHING.with(|c| *c.borrow_mut() = Some(Vec::new()));
    sim.crash(name);
    // The guard closed them, inside the host; anything left (a host whose software had
    // already ended) goes without a FIN, as after a power cut.
    CRASHING.with(|c| c.borrow_mut().take());
}

/// Held by a host's software for its whole life: turmoil drops the software (on its
/// `LocalSet`) after the host's runtime, so this guard drops after every task of the host,
/// and closes the connections they left in the order they were opened.
pub struct CloseInOrder;

impl Drop for CloseInOrder {
    fn drop(&mut self) {
        if let Some(mut set_aside) = CRASHING.with(|c| c.borrow_mut().take()) {
            set_aside.sort_by_key(|(opened, _)| *opened);
            drop(set_aside);
        }
    }
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
    OPENED.with(|n| n.set(0));
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
    inner: SimStream,
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
    type Io = SimStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => return (SimStream::new(stream), addr),
                // As axum's TCP listener does: a failed accept is retried after a pause.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}
