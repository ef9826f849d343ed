//! The partition suite on a real network (issue 11, scope 5): every master and agent is a
//! real `drover` process in its own network namespace, joined by a bridge; the test's client
//! sits on the bridge too (see `netns_support`). Partitions are nft rules that drop packets
//! by peer address, or links taken down: real packets lost, real TCP time-outs, nothing
//! paused.
//!
//! - A leader cut off from the other masters, while the client still reaches it,
//!   acknowledges no write and serves no stale read; the other two elect a leader and
//!   acknowledge a write (the time from the cut to that write is printed: the figure in
//!   `docs/benchmarks.md`), and after the heal the cut-off leader's write is nowhere.
//! - One zone of agents cut off from the masters is a zone outage: its instances are
//!   replaced in the other zones at once (the masters pace replacements in a partly
//!   unreachable zone at one agent per ten minutes here, so a paced replacement would fail
//!   the test); on heal its agents kill the replaced originals, the app is rebalanced onto
//!   it, and no instance runs twice.
//! - Every agent cut off from the masters but not from its clients: the leader replaces
//!   nothing, the tasks keep running and keep answering the client; on heal the same
//!   instances run on, nothing is launched.
//! - A flapping link (the leader's and an agent's, down and up every second): no instance
//!   runs twice and the cluster converges.
//!
//! Needs root, `ip` and `nft`; without them each test fails saying what is missing. No test
//! asserts a duration: waits poll to generous deadlines and fail with what they saw and
//! every process's log tail.

mod agent_support;
mod common;
mod netns_support;
mod scheduler_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use agent_support::SETTLE;
use client::{AppEnvelope, ClusterHealth};
use common::{ELECTION, app, http};
use netns_support::Direction;
use netns_support::site::NetSite;
use scheduler_support::site::{CONVERGE, ZONES, app_tasks, sleeper, slow_eviction_flags};
use scheduler_support::{
    HTTP_SERVER, LaunchLog, Task, count_by, describe, fast_master_flags, ids, per_zone, set_flag,
    spread, wait_showing,
};
use serde_json::{Value, json};

/// The app the leader-cut test writes: no instances, its `labels.op` says which write it is.
const CONFIG: &str = "/partition/config";

/// How often a new write attempt is sent to the majority while it has no leader yet, so that
/// the first acknowledgement is seen within this of when the majority could give it.
const ATTEMPT_EVERY: Duration = Duration::from_millis(50);

/// Timeout of one request in the suite: longer than a master's leader wait (3 s) plus its
/// write time-out (5 s), so that a master's own answer (an error) arrives before it.
const REQUEST: Duration = Duration::from_secs(15);

/// `DROVER_PARTITION_TRIALS`: how many times the leader-cut test cuts and heals (1 unless
/// set; the benchmark in `docs/benchmarks.md` runs 5).
fn trials() -> usize {
    std::env::var("DROVER_PARTITION_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(1)
}

/// `labels.op` of the app in a `GET /v2/apps{id}` answer.
fn op_of(r: &http::Response) -> Option<String> {
    let app = r.decode::<AppEnvelope>().ok()?.app;
    app.definition
        .get("labels")?
        .get("op")?
        .as_str()
        .map(str::to_string)
}

/// One write attempt's answer: when it came, and what it was.
type Attempt = (Instant, Result<http::Response, String>);

/// Sends `PUT /v2/apps{id}` to the masters at `addrs` in turn, a new attempt every
/// [`ATTEMPT_EVERY`] while none is acknowledged, until one is or `timeout` passes; returns
/// when the first acknowledgement arrived (None on time-out) and every answer, once every
/// attempt has ended (so that none lands later). PUT is idempotent: many acknowledged
/// attempts apply one definition.
fn first_ack(addrs: &[String], body: &Value, timeout: Duration) -> (Option<Instant>, Vec<Attempt>) {
    let id = body["id"].as_str().unwrap_or_default();
    let path = format!("/v2/apps{id}");
    let (tx, rx) = mpsc::channel::<Attempt>();
    let mut running: Vec<JoinHandle<()>> = Vec::new();
    let mut answers = Vec::new();
    let mut acked = None;
    let deadline = Instant::now() + timeout;
    let mut n = 0usize;
    while acked.is_none() && Instant::now() < deadline {
        let addr = addrs[n % addrs.len()].clone();
        n += 1;
        let (tx, path, body) = (tx.clone(), path.clone(), body.clone());
        running.push(std::thread::spawn(move || {
            let r = http::request(&addr, "PUT", &path, Some(&body), REQUEST)
                .map_err(|e| format!("{addr}: {e}"));
            let _ = tx.send((Instant::now(), r));
        }));
        let next = Instant::now() + ATTEMPT_EVERY;
        while let Some(left) = next.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok((at, r)) => {
                    if acked.is_none() && r.as_ref().is_ok_and(http::Response::is_success) {
                        acked = Some(at);
                    }
                    answers.push((at, r));
                }
                Err(_) => break,
            }
        }
    }
    drop(tx);
    for t in running {
        let _ = t.join();
    }
    answers.extend(rx.try_iter());
    (acked, answers)
}

/// What a list of answers was, for failure messages.
fn summary(answers: &[Attempt]) -> String {
    let mut n: BTreeMap<String, usize> = BTreeMap::new();
    for (_, r) in answers {
        let what = match r {
            Ok(r) => format!("{} {}", r.status, r.message()),
            Err(e) => e.clone(),
        };
        *n.entry(what).or_insert(0) += 1;
    }
    format!("{n:?}")
}

#[test]
fn a_leader_cut_off_from_the_other_masters_acknowledges_no_write_and_serves_no_stale_read_while_the_majority_elects_and_writes()
 {
    let mut ns = NetSite::start("leader-cut", 3, Vec::new());
    for trial in 1..=trials() {
        let old = ns.s.masters.wait_for_leader_id(ELECTION);
        let before = format!("before-{trial}");
        ns.s.masters
            .put_app_acked(old, &app(CONFIG, &before), SETTLE);
        for id in ns.s.masters.ids() {
            ns.s.masters.wait_caught_up(id, ELECTION);
        }
        let others: Vec<u32> =
            ns.s.masters
                .ids()
                .into_iter()
                .filter(|&i| i != old)
                .collect();
        let other_ips: Vec<_> = others.iter().map(|&i| ns.master_node(i).ip).collect();
        let other_addrs: Vec<String> = others.iter().map(|&i| ns.s.masters.addr(i)).collect();
        let old_addr = ns.s.masters.addr(old);
        let old_node = ns.master_node(old).clone();

        // The leader loses the other masters; the client still reaches everyone.
        ns.net.cut(&old_node, &other_ips, Direction::Both);
        let cut_at = Instant::now();
        let minority_op = format!("minority-{trial}");
        let minority = {
            let (addr, body) = (old_addr.clone(), app(CONFIG, &minority_op));
            let path = format!("/v2/apps{CONFIG}");
            std::thread::spawn(move || http::request(&addr, "PUT", &path, Some(&body), REQUEST))
        };
        let majority_op = format!("majority-{trial}");
        let (acked, answers) = first_ack(&other_addrs, &app(CONFIG, &majority_op), SETTLE);
        let Some(acked) = acked else {
            ns.s.fail(&format!(
                "trial {trial}: the majority {others:?} acknowledged no write within {SETTLE:?} of the cut; answers: {}",
                summary(&answers)
            ));
        };
        let took = acked.duration_since(cut_at);
        println!(
            "partition figure: trial {trial}: cut → first write acknowledged by the majority: {} ms",
            took.as_millis()
        );
        let what = format!("masters {others:?} agree on a leader among themselves");
        let new =
            ns.s.masters
                .wait_for(ELECTION, &what, |c| c.leader_among(&others));
        assert_ne!(
            new, old_addr,
            "trial {trial}: the majority still follows the cut-off leader"
        );

        // The cut-off leader acknowledged nothing.
        match minority.join() {
            Ok(Ok(r)) if r.is_success() => ns.s.fail(&format!(
                "trial {trial}: master {old}, cut off from {others:?}, acknowledged a write: {r}"
            )),
            Ok(_) => {}
            Err(_) => ns.s.fail("the cut-off leader's writer thread panicked"),
        }
        // And serves no stale read: whatever it answers is not the value the majority
        // overwrote (it may fail, or forward).
        let path = format!("/v2/apps{CONFIG}");
        match http::request(&old_addr, "GET", &path, None, REQUEST) {
            Ok(r) if r.status == 200 => {
                let seen = op_of(&r);
                if seen.as_deref() != Some(majority_op.as_str()) {
                    ns.s.fail(&format!(
                        "trial {trial}: the cut-off master {old} served a stale read after the majority wrote {majority_op}: op {seen:?}"
                    ));
                }
            }
            Ok(r) if r.status < 500 => ns.s.fail(&format!(
                "trial {trial}: the cut-off master {old} answered a read with {r}"
            )),
            _ => {}
        }

        // Healed, every master follows one leader and has the majority's write, not the
        // cut-off leader's.
        ns.net.heal(&old_node);
        ns.s.masters.wait_for_leader(ELECTION);
        for id in ns.s.masters.ids() {
            ns.s.masters.wait_caught_up(id, ELECTION);
        }
        for id in ns.s.masters.ids() {
            let r = ns.s.masters.get_settled(id, &path, SETTLE);
            let seen = op_of(&r);
            if seen.as_deref() != Some(majority_op.as_str()) {
                ns.s.fail(&format!(
                    "trial {trial}: after the heal master {id} reads op {seen:?}, not the acknowledged {majority_op} ({r})"
                ));
            }
        }
    }
}
