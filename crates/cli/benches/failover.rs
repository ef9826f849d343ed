//! Failover benchmark: how long a write is unavailable when the leader dies.
//!
//! Run with `cargo bench -p drover --bench failover` (set `DROVER_BENCH_TRIALS` for more
//! than the default 20 trials).
//!
//! Three `drover master` processes on loopback with default Raft settings (heartbeat
//! 100 ms, election timeout 600–1200 ms). Each trial: find the leader, SIGKILL it, and
//! measure from the kill until a `PUT /v2/apps/bench/t<n>` is acknowledged (2xx) through a
//! surviving master, retrying every 10 ms and alternating between the survivors. Then the
//! killed master is restarted with its data dir, and the next trial starts once it follows
//! the current leader again. Prints min, p50, p99, max and mean.
//!
//! `DROVER_BENCH_TLS=1` runs the same trials on a secure cluster (the default outside
//! the benchmarks: mutual TLS between masters, HTTPS and an ACL token for the API), so the
//! cost of TLS on failover is measured on the same code path.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Cluster, ELECTION, acl, app, http};

/// Timeout of one write attempt: short, so that a write stuck on the dead leader is
/// abandoned quickly and retried through the other survivor.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between attempts.
const RETRY: Duration = Duration::from_millis(10);
/// Give up on a trial after this long (the run fails: the cluster did not recover).
const TRIAL_LIMIT: Duration = Duration::from_secs(60);

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it without, so do only
    // a quick smoke run of one trial then.
    let benching = std::env::args().any(|a| a == "--bench");
    let trials: usize = if benching {
        std::env::var("DROVER_BENCH_TRIALS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20)
    } else {
        1
    };

    let secure = std::env::var("DROVER_BENCH_TLS").is_ok_and(|v| v == "1");
    let mut c = Cluster::new("bench-failover", 3);
    c.insecure = !secure;
    c.start_all();
    if secure {
        // The harness's probes (`/v2/leader`, `/metrics`) need a token on a secure
        // cluster: bootstrap one and send it on every request.
        let leader = acl::wait_for_leader(&c);
        let secret = acl::bootstrap(&leader);
        for id in c.ids() {
            http::authorize(&c.addr(id), &secret);
        }
    }
    c.wait_for_leader(ELECTION);
    for id in c.ids() {
        c.wait_caught_up(id, ELECTION);
    }

    let mut samples = Vec::with_capacity(trials);
    for trial in 0..trials {
        let leader = c.wait_for_leader(ELECTION);
        let leader_id = c.id_of(&leader);
        let survivors: Vec<String> = c
            .ids()
            .into_iter()
            .filter(|&id| id != leader_id)
            .map(|id| c.addr(id))
            .collect();
        let path = format!("/v2/apps/bench/t{trial}");
        let body = app(&format!("/bench/t{trial}"), &format!("trial-{trial}"));

        let killed_at = Instant::now();
        c.kill(leader_id);
        let mut attempts = 0usize;
        let elapsed = loop {
            let via = &survivors[attempts % survivors.len()];
            attempts += 1;
            if let Ok(r) = http::request(via, "PUT", &path, Some(&body), ATTEMPT_TIMEOUT)
                && r.is_success()
            {
                break killed_at.elapsed();
            }
            if killed_at.elapsed() > TRIAL_LIMIT {
                c.fail(&format!(
                    "trial {trial}: no write acknowledged within {TRIAL_LIMIT:?} after killing leader {leader_id}"
                ));
            }
            std::thread::sleep(RETRY);
        };
        eprintln!(
            "trial {:>2}: killed master {leader_id}, write acknowledged after {:>7.1} ms ({attempts} attempts)",
            trial + 1,
            ms(elapsed)
        );
        samples.push(elapsed);

        c.start(leader_id);
        c.wait_caught_up(leader_id, ELECTION);
    }

    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "failover (3 masters, default settings, {}, {} trials): min {:.1} ms  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  mean {:.1} ms",
        if secure { "TLS" } else { "--insecure" },
        samples.len(),
        ms(samples[0]),
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 99.0)),
        ms(samples[samples.len() - 1]),
        ms(mean),
    );
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
