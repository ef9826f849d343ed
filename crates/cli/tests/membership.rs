//! Master membership with real binaries on loopback (issue 16): a 3-master cluster grows to 5
//! (`--join`: learners promoted to voters) and shrinks to 3 again (`drover operator masters
//! remove`) while a writer keeps writing, a master whose data dir was wiped is replaced
//! (refused as it is, then removed and started with `--join`), and no acknowledged write is
//! lost. Hostile input is refused with a message that says what to do: removing the leader,
//! an unknown id, a removal that would leave no quorum, `--force-new-cluster` on a live
//! cluster, a master of another cluster joining. A second test runs
//! `--remove-dead-masters-after`: a dead voter is removed while a quorum is kept, and kept
//! (said so in the leader's log) when removing it would need a quorum that is not there.
//! A third runs `--redundancy-zones`: six masters in three zones keep one voter per zone,
//! a lost zone's voter is replaced by another zone's standby while writes go on, and the
//! zones rebalance once it is back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use client::AppList;
use client::system::MastersList;
use common::Cluster;
use common::{DROVER, app, http};

const WAIT: Duration = Duration::from_secs(60);

/// Keeps PUTting new apps through the masters in `addrs` (the next one on any failure) and
/// records the ids of those acknowledged.
struct Writer {
    addrs: Arc<Mutex<Vec<String>>>,
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Writer {
    fn start(addrs: Vec<String>) -> Self {
        let addrs = Arc::new(Mutex::new(addrs));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (addrs, acked, stop) = (addrs.clone(), acked.clone(), stop.clone());
            thread::spawn(move || {
                let mut n = 0u64;
                let mut next = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    let id = format!("/writes/w{n}");
                    let addr = {
                        let list = addrs.lock().unwrap();
                        list[next % list.len()].clone()
                    };
                    match http::put(&addr, &format!("/v2/apps{id}"), &app(&id, "write")) {
                        Ok(r) if r.is_success() => {
                            acked.lock().unwrap().push(id);
                            n += 1;
                        }
                        _ => {
                            // Unknown outcome: move on to the next master (and a new id;
                            // only acknowledged ids are checked).
                            next += 1;
                            n += 1;
                            thread::sleep(Duration::from_millis(50));
                        }
                    }
                    thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Writer {
            addrs,
            acked,
            stop,
            thread: Some(thread),
        }
    }

    fn set_addrs(&self, addrs: Vec<String>) {
        *self.addrs.lock().unwrap() = addrs;
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Stops writing; the acknowledged ids.
    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.acked.lock().unwrap().clone()
    }
}

/// `drover operator masters ARGS… --master ADDR`: its exit success, stdout and stderr.
fn operator_masters(addr: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(DROVER)
        .arg("operator")
        .arg("masters")
        .args(args)
        .arg("--master")
        .arg(addr)
        .env_remove("DROVER_TOKEN")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The membership from `drover operator masters list --json`, or what the CLI said instead.
fn members_or_why(addr: &str) -> Result<MastersList, String> {
    let (ok, out, err) = operator_masters(addr, &["list", "--json"]);
    if !ok {
        return Err(format!("the CLI failed: {err}"));
    }
    serde_json::from_str(&out).map_err(|e| format!("not a masters list ({e}): {out}"))
}

/// The membership from `drover operator masters list --json`, if the CLI got it.
fn members(addr: &str) -> Option<MastersList> {
    members_or_why(addr).ok()
}

fn voters(list: &MastersList) -> BTreeSet<u64> {
    list.masters
        .iter()
        .filter(|m| m.role == "voter")
        .map(|m| m.id)
        .collect()
}

/// Waits until the voters are exactly `want` and there is no learner (asked through master
/// `via`); on timeout the failure names the CLI's last answer.
#[track_caller]
fn wait_voters(c: &mut Cluster, via: u32, want: &[u64]) -> MastersList {
    let want: BTreeSet<u64> = want.iter().copied().collect();
    let addr = c.addr(via);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let last = match members_or_why(&addr) {
            Ok(l) if voters(&l) == want && l.masters.len() == want.len() => return l,
            Ok(l) => format!("{l:?}"),
            Err(why) => why,
        };
        if std::time::Instant::now() >= deadline {
            c.fail(&format!(
                "timed out after {WAIT:?} waiting until `drover operator masters` through master {via} lists voters {want:?} and no learner; last answer: {last}"
            ));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until `writer` has `n` more acknowledged writes than now.
#[track_caller]
fn wait_writes(c: &mut Cluster, writer: &Writer, what: &str) {
    let before = writer.acked();
    c.wait_until(WAIT, &format!("writes are acknowledged {what}"), |_| {
        writer.acked() > before + 5
    });
}

/// Asserts every id in `acked` is an app master `via` serves.
#[track_caller]
fn assert_all_readable(c: &mut Cluster, via: u32, acked: &[String], when: &str) {
    let ids = app_ids(c, via);
    let missing: Vec<&String> = acked.iter().filter(|id| !ids.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged writes lost ({when}, read through master {via}): {missing:?}"
    );
}

fn app_ids(c: &mut Cluster, via: u32) -> BTreeSet<String> {
    let r = c.get_settled(via, "/v2/apps", WAIT);
    let list: AppList = r.typed();
    list.apps.into_iter().map(|a| a.id().to_string()).collect()
}

#[test]
fn masters_join_and_leave_and_a_wiped_master_is_replaced_without_losing_writes() {
    // Masters 1-3 form the cluster; 4 and 5 join; 6 is a master of another cluster.
    let mut c = Cluster::new("membership", 6);
    c.flag_ids = Some(vec![1, 2, 3]);
    for id in [4, 5, 6] {
        c.master_mut(id).extra_args.push("--join".into());
    }
    c.start_ids(&[1, 2, 3]);
    let leader = c.wait_for_leader_id(WAIT);
    wait_voters(&mut c, leader, &[1, 2, 3]);
    let writer = Writer::start((1..=3).map(|id| c.addr(id)).collect());
    c.wait_until(WAIT, "the writer has writes acknowledged", |_| {
        writer.acked() > 5
    });

    // An unknown id: 404, naming the list command.
    let (ok, _, err) = operator_masters(&c.addr(leader), &["remove", "9"]);
    assert!(
        !ok && err.contains("not a member") && err.contains("drover operator masters"),
        "removing an unknown id is refused: {err}"
    );

    // --force-new-cluster while the cluster is alive: refused, nothing rewritten; the
    // master then rejoins as it was.
    let forced = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    c.kill(forced);
    c.master_mut(forced)
        .extra_args
        .push("--force-new-cluster".into());
    c.start(forced);
    let status = c.wait_exit(forced, WAIT);
    let stderr = c.stderr(forced);
    assert!(
        !status.success() && stderr.contains("the cluster is not gone"),
        "--force-new-cluster on a live cluster is refused: {status:?}\n{stderr}"
    );
    c.master_mut(forced)
        .extra_args
        .retain(|a| a != "--force-new-cluster");
    c.start(forced);
    c.wait_caught_up(forced, WAIT);
    wait_voters(&mut c, leader, &[1, 2, 3]);

    // A master of another cluster (its data dir names that cluster) asked to join: refused.
    let mut other = Cluster::new("membership-other", 1);
    other.start(1);
    other.wait_for_leader(WAIT);
    other.kill(1);
    c.master_mut(6).data_dir = other.master(1).data_dir.clone();
    c.start(6);
    let status = c.wait_exit(6, WAIT);
    let stderr = c.stderr(6);
    assert!(
        !status.success() && stderr.contains("another cluster"),
        "a master of another cluster is refused: {status:?}\n{stderr}"
    );

    // Grow to five: each joins as a learner, catches up and becomes a voter. Master 4 is
    // put in master 1's zone, which the cluster health names once both vote.
    let shared_zone = c.master(1).zone.clone();
    c.master_mut(4).zone = shared_zone.clone();
    c.start(4);
    c.start(5);
    let list = wait_voters(&mut c, leader, &[1, 2, 3, 4, 5]);
    assert!(
        list.masters.iter().all(|m| m.log_lag.is_some()),
        "every member has a log lag: {list:?}"
    );
    writer.set_addrs((1..=5).map(|id| c.addr(id)).collect());
    let (ok, table, err) = operator_masters(&c.addr(4), &[]);
    assert!(
        ok,
        "drover operator masters through the new master 4: {err}"
    );
    assert_eq!(
        table.lines().filter(|l| l.contains(" voter ")).count(),
        5,
        "the table lists five voters:\n{table}"
    );
    wait_writes(&mut c, &writer, "with five masters");
    // (Master 4 registers its zone once it serves: waited for, not assumed.)
    let warning = format!("voters share a zone (zone {shared_zone}: masters 1, 4)");
    c.wait_until(
        WAIT,
        "the cluster health warns that voters 1 and 4 share a zone",
        |c| {
            c.get_settled(leader, "/v1/cluster/health", WAIT)
                .body
                .contains(&warning)
        },
    );
    // A joined master restarts like any member (still with --join in its flags).
    let restarted = [4, 5].into_iter().find(|id| *id != leader).unwrap();
    c.restart(restarted);
    c.wait_caught_up(restarted, WAIT);
    wait_voters(&mut c, leader, &[1, 2, 3, 4, 5]);

    // The leader cannot remove itself; the message says what to do.
    let leader = c.wait_for_leader_id(WAIT);
    let (ok, _, err) = operator_masters(&c.addr(leader), &["remove", &leader.to_string()]);
    assert!(
        !ok && err.contains("leader") && err.contains("/v2/leader"),
        "removing the leader is refused: {err}"
    );

    // Shrink to three: remove one of the first masters and one that joined, neither leading.
    let first = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let joined = [4, 5].into_iter().find(|id| *id != leader).unwrap();
    let keep: Vec<u32> = (1..=5).filter(|id| *id != first && *id != joined).collect();
    writer.set_addrs(keep.iter().map(|id| c.addr(*id)).collect());
    for gone in [first, joined] {
        let (ok, out, err) = operator_masters(&c.addr(keep[0]), &["remove", &gone.to_string()]);
        assert!(ok, "remove master {gone}: {out}{err}");
        // The removed master is told, checks with the leader, and stops (exit 0).
        let status = c.wait_exit(gone, WAIT);
        assert!(
            status.success(),
            "removed master {gone} exits 0: {status:?}"
        );
    }
    let want: Vec<u64> = keep.iter().map(|id| u64::from(*id)).collect();
    wait_voters(&mut c, keep[0], &want);
    wait_writes(&mut c, &writer, "with three masters");

    // Replace a master whose data dir was wiped, under the same id: refused as it is (the
    // message names the command), then removed and started with --join.
    let leader = c.wait_for_leader_id(WAIT);
    let wiped = *keep.iter().find(|id| **id != leader).unwrap();
    let others: Vec<u32> = keep.iter().copied().filter(|id| *id != wiped).collect();
    writer.set_addrs(others.iter().map(|id| c.addr(*id)).collect());
    c.kill(wiped);
    std::fs::remove_dir_all(&c.master(wiped).data_dir).unwrap();
    c.master_mut(wiped).extra_args.retain(|a| a != "--join");
    c.start(wiped);
    let status = c.wait_exit(wiped, WAIT);
    let stderr = c.stderr(wiped);
    assert!(
        !status.success() && stderr.contains("drover operator masters remove"),
        "a wiped master is refused, naming the command: {status:?}\n{stderr}"
    );
    let (ok, out, err) = operator_masters(&c.addr(others[0]), &["remove", &wiped.to_string()]);
    assert!(ok, "remove the wiped master {wiped}: {out}{err}");
    let mut want: Vec<u64> = others.iter().map(|id| u64::from(*id)).collect();
    wait_voters(&mut c, others[0], &want);
    std::fs::remove_dir_all(&c.master(wiped).data_dir).ok();
    c.master_mut(wiped).extra_args.push("--join".into());
    c.start(wiped);
    want.push(u64::from(wiped));
    want.sort_unstable();
    wait_voters(&mut c, others[0], &want);
    c.wait_caught_up(wiped, WAIT);
    writer.set_addrs(keep.iter().map(|id| c.addr(*id)).collect());
    wait_writes(&mut c, &writer, "after the replacement");
    let acked = writer.finish();
    c.wait_caught_up(wiped, WAIT);

    // Every acknowledged write is there, also once the leader is gone and the replaced
    // master is one of the two that must agree.
    let leader = c.wait_for_leader_id(WAIT);
    assert_all_readable(&mut c, wiped, &acked, "after the replacement");
    c.kill(leader);
    let survivor = *keep.iter().find(|id| **id != leader).unwrap();
    let new_leader = c.wait_for_leader_id(WAIT);
    assert_all_readable(&mut c, survivor, &acked, "after the leader died");
    assert!(acked.len() > 20, "the writer wrote: {}", acked.len());

    // With one of three voters down, removing another that is up would leave two voters of
    // which one is up: refused, and the membership stays as it was.
    let up_follower = *keep
        .iter()
        .find(|id| **id != leader && **id != new_leader)
        .unwrap();
    let (ok, _, err) = operator_masters(&c.addr(new_leader), &["remove", &up_follower.to_string()]);
    assert!(
        !ok && err.contains("quorum") && err.contains("nothing was done"),
        "a removal that leaves no quorum is refused: {err}"
    );
    let want: Vec<u64> = keep.iter().map(|id| u64::from(*id)).collect();
    wait_voters(&mut c, new_leader, &want);
    assert_all_readable(&mut c, up_follower, &acked, "after the refused removal");
}

#[test]
fn a_dead_voter_is_removed_only_while_the_voters_left_keep_a_quorum() {
    let mut c = Cluster::new("dead-masters", 3);
    c.extra_args
        .extend(["--remove-dead-masters-after".into(), "10s".into()]);
    c.start_all();
    let leader = c.wait_for_leader_id(WAIT);
    wait_voters(&mut c, leader, &[1, 2, 3]);
    let followers: Vec<u32> = (1..=3).filter(|id| *id != leader).collect();
    let (x, y) = (followers[0], followers[1]);
    let writer = Writer::start(vec![c.addr(leader), c.addr(y)]);
    wait_writes(&mut c, &writer, "with three masters");

    // x dies: once it has been silent 10 s the leader removes it (the two left are up).
    c.kill(x);
    let mut two = vec![u64::from(leader), u64::from(y)];
    two.sort_unstable();
    wait_voters(&mut c, leader, &two);
    wait_writes(&mut c, &writer, "with x removed");

    // y dies too: removing it would need the change committed by a quorum of the two
    // voters in force, of which one is up. It is kept, and the leader says why.
    c.kill(y);
    let said = format!("master {y} is down longer than --remove-dead-masters-after but is kept");
    c.wait_until(WAIT, "the leader logs that it keeps the dead voter", |c| {
        c.stderr(leader).contains(&said)
    });
    let (ok, _, err) = operator_masters(&c.addr(leader), &["remove", &y.to_string()]);
    assert!(
        !ok && err.contains("quorum") && err.contains("nothing was done"),
        "removing the last other voter while it is down is refused: {err}"
    );
    let list = members(&c.addr(leader)).expect("the leader lists the masters");
    assert_eq!(voters(&list), two.iter().copied().collect(), "{list:?}");

    // y returns: writes flow again and nothing acknowledged is lost.
    c.start(y);
    c.wait_caught_up(y, WAIT);
    wait_writes(&mut c, &writer, "once y is back");
    let acked = writer.finish();
    assert_all_readable(&mut c, y, &acked, "after y came back");

    // x, removed while it was down, started again on its old data dir: refused, naming the
    // way back.
    c.start(x);
    let status = c.wait_exit(x, WAIT);
    let stderr = c.stderr(x);
    assert!(
        !status.success() && stderr.contains("was removed") && stderr.contains("--join"),
        "a removed master restarted on its data dir is refused: {status:?}\n{stderr}"
    );
}

/// The voters and learners `drover operator masters list` shows through `via`.
fn roles(list: &MastersList) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let learners = list
        .masters
        .iter()
        .filter(|m| m.role == "learner")
        .map(|m| m.id)
        .collect();
    (voters(list), learners)
}

/// Waits until `check` accepts the membership listed through master `via`; on timeout the
/// failure names what was awaited and the CLI's last answer.
#[track_caller]
fn wait_members(
    c: &mut Cluster,
    via: u32,
    what: &str,
    check: impl Fn(&MastersList) -> bool,
) -> MastersList {
    let addr = c.addr(via);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let last = match members_or_why(&addr) {
            Ok(l) if check(&l) => return l,
            Ok(l) => format!("{l:?}"),
            Err(why) => why,
        };
        if std::time::Instant::now() >= deadline {
            c.fail(&format!(
                "timed out after {WAIT:?} waiting until `drover operator masters` through master {via} shows {what}; last answer: {last}"
            ));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn with_redundancy_zones_a_lost_zone_is_replaced_by_standbys_and_writes_go_on() {
    // The flag alone is refused: it needs the time after which a voter counts as lost.
    let out = Command::new(DROVER)
        .args(["master", "--id", "1", "--listen", "127.0.0.1:1"])
        .args(["--masters", "1=127.0.0.1:1", "--data-dir", "/nonexistent"])
        .arg("--redundancy-zones")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--remove-dead-masters-after"),
        "--redundancy-zones without --remove-dead-masters-after is refused, naming it: {stderr}"
    );

    // Six masters in three zones: 1 and 4 in local-a, 2 and 5 in local-b, 3 and 6 in
    // local-c. 1-3 form the cluster, 4-6 join: one voter per zone, three standbys.
    let mut c = Cluster::new("redundancy-zones", 6);
    c.flag_ids = Some(vec![1, 2, 3]);
    c.extra_args.extend([
        "--redundancy-zones".into(),
        "--remove-dead-masters-after".into(),
        "10s".into(),
    ]);
    let zone_of = |id: u64| format!("local-{}", ["a", "b", "c"][((id - 1) % 3) as usize]);
    for id in 4..=6u32 {
        c.master_mut(id).zone = zone_of(u64::from(id));
        c.master_mut(id).extra_args.push("--join".into());
    }
    c.start_ids(&[1, 2, 3]);
    let leader = c.wait_for_leader_id(WAIT);
    wait_voters(&mut c, leader, &[1, 2, 3]);
    for id in 4..=6 {
        c.start(id);
    }
    // The standbys catch up, register their zones, and stay learners: their zones have a
    // voter each.
    let caught_up = |l: &MastersList| {
        roles(l) == ([1, 2, 3].into(), [4, 5, 6].into())
            && l.masters.iter().all(|m| {
                m.zone.as_deref() == Some(zone_of(m.id).as_str())
                    && m.log_lag.is_some_and(|lag| lag <= 64)
            })
    };
    wait_members(
        &mut c,
        leader,
        "voters 1-3 and caught-up standbys 4-6 with their zones",
        caught_up,
    );
    let writer = Writer::start((1..=6).map(|id| c.addr(id)).collect());
    wait_writes(&mut c, &writer, "with six masters");
    let list = members(&c.addr(leader)).expect("the leader lists the masters");
    assert_eq!(
        roles(&list),
        ([1, 2, 3].into(), [4, 5, 6].into()),
        "still one voter per zone: {list:?}"
    );

    // A whole zone is lost: a voter that is not the leader and its standby.
    let lost = u64::from(c.a_follower(leader));
    let other = [1, 2, 3]
        .into_iter()
        .find(|id| *id != lost && *id != u64::from(leader))
        .unwrap();
    let lost_standby = lost + 3;
    let alive: Vec<u32> = (1..=6u32)
        .filter(|id| u64::from(*id) != lost && u64::from(*id) != lost_standby)
        .collect();
    writer.set_addrs(alive.iter().map(|id| c.addr(*id)).collect());
    c.kill(lost as u32);
    c.kill(lost_standby as u32);
    // Two of the three voters are up: writes go on at once.
    wait_writes(
        &mut c,
        &writer,
        &format!("with zone {} lost", zone_of(lost)),
    );

    // After 10 s the lost voter is replaced by a standby of another zone (the lowest id
    // of the two when both are caught up; which one under load is the unit tests' matter)
    // and steps down to standby itself.
    let standbys: BTreeSet<u64> = [4, 5, 6]
        .into_iter()
        .filter(|id| *id != lost_standby)
        .collect();
    let kept: BTreeSet<u64> = [u64::from(leader), other].into();
    let list = wait_members(
        &mut c,
        leader,
        &format!(
            "voters {kept:?} and one of {standbys:?}, and {lost} and {lost_standby} standing by"
        ),
        |l| {
            let (v, learners) = roles(l);
            v.len() == 3
                && v.is_superset(&kept)
                && v.iter().any(|id| standbys.contains(id))
                && learners.len() == 3
                && learners.contains(&lost)
                && learners.contains(&lost_standby)
        },
    );
    let replacement = *voters(&list).difference(&kept).next().unwrap();
    assert!(
        c.stderr(leader)
            .contains("redundancy zones: standby promoted to voter"),
        "the leader logs the promotion:\n{}",
        c.stderr(leader)
    );
    wait_writes(&mut c, &writer, "with the lost voter replaced");
    // Two voters now share a zone: the cluster health says so.
    let shared = format!("zone {}", zone_of(replacement));
    c.wait_until(
        WAIT,
        "the cluster health warns that voters share a zone",
        |c| {
            let body = c.get_settled(leader, "/v1/cluster/health", WAIT).body;
            body.contains("voters share a zone") && body.contains(&shared)
        },
    );

    // The three voters are up again, so the cluster survives one more loss: the other
    // original voter goes too, and writes are still acknowledged (without the
    // replacement, two of the three voters would be down and nothing would commit).
    let alive: Vec<u32> = alive
        .into_iter()
        .filter(|id| u64::from(*id) != other)
        .collect();
    writer.set_addrs(alive.iter().map(|id| c.addr(*id)).collect());
    c.kill(other as u32);
    wait_writes(&mut c, &writer, "with a zone and one more voter lost");

    // Everyone comes back: one voter per zone again, all six members, nothing lost.
    for id in [lost, lost_standby, other] {
        c.start(id as u32);
    }
    writer.set_addrs((1..=6).map(|id| c.addr(id)).collect());
    let list = wait_members(
        &mut c,
        leader,
        "one voter in each of the three zones and three standbys",
        |l| {
            let (v, learners) = roles(l);
            let zones: BTreeSet<String> = v.iter().map(|id| zone_of(*id)).collect();
            v.len() == 3 && zones.len() == 3 && learners.len() == 3
        },
    );
    wait_writes(&mut c, &writer, "with every master back");
    let acked = writer.finish();
    let voter = *voters(&list).iter().next().unwrap();
    assert_all_readable(&mut c, voter as u32, &acked, "after the zone came back");
    assert!(acked.len() > 20, "the writer wrote: {}", acked.len());
}
