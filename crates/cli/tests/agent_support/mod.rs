//! Agents for the cross-process tests: real `drover agent` processes next to the masters of
//! a [`Cluster`], each on its own loopback address (127.0.1.N), port list and work dir.
//!
//! A [`Site`] owns masters and agents. Tests SIGKILL, pause and restart agents, read their
//! task checkpoints and `/proc` to find the task processes, and ask the masters what they
//! see. Every wait polls until a deadline and then panics with what it waited for and the
//! tails of every master's and agent's logs. Dropping a site kills every agent and every
//! task process group the agents started (agents never stop their tasks themselves: tasks
//! outlive agents by design), then the masters.
#![allow(dead_code)]

pub mod events;
pub mod fake_master;
pub mod http_stub;
pub mod procs;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use client::{AgentNode, App, AppEnvelope, Deployment, Node, NodeState, Nodes};
use serde_json::Value;

use crate::common::{
    Cluster, DROVER, domain_json, drover_command, free_port, http, strip_ansi, tail,
};
use procs::{Checkpoint, TaskProcess};

/// Writes an executable shell script `name` into `dir`.
pub fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n"))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
    path
}

/// The agent id an agent keeps in its work dir.
pub fn agent_id(work_dir: &Path) -> String {
    fs::read_to_string(work_dir.join("agent-id"))
        .unwrap_or_else(|e| panic!("read {}/agent-id: {e}", work_dir.display()))
        .trim()
        .to_string()
}

/// Bound for an agent to register, or a task to start, once the masters have a leader: a
/// liveness bound for a loaded 2-core machine, not a performance assertion.
pub const SETTLE: Duration = Duration::from_secs(60);

/// How often waits poll.
const POLL: Duration = Duration::from_millis(100);

/// Lines of each log shown when a wait fails.
const TAIL_LINES: usize = 30;

/// Timeout of one probe of a master's API.
const PROBE: Duration = Duration::from_secs(8);

/// Where an agent gets its fault domain.
#[derive(Debug, Clone)]
pub enum DomainSource {
    /// `--domain JSON`.
    Json(String),
    /// `--fault-domain-detect PATH`.
    Script(PathBuf),
}

/// One `drover agent` process of a [`Site`] (restartable: its work dir stays).
#[derive(Debug)]
pub struct Agent {
    /// `--hostname`.
    pub hostname: String,
    /// `--advertise-ip`, 127.0.1.N.
    pub ip: String,
    /// `--work-dir`.
    pub work_dir: PathBuf,
    /// `--listen` of its status API (`/health`, `/state`).
    pub listen: String,
    /// The host ports it offers (`--resources ports:[…]`), each free when chosen.
    pub ports: Vec<u16>,
    /// Its fault domain.
    pub domain: DomainSource,
    /// `--masters`.
    pub masters: String,
    /// `--resources` instead of the default (which offers `disk:10000` and [`Agent::ports`]).
    pub resources: Option<String>,
    /// More arguments.
    pub extra_args: Vec<String>,
    /// More environment variables (for detect scripts).
    pub env: Vec<(String, String)>,
    /// The network namespace it runs in (`None`: the test's own).
    pub netns: Option<String>,
    stdout: PathBuf,
    stderr: PathBuf,
    child: Option<Child>,
    paused: bool,
    starts: u32,
    last_exit: Option<ExitStatus>,
}

impl Agent {
    /// The command line that starts it.
    pub fn command(&self) -> Command {
        let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
        let mut cmd = drover_command(self.netns.as_deref());
        cmd.arg("agent")
            .arg("--insecure")
            .arg("--masters")
            .arg(&self.masters)
            .arg("--work-dir")
            .arg(&self.work_dir)
            .arg("--hostname")
            .arg(&self.hostname)
            .arg("--advertise-ip")
            .arg(&self.ip)
            .arg("--listen")
            .arg(&self.listen)
            .arg("--resources")
            .arg(self.resources.clone().unwrap_or_else(|| {
                format!("cpus:4;mem:4096;disk:10000;ports:[{}]", ports.join(","))
            }));
        match &self.domain {
            DomainSource::Json(json) => cmd.arg("--domain").arg(json),
            DomainSource::Script(path) => cmd.arg("--fault-domain-detect").arg(path),
        };
        cmd.args(&self.extra_args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_BACKTRACE", "1");
        cmd
    }

    /// Its stderr, all starts (where it logs).
    pub fn stderr(&self) -> String {
        strip_ansi(&fs::read_to_string(&self.stderr).unwrap_or_default())
    }

    /// Its task checkpoints, sorted by instance id.
    pub fn checkpoints(&self) -> Vec<Checkpoint> {
        procs::checkpoints(&self.work_dir)
    }

    /// Instance id → process of every task that has a checkpoint, a process and no end yet.
    pub fn task_processes(&self) -> BTreeMap<String, TaskProcess> {
        self.checkpoints()
            .into_iter()
            .filter(|cp| cp.terminal.is_none())
            .filter_map(|cp| Some((cp.instance_id, cp.process?)))
            .collect()
    }

    /// `GET /health` of its status API, if it answers. A `Value`: the agent's own status
    /// API is not part of the master's API, and `client` has no type for it.
    pub fn health(&self) -> Option<Value> {
        let r = http::request(&self.listen, "GET", "/health", None, PROBE).ok()?;
        (r.status == 200).then_some(r.body_json)
    }

    /// The pid of the agent process, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// Masters and agents of one test, on loopback.
pub struct Site {
    /// The masters (and the test's temp dir, which holds the agents' dirs too).
    pub masters: Cluster,
    agents: Vec<Agent>,
    /// Things to show with the logs when a wait fails (e.g. a fake master's record).
    pub notes: Vec<Box<dyn Fn() -> String>>,
}

impl Site {
    /// A site with `n` masters (0 for tests with a fake master), none started.
    pub fn new(name: &str, n: u32) -> Self {
        Site {
            masters: Cluster::new(name, n),
            agents: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The per-test directory.
    pub fn dir(&self) -> &Path {
        self.masters.dir()
    }

    /// `HOST:PORT,…` of every master, for `--masters` of agents.
    pub fn master_list(&self) -> String {
        self.masters
            .ids()
            .iter()
            .map(|&id| self.masters.addr(id))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts the masters and waits for a leader.
    pub fn start_masters(&mut self) {
        self.masters.start_all();
        self.masters.wait_for_leader(SETTLE);
    }

    /// Adds (does not start) an agent `hostname` in `region`/`zone` with the next address
    /// 127.0.1.N, four free ports and its own work dir; returns its index.
    pub fn add_agent(&mut self, hostname: &str, region: &str, zone: &str) -> usize {
        self.add_agent_with(hostname, DomainSource::Json(domain_json(region, zone)))
    }

    /// Like [`Site::add_agent`], with the fault domain from `domain`.
    pub fn add_agent_with(&mut self, hostname: &str, domain: DomainSource) -> usize {
        let i = self.agents.len();
        let dir = self.dir().to_path_buf();
        let agent = Agent {
            hostname: hostname.to_string(),
            ip: format!("127.0.1.{}", i + 1),
            work_dir: dir.join(format!("agent-{hostname}")),
            listen: format!("127.0.0.1:{}", free_port()),
            ports: (0..4).map(|_| free_port()).collect(),
            domain,
            masters: self.master_list(),
            resources: None,
            extra_args: Vec::new(),
            env: Vec::new(),
            netns: None,
            stdout: dir.join(format!("agent-{hostname}.stdout")),
            stderr: dir.join(format!("agent-{hostname}.stderr")),
            child: None,
            paused: false,
            starts: 0,
            last_exit: None,
        };
        self.agents.push(agent);
        i
    }

    /// Agent `i`.
    pub fn agent(&self, i: usize) -> &Agent {
        &self.agents[i]
    }

    /// Agent `i`, to change its flags before a start.
    pub fn agent_mut(&mut self, i: usize) -> &mut Agent {
        &mut self.agents[i]
    }

    /// Starts agent `i`; its output is appended to its log files.
    pub fn start_agent(&mut self, i: usize) {
        assert!(!self.agent_running(i), "agent {i} is already running");
        let a = &mut self.agents[i];
        a.starts += 1;
        let open = |path: &Path, starts: u32, host: &str| {
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
            let _ = writeln!(
                f,
                "===== drover-tests: start #{starts} of agent {host} ====="
            );
            f
        };
        let out = open(&a.stdout, a.starts, &a.hostname);
        let err = open(&a.stderr, a.starts, &a.hostname);
        let child = a
            .command()
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {DROVER} agent {}: {e}", a.hostname));
        a.child = Some(child);
        a.paused = false;
        a.last_exit = None;
    }

    /// SIGKILLs agent `i` and reaps it (its tasks keep running). Nothing when it is not running.
    pub fn kill_agent(&mut self, i: usize) {
        let a = &mut self.agents[i];
        if let Some(mut child) = a.child.take() {
            let _ = child.kill();
            a.last_exit = child.wait().ok();
        }
        a.paused = false;
    }

    /// True while agent `i`'s process runs (or is stopped).
    pub fn agent_running(&mut self, i: usize) -> bool {
        let a = &mut self.agents[i];
        match a.child.as_mut() {
            None => false,
            Some(child) => match child.try_wait() {
                Ok(None) => true,
                Ok(Some(status)) => {
                    a.last_exit = Some(status);
                    a.child = None;
                    false
                }
                Err(_) => false,
            },
        }
    }

    /// Waits until agent `i` exits by itself; returns its status.
    #[track_caller]
    pub fn wait_agent_exit(&mut self, i: usize, timeout: Duration) -> ExitStatus {
        let what = format!("agent {} exits", self.agents[i].hostname);
        self.wait_until(timeout, &what, |s| !s.agent_running(i));
        self.agents[i]
            .last_exit
            .unwrap_or_else(|| self.fail(&format!("agent {i} exited without a status")))
    }

    /// `GET path` through the first master that gives a non-5xx answer.
    pub fn get(&mut self, path: &str) -> Option<http::Response> {
        for id in self.masters.live_ids() {
            let addr = self.masters.addr(id);
            if let Ok(r) = http::request(&addr, "GET", path, None, PROBE)
                && r.status < 500
            {
                return Some(r);
            }
        }
        None
    }

    /// `GET /v1/nodes` → the node whose hostname is agent `i`'s.
    pub fn agent_node(&mut self, i: usize) -> Option<AgentNode> {
        let host = self.agents[i].hostname.clone();
        let r = self.get("/v1/nodes").filter(|r| r.status == 200)?;
        r.typed::<Nodes>().nodes.into_iter().find_map(|n| match n {
            Node::Agent(a) if a.hostname == host => Some(a),
            _ => None,
        })
    }

    /// Waits until the masters list agent `i` as active; returns its node.
    #[track_caller]
    pub fn wait_agent_active(&mut self, i: usize) -> AgentNode {
        let what = format!(
            "the masters list agent {} as active in /v1/nodes",
            self.agents[i].hostname
        );
        self.wait_for(SETTLE, &what, |s| {
            s.agent_node(i).filter(|n| n.state == NodeState::Active)
        })
    }

    /// Starts agent `i` and waits until it is active.
    #[track_caller]
    pub fn start_agent_active(&mut self, i: usize) -> AgentNode {
        self.start_agent(i);
        self.wait_agent_active(i)
    }

    /// `POST /v2/apps` through any master, retried on 5xx until `SETTLE`; panics on a 4xx.
    #[track_caller]
    pub fn create_app(&mut self, app: &Value) {
        let what = format!("POST /v2/apps {} is accepted", app["id"]);
        let mut last = String::new();
        let deadline = Instant::now() + SETTLE;
        loop {
            for id in self.masters.live_ids() {
                match http::post(&self.masters.addr(id), "/v2/apps", app) {
                    Ok(r) if r.status == 201 => return,
                    Ok(r) if r.status < 500 => self.fail(&format!("{what}: refused with {r}")),
                    Ok(r) => last = r.to_string(),
                    Err(e) => last = e.to_string(),
                }
            }
            if Instant::now() >= deadline {
                self.fail(&format!("timed out: {what}; last answer {last}"));
            }
            std::thread::sleep(POLL);
        }
    }

    /// `PUT /v2/apps{id}` through any master, retried on 5xx until `SETTLE`.
    #[track_caller]
    /// `PUT /v2/apps{id}` once no deployment holds the app, as an operator waits before
    /// changing it (a PUT during a deployment is refused with 409, as Marathon refuses it).
    pub fn put_app(&mut self, app: &Value) {
        let id = app["id"].as_str().expect("app has an id").to_string();
        self.wait_for(SETTLE, &format!("no deployment holds {id}"), |s| {
            let r = s.get("/v2/deployments").filter(|r| r.status == 200)?;
            let held = r
                .typed::<Vec<Deployment>>()
                .iter()
                .any(|d| d.affected_apps.contains(&id));
            (!held).then_some(())
        });
        let Some(&via) = self.masters.live_ids().first() else {
            self.fail("PUT of an app: no master is running");
        };
        self.masters.put_app_acked(via, app, SETTLE);
    }

    /// `GET /v2/apps{id}` → the app (with `tasks`), if it answers 200.
    pub fn app(&mut self, id: &str) -> Option<App> {
        let r = self.get(&format!("/v2/apps{id}"))?;
        (r.status == 200).then(|| r.typed::<AppEnvelope>().app)
    }

    /// Waits until app `id` has exactly `n` tasks, all `TASK_RUNNING`, each with a live
    /// process on its agent; returns the app.
    #[track_caller]
    pub fn wait_running(&mut self, id: &str, n: usize) -> App {
        let what = format!("app {id} has {n} task(s), all TASK_RUNNING with a live process");
        self.wait_for(SETTLE, &what, |s| {
            let app = s.app(id)?;
            let tasks = app.tasks.as_deref()?;
            let running = tasks.len() == n
                && tasks.iter().all(|t| {
                    t.state == "TASK_RUNNING" && s.task_process(&t.id).is_some_and(|p| p.is_alive())
                });
            running.then_some(app)
        })
    }

    /// The process of task `instance_id` on whichever agent has its checkpoint.
    pub fn task_process(&self, instance_id: &str) -> Option<TaskProcess> {
        self.agents
            .iter()
            .find_map(|a| a.task_processes().get(instance_id).copied())
    }

    /// The index of the agent with hostname `host`.
    pub fn agent_by_host(&self, host: &str) -> usize {
        self.agents
            .iter()
            .position(|a| a.hostname == host)
            .unwrap_or_else(|| self.fail(&format!("no agent has hostname {host}")))
    }

    /// Runs `drover` with `args` to its exit; returns status, stdout and stderr.
    pub fn run_drover(&self, args: &[&str]) -> (ExitStatus, String, String) {
        let mut cmd = Command::new(DROVER);
        cmd.args(args);
        crate::common::run_to_exit(cmd, Duration::from_secs(60))
    }

    /// Tails of every master's and agent's logs, and the notes.
    pub fn logs(&self) -> String {
        let mut out = self.masters.logs();
        for a in &self.agents {
            let state = match (&a.child, a.paused, a.last_exit) {
                (Some(_), true, _) => "stopped (SIGSTOP)".to_string(),
                (Some(c), false, _) => format!("running, pid {}", c.id()),
                (None, _, Some(status)) => format!("exited: {status}"),
                (None, _, None) => "not running".to_string(),
            };
            let tasks: Vec<String> = a
                .checkpoints()
                .iter()
                .map(|cp| {
                    format!(
                        "{} pid {:?} alive {} ended {}",
                        cp.instance_id,
                        cp.process.map(|p| p.pid),
                        cp.process.is_some_and(|p| p.is_alive()),
                        cp.terminal.is_some()
                    )
                })
                .collect();
            out.push_str(&format!(
                "\n===== agent {} {} ({state}); checkpoints: [{}]\n--- stdout tail\n{}\n--- stderr tail\n{}\n",
                a.hostname,
                a.ip,
                tasks.join("; "),
                tail(&a.stdout, TAIL_LINES),
                tail(&a.stderr, TAIL_LINES)
            ));
        }
        for note in &self.notes {
            out.push_str(&note());
        }
        out
    }

    /// Panics with `msg` and every log tail.
    #[track_caller]
    pub fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\n{}", self.logs())
    }

    /// Polls `cond` until true; on timeout panics naming `what`, with every log tail.
    #[track_caller]
    pub fn wait_until(
        &mut self,
        timeout: Duration,
        what: &str,
        mut cond: impl FnMut(&mut Self) -> bool,
    ) {
        self.wait_for(timeout, what, |s| cond(s).then_some(()));
    }

    /// Polls `f` until it returns `Some`; on timeout panics naming `what`, with every log tail.
    #[track_caller]
    pub fn wait_for<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut(&mut Self) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(t) = f(self) {
                return t;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("timed out after {timeout:?} waiting until {what}"));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Sends `SIG{sig}` to agent `i`'s process.
    pub fn signal_agent(&self, i: usize, sig: &str) {
        let Some(pid) = self.agents[i].pid() else {
            self.fail(&format!("agent {i} is not running; cannot send SIG{sig}"));
        };
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap_or_else(|e| panic!("run kill -{sig} {pid}: {e}"));
        assert!(status.success(), "kill -{sig} {pid} failed: {status}");
    }

    /// SIGSTOPs agent `i`.
    pub fn pause_agent(&mut self, i: usize) {
        self.signal_agent(i, "STOP");
        self.agents[i].paused = true;
    }

    /// SIGCONTs agent `i`.
    pub fn resume_agent(&mut self, i: usize) {
        self.signal_agent(i, "CONT");
        self.agents[i].paused = false;
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        for a in &mut self.agents {
            if let Some(mut child) = a.child.take() {
                if a.paused {
                    let _ = Command::new("kill")
                        .arg("-CONT")
                        .arg(child.id().to_string())
                        .status();
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let work_dirs: Vec<PathBuf> = self.agents.iter().map(|a| a.work_dir.clone()).collect();
        procs::kill_tasks_under(self.masters.dir(), &work_dirs);
        if std::thread::panicking() {
            eprintln!("agent logs of the failed test: {}", self.dir().display());
        }
        // The masters (and the temp dir) go when `self.masters` drops, after this.
    }
}
