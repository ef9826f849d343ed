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
use std::time::{Duration, Instant};

use agent_support::SETTLE;
use client::ClusterHealth;
use common::{ELECTION, app, http};
use netns_support::Direction;
use netns_support::site::NetSite;
use netns_support::writes::{REQUEST, first_ack, op_of, summary};
use scheduler_support::site::{
    CONVERGE, ZONES, app_tasks, processes_of, sleeper, slow_eviction_flags, wait_app_running,
};
use scheduler_support::{
    HTTP_SERVER, LaunchLog, Task, count_by, describe, fast_master_flags, ids, per_zone, spread,
};
use serde_json::json;

/// The app the leader-cut test writes: no instances, its `labels.op` says which write it is.
const CONFIG: &str = "/partition/config";

/// `DROVER_PARTITION_TRIALS`: how many times the leader-cut test cuts and heals (1 unless
/// set; the benchmark in `docs/benchmarks.md` runs 5).
fn trials() -> usize {
    std::env::var("DROVER_PARTITION_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(1)
}

/// One trial of a leader partitioned from the other two masters in `direction` (seen from
/// the leader) while the client reaches all three: the leader acknowledges no write and
/// serves no stale read; the other two agree on a new leader and acknowledge a write; after
/// the heal every master reads that write and not the cut-off leader's. Returns the time from
/// the cut to the majority's first acknowledgement.
fn cut_the_leader(ns: &mut NetSite, trial: usize, direction: Direction) -> Duration {
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
    ns.net.cut(&old_node, &other_ips, direction);
    let cut_at = Instant::now();
    let minority_op = format!("minority-{trial}");
    let minority = {
        let (addr, body) = (old_addr.clone(), app(CONFIG, &minority_op));
        let path = format!("/v2/apps{CONFIG}");
        std::thread::spawn(move || {
            let r = http::request(&addr, "PUT", &path, Some(&body), REQUEST);
            (r, cut_at.elapsed())
        })
    };
    let majority_op = format!("majority-{trial}");
    let (acked, answers) = first_ack(&other_addrs, &app(CONFIG, &majority_op), SETTLE);
    let Some(acked) = acked else {
        ns.s.fail(&format!(
            "trial {trial} ({direction:?}): the majority {others:?} acknowledged no write within {SETTLE:?} of the cut; answers: {}",
            summary(&answers)
        ));
    };
    let took = acked.duration_since(cut_at);
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
        Ok((Ok(r), _)) if r.is_success() => ns.s.fail(&format!(
            "trial {trial} ({direction:?}): master {old}, cut off from {others:?}, acknowledged a write: {r}"
        )),
        Ok((answer, after)) => println!(
            "trial {trial} ({direction:?}): the cut-off leader answered the write {} ms after the cut with: {}",
            after.as_millis(),
            answer.map_or_else(|e| e.to_string(), |r| r.to_string())
        ),
        Err(_) => ns.s.fail("the cut-off leader's writer thread panicked"),
    }
    // And serves no stale read: whatever it answers is not the value the majority
    // overwrote (it may fail, or forward).
    let path = format!("/v2/apps{CONFIG}");
    let read = http::request(&old_addr, "GET", &path, None, REQUEST);
    println!(
        "trial {trial} ({direction:?}): the cut-off leader answered the read with: {}",
        read.as_ref().map_or_else(
            |e| e.to_string(),
            |r| format!("{} op {:?}", r.status, op_of(r))
        )
    );
    match read {
        Ok(r) if r.status == 200 => {
            let seen = op_of(&r);
            if seen.as_deref() != Some(majority_op.as_str()) {
                ns.s.fail(&format!(
                    "trial {trial} ({direction:?}): the cut-off master {old} served a stale read after the majority wrote {majority_op}: op {seen:?}"
                ));
            }
        }
        Ok(r) if r.status < 500 => ns.s.fail(&format!(
            "trial {trial} ({direction:?}): the cut-off master {old} answered a read with {r}"
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
                "trial {trial} ({direction:?}): after the heal master {id} reads op {seen:?}, not the acknowledged {majority_op} ({r})"
            ));
        }
    }
    took
}

#[test]
fn a_leader_cut_off_from_the_other_masters_acknowledges_no_write_and_serves_no_stale_read_while_the_majority_elects_and_writes()
 {
    let mut ns = NetSite::start("leader-cut", 3, Vec::new());
    for trial in 1..=trials() {
        let took = cut_the_leader(&mut ns, trial, Direction::Both);
        println!(
            "partition figure: trial {trial}: cut → first write acknowledged by the majority: {} ms",
            took.as_millis()
        );
    }
}

#[test]
fn a_leader_whose_messages_to_the_other_masters_are_lost_acknowledges_no_write_while_the_majority_elects_and_writes()
 {
    let mut ns = NetSite::start("leader-mute", 3, Vec::new());
    cut_the_leader(&mut ns, 1, Direction::Outbound);
}

#[test]
fn a_leader_that_hears_nothing_from_the_other_masters_acknowledges_no_write_while_the_majority_elects_and_writes()
 {
    let mut ns = NetSite::start("leader-deaf", 3, Vec::new());
    cut_the_leader(&mut ns, 1, Direction::Inbound);
}

/// The zone cut off in the zone test.
const LOST: &str = "local-a";

/// The zone test's app: six instances spread over three zones by `GROUP_BY`.
const SPREAD: &str = "/partition/spread";
const SPREAD_N: usize = 6;

/// `n` tasks, all running.
fn all_running(ts: &[Task], n: usize) -> Result<(), String> {
    if ts.len() == n && ts.iter().all(Task::running) {
        Ok(())
    } else {
        Err(format!("wants {n} running: {}", describe(ts)))
    }
}

/// The state of `zone` in `/v1/cluster/health`, or what the answer was.
fn zone_state(ns: &mut NetSite, zone: &str) -> Result<String, String> {
    let r =
        ns.s.get("/v1/cluster/health")
            .ok_or("no master answers /v1/cluster/health")?;
    let health = r
        .decode::<ClusterHealth>()
        .map_err(|e| format!("{e}: {r}"))?;
    health
        .zones
        .iter()
        .find(|z| z.zone == zone)
        .map(|z| z.state.clone())
        .ok_or_else(|| format!("no zone {zone} in {:?}", health.zones))
}

#[test]
fn a_zone_cut_off_from_the_masters_is_replaced_in_the_other_zones_at_once_and_on_heal_rebalanced_with_nothing_running_twice()
 {
    let mut ns = NetSite::start("zone-cut", 3, slow_eviction_flags());
    ns.add_agents(&ZONES, 2);
    let log = LaunchLog::new(ns.s.dir(), "zone-cut");
    let mut spread_app = sleeper(SPREAD, SPREAD_N as u32, &log);
    spread_app["constraints"] = json!([["@zone", "GROUP_BY"]]);
    ns.s.create_app(&spread_app);
    let before = wait_app_running(&mut ns.s, SPREAD, SPREAD_N);
    let zones = per_zone(&before, &ZONES);
    if spread(zones.values()) > 0 {
        ns.s.fail(&format!("{SPREAD_N} instances over 3 zones: {zones:?}"));
    }
    let stranded: BTreeSet<String> = before
        .iter()
        .filter(|t| t.zone == LOST)
        .map(|t| t.id.clone())
        .collect();
    let kept: BTreeSet<String> = ids(&before).difference(&stranded).cloned().collect();
    let stranded_procs = processes_of(&ns.s, &stranded);
    let first_launches = log.ids();

    // The zone's agents lose every master; the client still reaches them.
    let lost = ns.zone(LOST);
    ns.cut_from_masters(&lost);
    // A zone wholly cut off while the others answer is an outage: replaced at once. (A paced
    // replacement, one agent per ten minutes here, would leave an instance in the zone.)
    let what = format!("every instance runs outside {LOST}, balanced over the other zones");
    let moved = ns.wait_showing(SETTLE, &what, |ns| {
        let ts = app_tasks(&mut ns.s, SPREAD).unwrap_or_default();
        all_running(&ts, SPREAD_N)?;
        let zones = per_zone(&ts, &ZONES);
        if zones[LOST] > 0 || spread(zones.values().filter(|&&n| n > 0)) > 0 {
            return Err(format!("per zone {zones:?}: {}", describe(&ts)));
        }
        Ok(ts)
    });
    let now = ids(&moved);
    assert!(
        kept.is_subset(&now),
        "instances outside {LOST} were replaced too: before {kept:?}, now {now:?}"
    );
    assert_eq!(
        log.ids().len(),
        first_launches.len() + stranded.len(),
        "launches: the originals, then one per instance of {LOST}"
    );
    let what = format!("/v1/cluster/health calls {LOST} an outage");
    ns.wait_showing(SETTLE, &what, |ns| match zone_state(ns, LOST)? {
        s if s == "outage" => Ok(()),
        s => Err(format!("{LOST} is {s}")),
    });
    // Cut off, the zone's agents keep their tasks running: no master told them otherwise.
    for (id, p) in &stranded_procs {
        assert!(
            p.is_alive(),
            "{id} (pid {}) stopped while its agent was cut off",
            p.pid
        );
    }

    // Healed: the zone's agents hear that their instances were replaced and kill them, and
    // the app is rebalanced onto the zone, each instance running once.
    ns.heal_agents(&lost);
    let what = format!("{LOST}'s agents kill the replaced originals {stranded:?}");
    ns.s.wait_until(SETTLE, &what, |_| {
        stranded_procs.values().all(|p| !p.is_alive())
    });
    let what =
        format!("{SPREAD} runs 2 instances in each zone, {LOST} again included, each on one agent");
    let end = ns.wait_showing(CONVERGE, &what, |ns| {
        let ts = app_tasks(&mut ns.s, SPREAD).unwrap_or_default();
        all_running(&ts, SPREAD_N)?;
        let zones = per_zone(&ts, &ZONES);
        if spread(zones.values()) > 0 {
            return Err(format!("per zone {zones:?}: {}", describe(&ts)));
        }
        ns.agents_run_exactly(&ts)?;
        Ok(ts)
    });
    let end_ids = ids(&end);
    assert!(
        end_ids.is_disjoint(&stranded),
        "a replaced original came back: {:?}",
        end_ids.intersection(&stranded).collect::<Vec<_>>()
    );
    assert_eq!(log.repeated(), BTreeMap::new(), "instances launched twice");
    ns.assert_no_orphans(&log.ids(), &end_ids);
}

/// The app of the test that cuts every agent off: an HTTP server per agent.
const WEB: &str = "/partition/web";
const WEB_N: usize = 4;

/// How long "nothing changes" is watched while every agent is cut off: many scheduler
/// passes and agent heartbeat intervals.
const HOLD: Duration = Duration::from_secs(5);

/// Task id → `ip:port` its HTTP server listens on, from the masters' view of `WEB`.
fn web_endpoints(ns: &mut NetSite) -> BTreeMap<String, String> {
    let Some(app) = ns.s.app(WEB) else {
        ns.s.fail(&format!("no master shows {WEB}"));
    };
    let mut out = BTreeMap::new();
    for t in app.tasks.iter().flatten() {
        let host = t.host.clone().unwrap_or_default();
        let ip = ns.agent_by_host(&host).node.ip;
        let Some(port) = t.ports.first() else {
            ns.s.fail(&format!("task {} has no port", t.id));
        };
        out.insert(t.id.clone(), format!("{ip}:{port}"));
    }
    out
}

/// The endpoints among `endpoints` that do not answer `GET /` with 200 `ok`, and why.
fn not_serving(endpoints: &BTreeMap<String, String>) -> Vec<String> {
    endpoints
        .iter()
        .filter_map(
            |(id, addr)| match http::request(addr, "GET", "/", None, REQUEST) {
                Ok(r) if r.status == 200 && r.body.trim() == "ok" => None,
                Ok(r) => Some(format!("{id} at {addr}: {r}")),
                Err(e) => Some(format!("{id} at {addr}: {e}")),
            },
        )
        .collect()
}

#[test]
fn agents_cut_off_from_every_master_keep_their_tasks_running_for_their_clients_and_on_heal_nothing_is_launched_again()
 {
    let mut ns = NetSite::start("agents-cut", 3, fast_master_flags());
    let agents = ns.add_agents(&ZONES[..2], 2);
    let log = LaunchLog::new(ns.s.dir(), "agents-cut");
    ns.s.create_app(&json!({
        "id": WEB, "cmd": log.cmd(HTTP_SERVER), "instances": WEB_N,
        "cpus": 0.05, "mem": 8, "portDefinitions": [{"port": 0}],
        "constraints": [["hostname", "UNIQUE"]],
    }));
    let before = wait_app_running(&mut ns.s, WEB, WEB_N);
    let original = ids(&before);
    let original_procs = processes_of(&ns.s, &original);
    let endpoints = web_endpoints(&mut ns);
    ns.s.wait_until(
        SETTLE,
        "every task's HTTP server answers the client",
        |_| not_serving(&endpoints).is_empty(),
    );

    // Every agent loses every master; the client still reaches the agents and the masters.
    ns.cut_from_masters(&agents);
    let what = "the masters show every original instance unreachable, and no other";
    ns.wait_showing(SETTLE, what, |ns| {
        let ts = app_tasks(&mut ns.s, WEB).unwrap_or_default();
        if ids(&ts) == original && ts.iter().all(|t| t.state == "TASK_UNREACHABLE") {
            Ok(())
        } else {
            Err(describe(&ts))
        }
    });
    // Every zone unreachable: the leader takes itself for the one cut off and replaces
    // nothing, while the tasks run on and serve their clients.
    let hold_until = Instant::now() + HOLD;
    while Instant::now() < hold_until {
        let ts = app_tasks(&mut ns.s, WEB).unwrap_or_default();
        if !ts.is_empty() && ids(&ts) != original {
            ns.s.fail(&format!(
                "instances changed while every agent was cut off: {}",
                describe(&ts)
            ));
        }
        let down = not_serving(&endpoints);
        if !down.is_empty() {
            ns.s.fail(&format!(
                "tasks stopped serving their clients during the cut: {down:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for zone in &ZONES[..2] {
        match zone_state(&mut ns, zone) {
            Ok(s) if s == "cut-off" => {}
            other => {
                ns.s.fail(&format!("{zone} during the cut: {other:?}, not cut-off"))
            }
        }
    }
    assert_eq!(
        log.ids(),
        original,
        "launches while every agent was cut off"
    );

    // Healed: the same instances, the same processes, nothing launched again.
    ns.heal_agents(&agents);
    let what = "the original instances run again, each on one agent";
    ns.wait_showing(SETTLE, what, |ns| {
        let ts = app_tasks(&mut ns.s, WEB).unwrap_or_default();
        all_running(&ts, WEB_N)?;
        if ids(&ts) != original {
            return Err(format!("ids differ from {original:?}: {}", describe(&ts)));
        }
        ns.agents_run_exactly(&ts)
    });
    for (id, p) in &original_procs {
        assert!(p.is_alive(), "{id} (pid {}) was stopped", p.pid);
    }
    assert_eq!(log.ids(), original, "launches: only the originals");
    assert_eq!(log.repeated(), BTreeMap::new(), "instances launched twice");
    assert!(
        not_serving(&endpoints).is_empty(),
        "{:?}",
        not_serving(&endpoints)
    );
}

/// The flapping test's app: one instance per agent.
const FLAPPED: &str = "/partition/flapped";

/// Cut and heal cycles of the flapping test, and how long each half lasts.
const FLAPS: usize = 6;
const FLAP_HALF: Duration = Duration::from_secs(1);

#[test]
fn a_flapping_link_leaves_no_instance_running_twice_and_the_cluster_converges() {
    let mut ns = NetSite::start("flapping", 3, fast_master_flags());
    let agents = ns.add_agents(&ZONES, 1);
    let log = LaunchLog::new(ns.s.dir(), "flapping");
    let mut flapped = sleeper(FLAPPED, agents.len() as u32, &log);
    flapped["constraints"] = json!([["hostname", "UNIQUE"]]);
    ns.s.create_app(&flapped);
    let before = wait_app_running(&mut ns.s, FLAPPED, agents.len());
    let leader = ns.s.masters.wait_for_leader_id(ELECTION);
    let leader_node = ns.master_node(leader).clone();
    let agent_node = ns.agent_by_host(&before[0].host).node.clone();
    let first_term = ns.s.masters.health(leader).map(|h| h.term);

    // The leader's link and one agent's go down and up every second, a few times: elections,
    // re-registrations and watches cut short, over and over.
    for _ in 0..FLAPS {
        ns.net.link_down(&leader_node);
        ns.net.link_down(&agent_node);
        std::thread::sleep(FLAP_HALF);
        ns.net.link_up(&leader_node);
        ns.net.link_up(&agent_node);
        std::thread::sleep(FLAP_HALF);
    }

    ns.s.masters.wait_for_leader(ELECTION);
    for id in ns.s.masters.ids() {
        ns.s.masters.wait_caught_up(id, ELECTION);
    }
    let n = agents.len();
    let what = format!("{FLAPPED} runs {n} instances, one per agent, each on one agent only");
    let end = ns.wait_showing(CONVERGE, &what, |ns| {
        let ts = app_tasks(&mut ns.s, FLAPPED).unwrap_or_default();
        all_running(&ts, n)?;
        if count_by(&ts, |t| &t.host).len() != n {
            return Err(format!("a host holds two: {}", describe(&ts)));
        }
        ns.agents_run_exactly(&ts)?;
        Ok(ts)
    });
    assert_eq!(log.repeated(), BTreeMap::new(), "instances launched twice");
    ns.assert_no_orphans(&log.ids(), &ids(&end));
    let last_leader = ns.s.masters.wait_for_leader_id(ELECTION);
    let last_term = ns.s.masters.health(last_leader).map(|h| h.term);
    println!(
        "after {FLAPS} flaps: Raft term {first_term:?} → {last_term:?}, master {leader} → {last_leader} leads; {} instance(s) launched in all, {} replaced",
        log.ids().len(),
        ids(&before).difference(&ids(&end)).count()
    );
}

/// The app that runs before the leader is cut off from the other masters, one instance per
/// agent, and the app created through the majority during the cut.
const BEFORE_CUT: &str = "/partition/before-cut";
const DURING_CUT: &str = "/partition/during-cut";

#[test]
fn agents_that_still_reach_a_leader_cut_off_from_the_other_masters_follow_the_new_leader() {
    let mut ns = NetSite::start("leader-cut-agents", 3, fast_master_flags());
    let old = ns.s.masters.wait_for_leader_id(ELECTION);
    // The agents talk to the leader first: after the cut they still reach it, and it still
    // takes itself for the leader.
    let agents = ns.add_agents_with(&ZONES, 1, Some(old));
    let n = agents.len();
    let log = LaunchLog::new(ns.s.dir(), "leader-cut-agents");
    let mut first = sleeper(BEFORE_CUT, n as u32, &log);
    first["constraints"] = json!([["hostname", "UNIQUE"]]);
    ns.s.create_app(&first);
    let before = wait_app_running(&mut ns.s, BEFORE_CUT, n);

    let others: Vec<u32> =
        ns.s.masters
            .ids()
            .into_iter()
            .filter(|&i| i != old)
            .collect();
    let other_ips: Vec<_> = others.iter().map(|&i| ns.master_node(i).ip).collect();
    let old_node = ns.master_node(old).clone();
    ns.net.cut(&old_node, &other_ips, Direction::Both);
    let what = format!("masters {others:?} agree on a leader among themselves");
    ns.s.masters
        .wait_for(ELECTION, &what, |c| c.leader_among(&others));

    // Work given to the majority reaches the agents: they leave the cut-off leader for the
    // new one, and the instances that ran go on running.
    ns.s.create_app(&sleeper(DURING_CUT, n as u32, &log));
    let what = format!("{DURING_CUT} runs {n} instances and {BEFORE_CUT} its original ones");
    ns.wait_showing(SETTLE, &what, |ns| {
        let during = app_tasks(&mut ns.s, DURING_CUT).unwrap_or_default();
        all_running(&during, n)?;
        let kept = app_tasks(&mut ns.s, BEFORE_CUT).unwrap_or_default();
        all_running(&kept, n)?;
        if ids(&kept) != ids(&before) {
            return Err(format!("{BEFORE_CUT} changed: {}", describe(&kept)));
        }
        Ok(())
    });

    ns.net.heal(&old_node);
    ns.s.masters.wait_for_leader(ELECTION);
    for id in ns.s.masters.ids() {
        ns.s.masters.wait_caught_up(id, ELECTION);
    }
    let what = "both apps run, each instance on exactly one agent";
    let end = ns.wait_showing(CONVERGE, what, |ns| {
        let mut all = app_tasks(&mut ns.s, BEFORE_CUT).unwrap_or_default();
        all_running(&all, n)?;
        let during = app_tasks(&mut ns.s, DURING_CUT).unwrap_or_default();
        all_running(&during, n)?;
        all.extend(during);
        ns.agents_run_exactly(&all)?;
        Ok(all)
    });
    assert_eq!(log.repeated(), BTreeMap::new(), "instances launched twice");
    ns.assert_no_orphans(&log.ids(), &ids(&end));
}
