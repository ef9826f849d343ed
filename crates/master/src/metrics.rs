//! Counters for `/metrics`, rendered in Prometheus text format by hand (a handful of series
//! does not justify a metrics stack in the build).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the apply-latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// The master's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    leader_changes: AtomicU64,
    writes_failed: AtomicU64,
    forwarded: AtomicU64,
    assignments_answered: AtomicU64,
    apply_count: AtomicU64,
    apply_sum_micros: AtomicU64,
    apply_buckets: [AtomicU64; BUCKETS.len()],
}

/// Raft figures read at render time.
pub struct RaftFigures {
    /// This master's id.
    pub id: u64,
    /// Current term.
    pub term: u64,
    /// 1 when this master leads.
    pub is_leader: bool,
    /// Index of the last entry applied.
    pub applied: u64,
    /// Index of the last entry in the log.
    pub last_log: u64,
}

impl Metrics {
    /// Counts a change of leader seen by this master.
    pub fn leader_changed(&self) {
        self.leader_changes.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a write that failed (no quorum, lost leadership).
    pub fn write_failed(&self) {
        self.writes_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request forwarded to the leader.
    pub fn forwarded(&self) {
        self.forwarded.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an answered assignments long poll.
    pub fn assignments_answered(&self) {
        self.assignments_answered.fetch_add(1, Ordering::Relaxed);
    }

    /// Records how long a write took from proposal to applied.
    pub fn applied(&self, took: Duration) {
        self.apply_count.fetch_add(1, Ordering::Relaxed);
        self.apply_sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.apply_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, raft: &RaftFigures) -> String {
        let mut out = String::new();
        let m = format!("master=\"{}\"", raft.id);
        let mut series = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{{m}}} {value}"
            );
        };
        series(
            "drover_raft_term",
            "gauge",
            "Current Raft term.",
            raft.term.to_string(),
        );
        series(
            "drover_raft_is_leader",
            "gauge",
            "1 when this master is the leader.",
            u8::from(raft.is_leader).to_string(),
        );
        series(
            "drover_raft_commit_index",
            "gauge",
            "Index of the last committed entry applied here.",
            raft.applied.to_string(),
        );
        series(
            "drover_raft_last_log_index",
            "gauge",
            "Index of the last entry in this master's log.",
            raft.last_log.to_string(),
        );
        series(
            "drover_raft_leader_changes_total",
            "counter",
            "Leader changes seen by this master.",
            self.leader_changes.load(Ordering::Relaxed).to_string(),
        );
        series(
            "drover_writes_failed_total",
            "counter",
            "Writes that failed for want of a quorum or a leader.",
            self.writes_failed.load(Ordering::Relaxed).to_string(),
        );
        series(
            "drover_requests_forwarded_total",
            "counter",
            "Requests this master forwarded to the leader.",
            self.forwarded.load(Ordering::Relaxed).to_string(),
        );
        series(
            "drover_assignment_polls_answered_total",
            "counter",
            "Assignment long polls this master answered (an agent's returns only when its own assignments change, or when its wait runs out).",
            self.assignments_answered
                .load(Ordering::Relaxed)
                .to_string(),
        );
        let name = "drover_apply_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from proposing a write to its being applied, on the leader.\n# TYPE {name} histogram"
        );
        for (bound, bucket) in BUCKETS.iter().zip(&self.apply_buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{m},le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.apply_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{m},le=\"+Inf\"}} {count}");
        let sum = self.apply_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{m}}} {sum}\n{name}_count{{{m}}} {count}");
        out
    }
}
