//! Scheduling benchmark: how long 1,000 instances take to run, and how long the instances of
//! a SIGKILLed agent take to run elsewhere.
//!
//! Run with `cargo bench -p drover --bench scheduling` (the bench profile builds `drover`
//! optimized). `DROVER_BENCH_INSTANCES` sets the instance count (default 1000),
//! `DROVER_BENCH_TRIALS` the number of agent kills (default 3).
//!
//! One `drover master` and 20 `drover agent` processes on loopback (agents on 127.0.1.1–20,
//! five per zone `local-a`…`local-d`, each offering cpus 64, mem 65536), default settings
//! (agent heartbeat 1 s, unreachable after 5 s).
//!
//! (a) `POST /v2/apps` of one app with 1,000 instances (`cmd: "sleep 100000"`, cpus 0.01,
//!     mem 1, no ports) → time until `GET /v2/apps` reports `tasksRunning` = 1,000.
//! (b) SIGKILL of the agent with the most instances → time until every instance of the app
//!     is `TASK_RUNNING` on another agent (polled through `GET /v2/apps/{id}`); also when its
//!     instances left the app (the masters called the agent unreachable). The agent is then
//!     restarted (it kills its orphaned tasks) before the next trial.
//!
//! Every task process is killed at the end, also when the run fails.

#[path = "../tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../tests/agent_support/procs.rs"]
mod procs;
#[path = "support/wait.rs"]
mod wait;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, DROVER, ELECTION, domain_json, free_port, http, tail};
use serde_json::{Value, json};

const AGENTS: usize = 20;
const APP: &str = "/bench/sleepers";
/// How often the masters are asked; the figures are this precise.
const POLL: Duration = Duration::from_millis(50);
/// Give up (the run fails) after this long.
const LIMIT: Duration = Duration::from_secs(600);

/// The agents of the run; dropping them kills them and every task they started.
struct Agents {
    dir: PathBuf,
    procs: Vec<AgentProc>,
}

struct AgentProc {
    hostname: String,
    work_dir: PathBuf,
    child: Option<Child>,
    args: Vec<String>,
    log: PathBuf,
}

impl Agents {
    fn new(dir: &Path, masters: &str) -> Self {
        let procs = (1..=AGENTS)
            .map(|n| {
                let hostname = format!("bench-agent-{n:02}");
                let zone = format!("local-{}", ["a", "b", "c", "d"][(n - 1) % 4]);
                let work_dir = dir.join(&hostname);
                let ports = 40_000 + n * 10;
                let args = vec![
                    "agent".to_string(),
                    "--insecure".into(),
                    "--masters".into(),
                    masters.to_string(),
                    "--work-dir".into(),
                    work_dir.display().to_string(),
                    "--hostname".into(),
                    hostname.clone(),
                    "--advertise-ip".into(),
                    format!("127.0.1.{n}"),
                    "--listen".into(),
                    format!("127.0.0.1:{}", free_port()),
                    "--resources".into(),
                    format!("cpus:64;mem:65536;disk:10000;ports:[{ports}-{}]", ports + 9),
                    "--domain".into(),
                    domain_json("local", &zone),
                ];
                AgentProc {
                    log: dir.join(format!("{hostname}.log")),
                    hostname,
                    work_dir,
                    child: None,
                    args,
                }
            })
            .collect();
        Agents {
            dir: dir.to_path_buf(),
            procs,
        }
    }

    fn start(&mut self, i: usize) {
        let a = &mut self.procs[i];
        let log = File::options()
            .create(true)
            .append(true)
            .open(&a.log)
            .unwrap_or_else(|e| panic!("open {}: {e}", a.log.display()));
        let err = log.try_clone().expect("clone log file");
        let child = Command::new(DROVER)
            .args(&a.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {DROVER} agent {}: {e}", a.hostname));
        a.child = Some(child);
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn index_of(&self, hostname: &str) -> usize {
        self.procs
            .iter()
            .position(|a| a.hostname == hostname)
            .unwrap_or_else(|| panic!("no agent {hostname}"))
    }

    fn logs(&self) -> String {
        self.procs
            .iter()
            .map(|a| format!("\n--- {} ---\n{}", a.hostname, tail(&a.log, 10)))
            .collect()
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            self.kill(i);
        }
        let work_dirs: Vec<PathBuf> = self.procs.iter().map(|a| a.work_dir.clone()).collect();
        procs::kill_tasks_under(&self.dir, &work_dirs);
    }
}

/// Polls `f` until it returns `Some`, or fails the run after [`LIMIT`].
fn poll<T>(c: &Cluster, agents: &Agents, what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait::poll(c, LIMIT, POLL, what, || agents.logs(), f)
}

fn get(addr: &str, path: &str) -> Option<Value> {
    wait::get_json(addr, path, http::DEFAULT_TIMEOUT)
}

/// `tasksRunning` of the app, from the app list (no tasks embedded: cheap to ask).
fn tasks_running(addr: &str) -> Option<u64> {
    get(addr, "/v2/apps")?["apps"]
        .as_array()?
        .iter()
        .find(|a| a["id"] == APP)?["tasksRunning"]
        .as_u64()
}

/// (host, state) of every task of the app.
fn app_tasks(addr: &str) -> Option<Vec<(String, String)>> {
    let app = get(addr, &format!("/v2/apps{APP}"))?;
    Some(
        app["app"]["tasks"]
            .as_array()?
            .iter()
            .map(|t| {
                (
                    t["host"].as_str().unwrap_or_default().to_string(),
                    t["state"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect(),
    )
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this without it: a smoke run.
    let benching = std::env::args().any(|a| a == "--bench");
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let instances = env("DROVER_BENCH_INSTANCES", if benching { 1000 } else { 40 });
    let trials = env("DROVER_BENCH_TRIALS", if benching { 3 } else { 1 });

    let mut c = Cluster::launch("bench-scheduling", 1);
    let leader = c.wait_for_leader(ELECTION);
    let mut agents = Agents::new(c.dir(), &leader);
    for i in 0..AGENTS {
        agents.start(i);
    }
    poll(&c, &agents, "every agent is active", || {
        let nodes = get(&leader, "/v1/nodes")?;
        let active = nodes["nodes"]
            .as_array()?
            .iter()
            .filter(|n| n["type"] == "agent" && n["state"] == "active")
            .count();
        (active == AGENTS).then_some(())
    });

    // (a) 1,000 instances from POST to running.
    let app = json!({
        "id": APP, "cmd": "sleep 100000", "instances": instances,
        "cpus": 0.01, "mem": 1, "portDefinitions": [],
    });
    let posted = Instant::now();
    match http::post(&leader, "/v2/apps", &app) {
        Ok(r) if r.status == 201 => {}
        Ok(r) => c.fail(&format!("POST /v2/apps: {r}")),
        Err(e) => c.fail(&format!("POST /v2/apps: {e}")),
    }
    let what = format!("{instances} instances run");
    poll(&c, &agents, &what, || {
        (tasks_running(&leader)? == instances as u64).then_some(())
    });
    let start_time = posted.elapsed();
    let dir = c.dir().canonicalize().expect("bench dir");
    let dir = dir.display().to_string();
    let processes = procs::processes_where(|env| {
        env.get("MESOS_SANDBOX")
            .is_some_and(|s| s.starts_with(dir.as_str()))
    })
    .len();
    println!(
        "scheduling (1 master, {AGENTS} agents, default settings): POST /v2/apps of {instances} instances to tasksRunning = {instances}: {:.2} s ({processes} task processes)",
        start_time.as_secs_f64()
    );

    // (b) SIGKILL of an agent to all of its instances running elsewhere.
    let mut samples = Vec::new();
    for trial in 1..=trials {
        let before = poll(&c, &agents, "the app's tasks", || app_tasks(&leader));
        let mut per_host: BTreeMap<String, usize> = BTreeMap::new();
        for (host, _) in &before {
            *per_host.entry(host.clone()).or_default() += 1;
        }
        let (victim, lost) = per_host
            .iter()
            .max_by_key(|(h, n)| (**n, (*h).clone()))
            .map(|(h, n)| (h.clone(), *n))
            .expect("the app has tasks");
        let i = agents.index_of(&victim);

        let killed = Instant::now();
        agents.kill(i);
        let mut left_at = None;
        let what = format!("the {lost} instances of {victim} run elsewhere");
        poll(&c, &agents, &what, || {
            let ts = app_tasks(&leader)?;
            if left_at.is_none() && !ts.iter().any(|(h, _)| *h == victim) {
                left_at = Some(killed.elapsed());
            }
            let elsewhere = ts
                .iter()
                .filter(|(h, s)| *h != victim && s == "TASK_RUNNING")
                .count();
            (ts.len() == instances && elsewhere == instances).then_some(())
        });
        let replaced = killed.elapsed();
        let left = left_at.unwrap_or(replaced);
        println!(
            "trial {trial}: SIGKILL of {victim} ({lost} instances): gone from the app after {:.2} s, all running elsewhere after {:.2} s",
            left.as_secs_f64(),
            replaced.as_secs_f64()
        );
        samples.push((lost, left, replaced));

        // The agent returns and kills its orphans; wait until it is active again.
        agents.start(i);
        poll(&c, &agents, "the killed agent is active again", || {
            let nodes = get(&leader, "/v1/nodes")?;
            nodes["nodes"]
                .as_array()?
                .iter()
                .any(|n| n["hostname"] == victim.as_str() && n["state"] == "active")
                .then_some(())
        });
    }
    let secs: Vec<f64> = samples.iter().map(|s| s.2.as_secs_f64()).collect();
    let min = secs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = secs.iter().copied().fold(0.0, f64::max);
    let mean = secs.iter().sum::<f64>() / secs.len() as f64;
    println!(
        "agent SIGKILL to its instances running elsewhere ({} trials): min {min:.2} s  mean {mean:.2} s  max {max:.2} s",
        samples.len()
    );
    drop(agents);
}
