//! Scale benchmark (issue 13): three masters and thousands of hollow agents, measured at rest,
//! deploying, losing an agent, losing a zone, losing the leader, and taking back a master
//! that was down.
//!
//! Run with `cargo bench -p drover --bench scale` (the bench profile builds `drover`
//! optimized). Environment:
//! `DROVER_BENCH_SIZES` agent counts, one run each (default `1000,3000,10000`),
//! `DROVER_BENCH_INSTANCES` instances per run (default 100,000),
//! `DROVER_BENCH_APP_SIZE` instances per app (default 1,000),
//! `DROVER_BENCH_PER_PROCESS` hollow agents per `drover hollow-agents` process (default
//! 2,500: each agent holds about two file descriptors there, and `ulimit -n` is 20,000 here),
//! `DROVER_BENCH_SETTLE_S` seconds to settle before the at-rest window (default 30),
//! `DROVER_BENCH_WINDOW_S` the at-rest window (default 60).
//!
//! Each run: three `drover master` processes on loopback with default timings (agent
//! heartbeat 1 s, unreachable after 5 s), and the agents as `drover hollow-agents` processes
//! (fake tasks; each agent offers cpus 64, mem 65536, zones `local-a` … `local-d`
//! round-robin). Then, in order:
//!
//! 1. **register**: every agent is active;
//! 2. one follower is stopped, and **deploy**: apps of `DROVER_BENCH_APP_SIZE` instances,
//!    `GROUP_BY` zone, are PUT (retried until acknowledged) until the instance count is reached, timed from the first
//!    POST until all run and no deployment is left, with the leader's CPU over that time;
//! 3. **master back**: the stopped follower starts again on its data dir and catches up
//!    (with 5,000 entries between snapshots it installs the leader's snapshot); the time
//!    until it has applied the leader's log, and the size of the last snapshot;
//! 4. **at rest**: after settling, the leader's CPU and RSS over the window;
//! 5. **API latency**: 100 × `GET /v2/apps` and 20 × `POST /v2/apps` (apps of 0 instances)
//!    through the leader, sequentially, p50 and p99;
//! 6. **agent lost**: one agent with instances crashes (its machine dies, through the hollow
//!    control endpoint): time until the leader counts every instance running again;
//! 7. **zone lost**: every agent of `local-d` crashes at once: time until the same;
//! 8. **leader SIGKILL**: time until a write through another master is acknowledged, and
//!    until every live agent is active again; how many fake tasks the failover replaced
//!    (their ids before and after; should be 0).
//!
//! The last column counts elections before the SIGKILL (Raft terms gone by): a leader that
//! lost its followers' heartbeats under load shows there.
//!
//! Prints one table row per run (markdown, for `docs/benchmarks.md`). `cargo test
//! --benches` runs it without `--bench`: a smoke run of 20 agents and 40 instances.

#[path = "../tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "support/measure.rs"]
mod measure;
#[path = "support/wait.rs"]
mod wait;

use std::collections::BTreeSet;
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, DROVER, ELECTION, free_port, http, tail};
use measure::{clock_ticks, cpu_ticks, status_kb};
use serde_json::{Value, json};

/// How often a condition is looked at again.
const POLL: Duration = Duration::from_millis(250);
/// Give up (the run fails) when a phase takes longer than this.
const LIMIT: Duration = Duration::from_secs(900);
/// One API call's limit.
const CALL: Duration = Duration::from_secs(60);
/// The zone whose agents all crash in the zone-loss phase.
const LOST_ZONE: &str = "local-d";

/// The `drover hollow-agents` processes of a run; dropping them kills them.
struct Fleets {
    procs: Vec<HollowProc>,
}

struct HollowProc {
    control: String,
    log: PathBuf,
    child: Child,
}

impl Fleets {
    /// Starts `n` agents in processes of at most `per_process`, addresses counting up from
    /// 127.2.0.1 across them.
    fn start(dir: &Path, masters: &str, n: usize, per_process: usize) -> Fleets {
        let first = u32::from(Ipv4Addr::new(127, 2, 0, 1));
        let procs = (0..n.div_ceil(per_process))
            .map(|k| {
                let count = per_process.min(n - k * per_process);
                let ip = Ipv4Addr::from(first + (k * per_process) as u32);
                let control = format!("127.0.0.1:{}", free_port());
                let log = dir.join(format!("hollow-{k}.log"));
                let out = File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
                let err = out.try_clone().unwrap_or_else(|e| panic!("{e}"));
                let child = Command::new(DROVER)
                    .arg("hollow-agents")
                    .arg("--insecure")
                    .arg(count.to_string())
                    .args(["--masters", masters])
                    .arg("--work-dir")
                    .arg(dir.join(format!("hollow-{k}")))
                    .args(["--hostname-prefix", &format!("scale-{k}")])
                    .args(["--first-ip", &ip.to_string()])
                    .args(["--regions", "local", "--zones", "4"])
                    .args(["--control", &control])
                    .args([
                        "--resources",
                        "cpus:64;mem:65536;disk:10000;ports:[31000-31009]",
                    ])
                    .stdin(Stdio::null())
                    .stdout(out)
                    .stderr(err)
                    .spawn()
                    .unwrap_or_else(|e| panic!("spawn {DROVER} hollow-agents {count}: {e}"));
                HollowProc {
                    control,
                    log,
                    child,
                }
            })
            .collect();
        Fleets { procs }
    }

    fn logs(&self) -> String {
        self.procs
            .iter()
            .take(2)
            .map(|p| format!("\n--- {} ---\n{}", p.log.display(), tail(&p.log, 10)))
            .collect()
    }

    /// Every running fake task of every process.
    fn tasks(&self) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        for p in &self.procs {
            let r = http::request(&p.control, "GET", "/tasks", None, CALL)
                .unwrap_or_else(|e| panic!("GET {}/tasks: {e}", p.control));
            let ids = r.body_json["tasks"].as_array().cloned().unwrap_or_default();
            all.extend(ids.into_iter().filter_map(|v| v.as_str().map(String::from)));
        }
        all
    }

    /// The hostname of an agent of the first process that runs a task.
    fn an_agent_with_tasks(&self) -> Option<String> {
        let p = self.procs.first()?;
        let r = http::request(&p.control, "GET", "/agents", None, CALL).ok()?;
        r.body_json["agents"]
            .as_array()?
            .iter()
            .find(|a| a["zone"] != LOST_ZONE && a["tasks"].as_u64() > Some(0))
            .and_then(|a| a["hostname"].as_str().map(String::from))
    }

    /// Crashes agent `hostname` (a machine of the first process).
    fn crash(&self, hostname: &str) {
        let p = &self.procs[0];
        let path = format!("/agents/{hostname}/crash");
        let r = http::request(&p.control, "POST", &path, None, CALL)
            .unwrap_or_else(|e| panic!("POST {}{path}: {e}", p.control));
        assert_eq!(r.status, 200, "POST {path}: {r}");
    }

    /// Crashes every agent of `zone`, in every process; returns how many.
    fn crash_zone(&self, zone: &str) -> usize {
        let path = format!("/agents/crash?zone={zone}");
        self.procs
            .iter()
            .map(|p| {
                let r = http::request(&p.control, "POST", &path, None, CALL)
                    .unwrap_or_else(|e| panic!("POST {}{path}: {e}", p.control));
                assert_eq!(r.status, 200, "POST {path}: {r}");
                r.body_json["crashed"].as_array().map_or(0, Vec::len)
            })
            .sum()
    }
}

impl Drop for Fleets {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

/// Polls `f` until it returns `Some`, or fails the run after [`LIMIT`].
fn poll<T>(c: &Cluster, fleets: &Fleets, what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait::poll(c, LIMIT, POLL, what, || fleets.logs(), f)
}

fn get(addr: &str, path: &str) -> Option<Value> {
    wait::get_json(addr, path, CALL)
}

/// Agents by state (`active`, `unreachable`, …) in `/v1/nodes`.
fn agent_states(addr: &str) -> Option<std::collections::BTreeMap<String, usize>> {
    let nodes = get(addr, "/v1/nodes")?;
    let mut states = std::collections::BTreeMap::new();
    for n in nodes["nodes"].as_array()? {
        if n["type"] == "agent" {
            let state = n["state"].as_str().unwrap_or("?").to_string();
            *states.entry(state).or_insert(0) += 1;
        }
    }
    Some(states)
}

/// Instances running, summed over the apps, and whether no deployment is left.
fn running(addr: &str) -> Option<(u64, bool)> {
    let apps = get(addr, "/v2/apps")?;
    let n = apps["apps"]
        .as_array()?
        .iter()
        .filter_map(|a| a["tasksRunning"].as_u64())
        .sum();
    let idle = get(addr, "/v2/deployments")?.as_array()?.is_empty();
    Some((n, idle))
}

/// The `p`-th percentile (0–100) of sorted `v`, in milliseconds.
fn percentile(v: &[Duration], p: usize) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() - 1) * p).div_ceil(100);
    v[i].as_secs_f64() * 1000.0
}

/// Bytes of the last snapshot the leader built, from its log (`snapshot built bytes=N`).
fn snapshot_bytes(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .filter(|l| l.contains("snapshot built"))
        .filter_map(|l| {
            let at = l.find("bytes=")? + "bytes=".len();
            l[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .next_back()
}

/// What one run measured.
struct Row {
    agents: usize,
    instances: usize,
    register: Duration,
    deploy: Duration,
    deploy_cores: f64,
    back: Duration,
    snapshot: Option<u64>,
    rest_cores: f64,
    rest_rss_mib: f64,
    get_ms: (f64, f64),
    post_ms: (f64, f64),
    agent_lost: Duration,
    zone_lost: Duration,
    zone_agents: usize,
    first_write: Duration,
    reregistered: Duration,
    replaced: usize,
    elections: u64,
}

struct Settings {
    instances: usize,
    app_size: usize,
    per_process: usize,
    settle: Duration,
    window: Duration,
}

fn run(agents: usize, s: &Settings) -> Row {
    let mut c = Cluster::launch("bench-scale", 3);
    let leader_addr = c.wait_for_leader(ELECTION);
    let leader = c.id_of(&leader_addr);
    let masters = c
        .ids()
        .iter()
        .map(|&id| c.addr(id))
        .collect::<Vec<_>>()
        .join(",");
    let hz = clock_ticks();
    let cores = |ticks: u64, over: Duration| ticks as f64 / hz / over.as_secs_f64();

    // 1. Register.
    let started = Instant::now();
    let fleets = Fleets::start(c.dir(), &masters, agents, s.per_process);
    poll(&c, &fleets, &format!("{agents} agents are active"), || {
        let states = agent_states(&leader_addr)?;
        (states.get("active") == Some(&agents)).then_some(())
    });
    let register = started.elapsed();

    let term = |c: &Cluster| {
        c.ids()
            .into_iter()
            .filter_map(|id| c.health(id))
            .map(|h| h.term)
            .max()
            .unwrap_or(0)
    };
    let first_term = term(&c);

    // 2. Deploy with one follower stopped.
    let follower = c.a_follower(leader);
    c.kill(follower);
    let Some(leader_pid) = c.pid(leader) else {
        c.fail("the leader has no process id");
    };
    let ticks = cpu_ticks(leader_pid);
    let started = Instant::now();
    let apps = s.instances.div_ceil(s.app_size);
    for a in 0..apps {
        let n = s.app_size.min(s.instances - a * s.app_size);
        let app = json!({
            "id": format!("/scale/app-{a:04}"), "cmd": "exec sleep 100000", "instances": n,
            "cpus": 0.01, "mem": 1, "portDefinitions": [],
            "constraints": [["@zone", "GROUP_BY"]],
        });
        // PUT, retried until acknowledged: a leader change under load must not end the run.
        c.put_app_acked(leader, &app, LIMIT);
    }
    eprintln!(
        "deploy: all {apps} apps acknowledged after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let want = s.instances as u64;
    poll(&c, &fleets, &format!("{want} instances run"), || {
        let (n, idle) = running(&leader_addr)?;
        (n == want && idle).then_some(())
    });
    let deploy = started.elapsed();
    let deploy_cores = cores(cpu_ticks(leader_pid).saturating_sub(ticks), deploy);
    // An election under load moves the leader: the figures after it are the new leader's,
    // and the deploy's CPU covers the old one only (said, not hidden).
    let deploy_leader = leader;
    let leader_addr = c.wait_for_leader(ELECTION);
    let leader = c.id_of(&leader_addr);
    if leader != deploy_leader {
        eprintln!(
            "the leader moved from master {deploy_leader} to master {leader} during the deploy: the deploy's CPU figure is master {deploy_leader}'s alone"
        );
    }
    let Some(leader_pid) = c.pid(leader) else {
        c.fail("the leader has no process id");
    };

    // 3. The stopped follower comes back.
    let started = Instant::now();
    c.start(follower);
    c.wait_caught_up(follower, LIMIT);
    let back = started.elapsed();
    let snapshot = snapshot_bytes(&c.stderr(leader));

    // 4. At rest.
    std::thread::sleep(s.settle);
    let ticks = cpu_ticks(leader_pid);
    let started = Instant::now();
    std::thread::sleep(s.window);
    let rest_cores = cores(
        cpu_ticks(leader_pid).saturating_sub(ticks),
        started.elapsed(),
    );
    let rest_rss_mib = status_kb(leader_pid, "VmRSS").unwrap_or(0) as f64 / 1024.0;

    // 5. API latency, sequential, through the leader.
    let mut gets = Vec::new();
    for _ in 0..100 {
        let t = Instant::now();
        match http::request(&leader_addr, "GET", "/v2/apps", None, CALL) {
            Ok(r) if r.status == 200 => gets.push(t.elapsed()),
            other => c.fail(&format!("GET /v2/apps: {other:?}")),
        }
    }
    let mut posts = Vec::new();
    for i in 0..20 {
        let app = json!({"id": format!("/scale/latency-{i:02}"), "cmd": "sleep 1", "instances": 0,
            "cpus": 0.01, "mem": 1, "portDefinitions": []});
        let t = Instant::now();
        match http::request(&leader_addr, "POST", "/v2/apps", Some(&app), CALL) {
            Ok(r) if r.status == 201 => posts.push(t.elapsed()),
            other => c.fail(&format!("POST /v2/apps: {other:?}")),
        }
    }
    gets.sort();
    posts.sort();

    // 6. One agent lost.
    let Some(victim) = fleets.an_agent_with_tasks() else {
        c.fail("no agent of the first hollow process runs a task");
    };
    let started = Instant::now();
    fleets.crash(&victim);
    poll(
        &c,
        &fleets,
        "the lost agent's instances run elsewhere",
        || {
            let states = agent_states(&leader_addr)?;
            let (n, _) = running(&leader_addr)?;
            (states.get("unreachable") == Some(&1) && n == want).then_some(())
        },
    );
    let agent_lost = started.elapsed();

    // 7. A zone lost.
    let started = Instant::now();
    let zone_agents = fleets.crash_zone(LOST_ZONE);
    poll(
        &c,
        &fleets,
        "the lost zone's instances run elsewhere",
        || {
            let states = agent_states(&leader_addr)?;
            let (n, _) = running(&leader_addr)?;
            (states.get("unreachable") == Some(&(zone_agents + 1)) && n == want).then_some(())
        },
    );
    let zone_lost = started.elapsed();
    let live_agents = agents - zone_agents - 1;

    let elections = term(&c) - first_term;

    // 8. Leader SIGKILL: of the leader of the moment (an election since the deploy moved it).
    let rest_leader = leader;
    let now_leading = c.wait_for_leader(ELECTION);
    let leader = c.id_of(&now_leading);
    if leader != rest_leader {
        eprintln!(
            "the leader moved from master {rest_leader} to master {leader} after the at-rest window"
        );
    }
    let before = fleets.tasks();
    let others: Vec<String> = c
        .ids()
        .into_iter()
        .filter(|&id| id != leader)
        .map(|id| c.addr(id))
        .collect();
    let probe = json!({"id": "/scale/failover-probe", "cmd": "sleep 1", "instances": 0,
        "cpus": 0.01, "mem": 1, "portDefinitions": []});
    let started = Instant::now();
    c.kill(leader);
    let mut i = 0;
    poll(
        &c,
        &fleets,
        "a write is acknowledged after the failover",
        || {
            i += 1;
            let via = &others[i % others.len()];
            let r = http::request(
                via,
                "PUT",
                "/v2/apps/scale/failover-probe",
                Some(&probe),
                Duration::from_secs(5),
            )
            .ok()?;
            r.is_success().then_some(())
        },
    );
    let first_write = started.elapsed();
    let new_leader = c.wait_for_leader(ELECTION);
    poll(&c, &fleets, "every live agent is active again", || {
        let states = agent_states(&new_leader)?;
        (states.get("active") == Some(&live_agents)).then_some(())
    });
    let reregistered = started.elapsed();
    poll(
        &c,
        &fleets,
        "every instance runs after the failover",
        || {
            let (n, _) = running(&new_leader)?;
            (n == want).then_some(())
        },
    );
    let after = fleets.tasks();
    let replaced = before.difference(&after).count();
    drop(fleets);
    Row {
        agents,
        instances: s.instances,
        register,
        deploy,
        deploy_cores,
        back,
        snapshot,
        rest_cores,
        rest_rss_mib,
        get_ms: (percentile(&gets, 50), percentile(&gets, 99)),
        post_ms: (percentile(&posts, 50), percentile(&posts, 99)),
        agent_lost,
        zone_lost,
        zone_agents,
        first_write,
        reregistered,
        replaced,
        elections,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this without it: a smoke run.
    let benching = std::env::args().any(|a| a == "--bench");
    let env = |name: &str, bench: usize, smoke: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if benching { bench } else { smoke })
    };
    let sizes: Vec<usize> = match std::env::var("DROVER_BENCH_SIZES") {
        Ok(v) => v
            .split(',')
            .map(|n| {
                n.trim().parse().unwrap_or_else(|_| {
                    panic!("DROVER_BENCH_SIZES={v}: give agent counts, e.g. 1000,3000")
                })
            })
            .collect(),
        Err(_) if benching => vec![1000, 3000, 10000],
        Err(_) => vec![20],
    };
    let s = Settings {
        instances: env("DROVER_BENCH_INSTANCES", 100_000, 40),
        app_size: env("DROVER_BENCH_APP_SIZE", 1000, 10).max(1),
        per_process: env("DROVER_BENCH_PER_PROCESS", 2500, 10).max(1),
        settle: Duration::from_secs(env("DROVER_BENCH_SETTLE_S", 30, 1) as u64),
        window: Duration::from_secs(env("DROVER_BENCH_WINDOW_S", 60, 2).max(1) as u64),
    };
    let mut rows = Vec::new();
    for &n in &sizes {
        let row = run(n, &s);
        println!(
            "{} agents, {} instances: registered {:.1} s; deployed {:.1} s at {:.2} cores; master back {:.1} s (snapshot {}); at rest {:.3} cores, {:.0} MiB; GET /v2/apps p50 {:.1} ms p99 {:.1} ms; POST p50 {:.1} ms p99 {:.1} ms; agent lost {:.1} s; zone lost ({} agents) {:.1} s; leader SIGKILL: write {:.2} s, re-registered {:.1} s, {} replaced; {} elections before the SIGKILL",
            row.agents,
            row.instances,
            row.register.as_secs_f64(),
            row.deploy.as_secs_f64(),
            row.deploy_cores,
            row.back.as_secs_f64(),
            row.snapshot
                .map_or("?".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0)),
            row.rest_cores,
            row.rest_rss_mib,
            row.get_ms.0,
            row.get_ms.1,
            row.post_ms.0,
            row.post_ms.1,
            row.agent_lost.as_secs_f64(),
            row.zone_agents,
            row.zone_lost.as_secs_f64(),
            row.first_write.as_secs_f64(),
            row.reregistered.as_secs_f64(),
            row.replaced,
            row.elections,
        );
        rows.push(row);
    }
    println!();
    println!(
        "| agents | instances | register | deploy (leader CPU) | master back (snapshot) | at rest: leader CPU, RSS | GET /v2/apps p50/p99 | POST /v2/apps p50/p99 | agent lost | zone lost | leader SIGKILL: first write, all re-registered, replaced | elections before |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.1} s | {:.1} s ({:.2} cores) | {:.1} s ({}) | {:.3} cores, {:.0} MiB | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {:.1} s | {:.1} s | {:.2} s, {:.1} s, {} | {} |",
            r.agents,
            r.instances,
            r.register.as_secs_f64(),
            r.deploy.as_secs_f64(),
            r.deploy_cores,
            r.back.as_secs_f64(),
            r.snapshot
                .map_or("?".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0)),
            r.rest_cores,
            r.rest_rss_mib,
            r.get_ms.0,
            r.get_ms.1,
            r.post_ms.0,
            r.post_ms.1,
            r.agent_lost.as_secs_f64(),
            r.zone_lost.as_secs_f64(),
            r.first_write.as_secs_f64(),
            r.reregistered.as_secs_f64(),
            r.replaced,
            r.elections,
        );
    }
}
