//! A linearizability check of app writes while the leader is killed and restarted.
//!
//! # The run
//!
//! Three `drover master` processes on loopback. [`CLIENTS`] client threads each own
//! [`APPS_PER_CLIENT`] app ids (`/lin/c<client>-a<n>`) that no other thread touches, and
//! issue one write at a time, each through a master picked at random: create
//! (`POST /v2/apps`, or `PUT` of an absent app), update (`PUT`) or delete (`DELETE`).
//! Every create and update carries a unique op id in `labels.op`. Meanwhile the main
//! thread SIGKILLs the leader [`KILLS`] times, each time waiting for a new leader,
//! restarting the killed master with its data dir, and waiting for the clients to get
//! more writes acknowledged before the next kill.
//!
//! Every op is recorded in the order its client issued it, with its outcome:
//! - **acknowledged**: a 2xx answer;
//! - **failed**: a 4xx answer (409 on create of an existing app, 404 on delete of an
//!   absent one), or a connection that could not be opened: the op certainly had no
//!   effect;
//! - **unknown**: a 5xx answer, a broken connection or no answer within 30 s (far above
//!   every server-side timeout): the op may or may not have taken effect.
//!
//! A 503 counts as unknown, not failed: a leader that cannot reach a quorum in time
//! answers 503, yet the entry it appended may still be committed later.
//!
//! # What is checked, per app
//!
//! Afterwards the final app (`GET /v2/apps/{id}`, through every master) and its version
//! history (`GET /v2/apps/{id}/versions`, then each version, sorted by timestamp) are read:
//!
//! 1. **final state**: the app is absent or holds exactly the `labels.op` that its last
//!    acknowledged op leaves (absent after a delete), or that of an unknown op issued after
//!    it (absent for an unknown delete). With no acknowledged op, the initial state
//!    (absent) or any unknown op's effect. Every master returns the same final state.
//! 2. **acknowledged writes are durable**: every acknowledged create or update appears in
//!    the version history, unless a delete issued after it was acknowledged or unknown
//!    (that delete may have removed the history with the app).
//! 3. **no duplicates**: no op id appears twice in the history (no write applied twice,
//!    e.g. by a retried forward or a log entry applied again after a restart).
//! 4. **no phantoms**: every op id in the history belongs to a create or update of this
//!    app that was acknowledged or unknown; never to a failed op.
//! 5. **order**: the history lists op ids in the order the client issued them, and the
//!    current app is the newest version.
//!
//! # What is not checked
//!
//! - Reads during the run (only the final state and history are read), so stale reads
//!   during a failover are not detected here; reads go through the leader by design.
//! - Interleavings between clients: apps are disjoint, so the check is per app (a
//!   per-key check, which for a key-value store is equivalent to whole-history
//!   linearizability because the keys are independent objects).
//! - Ops of one client are assumed not to overlap: each client waits for an answer (or
//!   gives up after 30 s) before its next op. A write whose answer was lost and which takes
//!   effect only after a later write of the same client would be reported by check 5 (or
//!   1), although a pure linearizability model would allow it for an op that never
//!   answered. The masters give up on every request well before 30 s, so such a write
//!   would be a stale write resurfacing, which is worth failing on.
//! - The contents of an app beyond `labels.op` and `cmd` (the other tests cover that).
//! - Network partitions and paused processes (see `masters.rs` for SIGSTOP).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use client::{App, AppEnvelope, Versions};
use common::history::{Kind, Observed, Op, Outcome, check, version_key};
use common::{Cluster, ELECTION, HttpError, Response, Rng, app, http};

/// Client threads.
const CLIENTS: usize = 4;
/// Apps each client owns.
const APPS_PER_CLIENT: usize = 3;
/// Times the leader is killed and restarted.
const KILLS: usize = 8;
/// Writes the clients must get acknowledged between two kills (and after the last one).
const PROGRESS: usize = 40;
/// Bound on waiting for that progress: a liveness bound, not a performance assertion.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on the final reads.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What a client believes about one of its apps, to pick sensible ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Belief {
    Present,
    Absent,
    Unsure,
}

fn client(
    n: usize,
    masters: Vec<String>,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
) -> Vec<Op> {
    let apps: Vec<String> = (0..APPS_PER_CLIENT)
        .map(|a| format!("/lin/c{n}-a{a}"))
        .collect();
    let mut belief = vec![Belief::Absent; apps.len()];
    let mut rng = Rng::seeded();
    let mut ops = Vec::new();
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        let a = rng.below(apps.len());
        let via = masters[rng.below(masters.len())].clone();
        let roll = rng.below(100);
        let kind = match belief[a] {
            Belief::Absent if roll < 50 => Kind::Create,
            Belief::Absent => Kind::Put,
            Belief::Present if roll < 65 => Kind::Put,
            Belief::Present => Kind::Delete,
            Belief::Unsure if roll < 33 => Kind::Create,
            Belief::Unsure if roll < 66 => Kind::Put,
            Belief::Unsure => Kind::Delete,
        };
        let id = format!("c{n}-{seq}");
        let path = format!("/v2/apps{}", apps[a]);
        let body = app(&apps[a], &id);
        let answer = match kind {
            Kind::Create => http::post(&via, "/v2/apps", &body),
            Kind::Put => http::put(&via, &path, &body),
            Kind::Delete => http::delete(&via, &path),
        };
        let outcome = classify(answer);
        match &outcome {
            // Never sent: no effect and nothing learnt; not worth recording.
            Outcome::Failed(why) if why.starts_with("not sent") => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Outcome::Acknowledged(_) => {
                belief[a] = if kind == Kind::Delete {
                    Belief::Absent
                } else {
                    Belief::Present
                };
                acked.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Failed(_) => {
                belief[a] = if kind == Kind::Delete {
                    Belief::Absent
                } else {
                    Belief::Present
                };
            }
            Outcome::Unknown(_) => belief[a] = Belief::Unsure,
        }
        seq += 1;
        ops.push(Op {
            id,
            app: apps[a].clone(),
            kind,
            via,
            outcome,
        });
    }
    ops
}

fn classify(answer: Result<Response, HttpError>) -> Outcome {
    match answer {
        Ok(r) if r.is_success() => Outcome::Acknowledged(r.status),
        // 409 (create of an existing app) and 404 (delete of an absent one) are the
        // expected refusals; any other 4xx is a definite refusal too, but suspicious.
        Ok(r) if (400..500).contains(&r.status) => Outcome::Failed(r.to_string()),
        Ok(r) => Outcome::Unknown(r.to_string()),
        Err(e) if e.not_sent() => Outcome::Failed(format!("not sent: {e}")),
        Err(e) => Outcome::Unknown(e.to_string()),
    }
}

fn observe(c: &mut Cluster, app_id: &str) -> Observed {
    let mut currents = BTreeMap::new();
    for m in c.ids() {
        let r = c.get_settled(m, &format!("/v2/apps{app_id}"), READ_TIMEOUT);
        let current = match r.status {
            200 => Some(label_op(c, &read_as::<AppEnvelope>(c, &r).app, app_id)),
            404 => None,
            _ => c.fail(&format!("GET /v2/apps{app_id} through master {m}: {r}")),
        };
        currents.insert(m, current);
    }
    let first = currents.values().next().cloned().flatten();
    if currents.values().any(|v| *v != first) {
        c.fail(&format!("masters disagree on {app_id}: {currents:?}"));
    }
    let leader = c.wait_for_leader_id(ELECTION);
    let r = c.get_settled(leader, &format!("/v2/apps{app_id}/versions"), READ_TIMEOUT);
    let mut versions: Vec<String> = match r.status {
        200 => read_as::<Versions>(c, &r).versions,
        404 => Vec::new(),
        _ => c.fail(&format!("GET /v2/apps{app_id}/versions: {r}")),
    };
    if first.is_some() && versions.is_empty() {
        c.fail(&format!("{app_id} exists but has no versions: {r}"));
    }
    versions.sort_by_key(|v| version_key(v));
    let mut history = Vec::new();
    for v in &versions {
        let r = c.get_settled(
            leader,
            &format!("/v2/apps{app_id}/versions/{v}"),
            READ_TIMEOUT,
        );
        if r.status != 200 {
            c.fail(&format!("GET /v2/apps{app_id}/versions/{v}: {r}"));
        }
        history.push(label_op(c, &read_as::<App>(c, &r), app_id));
    }
    Observed {
        current: first,
        history,
    }
}

fn label_op(c: &Cluster, app: &App, app_id: &str) -> String {
    if app.id() != app_id {
        c.fail(&format!("asked for {app_id}, got {app:?}"));
    }
    let op = app
        .label("op")
        .unwrap_or_else(|| c.fail(&format!("{app_id} has no labels.op: {app:?}")));
    let definition = app
        .parse_definition()
        .unwrap_or_else(|e| c.fail(&format!("{app_id} is not a valid definition: {e}")));
    if !definition
        .cmd
        .as_deref()
        .is_some_and(|cmd| cmd.ends_with(op))
    {
        c.fail(&format!(
            "{app_id}: cmd and labels.op come from different writes: {app:?}"
        ));
    }
    op.to_string()
}

/// The body of `r` as `T`, failing with the cluster's logs when it has another shape.
fn read_as<T: serde::de::DeserializeOwned>(c: &Cluster, r: &Response) -> T {
    r.decode()
        .unwrap_or_else(|e| c.fail(&format!("{e}; the answer: {r}")))
}

/// Checks one app's ops (in issue order) against what the cluster holds; returns the
/// violations found.
#[test]
fn acknowledged_app_writes_survive_repeated_leader_kills() {
    let mut c = Cluster::launch("linearizability", 3);
    c.wait_for_leader(ELECTION);
    let masters: Vec<String> = c.ids().iter().map(|&id| c.addr(id)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (masters, stop, acked) = (masters.clone(), stop.clone(), acked.clone());
            std::thread::spawn(move || client(n, masters, stop, acked))
        })
        .collect();

    let wait_progress = |c: &mut Cluster, what: &str| {
        let target = acked.load(Ordering::Relaxed) + PROGRESS;
        let what = format!("clients get {PROGRESS} more writes acknowledged ({what})");
        c.wait_until(PROGRESS_TIMEOUT, &what, |_| {
            acked.load(Ordering::Relaxed) >= target
        });
    };
    let mut killed = Vec::new();
    for round in 0..KILLS {
        wait_progress(&mut c, &format!("before kill {}", round + 1));
        let leader = c.wait_for_leader(ELECTION);
        let id = c.id_of(&leader);
        c.kill(id);
        killed.push(id);
        c.wait_for_new_leader(&leader, ELECTION);
        c.start(id);
        c.wait_caught_up(id, ELECTION);
    }
    wait_progress(&mut c, "after the last kill");
    stop.store(true, Ordering::Relaxed);
    let mut ops: Vec<Op> = Vec::new();
    for (n, t) in clients.into_iter().enumerate() {
        match t.join() {
            Ok(o) => ops.extend(o),
            Err(_) => c.fail(&format!("client thread {n} panicked")),
        }
    }

    c.wait_for_leader(ELECTION);
    let mut by_app: BTreeMap<String, Vec<&Op>> = BTreeMap::new();
    for o in &ops {
        by_app.entry(o.app.clone()).or_default().push(o);
    }
    let mut errors = Vec::new();
    for (app_id, app_ops) in &by_app {
        let seen = observe(&mut c, app_id);
        errors.extend(check(app_id, app_ops, &seen));
    }

    let count = |f: fn(&Outcome) -> bool| ops.iter().filter(|o| f(&o.outcome)).count();
    let summary = format!(
        "{} ops on {} apps: {} acknowledged, {} failed, {} unknown; leader killed {} times (masters {killed:?})",
        ops.len(),
        by_app.len(),
        count(|o| matches!(o, Outcome::Acknowledged(_))),
        count(|o| matches!(o, Outcome::Failed(_))),
        count(|o| matches!(o, Outcome::Unknown(_))),
        killed.len(),
    );
    eprintln!("{summary}");
    let odd_failures: Vec<&Op> = ops
        .iter()
        .filter(|o| match &o.outcome {
            Outcome::Failed(why) => !(why.starts_with("HTTP 409") || why.starts_with("HTTP 404")),
            _ => false,
        })
        .collect();
    if !odd_failures.is_empty() {
        errors.push(format!("unexpected 4xx answers: {odd_failures:#?}"));
    }
    if !errors.is_empty() {
        let unknown: Vec<String> = ops
            .iter()
            .filter(|o| matches!(o.outcome, Outcome::Unknown(_)))
            .map(|o| {
                format!(
                    "{} {:?} {} via {}: {:?}",
                    o.app, o.kind, o.id, o.via, o.outcome
                )
            })
            .collect();
        c.fail(&format!(
            "{summary}\nviolations:\n  {}\nunknown ops:\n  {}",
            errors.join("\n  "),
            unknown.join("\n  ")
        ));
    }
}

#[cfg(test)]
mod checker {
    //! The checker itself, on hand-made histories.

    use super::*;

    fn op(id: &str, kind: Kind, outcome: Outcome) -> Op {
        Op {
            id: id.to_string(),
            app: "/a".to_string(),
            kind,
            via: "m".to_string(),
            outcome,
        }
    }

    fn ack() -> Outcome {
        Outcome::Acknowledged(200)
    }

    fn unknown() -> Outcome {
        Outcome::Unknown("HTTP 503".to_string())
    }

    fn failed() -> Outcome {
        Outcome::Failed("HTTP 409".to_string())
    }

    fn seen(current: Option<&str>, history: &[&str]) -> Observed {
        Observed {
            current: current.map(String::from),
            history: history.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn run(ops: &[Op], s: Observed) -> Vec<String> {
        let refs: Vec<&Op> = ops.iter().collect();
        check("/a", &refs, &s)
    }

    #[test]
    fn accepts_a_clean_history() {
        let ops = [
            op("1", Kind::Create, ack()),
            op("2", Kind::Put, ack()),
            op("3", Kind::Create, failed()),
        ];
        assert_eq!(
            run(&ops, seen(Some("2"), &["1", "2"])),
            Vec::<String>::new()
        );
    }

    #[test]
    fn accepts_a_later_unknown_op_taking_effect_or_not() {
        let ops = [
            op("1", Kind::Create, ack()),
            op("2", Kind::Put, unknown()),
            op("3", Kind::Delete, unknown()),
        ];
        assert!(run(&ops, seen(Some("1"), &["1"])).is_empty());
        assert!(run(&ops, seen(Some("2"), &["1", "2"])).is_empty());
        assert!(run(&ops, seen(None, &[])).is_empty());
    }

    #[test]
    fn rejects_a_lost_acknowledged_write() {
        let ops = [op("1", Kind::Create, ack()), op("2", Kind::Put, ack())];
        let e = run(&ops, seen(Some("1"), &["1"]));
        assert!(e.iter().any(|e| e.contains("final state")), "{e:?}");
        assert!(
            e.iter()
                .any(|e| e.contains("missing from the version history")),
            "{e:?}"
        );
    }

    #[test]
    fn rejects_a_resurrected_app_and_an_earlier_unknown_write_winning() {
        let ops = [op("1", Kind::Create, ack()), op("2", Kind::Delete, ack())];
        assert!(!run(&ops, seen(Some("1"), &["1"])).is_empty());
        let ops = [op("1", Kind::Create, unknown()), op("2", Kind::Put, ack())];
        assert!(!run(&ops, seen(Some("1"), &["2", "1"])).is_empty());
    }

    #[test]
    fn rejects_duplicates_phantoms_and_failed_writes_in_the_history() {
        let ops = [
            op("1", Kind::Create, ack()),
            op("2", Kind::Create, failed()),
        ];
        let dup = run(&ops, seen(Some("1"), &["1", "1"]));
        assert!(dup.iter().any(|e| e.contains("appears twice")), "{dup:?}");
        let phantom = run(&ops, seen(Some("1"), &["9", "1"]));
        assert!(
            phantom.iter().any(|e| e.contains("no client wrote")),
            "{phantom:?}"
        );
        let failed = run(&ops, seen(Some("1"), &["1", "2"]));
        assert!(
            failed.iter().any(|e| e.contains("that failed")),
            "{failed:?}"
        );
    }

    #[test]
    fn sorts_versions_by_time_not_by_text() {
        let mut v = vec![
            "2024-01-01T00:00:00.12Z",
            "2024-01-01T00:00:00.1Z",
            "2024-01-01T00:00:00Z",
        ];
        v.sort_by_key(|s| version_key(s));
        assert_eq!(
            v,
            [
                "2024-01-01T00:00:00Z",
                "2024-01-01T00:00:00.1Z",
                "2024-01-01T00:00:00.12Z"
            ]
        );
    }
}
