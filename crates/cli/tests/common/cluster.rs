//! A cluster of `drover master` processes: start, kill, pause, resume, find the leader.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use client::{Leader, ProcessHealth};
use serde_json::Value;

use super::files::{TempDir, proc_state, strip_ansi, tail};
use super::http::Response;
use super::{
    DROVER, POLL, PROBE_TIMEOUT, TAIL_LINES, domain_json, drover_command, free_port, http,
};

/// One master process of a [`Cluster`].
#[derive(Debug)]
pub struct Master {
    /// Raft node id, 1-based.
    pub id: u32,
    /// `127.0.0.1:port` it listens on.
    pub addr: String,
    /// Its data dir, kept across restarts.
    pub data_dir: PathBuf,
    /// The region and zone it is started with.
    pub region: String,
    pub zone: String,
    /// Extra arguments for this master only.
    pub extra_args: Vec<String>,
    /// The network namespace it runs in (`None`: the test's own).
    pub netns: Option<String>,
    stdout: PathBuf,
    stderr: PathBuf,
    child: Option<Child>,
    paused: bool,
    starts: u32,
    /// Exit status of the last process, once it has been reaped.
    last_exit: Option<ExitStatus>,
}

/// N `drover master` processes on loopback, one test's worth.
pub struct Cluster {
    dir: TempDir,
    masters: Vec<Master>,
    /// Extra arguments given to every master.
    pub extra_args: Vec<String>,
    /// Extra environment variables given to every master.
    pub extra_env: Vec<(String, String)>,
    /// Start the masters with `--insecure` (the default, for speed); the security tests
    /// clear it: then master 1 makes the cluster CA and join tokens, the others join with
    /// its master join token, ACL tokens are needed on the API, and the test's HTTP client
    /// speaks TLS to them (see [`super::secure`]).
    pub insecure: bool,
    /// The masters `--masters` names (every one when `None`); a master not among them is
    /// given them and itself (one that joins a running cluster with `--join`).
    pub flag_ids: Option<Vec<u32>>,
}

impl Cluster {
    /// A cluster of `n` masters in region `local`, zones `local-a`, `local-b`, ... (not
    /// started yet; see [`Cluster::start_all`]).
    pub fn new(name: &str, n: u32) -> Self {
        let dir = TempDir::new(name);
        let masters = (1..=n)
            .map(|id| {
                let zone = format!("local-{}", (b'a' + ((id - 1) % 26) as u8) as char);
                Master {
                    id,
                    addr: format!("127.0.0.1:{}", free_port()),
                    data_dir: dir.path().join(format!("master-{id}")),
                    region: "local".to_string(),
                    zone,
                    extra_args: Vec::new(),
                    netns: None,
                    stdout: dir.path().join(format!("master-{id}.stdout")),
                    stderr: dir.path().join(format!("master-{id}.stderr")),
                    child: None,
                    paused: false,
                    starts: 0,
                    last_exit: None,
                }
            })
            .collect();
        Cluster {
            dir,
            masters,
            extra_args: Vec::new(),
            extra_env: Vec::new(),
            insecure: true,
            flag_ids: None,
        }
    }

    /// A cluster of `n` masters, all started.
    pub fn launch(name: &str, n: u32) -> Self {
        let mut c = Self::new(name, n);
        c.start_all();
        c
    }

    /// The per-test directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// All master ids, 1-based.
    pub fn ids(&self) -> Vec<u32> {
        self.masters.iter().map(|m| m.id).collect()
    }

    /// The master with this id.
    pub fn master(&self, id: u32) -> &Master {
        self.masters
            .iter()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("no master {id}"))
    }

    /// The master with this id, mutably (to change its region or arguments before start).
    pub fn master_mut(&mut self, id: u32) -> &mut Master {
        self.masters
            .iter_mut()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("no master {id}"))
    }

    /// `host:port` of a master.
    pub fn addr(&self, id: u32) -> String {
        self.master(id).addr.clone()
    }

    /// The id of the master listening on `addr` (`host:port` or `http://host:port`).
    pub fn id_of(&self, addr: &str) -> u32 {
        let addr = addr.trim_start_matches("http://").trim_end_matches('/');
        self.masters
            .iter()
            .find(|m| m.addr == addr)
            .map(|m| m.id)
            .unwrap_or_else(|| self.fail(&format!("{addr} is not one of this cluster's masters")))
    }

    /// The `--masters` value: `1=host:port,2=host:port,...`.
    pub fn masters_flag(&self) -> String {
        self.masters_flag_for(None)
    }

    /// The `--masters` value master `id` is started with (see [`Cluster::flag_ids`]).
    pub fn masters_flag_for(&self, id: Option<u32>) -> String {
        self.masters
            .iter()
            .filter(|m| {
                self.flag_ids
                    .as_ref()
                    .is_none_or(|ids| ids.contains(&m.id) || Some(m.id) == id)
            })
            .map(|m| format!("{}={}", m.id, m.addr))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The command line that starts master `id`, without spawning it.
    pub fn command(&self, id: u32) -> Command {
        let m = self.master(id);
        let mut cmd = drover_command(m.netns.as_deref());
        cmd.arg("master");
        if self.insecure {
            cmd.arg("--insecure");
        } else if id != 1 {
            // Ignored once the master keeps the CA in its data dir (a restart).
            cmd.arg("--join-token-file")
                .arg(super::secure::token_file(self, "master-join-token"));
        }
        cmd.arg("--id")
            .arg(id.to_string())
            .arg("--listen")
            .arg(&m.addr)
            .arg("--masters")
            .arg(self.masters_flag_for(Some(id)))
            .arg("--data-dir")
            .arg(&m.data_dir)
            .arg("--domain")
            .arg(domain_json(&m.region, &m.zone))
            .args(&self.extra_args)
            .args(&m.extra_args)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .env("RUST_BACKTRACE", "1");
        cmd
    }

    /// Starts every master that is not running.
    pub fn start_all(&mut self) {
        for id in self.ids() {
            if !self.is_running(id) {
                self.start(id);
            }
        }
    }

    /// Starts master `id` with its data dir; output is appended to its log files.
    pub fn start(&mut self, id: u32) {
        assert!(
            !self.is_running(id),
            "master {id} is already running; kill it first"
        );
        if !self.insecure && id != 1 {
            self.wait_for_join_token();
        }
        let mut cmd = self.command(id);
        let m = self.master_mut(id);
        m.starts += 1;
        let open = |path: &Path, starts: u32| {
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
            let _ = writeln!(
                f,
                "===== drover-tests: start #{starts} of master {id} ====="
            );
            f
        };
        let out = open(&m.stdout, m.starts);
        let err = open(&m.stderr, m.starts);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {DROVER} for master {id}: {e}"));
        m.child = Some(child);
        m.paused = false;
        m.last_exit = None;
        if !self.insecure && id == 1 {
            self.wait_for_join_token();
        }
    }

    /// A secure cluster: waits until master 1 has made the CA and the join tokens, and
    /// has the test's HTTP client trust that CA at every master's address.
    fn wait_for_join_token(&mut self) {
        let ca = super::secure::ca_file(self);
        let files = [
            ca.clone(),
            super::secure::token_file(self, "master-join-token"),
            super::secure::token_file(self, "agent-join-token"),
        ];
        self.wait_until(
            Duration::from_secs(60),
            "master 1 makes the cluster CA and writes its join tokens",
            |_| files.iter().all(|f| f.exists()),
        );
        for m in &self.masters {
            http::trust(&m.addr, &ca);
        }
    }

    /// Starts every master in `ids`.
    pub fn start_ids(&mut self, ids: &[u32]) {
        for &id in ids {
            self.start(id);
        }
    }

    /// SIGKILLs master `id` (resuming nothing: SIGKILL ends stopped processes too) and
    /// reaps it. Does nothing when it is not running.
    pub fn kill(&mut self, id: u32) {
        let m = self.master_mut(id);
        if let Some(mut child) = m.child.take() {
            let _ = child.kill();
            m.last_exit = child.wait().ok();
        }
        m.paused = false;
    }

    /// SIGKILLs every master.
    pub fn kill_all(&mut self) {
        for id in self.ids() {
            self.kill(id);
        }
    }

    /// SIGKILLs master `id` and starts it again with the same data dir.
    pub fn restart(&mut self, id: u32) {
        self.kill(id);
        self.start(id);
    }

    /// SIGTERMs master `id` (a planned stop: a leader hands leadership over first) and
    /// waits for it to exit; its exit status.
    pub fn terminate(&mut self, id: u32, timeout: Duration) -> ExitStatus {
        self.signal(id, "TERM");
        self.wait_exit(id, timeout)
    }

    /// SIGSTOPs master `id`: it keeps its sockets but answers nothing.
    pub fn stop(&mut self, id: u32) {
        self.signal(id, "STOP");
        self.master_mut(id).paused = true;
    }

    /// SIGCONTs a master stopped with [`Cluster::stop`].
    pub fn cont(&mut self, id: u32) {
        self.signal(id, "CONT");
        self.master_mut(id).paused = false;
    }

    fn signal(&self, id: u32, sig: &str) {
        let pid = self
            .master(id)
            .child
            .as_ref()
            .unwrap_or_else(|| {
                self.fail(&format!("master {id} is not running; cannot send SIG{sig}"))
            })
            .id();
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap_or_else(|e| panic!("run kill -{sig} {pid}: {e}"));
        assert!(status.success(), "kill -{sig} {pid} failed: {status}");
    }

    /// True when master `id`'s process exists and has not exited (stopped counts).
    pub fn is_running(&mut self, id: u32) -> bool {
        let m = self.master_mut(id);
        match m.child.as_mut() {
            None => false,
            Some(child) => match child.try_wait() {
                Ok(None) => true,
                Ok(Some(status)) => {
                    m.last_exit = Some(status);
                    m.child = None;
                    false
                }
                Err(_) => false,
            },
        }
    }

    /// The process id of master `id`, while it runs (for benchmarks that read `/proc`).
    pub fn pid(&self, id: u32) -> Option<u32> {
        self.master(id).child.as_ref().map(Child::id)
    }

    /// Ids of masters that run and are not stopped.
    pub fn live_ids(&mut self) -> Vec<u32> {
        let mut live = Vec::new();
        for id in self.ids() {
            if self.is_running(id) && !self.master(id).paused {
                live.push(id);
            }
        }
        live
    }

    /// The lowest id of a master other than `leader_id`.
    pub fn a_follower(&self, leader_id: u32) -> u32 {
        self.ids()
            .into_iter()
            .find(|&id| id != leader_id)
            .unwrap_or_else(|| self.fail("the cluster has no master besides the leader"))
    }

    /// Waits until master `id` exits by itself and returns its status.
    pub fn wait_exit(&mut self, id: u32, timeout: Duration) -> ExitStatus {
        let what = format!("master {id} exits");
        self.wait_until(timeout, &what, |c| !c.is_running(id));
        self.master(id)
            .last_exit
            .unwrap_or_else(|| self.fail(&format!("master {id} exited without a status")))
    }

    /// The full stderr of master `id` (all its starts).
    pub fn stderr(&self, id: u32) -> String {
        strip_ansi(&fs::read_to_string(&self.master(id).stderr).unwrap_or_default())
    }

    /// The full stdout of master `id` (all its starts).
    pub fn stdout(&self, id: u32) -> String {
        strip_ansi(&fs::read_to_string(&self.master(id).stdout).unwrap_or_default())
    }

    /// Tails of every master's log files and their process states.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for m in &self.masters {
            let state = match (&m.child, m.paused, m.last_exit) {
                (Some(child), _, _) if proc_state(child.id()) == Some('Z') => {
                    "exited, not reaped yet".to_string()
                }
                (Some(_), true, _) => "stopped (SIGSTOP)".to_string(),
                (Some(_), false, _) => "running".to_string(),
                (None, _, Some(status)) => format!("exited: {status}"),
                (None, _, None) => "not started".to_string(),
            };
            out.push_str(&format!(
                "\n===== master {} at {} ({state}) stdout tail =====\n{}\n===== master {} stderr tail =====\n{}\n",
                m.id,
                m.addr,
                tail(&m.stdout, TAIL_LINES),
                m.id,
                tail(&m.stderr, TAIL_LINES)
            ));
        }
        out
    }

    /// Panics with `msg` and the masters' log tails.
    #[track_caller]
    pub fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\n{}", self.logs())
    }

    /// Polls `cond` until true; on timeout panics naming `what`, with the masters' logs.
    #[track_caller]
    pub fn wait_until(
        &mut self,
        timeout: Duration,
        what: &str,
        mut cond: impl FnMut(&mut Self) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(self) {
                return;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("timed out after {timeout:?} waiting until {what}"));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Polls `f` until it returns `Some`; on timeout panics naming `what`, with the logs.
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
                self.fail(&format!("timed out after {timeout:?} waiting for {what}"));
            }
            std::thread::sleep(POLL);
        }
    }

    /// The leader every master in `ids` names in `GET /v2/leader`, if they all answer 200
    /// with the same leader and that leader is one of `ids`.
    pub fn leader_among(&self, ids: &[u32]) -> Option<String> {
        let mut agreed: Option<String> = None;
        for &id in ids {
            let r = http::request(&self.addr(id), "GET", "/v2/leader", None, PROBE_TIMEOUT).ok()?;
            if r.status != 200 {
                return None;
            }
            let leader = r.decode::<Leader>().ok()?.leader;
            match &agreed {
                None => agreed = Some(leader),
                Some(a) if *a == leader => {}
                Some(_) => return None,
            }
        }
        let leader = agreed?;
        ids.iter()
            .any(|&id| self.master(id).addr == leader)
            .then_some(leader)
    }

    /// The leader all live (running, not stopped) masters agree on, if any.
    pub fn leader(&mut self) -> Option<String> {
        let live = self.live_ids();
        if live.is_empty() {
            return None;
        }
        self.leader_among(&live)
    }

    /// Waits until every live master names the same live leader; returns its address.
    #[track_caller]
    pub fn wait_for_leader(&mut self, timeout: Duration) -> String {
        self.wait_for(timeout, "all live masters agree on one live leader", |c| {
            c.leader()
        })
    }

    /// Like [`Cluster::wait_for_leader`], but the leader must not be `old`.
    #[track_caller]
    pub fn wait_for_new_leader(&mut self, old: &str, timeout: Duration) -> String {
        let what = format!("all live masters agree on a leader other than {old}");
        self.wait_for(timeout, &what, |c| c.leader().filter(|l| l != old))
    }

    /// Id of the agreed leader, waiting for one.
    #[track_caller]
    pub fn wait_for_leader_id(&mut self, timeout: Duration) -> u32 {
        let leader = self.wait_for_leader(timeout);
        self.id_of(&leader)
    }

    /// `GET /health` of master `id`, if it answers 200 with its health.
    pub fn health(&self, id: u32) -> Option<ProcessHealth> {
        let r = http::request(&self.addr(id), "GET", "/health", None, PROBE_TIMEOUT).ok()?;
        (r.status == 200).then(|| r.decode().ok()).flatten()
    }

    /// The value of an unlabelled-by-us Prometheus series on master `id`'s `/metrics`
    /// (the first sample whose name is exactly `name`, whatever its labels).
    pub fn metric(&self, id: u32, name: &str) -> Option<f64> {
        let r = http::request(&self.addr(id), "GET", "/metrics", None, PROBE_TIMEOUT).ok()?;
        if r.status != 200 {
            return None;
        }
        r.body.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?;
            let value = match rest.chars().next()? {
                '{' => rest.split_once('}')?.1,
                ' ' => rest,
                _ => return None,
            };
            value.trim().parse().ok()
        })
    }

    /// True when master `id` follows the agreed leader in the leader's term and has applied
    /// every entry the leader had applied just before (`drover_raft_commit_index`).
    pub fn caught_up(&mut self, id: u32) -> bool {
        let Some(leader) = self.leader() else {
            return false;
        };
        let leader_id = self.id_of(&leader);
        let Some(lh) = self.health(leader_id) else {
            return false;
        };
        let Some(leader_applied) = self.metric(leader_id, "drover_raft_commit_index") else {
            return false;
        };
        let Some(me) = self.health(id) else {
            return false;
        };
        let Some(applied) = self.metric(id, "drover_raft_commit_index") else {
            return false;
        };
        let role = if id == leader_id {
            "leader"
        } else {
            "follower"
        };
        me.role == role
            && me.leader.as_deref() == Some(leader.as_str())
            && me.term == lh.term
            && lh.role == "leader"
            && applied >= leader_applied
    }

    /// Waits until master `id` has caught up (see [`Cluster::caught_up`]).
    #[track_caller]
    pub fn wait_caught_up(&mut self, id: u32, timeout: Duration) {
        let what =
            format!("master {id} follows the current leader in its term and has applied its log");
        self.wait_until(timeout, &what, |c| c.caught_up(id));
    }

    /// `PUT /v2/apps{id}` through `via`, retried on 5xx and broken connections until it is
    /// acknowledged (2xx) or `timeout` passes. PUT is idempotent, so a retry after an
    /// unknown outcome cannot apply the app twice in any way a test could see.
    #[track_caller]
    pub fn put_app_acked(&mut self, via: u32, app: &Value, timeout: Duration) -> Response {
        let id = app["id"].as_str().expect("app has an id").to_string();
        let path = format!("/v2/apps{id}");
        let addr = self.addr(via);
        let mut last;
        let what = format!("PUT {path} through master {via} is acknowledged");
        let deadline = Instant::now() + timeout;
        loop {
            match http::put(&addr, &path, app) {
                Ok(r) if r.is_success() => return r,
                Ok(r) if r.status >= 500 => last = r.to_string(),
                Ok(r) => self.fail(&format!("{what}: refused with {r}")),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "timed out after {timeout:?} waiting until {what}; last answer: {last}"
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// `GET path` through `via`, retried on 5xx and broken connections until a non-5xx
    /// answer or `timeout`.
    #[track_caller]
    pub fn get_settled(&mut self, via: u32, path: &str, timeout: Duration) -> Response {
        let addr = self.addr(via);
        let mut last;
        let deadline = Instant::now() + timeout;
        loop {
            match http::get(&addr, path) {
                Ok(r) if r.status < 500 => return r,
                Ok(r) => last = r.to_string(),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "timed out after {timeout:?} waiting for a non-5xx answer to GET {path} from master {via}; last: {last}"
                ));
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for m in &mut self.masters {
            if let Some(mut child) = m.child.take() {
                if m.paused {
                    let _ = Command::new("kill")
                        .arg("-CONT")
                        .arg(child.id().to_string())
                        .status();
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!("logs of the failed test: {}", self.dir.path().display());
        }
    }
}
