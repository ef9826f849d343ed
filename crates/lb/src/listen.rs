//! Listeners that follow the view: one per port the view wants, opened when it appears and
//! closed when it goes. Closing a listener stops new connections only: the connections it
//! accepted run on to their end (draining).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Tells connections to finish and counts the ones still open.
#[derive(Debug, Clone)]
pub struct Drain {
    signal: watch::Sender<bool>,
    open: Arc<AtomicUsize>,
}

/// One open connection, counted by its [`Drain`] until dropped.
#[derive(Debug)]
pub struct Open {
    open: Arc<AtomicUsize>,
    /// Changes to true when the process drains.
    pub draining: watch::Receiver<bool>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for Drain {
    fn default() -> Self {
        Drain {
            signal: watch::channel(false).0,
            open: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl Drain {
    /// Counts one more open connection.
    pub fn open(&self) -> Open {
        self.open.fetch_add(1, Ordering::Relaxed);
        Open {
            open: self.open.clone(),
            draining: self.signal.subscribe(),
        }
    }

    /// Connections open now.
    pub fn open_count(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Tells every connection to finish (HTTP connections close after their current
    /// request), then waits until none is open or `grace` passed; returns how many are left.
    pub async fn drain(&self, grace: Duration) -> usize {
        self.signal.send_replace(true);
        let deadline = Instant::now() + grace;
        while self.open_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.open_count()
    }
}

/// What serves the connections of one port.
pub type Serve = Arc<dyn Fn(u16, TcpStream, SocketAddr) + Send + Sync>;

/// The listeners of one address, reconciled with the ports the view wants.
pub struct Listeners<K> {
    ip: IpAddr,
    running: BTreeMap<u16, (K, JoinHandle<()>)>,
    /// Ports that could not be bound, with the error (logged once per change of the wanted set).
    failed: BTreeMap<u16, String>,
}

impl<K: Clone + PartialEq + std::fmt::Debug> Listeners<K> {
    /// No listeners yet, on `ip`.
    pub fn new(ip: IpAddr) -> Self {
        Listeners {
            ip,
            running: BTreeMap::new(),
            failed: BTreeMap::new(),
        }
    }

    /// Opens a listener for every wanted port not listened on (or listened on for another
    /// kind), closes the ones no longer wanted. `serve(kind)` makes what serves a port.
    pub async fn reconcile(&mut self, wanted: &BTreeMap<u16, K>, serve: impl Fn(&K) -> Serve) {
        let stale: Vec<u16> = self
            .running
            .iter()
            .filter(|(p, (k, _))| wanted.get(p) != Some(k))
            .map(|(p, _)| *p)
            .collect();
        for p in stale {
            if let Some((_, handle)) = self.running.remove(&p) {
                handle.abort();
                tracing::info!("stopped listening on {}:{p}", self.ip);
            }
        }
        self.failed.retain(|p, _| wanted.contains_key(p));
        for (&port, kind) in wanted {
            if self.running.contains_key(&port) {
                continue;
            }
            let addr = SocketAddr::new(self.ip, port);
            match TcpListener::bind(addr).await {
                Ok(listener) => {
                    self.failed.remove(&port);
                    tracing::info!("listening on {addr} ({kind:?})");
                    let serve = serve(kind);
                    let handle = tokio::spawn(accept_loop(listener, port, serve));
                    self.running.insert(port, (kind.clone(), handle));
                }
                Err(e) => {
                    let e = e.to_string();
                    if self.failed.get(&port) != Some(&e) {
                        tracing::warn!(
                            "cannot listen on {addr} for {kind:?}: {e}; retrying when the routes change"
                        );
                        self.failed.insert(port, e);
                    }
                }
            }
        }
    }

    /// Ports listened on now.
    pub fn ports(&self) -> Vec<u16> {
        self.running.keys().copied().collect()
    }

    /// Stops accepting on every port (open connections run on).
    pub fn close_all(&mut self) {
        for (_, (_, handle)) in std::mem::take(&mut self.running) {
            handle.abort();
        }
    }
}

/// Accepts connections until aborted; each is served on its own task.
async fn accept_loop(listener: TcpListener, port: u16, serve: Serve) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => serve(port, stream, peer),
            Err(e) => {
                // Out of file descriptors and the like: wait a moment instead of spinning.
                tracing::warn!("accept on port {port}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
