//! The counters of each backend and their Prometheus text: connections, bytes, errors, and a
//! latency histogram (connect time for TCP, time to the answer's head for HTTP).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds: from a loopback connect (well under a
/// millisecond) to the connect timeout.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Counters of one backend of one service.
#[derive(Debug, Default)]
pub struct BackendStats {
    /// Connections (TCP) or requests (HTTP) open now.
    pub active: AtomicU64,
    /// Connections or requests sent to it.
    pub total: AtomicU64,
    /// Bytes sent to it.
    pub bytes_sent: AtomicU64,
    /// Bytes received from it.
    pub bytes_received: AtomicU64,
    /// Connects that failed, and requests that failed after the connect.
    pub errors: AtomicU64,
    /// Sum of the observed latencies, microseconds.
    pub latency_us_sum: AtomicU64,
    /// Latencies per bucket of [`LATENCY_BUCKETS`] (not cumulative), and the last for the
    /// ones above every bound.
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    /// When it last refused a connection (ms since the balancer started; 0: never).
    pub(crate) refused_at_ms: AtomicU64,
}

impl BackendStats {
    /// Records one latency.
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.latency_us_sum.fetch_add(us, Ordering::Relaxed);
        let secs = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
    }

    /// How many latencies were observed.
    pub fn latency_count(&self) -> u64 {
        self.latency_buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .sum()
    }
}

/// Counters by service key, then backend address, with the backend's instance id.
pub type StatsTable = HashMap<String, HashMap<SocketAddr, (String, Arc<BackendStats>)>>;

/// `stats` and the connections that found no backend, in Prometheus' text format, sorted by
/// service and backend.
pub fn render(stats: &StatsTable, no_backend: &HashMap<String, u64>) -> String {
    let mut rows: Vec<_> = stats
        .iter()
        .flat_map(|(service, backends)| backends.iter().map(move |(addr, v)| ((service, addr), v)))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let labels = |service: &str, addr: &SocketAddr, instance: &str| {
        format!("service=\"{service}\",backend=\"{addr}\",instance=\"{instance}\"")
    };
    let mut out = String::new();
    type Read = fn(&BackendStats) -> u64;
    let families: [(&str, &str, &str, Read); 5] = [
        (
            "drover_lb_backend_active",
            "gauge",
            "connections (tcp) or requests (http) open to the backend",
            |s| s.active.load(Ordering::Relaxed),
        ),
        (
            "drover_lb_backend_connections_total",
            "counter",
            "connections (tcp) or requests (http) sent to the backend",
            |s| s.total.load(Ordering::Relaxed),
        ),
        (
            "drover_lb_backend_bytes_sent_total",
            "counter",
            "bytes sent to the backend",
            |s| s.bytes_sent.load(Ordering::Relaxed),
        ),
        (
            "drover_lb_backend_bytes_received_total",
            "counter",
            "bytes received from the backend",
            |s| s.bytes_received.load(Ordering::Relaxed),
        ),
        (
            "drover_lb_backend_errors_total",
            "counter",
            "failed connects and failed requests",
            |s| s.errors.load(Ordering::Relaxed),
        ),
    ];
    for (name, kind, help, read) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for ((service, addr), (instance, s)) in &rows {
            let _ = writeln!(
                out,
                "{name}{{{}}} {}",
                labels(service, addr, instance),
                read(s)
            );
        }
    }
    let name = "drover_lb_backend_latency_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} connect (tcp) or time to the answer's head (http)\n# TYPE {name} histogram"
    );
    for ((service, addr), (instance, s)) in &rows {
        let labels = labels(service, addr, instance);
        let mut cumulative = 0;
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += s.latency_buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        cumulative += s.latency_buckets[LATENCY_BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
        let sum = s.latency_us_sum.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
    let mut none: Vec<_> = no_backend.iter().collect();
    none.sort();
    let name = "drover_lb_no_backend_total";
    let _ = writeln!(
        out,
        "# HELP {name} connections that found no backend\n# TYPE {name} counter"
    );
    for (service, n) in none {
        let _ = writeln!(out, "{name}{{service=\"{service}\"}} {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_render_as_a_cumulative_prometheus_histogram() {
        let s = Arc::new(BackendStats::default());
        for us in [50, 300, 300, 4_000, 3_000_000] {
            s.observe(Duration::from_micros(us));
        }
        s.total.store(5, Ordering::Relaxed);
        let addr: SocketAddr = "127.0.0.1:80".parse().expect("addr");
        let table = StatsTable::from([(
            "/a:0".to_string(),
            HashMap::from([(addr, ("i1".to_string(), s.clone()))]),
        )]);
        let text = render(&table, &HashMap::from([("/b:0".to_string(), 2)]));
        let l = "service=\"/a:0\",backend=\"127.0.0.1:80\",instance=\"i1\"";
        for line in [
            "# TYPE drover_lb_backend_latency_seconds histogram".to_string(),
            format!("drover_lb_backend_latency_seconds_bucket{{{l},le=\"0.0001\"}} 1"),
            format!("drover_lb_backend_latency_seconds_bucket{{{l},le=\"0.00025\"}} 1"),
            format!("drover_lb_backend_latency_seconds_bucket{{{l},le=\"0.0005\"}} 3"),
            format!("drover_lb_backend_latency_seconds_bucket{{{l},le=\"0.005\"}} 4"),
            format!("drover_lb_backend_latency_seconds_bucket{{{l},le=\"2.5\"}} 4"),
            format!("drover_lb_backend_latency_seconds_bucket{{{l},le=\"+Inf\"}} 5"),
            format!("drover_lb_backend_latency_seconds_sum{{{l}}} 3.00465"),
            format!("drover_lb_backend_latency_seconds_count{{{l}}} 5"),
            format!("drover_lb_backend_connections_total{{{l}}} 5"),
            "drover_lb_no_backend_total{service=\"/b:0\"} 2".to_string(),
        ] {
            assert!(
                text.lines().any(|x| x == line),
                "missing {line:?} in:\n{text}"
            );
        }
        assert_eq!(s.latency_count(), 5);
    }
}
