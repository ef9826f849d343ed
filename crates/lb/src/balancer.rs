//! The balancer: picks a backend for each new connection by [`crate::choice`], connects,
//! and on a connect error tries the next one at once (so a dead instance the masters have not
//! reported yet costs a retry, not a failed connection). It also keeps the per-backend
//! counters that `/metrics` shows.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::choice::{Caller, Locality, choose};
use crate::metrics::{BackendStats, StatsTable};
use crate::routes::Service;

/// How long a backend that refused a connection is passed over (unless nothing else is left):
/// long enough to cover the masters noticing, short enough that a flap costs little.
pub const EJECTION: Duration = Duration::from_secs(2);

/// How long one connect to a backend may take before the next is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One open connection or request to a backend: counted as active until dropped.
#[derive(Debug)]
pub struct Active {
    /// The backend's counters.
    pub stats: Arc<BackendStats>,
    /// Where it goes.
    pub addr: SocketAddr,
    /// The instance.
    pub instance_id: String,
    /// How near it is.
    pub locality: Locality,
}

impl Drop for Active {
    fn drop(&mut self) {
        self.stats.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why no backend took a connection.
#[derive(Debug, thiserror::Error)]
pub enum NoBackend {
    /// The service has no ready instance for this caller.
    #[error("{service} has no ready instance")]
    NoneReady {
        /// The service key.
        service: String,
    },
    /// Every ready instance refused or timed out.
    #[error("every ready instance of {service} failed to connect (last: {last})")]
    AllFailed {
        /// The service key.
        service: String,
        /// The last error.
        last: String,
    },
}

/// Chooses backends for one caller and counts what goes to each.
#[derive(Debug)]
pub struct Balancer {
    caller: Caller,
    started: Instant,
    turn: AtomicUsize,
    stats: Mutex<StatsTable>,
    no_backend: Mutex<HashMap<String, u64>>,
}

impl Balancer {
    /// A balancer for connections from `caller`.
    pub fn new(caller: Caller) -> Self {
        Balancer {
            caller,
            started: Instant::now(),
            turn: AtomicUsize::new(0),
            stats: Mutex::new(HashMap::new()),
            no_backend: Mutex::new(HashMap::new()),
        }
    }

    /// The caller's fault domain.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The counters of backend `addr` of service `key` (made on first use).
    pub fn stats(&self, key: &str, addr: SocketAddr, instance_id: &str) -> Arc<BackendStats> {
        let mut map = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        Self::stats_in(&mut map, key, addr, instance_id)
    }

    /// [`Balancer::stats`] with the table locked.
    fn stats_in(
        map: &mut StatsTable,
        key: &str,
        addr: SocketAddr,
        instance_id: &str,
    ) -> Arc<BackendStats> {
        if !map.contains_key(key) {
            map.insert(key.to_string(), HashMap::new());
        }
        let Some(service) = map.get_mut(key) else {
            return Arc::new(BackendStats::default());
        };
        service
            .entry(addr)
            .or_insert_with(|| (instance_id.to_string(), Arc::new(BackendStats::default())))
            .1
            .clone()
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Picks a backend of `service` (skipping `tried` and, while others are left, the
    /// recently refusing ones) and counts it active.
    pub fn pick(&self, service: &Service, tried: &BTreeSet<SocketAddr>) -> Option<Active> {
        let key = service.key();
        let now = self.now_ms();
        let ejection_ms = u64::try_from(EJECTION.as_millis()).unwrap_or(u64::MAX);
        // One lock per pick: the counters of every backend of the service, looked up once.
        let table: Vec<(SocketAddr, Arc<BackendStats>)> = {
            let mut map = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            service
                .backends
                .iter()
                .map(|b| {
                    (
                        b.addr,
                        Self::stats_in(&mut map, &key, b.addr, &b.instance_id),
                    )
                })
                .collect()
        };
        let stat = |addr: SocketAddr| table.iter().find(|(a, _)| *a == addr).map(|(_, s)| s);
        let active = |b: &crate::Backend| {
            stat(b.addr).map_or(0, |s| {
                u32::try_from(s.active.load(Ordering::Relaxed)).unwrap_or(u32::MAX)
            })
        };
        let refused_recently = |b: &crate::Backend| {
            stat(b.addr).is_some_and(|s| {
                let at = s.refused_at_ms.load(Ordering::Relaxed);
                at != 0 && now.saturating_sub(at) < ejection_ms
            })
        };
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let backends = &service.backends;
        let max = service.max_connections;
        let choice = choose(
            backends,
            &self.caller,
            max,
            active,
            |b| tried.contains(&b.addr) || refused_recently(b),
            turn,
        )
        .or_else(|| {
            choose(
                backends,
                &self.caller,
                max,
                active,
                |b| tried.contains(&b.addr),
                turn,
            )
        })?;
        let (addr, instance_id, locality) = (
            choice.backend.addr,
            choice.backend.instance_id.clone(),
            choice.locality,
        );
        let stats = match stat(addr) {
            Some(s) => s.clone(),
            None => self.stats(&key, addr, &instance_id),
        };
        stats.active.fetch_add(1, Ordering::Relaxed);
        stats.total.fetch_add(1, Ordering::Relaxed);
        Some(Active {
            stats,
            addr,
            instance_id,
            locality,
        })
    }

    /// Records that `a`'s backend refused (or failed) a connect: it is passed over for a while.
    pub fn refused(&self, a: &Active) {
        a.stats.errors.fetch_add(1, Ordering::Relaxed);
        a.stats
            .refused_at_ms
            .store(self.now_ms(), Ordering::Relaxed);
    }

    /// Counts a connection that found no backend.
    pub fn count_no_backend(&self, key: &str) {
        let mut map = self.no_backend.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(key.to_string()).or_default() += 1;
    }

    /// Connects to a backend of `service`, trying the next at once on a connect error.
    pub async fn connect(&self, service: &Service) -> Result<(TcpStream, Active), NoBackend> {
        let mut tried = BTreeSet::new();
        let mut last = None;
        while let Some(active) = self.pick(service, &tried) {
            tried.insert(active.addr);
            let started = Instant::now();
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(active.addr)).await {
                Ok(Ok(stream)) => {
                    active.stats.observe(started.elapsed());
                    let _ = stream.set_nodelay(true);
                    return Ok((stream, active));
                }
                Ok(Err(e)) => {
                    self.refused(&active);
                    last = Some(format!("{}: {e}", active.addr));
                }
                Err(_) => {
                    self.refused(&active);
                    last = Some(format!(
                        "{}: no answer within {CONNECT_TIMEOUT:?}",
                        active.addr
                    ));
                }
            }
        }
        self.count_no_backend(&service.key());
        Err(match last {
            None => NoBackend::NoneReady {
                service: service.key(),
            },
            Some(last) => NoBackend::AllFailed {
                service: service.key(),
                last,
            },
        })
    }

    /// The counters in Prometheus' text format.
    pub fn render_metrics(&self) -> String {
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let none = self.no_backend.lock().unwrap_or_else(|e| e.into_inner());
        crate::metrics::render(&stats, &none)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::Backend;

    fn service(addrs: &[SocketAddr]) -> Service {
        Service {
            app_id: "/a".into(),
            port_index: 0,
            vips: vec![],
            edge: None,
            max_connections: None,
            backends: Arc::new(
                addrs
                    .iter()
                    .enumerate()
                    .map(|(i, a)| Backend {
                        instance_id: format!("i{i}"),
                        addr: *a,
                        region: None,
                        zone: None,
                        ready: true,
                        health_unknown: false,
                    })
                    .collect(),
            ),
        }
    }

    #[tokio::test]
    async fn a_refused_connect_retries_the_next_backend_and_counts_the_error() {
        let live = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let live_addr = live.local_addr().expect("addr");
        // A port that was free a moment ago: connects to it are refused.
        let dead_addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let b = Balancer::new(Caller::default());
        let s = service(&[dead_addr, live_addr]);
        for _ in 0..4 {
            let (_stream, active) = b.connect(&s).await.expect("a backend");
            assert_eq!(active.addr, live_addr);
        }
        let dead = b.stats(&s.key(), dead_addr, "i0");
        assert_eq!(
            dead.errors.load(Ordering::Relaxed),
            1,
            "ejected after one refusal"
        );
        let text = b.render_metrics();
        assert!(
            text.contains(&format!("drover_lb_backend_connections_total{{service=\"/a:0\",backend=\"{live_addr}\",instance=\"i1\"}} 4")),
            "{text}"
        );
        let none = b
            .connect(&service(&[dead_addr]))
            .await
            .expect_err("nothing live");
        assert!(matches!(none, NoBackend::AllFailed { .. }), "{none}");
    }
}
