//! Runs the real `drover` binary for the CLI tests and reads what it printed: one-shot runs
//! ([`Run`]), a long-running `drover events` ([`Follower`]), and a small live cluster to run
//! them against ([`CliCluster`]: one master and three agents in two regions).
#![allow(dead_code)]

use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use client::{Node, Nodes};
use serde_json::Value;

use crate::agent_support::{SETTLE, Site};
use crate::common::{DROVER, run_to_exit};

/// Bound for one CLI run. `--wait` runs are given `--timeout` (see [`WAIT`]) well below it,
/// so that the CLI's own message, not this kill, ends a stuck deployment.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// `--timeout` for `--wait` runs: a liveness bound for a loaded 2-core machine.
pub const WAIT: &str = "180";

/// One finished run of the binary.
pub struct Run {
    /// The arguments, for messages.
    pub args: Vec<String>,
    /// How it exited.
    pub status: ExitStatus,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

impl Run {
    /// True when it exited 0.
    pub fn ok(&self) -> bool {
        self.status.success()
    }

    /// Its exit code (None when a signal ended it).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Its stdout parsed as JSON; panics with the run when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }

    /// Its stdout (the `--json` output) as the API type `T`; panics with the run when it
    /// is not JSON of that shape.
    #[track_caller]
    pub fn typed<T: serde::de::DeserializeOwned>(&self) -> T {
        client::decode(&format!("drover {}", self.args.join(" ")), self.json())
            .unwrap_or_else(|e| panic!("{e}:\n{self}"))
    }

    /// Its stdout as `T` when it exited 0, None otherwise (for polls); JSON of another
    /// shape after exit 0 panics, since waiting cannot fix it.
    #[track_caller]
    pub fn typed_ok<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        self.ok().then(|| self.typed())
    }

    /// Its stdout as JSON when it exited 0 and printed JSON.
    pub fn json_ok(&self) -> Option<Value> {
        self.ok()
            .then(|| serde_json::from_str(&self.stdout).ok())
            .flatten()
    }

    /// Its stdout as table rows: each line split on whitespace, empty lines left out.
    pub fn rows(&self) -> Vec<Vec<String>> {
        self.stdout
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .filter(|r| !r.is_empty())
            .collect()
    }

    /// The rows of its stdout whose first cell is `first`.
    pub fn rows_starting(&self, first: &str) -> Vec<Vec<String>> {
        self.rows()
            .into_iter()
            .filter(|r| r.first().is_some_and(|c| c == first))
            .collect()
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "$ drover {}\n--- exit: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.args.join(" "),
            self.status,
            self.stdout,
            self.stderr
        )
    }
}

/// Runs `drover args` to its exit, with `DROVER_MASTER` unset unless `env` sets it.
pub fn drover_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(DROVER);
    cmd.args(args).env_remove("DROVER_MASTER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (status, stdout, stderr) = run_to_exit(cmd, RUN_LIMIT);
    Run {
        args: args.iter().map(|a| a.to_string()).collect(),
        status,
        stdout,
        stderr,
    }
}

/// Runs `drover args` to its exit.
pub fn drover(args: &[&str]) -> Run {
    drover_env(args, &[])
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// Writes `value` as JSON to `dir/name` and returns the path as a string (for arguments).
pub fn write_json(dir: &Path, name: &str, value: &Value) -> String {
    let text = serde_json::to_string_pretty(value).expect("JSON serializes");
    write_file(dir, name, &text).display().to_string()
}

/// A `drover` process that keeps running (e.g. `drover events`): its stdout lines arrive on
/// a channel; it is killed and reaped on drop, so no test leaks it.
pub struct Follower {
    child: Child,
    lines: Receiver<String>,
    reader: Option<JoinHandle<()>>,
    stderr: PathBuf,
}

impl Follower {
    /// Starts `drover args`; its stderr goes to `dir/follower.stderr`.
    pub fn spawn(dir: &Path, args: &[&str]) -> Self {
        let stderr = dir.join("follower.stderr");
        let err = fs::File::create(&stderr)
            .unwrap_or_else(|e| panic!("create {}: {e}", stderr.display()));
        let mut child = Command::new(DROVER)
            .args(args)
            .env_remove("DROVER_MASTER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn drover {}: {e}", args.join(" ")));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Follower {
            child,
            lines,
            reader: Some(reader),
            stderr,
        }
    }

    /// The next stdout line, waiting up to `timeout`; None when none came or it exited.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Kills it and waits for it; returns how it ended.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let _ = self.child.kill();
        let status = self.child.wait().ok();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        status
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Hostnames, regions and zones of the agents of a [`CliCluster`].
pub const AGENTS: [(&str, &str, &str); 3] = [
    ("agent-local-a", "local", "local-a"),
    ("agent-local-b", "local", "local-b"),
    ("agent-east1-a", "aws-us-east1", "aws-us-east1-a"),
];

/// A live cluster for the CLI: one master in `local`/`local-a` and the agents of
/// [`AGENTS`], all active.
pub struct CliCluster {
    /// The processes (dropping it kills them and every task they started).
    pub site: Site,
    /// `HOST:PORT` of the master, for `--master`.
    pub master: String,
}

impl CliCluster {
    /// Starts the master and the agents; returns once every agent is active and the
    /// master lists itself with its fault domain.
    pub fn start(name: &str) -> Self {
        let mut site = Site::new(name, 1);
        site.start_masters();
        for (host, region, zone) in AGENTS {
            let i = site.add_agent(host, region, zone);
            site.start_agent(i);
        }
        for i in 0..AGENTS.len() {
            site.wait_agent_active(i);
        }
        // A master's own domain is listed once it has registered itself, a moment after
        // its election.
        site.wait_until(SETTLE, "/v1/nodes lists the master in local/local-a", |s| {
            s.get("/v1/nodes").and_then(|r| r.typed_ok::<Nodes>()).is_some_and(|r| {
                r.nodes.iter().any(|n| {
                    matches!(n, Node::Master(m)
                        if m.region.as_deref() == Some("local") && m.zone.as_deref() == Some("local-a"))
                })
            })
        });
        let master = site.masters.addr(1);
        CliCluster { site, master }
    }

    /// The per-test directory, for app files.
    pub fn dir(&self) -> &Path {
        self.site.dir()
    }

    /// Runs `drover args --master MASTER`.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.extend(["--master", self.master.as_str()]);
        drover(&all)
    }

    /// Runs `drover args --master MASTER` and fails the test, with every log, unless it
    /// exits 0.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        if !run.ok() {
            self.fail(&format!("expected exit 0:\n{run}"));
        }
        run
    }

    /// Runs `drover args --master MASTER` and fails the test unless it exits non-zero.
    #[track_caller]
    pub fn refused(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        if run.ok() {
            self.fail(&format!("expected a non-zero exit:\n{run}"));
        }
        run
    }

    /// Fails the test unless `cond` holds, with `what`, the run and every log.
    #[track_caller]
    pub fn check(&self, cond: bool, what: &str, run: &Run) {
        if !cond {
            self.fail(&format!("{what}\n{run}"));
        }
    }

    /// Runs `drover args --master MASTER` until `accept` holds for the run, for up to
    /// [`SETTLE`]; returns that run. For state the cluster reaches by itself (a placement
    /// attempt, instances stopped).
    #[track_caller]
    pub fn run_until(
        &self,
        args: &[&str],
        what: &str,
        mut accept: impl FnMut(&Run) -> bool,
    ) -> Run {
        let deadline = Instant::now() + SETTLE;
        loop {
            let run = self.run(args);
            if accept(&run) {
                return run;
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "timed out after {SETTLE:?} waiting until {what}; last run:\n{run}"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Fails the test with `msg` and the tails of every log.
    #[track_caller]
    pub fn fail(&self, msg: &str) -> ! {
        self.site.fail(msg)
    }
}
