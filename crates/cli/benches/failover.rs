//! Failover benchmark: how long a write is unavailable when the leader dies, and when the
//! leader is restarted on purpose (SIGTERM: it hands leadership over first).
//!
//! Run with `cargo bench -p drover --bench failover` (set `DROVER_BENCH_TRIALS` for more
//! than the default 20 trials of each; `DROVER_BENCH_FAILOVER=kill` or `=planned` runs one
//! kind only).
//!
//! Three `drover master` processes on loopback with default Raft settings (heartbeat
//! 100 ms, election timeout 600–1200 ms). Each trial: find the leader, SIGKILL it, and
//! measure from the kill until a `PUT /v2/apps/bench/t<n>` is acknowledged (2xx) through a
//! surviving master, retrying every 10 ms and alternating between the survivors. Then the
//! killed master is restarted with its data dir, and the next trial starts once it follows
//! the current leader again. Prints min, p50, p99, max and mean.
//!
//! Planned restarts: one thread writes without pause (`PUT /v2/apps/bench/p<trial>-<n>`
//! through a follower, each write sent when the previous one is acknowledged) while the
//! leader is sent SIGTERM; the figure of a trial is the longest gap between two consecutive
//! acknowledgements from the SIGTERM until the writes have gone on for a second after it.
//! Outside a handover the gap is one write's latency (a few ms). The stopped master is then
//! restarted and caught up, as after a kill.
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

    let kinds = std::env::var("DROVER_BENCH_FAILOVER").unwrap_or_default();
    let mode = if secure { "TLS" } else { "--insecure" };
    if kinds != "planned" {
        let samples = killed_leader_trials(&mut c, trials);
        report(
            &format!("failover (3 masters, default settings, {mode}, leader SIGKILLed"),
            samples,
        );
    }
    if kinds != "kill" {
        let samples = planned_restart_trials(&mut c, trials);
        report(
            &format!(
                "planned leader restart (3 masters, default settings, {mode}, leader SIGTERMed: longest gap between acknowledged writes"
            ),
            samples,
        );
    }
}

/// SIGKILLs the leader `trials` times; each sample is the time from the kill to the first
/// write a survivor acknowledges.
fn killed_leader_trials(c: &mut Cluster, trials: usize) -> Vec<Duration> {
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
    samples
}

/// How long the writes go on after the SIGTERM in a planned-restart trial.
const AFTER_STOP: Duration = Duration::from_secs(1);

/// SIGTERMs the leader `trials` times while a writer writes through a follower; each sample
/// is the longest gap between consecutive acknowledgements after the SIGTERM.
fn planned_restart_trials(c: &mut Cluster, trials: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(trials);
    for trial in 0..trials {
        let leader = c.wait_for_leader(ELECTION);
        let leader_id = c.id_of(&leader);
        let via = c.addr(c.a_follower(leader_id));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut acks = Vec::new();
                let mut n = 0usize;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let path = format!("/v2/apps/bench/p{trial}-{n}");
                    let body = app(&format!("/bench/p{trial}-{n}"), "planned");
                    match http::request(&via, "PUT", &path, Some(&body), ATTEMPT_TIMEOUT) {
                        Ok(r) if r.is_success() => {
                            acks.push(Instant::now());
                            n += 1;
                        }
                        _ => std::thread::sleep(RETRY),
                    }
                }
                acks
            })
        };
        // Let the writer get going, so that the first gap counted starts at an ack.
        std::thread::sleep(Duration::from_millis(200));
        let stopped_at = Instant::now();
        let status = c.terminate(leader_id, TRIAL_LIMIT);
        if !status.success() {
            c.fail(&format!(
                "trial {trial}: master {leader_id} exited with {status} on SIGTERM"
            ));
        }
        let exited = stopped_at.elapsed();
        let said = c.stderr(leader_id);
        let handover = said
            .lines()
            .rev()
            .find(|l| l.contains("handed leadership") || l.contains("not handed over"))
            .unwrap_or("(the master said nothing of a handover)")
            .to_string();
        std::thread::sleep(AFTER_STOP.saturating_sub(exited));
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let acks = writer.join().expect("the writer thread");
        let from = acks
            .iter()
            .rposition(|&a| a <= stopped_at)
            .unwrap_or_else(|| {
                c.fail(&format!(
                    "trial {trial}: no write was acknowledged before the SIGTERM"
                ))
            });
        let gap = acks[from..]
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_else(|| {
                c.fail(&format!(
                    "trial {trial}: no write acknowledged after the SIGTERM"
                ))
            });
        eprintln!(
            "trial {:>2}: SIGTERMed master {leader_id} (exited after {:>6.1} ms), longest gap between acknowledged writes {:>6.1} ms ({} writes after the signal)",
            trial + 1,
            ms(exited),
            ms(gap),
            acks.len() - from - 1,
        );
        eprintln!("          {}", handover.trim());
        samples.push(gap);

        c.start(leader_id);
        c.wait_caught_up(leader_id, ELECTION);
    }
    samples
}

/// Prints one line of figures: `what` then the sample count, min, p50, p99, max and mean.
fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{what}, {} trials): min {:.1} ms  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  mean {:.1} ms",
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
