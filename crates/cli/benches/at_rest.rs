//! At-rest benchmark (issue 10): what the leader costs when nothing happens but heartbeats.
//!
//! Run with `cargo bench -p drover --bench at_rest` (the bench profile builds `drover`
//! optimized). Environment:
//! `DROVER_BENCH_AGENTS` agents (default 500), `DROVER_BENCH_INSTANCES` instances in all
//! (default 5,000), `DROVER_BENCH_APP_SIZE` instances per app (default 500),
//! `DROVER_BENCH_SETTLE_S` seconds to let things settle once everything runs (default 30),
//! `DROVER_BENCH_WINDOW_S` the measured window in seconds (default 60).
//!
//! One `drover master` and N `drover agent` processes on loopback with default settings
//! (agent heartbeat 1 s, assignment long poll 25 s). Each agent advertises its own address
//! (127.2.X.Y: the masters refuse a second live agent with the same IP) and serves its
//! status API on that address, so no port is taken per agent on 127.0.0.1; agents offer cpus
//! 64, mem 65536 and are spread over zones `local-a`…`local-d`. Apps of `exec sleep 100000`
//! (cpus 0.01, mem 1, no ports) are created until M instances exist; once every one is
//! `TASK_RUNNING` and no deployment is left, the run settles, then measures over the window:
//!
//! - the leader's CPU (utime + stime from `/proc/<pid>/stat`, in cores) and RSS;
//! - the agents' CPU, summed (what the fan-out costs the other side);
//! - assignment long polls the leader answered (`drover_assignment_polls_answered_total`,
//!   absent before issue 10's wake-up change) and Raft entries it applied
//!   (`drover_raft_commit_index`);
//! - the whole machine's busy CPU and load average, because the machine may be shared.
//!
//! `DROVER_BENCH_HOLLOW=1` runs the agents as one `drover hollow-agents N` process instead
//! (the same addresses, resources and zones; fake tasks, no task processes), so the leader
//! can be measured with thousands of agents; "agents' CPU" is then that one process.
//! `DROVER_BENCH_HOLLOW_CONNECTIONS=per-agent` gives each hollow agent its own connections,
//! as agent processes have, instead of the fleet's shared pool.
//!
//! `cargo test --benches` runs it without `--bench`: a smoke run with 4 agents, 8 instances,
//! a 2 s window. Every agent and task process is killed at the end, also when the run fails.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/measure.rs"]
mod measure;
#[allow(dead_code)]
#[path = "../tests/agent_support/procs.rs"]
mod procs;
#[path = "support/wait.rs"]
mod wait;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, DROVER, ELECTION, domain_json, http, tail};
use measure::{clock_ticks, cpu_ticks, loadavg, machine_ticks, status_kb};
use serde_json::{Value, json};

/// How often the masters are asked while waiting.
const POLL: Duration = Duration::from_millis(500);
/// Give up (the run fails) when starting agents or instances takes longer than this.
const LIMIT: Duration = Duration::from_secs(1200);
/// The port of every agent's status API, on the agent's own address.
const AGENT_STATUS_PORT: u16 = 5051;
/// Addresses per third octet of the agents' 127.2.X.Y addresses.
const PER_OCTET: usize = 250;

/// The agent processes of the run; dropping them kills them and every task they started.
struct Fleet {
    dir: PathBuf,
    agents: Vec<FleetAgent>,
}

struct FleetAgent {
    hostname: String,
    work_dir: PathBuf,
    log: PathBuf,
    child: Child,
}

impl Fleet {
    /// Starts `n` agents that register with `masters`.
    fn start(dir: &Path, masters: &str, n: usize) -> Self {
        let mut fleet = Fleet {
            dir: dir.to_path_buf(),
            agents: Vec::with_capacity(n),
        };
        for i in 0..n {
            let hostname = format!("rest-agent-{:03}", i + 1);
            let ip = format!("127.2.{}.{}", i / PER_OCTET, 1 + i % PER_OCTET);
            let zone = format!("local-{}", ["a", "b", "c", "d"][i % 4]);
            let work_dir = dir.join(&hostname);
            let log = dir.join(format!("{hostname}.log"));
            let out =
                File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
            let err = out
                .try_clone()
                .unwrap_or_else(|e| panic!("clone {}: {e}", log.display()));
            let child = Command::new(DROVER)
                .arg("agent")
                .arg("--insecure")
                .arg("--masters")
                .arg(masters)
                .arg("--work-dir")
                .arg(&work_dir)
                .arg("--hostname")
                .arg(&hostname)
                .arg("--advertise-ip")
                .arg(&ip)
                .arg("--listen")
                .arg(format!("{ip}:{AGENT_STATUS_PORT}"))
                .arg("--resources")
                .arg("cpus:64;mem:65536;disk:10000;ports:[31000-31009]")
                .arg("--domain")
                .arg(domain_json("local", &zone))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("spawn agent {hostname} (agent {i} of {n}; check `ulimit -u`): {e}")
                });
            fleet.agents.push(FleetAgent {
                hostname,
                work_dir,
                log,
                child,
            });
        }
        fleet
    }

    /// Starts `n` hollow agents in one `drover hollow-agents` process, as [`Fleet::start`]
    /// would (the same resources and zones; addresses counting up from 127.2.0.1).
    fn start_hollow(dir: &Path, masters: &str, n: usize) -> Self {
        let hostname = "hollow-agents".to_string();
        let work_dir = dir.join("hollow");
        let log = dir.join("hollow-agents.log");
        let out = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("clone {}: {e}", log.display()));
        let child = Command::new(DROVER)
            .arg("hollow-agents")
            .arg("--insecure")
            .arg(n.to_string())
            .arg("--masters")
            .arg(masters)
            .arg("--work-dir")
            .arg(&work_dir)
            .args(["--hostname-prefix", "rest-agent"])
            .args(["--first-ip", "127.2.0.1"])
            .args(["--regions", "local", "--zones", "4"])
            .args(["--control", "127.0.0.1:0"])
            .args(
                std::env::var("DROVER_BENCH_HOLLOW_CONNECTIONS")
                    .is_ok_and(|v| v == "per-agent")
                    .then_some("--connections-per-agent"),
            )
            .arg("--resources")
            .arg("cpus:64;mem:65536;disk:10000;ports:[31000-31009]")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {DROVER} hollow-agents {n}: {e}"));
        Fleet {
            dir: dir.to_path_buf(),
            agents: vec![FleetAgent {
                hostname,
                work_dir,
                log,
                child,
            }],
        }
    }

    /// Log tails of the first few agents that exited, or of the first agents.
    fn logs(&mut self) -> String {
        let exited: Vec<usize> = (0..self.agents.len())
            .filter(|&i| matches!(self.agents[i].child.try_wait(), Ok(Some(_))))
            .take(3)
            .collect();
        let shown = if exited.is_empty() {
            (0..self.agents.len().min(3)).collect()
        } else {
            exited
        };
        shown
            .iter()
            .map(|&i| {
                let a = &self.agents[i];
                format!("\n--- {} ---\n{}", a.hostname, tail(&a.log, 10))
            })
            .collect()
    }

    /// Process ids of the agents.
    fn pids(&self) -> Vec<u32> {
        self.agents.iter().map(|a| a.child.id()).collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for a in &mut self.agents {
            let _ = a.child.kill();
            let _ = a.child.wait();
        }
        let work_dirs: Vec<PathBuf> = self.agents.iter().map(|a| a.work_dir.clone()).collect();
        procs::kill_tasks_under(&self.dir, &work_dirs);
    }
}

/// Polls `f` until it returns `Some`, or fails the run after [`LIMIT`].
fn poll<T>(c: &Cluster, fleet: &mut Fleet, what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait::poll(c, LIMIT, POLL, what, || fleet.logs(), f)
}

fn get(addr: &str, path: &str) -> Option<Value> {
    wait::get_json(addr, path, Duration::from_secs(30))
}

/// What is read at each end of the window.
struct Reading {
    at: Instant,
    leader_ticks: u64,
    agent_ticks: u64,
    machine: (u64, u64),
    polls: Option<f64>,
    applied: Option<f64>,
}

fn read(c: &Cluster, leader: u32, leader_pid: u32, agent_pids: &[u32]) -> Reading {
    Reading {
        at: Instant::now(),
        leader_ticks: cpu_ticks(leader_pid),
        agent_ticks: agent_pids.iter().map(|&p| cpu_ticks(p)).sum(),
        machine: machine_ticks(),
        polls: c.metric(leader, "drover_assignment_polls_answered_total"),
        applied: c.metric(leader, "drover_raft_commit_index"),
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
    let agents_n = env("DROVER_BENCH_AGENTS", 500, 4);
    let instances = env("DROVER_BENCH_INSTANCES", 5000, 8);
    let app_size = env("DROVER_BENCH_APP_SIZE", 500, 4).max(1);
    let settle = Duration::from_secs(env("DROVER_BENCH_SETTLE_S", 30, 1) as u64);
    let window = Duration::from_secs(env("DROVER_BENCH_WINDOW_S", 60, 2).max(1) as u64);
    if agents_n > 250 * PER_OCTET {
        panic!(
            "DROVER_BENCH_AGENTS={agents_n}: at most {} agents",
            250 * PER_OCTET
        );
    }

    let mut c = Cluster::launch("bench-at-rest", 1);
    let leader_addr = c.wait_for_leader(ELECTION);
    let leader = c.id_of(&leader_addr);
    let Some(leader_pid) = c.pid(leader) else {
        c.fail("the leader has no process id");
    };
    let hollow = std::env::var("DROVER_BENCH_HOLLOW").is_ok_and(|v| v == "1");
    let mut fleet = if hollow {
        Fleet::start_hollow(c.dir(), &leader_addr, agents_n)
    } else {
        Fleet::start(c.dir(), &leader_addr, agents_n)
    };
    let what = format!("all {agents_n} agents are active");
    poll(&c, &mut fleet, &what, || {
        let nodes = get(&leader_addr, "/v1/nodes")?;
        let active = nodes["nodes"]
            .as_array()?
            .iter()
            .filter(|n| n["type"] == "agent" && n["state"] == "active")
            .count();
        (active == agents_n).then_some(())
    });

    let apps = instances.div_ceil(app_size);
    for a in 0..apps {
        let n = app_size.min(instances - a * app_size);
        let app = json!({
            "id": format!("/rest/sleepers-{a:03}"), "cmd": "exec sleep 100000", "instances": n,
            "cpus": 0.01, "mem": 1, "portDefinitions": [],
        });
        match http::post(&leader_addr, "/v2/apps", &app) {
            Ok(r) if r.status == 201 => {}
            Ok(r) => c.fail(&format!("POST /v2/apps: {r}")),
            Err(e) => c.fail(&format!("POST /v2/apps: {e}")),
        }
    }
    let what = format!("{instances} instances of {apps} apps run and no deployment is left");
    let started = Instant::now();
    poll(&c, &mut fleet, &what, || {
        let list = get(&leader_addr, "/v2/apps")?;
        let running: u64 = list["apps"]
            .as_array()?
            .iter()
            .filter_map(|a| a["tasksRunning"].as_u64())
            .sum();
        let deployments = get(&leader_addr, "/v2/deployments")?;
        (running == instances as u64 && deployments.as_array()?.is_empty()).then_some(())
    });
    let start_time = started.elapsed();
    std::thread::sleep(settle);

    let agent_pids = fleet.pids();
    let before = read(&c, leader, leader_pid, &agent_pids);
    let rss_before = status_kb(leader_pid, "VmRSS");
    let load_before = loadavg();
    std::thread::sleep(window);
    let after = read(&c, leader, leader_pid, &agent_pids);
    let rss = status_kb(leader_pid, "VmRSS");
    let hwm = status_kb(leader_pid, "VmHWM");
    let agents_rss: u64 = agent_pids
        .iter()
        .filter_map(|&p| status_kb(p, "VmRSS"))
        .sum();
    let load_after = loadavg();

    let secs = after.at.duration_since(before.at).as_secs_f64();
    let hz = clock_ticks();
    let cores = |ticks: u64| ticks as f64 / hz / secs;
    let leader_cores = cores(after.leader_ticks.saturating_sub(before.leader_ticks));
    let agent_cores = cores(after.agent_ticks.saturating_sub(before.agent_ticks));
    let (busy, total) = (
        after.machine.0.saturating_sub(before.machine.0),
        after.machine.1.saturating_sub(before.machine.1),
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let machine_cores = if total == 0 {
        0.0
    } else {
        busy as f64 / total as f64 * cpus as f64
    };
    let delta = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let polls = delta(before.polls, after.polls);
    let applied = delta(before.applied, after.applied);
    let mib = |kb: Option<u64>| {
        kb.map_or("?".to_string(), |kb| {
            format!("{:.1} MiB", kb as f64 / 1024.0)
        })
    };
    let per_s = |n: Option<f64>, what: &str| match n {
        Some(n) => format!("{n:.0} ({:.1}/s)", n / secs),
        None => format!("not exported ({what})"),
    };
    let polls_text = per_s(
        polls,
        "no drover_assignment_polls_answered_total on /metrics",
    );

    println!(
        "at rest: 1 master, {agents_n} {} agents, {instances} instances in {apps} apps (all running after {:.1} s), settled {} s, measured over {secs:.1} s",
        if hollow {
            "hollow (one drover hollow-agents process)"
        } else {
            "process"
        },
        start_time.as_secs_f64(),
        settle.as_secs()
    );
    let rows = [
        ("leader CPU", format!("{leader_cores:.3} cores")),
        (
            "leader RSS",
            format!(
                "{} (start of window {}, peak {})",
                mib(rss),
                mib(rss_before),
                mib(hwm)
            ),
        ),
        (
            "agents' CPU, summed",
            format!(
                "{agent_cores:.3} cores ({:.4} per agent)",
                agent_cores / agents_n.max(1) as f64
            ),
        ),
        ("agents' RSS, summed", mib(Some(agents_rss))),
        ("assignment polls answered", polls_text),
        (
            "Raft entries applied",
            per_s(applied, "no drover_raft_commit_index"),
        ),
        (
            "machine busy",
            format!("{machine_cores:.2} of {cpus} cores"),
        ),
        ("load average", format!("{load_before} -> {load_after}")),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("  {k:<width$}  {v}");
    }
    drop(fleet);
}
