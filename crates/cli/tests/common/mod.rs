//! Cross-process test harness: real `drover master` processes on loopback ports.
//!
//! A [`Cluster`] owns N master processes, each with its own data dir and log files under a
//! per-test temporary directory. Tests kill (SIGKILL), pause (SIGSTOP) and resume
//! (SIGCONT) them, and talk to them with the tiny client in [`http`]. Every wait polls a
//! condition until a deadline and, when the deadline passes, panics with what it waited
//! for and the tail of every master's stdout and stderr, since that is what one needs to
//! debug a failed run. Dropping the cluster kills every process it started.
//!
//! Shared by the tests in `crates/cli/tests/` and the failover benchmark
//! (`crates/cli/benches/failover.rs`), so not every item is used by every target.
#![allow(dead_code)]

pub mod acl;
mod checks;
mod cluster;
mod files;
pub mod history;
pub mod http;
pub mod secure;

use std::collections::HashSet;
use std::fs;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

#[allow(unused_imports)]
pub use checks::{WRITE, assert_apps_present, assert_leader_header, framework_id, read_app};
#[allow(unused_imports)]
pub use cluster::{Cluster, Master};
#[allow(unused_imports)]
pub use files::{TempDir, run_to_exit, strip_ansi, tail};
#[allow(unused_imports)]
pub use http::{HttpError, Response};

/// The binary under test.
pub const DROVER: &str = env!("CARGO_BIN_EXE_drover");

/// A command that runs the binary under test, inside network namespace `netns` when given
/// (`ip netns exec NS drover …`: `ip` execs drover, so the child's pid is drover's own and
/// signals reach it).
pub fn drover_command(netns: Option<&str>) -> std::process::Command {
    match netns {
        Some(ns) => {
            let mut cmd = std::process::Command::new("ip");
            cmd.args(["netns", "exec", ns, DROVER]);
            cmd
        }
        None => std::process::Command::new(DROVER),
    }
}

/// How long an election may take before a test gives up. Elections take 0.6 to 1.2 s by
/// default; the margin covers a loaded 2-core CI machine. This is a liveness bound for the
/// test, not an assertion about speed (speed is the benchmark's business).
pub const ELECTION: Duration = Duration::from_secs(30);

/// How long a process may take to exit after it was told (or decided) to.
pub const EXIT: Duration = Duration::from_secs(30);

/// Timeout of the probes that look for a leader: a follower without a leader waits about
/// 3 s before it answers, so this must be longer than that.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(8);

/// How often waits poll their condition.
pub(crate) const POLL: Duration = Duration::from_millis(50);

/// Lines of each log file shown when a wait fails.
pub(crate) const TAIL_LINES: usize = 40;

/// Polls `cond` until it returns true or `timeout` passes; panics naming `what` on timeout.
///
/// For waits that involve a cluster, prefer [`Cluster::wait_until`], which also prints the
/// masters' logs.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        std::thread::sleep(POLL);
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
///
/// Ports come from below the kernel's ephemeral range when there is room, so that a
/// master restarted on its old port does not find it taken by some client's outgoing
/// connection (which would make restarts fail at random); otherwise from the kernel
/// (bind 127.0.0.1:0, read the port, drop the listener).
pub fn free_port() -> u16 {
    static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let taken = taken.get_or_insert_with(HashSet::new);
    let low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    if low > 12_000 {
        let mut rng = Rng::seeded();
        for _ in 0..500 {
            let port = 10_000 + (rng.next() % u64::from(low - 10_000)) as u16;
            if taken.contains(&port) {
                continue;
            }
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                taken.insert(port);
                return port;
            }
        }
    }
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        if taken.insert(port) {
            return port;
        }
    }
}

/// A port on 127.0.0.1 whose next `n - 1` ports are free too (`drover dev`'s masters take
/// `--listen`'s port and the next ones). Chosen between 12000 and 30000: below the kernel's
/// ephemeral ports (where other tests' connections would take the neighbours of a port the
/// kernel picked) and below the agents' task ports (31000 and up).
pub fn free_ports(n: u16) -> u16 {
    let mut rng = Rng::seeded();
    for _ in 0..1000 {
        let base = 12_000 + (rng.next() % 18_000) as u16;
        let listeners: Vec<_> = (base..base + n)
            .map_while(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if listeners.len() == usize::from(n) {
            return base;
        }
    }
    panic!("no {n} consecutive free ports on 127.0.0.1 between 12000 and 30000");
}

/// A small xorshift generator: enough randomness for tests, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from the clock, the process id and a counter.
    pub fn seeded() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self::new(
            nanos ^ (u64::from(std::process::id()) << 32) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        )
    }

    /// A generator with a fixed seed, to replay a run.
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A fault domain in the JSON format DC/OS's detect script prints.
pub fn domain_json(region: &str, zone: &str) -> String {
    json!({"fault_domain": {"region": {"name": region}, "zone": {"name": zone}}}).to_string()
}

/// A minimal valid Marathon app that carries `op` in `labels.op`.
pub fn app(id: &str, op: &str) -> Value {
    json!({
        "id": id,
        "cmd": format!("sleep 1000 # {op}"),
        "instances": 0,
        "cpus": 0.1,
        "mem": 32,
        "labels": {"op": op},
    })
}
