//! `drover dev` as a new user runs it, and stops it: each of SIGINT (Ctrl-C), SIGTERM,
//! SIGHUP, SIGHUP to its whole process group (a closed terminal) and SIGKILL leaves no
//! master, no agent and no task process behind, checked by pid (and by a sweep of /proc for
//! anything still using the cluster's data dir). A second dev on a data dir in use refuses
//! at once, naming the first one's pid and writing nothing; a process that fails to start is
//! named with its log, and the rest is stopped.
//!
//! Each case runs its own small dev (one region, three zones, an agent in each) on free
//! loopback ports with its own data dir. Waits poll to a deadline; nothing asserts on timings.

mod common;

use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{DROVER, TempDir, free_ports, http, tail};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde_json::json;

/// How long a dev of three masters and three agents may take to say it is running on a
/// loaded 2-core machine (a liveness bound, not a speed assertion).
const DEV_START: Duration = Duration::from_secs(120);

/// How long tasks may take to start, and processes to go once told.
const SETTLE: Duration = Duration::from_secs(60);

/// How often waits poll.
const POLL: Duration = Duration::from_millis(100);

/// The topology of every dev here: masters and agents in three zones of one region.
const TOPOLOGY: &str = "\
[[region]]
name = \"local\"
zones = [\"local-a\", \"local-b\", \"local-c\"]
";

/// Agents in [`TOPOLOGY`].
const AGENTS: usize = 3;

/// Polls `cond` until it holds; on timeout, panics with `what` and `context()`.
fn wait_until(
    timeout: Duration,
    what: &str,
    context: impl Fn() -> String,
    mut cond: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting until {what}\n{}",
                context()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// A process found by pid, told apart from a later one with the same pid by its start time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tracked {
    what: String,
    pid: u32,
    started: u64,
}

/// The state letter of a process in `/proc/<pid>/stat` (Z: exited, not reaped yet).
fn proc_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks since boot.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces; field 3 follows ')'.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

impl Tracked {
    fn new(what: impl Into<String>, pid: u32) -> Self {
        let what = what.into();
        let started =
            start_time(pid).unwrap_or_else(|| panic!("{what} (pid {pid}) is not running"));
        Tracked { what, pid, started }
    }

    /// Still the same process, and not a zombie (a dead child nobody reaped yet: dev's
    /// orphans are reparented to an init that may never reap them).
    fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.started)
            && !matches!(proc_state(self.pid), None | Some('Z' | 'X'))
    }
}

/// Live processes whose command line or working directory is under `dir`: masters and
/// agents get their data dirs on the command line, tasks run in sandboxes there.
fn processes_using(dir: &Path) -> Vec<String> {
    let dir = format!("{}/", dir.display());
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if matches!(proc_state(pid), None | Some('Z' | 'X')) {
            continue;
        }
        let cmdline = fs::read(entry.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        let cwd = fs::read_link(entry.path().join("cwd"))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        if cmdline.contains(&dir) || cwd.starts_with(&dir) {
            found.push(format!("pid {pid}: {cmdline} (in {cwd})"));
        }
    }
    found
}

/// A `drover dev` started by the test, in its own process group (as a shell starts a job).
/// Its data dir is `<root>/data`; the test owns `root`.
struct Dev {
    child: Child,
    /// The thread reading dev's stdout when it is a pipe ([`Stdout::ClosedAfterStart`]).
    reader: Option<std::thread::JoinHandle<()>>,
    root: PathBuf,
    addr: String,
    output: PathBuf,
}

impl Dev {
    /// Starts a dev with [`TOPOLOGY`] and `extra` flags on free ports, data under `root`.
    fn spawn(root: &Path, extra: &[&str]) -> Self {
        Self::spawn_on(
            root,
            &format!("127.0.0.1:{}", free_ports(3)),
            extra,
            Stdout::File,
            Security::Insecure,
        )
    }

    /// [`Dev::spawn`] with `--listen addr`, its stdout as `stdout` says, secure or not.
    fn spawn_on(
        root: &Path,
        addr: &str,
        extra: &[&str],
        stdout: Stdout,
        security: Security,
    ) -> Self {
        let topology = root.join("topology.toml");
        fs::write(&topology, TOPOLOGY).expect("write the topology");
        let addr = addr.to_string();
        let n = fs::read_dir(root).map(|d| d.count()).unwrap_or(0);
        let output = root.join(format!("dev-{n}.out"));
        let file = File::create(&output).expect("create the dev output file");
        let mut cmd = dev_command(&root.join("data"), &addr, &topology, extra, security);
        if let Security::Secure = security {
            cli_env(&mut cmd, root);
        }
        cmd.stderr(File::options().append(true).open(&output).expect("open it"));
        match stdout {
            Stdout::File => cmd.stdout(file.try_clone().expect("open the dev output file")),
            Stdout::ClosedAfterStart => cmd.stdout(Stdio::piped()),
        };
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {DROVER} dev: {e}"));
        // Like a terminal that goes away: copied to the file up to the end of what dev
        // prints when it is running, then closed, so dev's next line meets a dead reader.
        let reader = child
            .stdout
            .take()
            .map(|pipe| std::thread::spawn(move || copy_until_running(pipe, file)));
        Dev {
            child,
            reader,
            root: root.to_path_buf(),
            addr,
            output,
        }
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).expect("pids fit in i32"))
    }

    fn output(&self) -> String {
        fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// What dev printed and the tail of every log, for failure messages.
    fn describe(&self) -> String {
        let mut text = format!("--- drover dev output:\n{}", self.output());
        let logs = self.data().join("logs");
        let mut files: Vec<_> = fs::read_dir(&logs)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        files.sort();
        for f in files {
            text.push_str(&format!("\n--- {}:\n{}", f.display(), tail(&f, 15)));
        }
        text
    }

    /// Waits until dev says it is running; panics if it exits first.
    fn wait_running(&mut self) {
        let deadline = Instant::now() + DEV_START;
        loop {
            if self.output().contains("drover dev is running") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "drover dev exited ({status}) before it was running\n{}",
                    self.describe()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "drover dev did not say it was running within {DEV_START:?}\n{}",
                    self.describe()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// The masters and agents dev says it started: the pid of every `(pid N)` line.
    fn cluster_processes(&self, masters: usize) -> Vec<Tracked> {
        let out = self.output();
        let procs: Vec<Tracked> = out
            .lines()
            .filter_map(|line| {
                let (name, rest) = line.trim().split_once(' ')?;
                let pid = rest
                    .rsplit_once("(pid ")?
                    .1
                    .strip_suffix(')')?
                    .parse()
                    .ok()?;
                Some(Tracked::new(name, pid))
            })
            .collect();
        let found = procs
            .iter()
            .filter(|p| p.what.starts_with("master-"))
            .count();
        let agents = procs
            .iter()
            .filter(|p| p.what.starts_with("agent-"))
            .count();
        assert!(
            found == masters && agents == AGENTS,
            "dev lists {masters} masters and {AGENTS} agents with their pids, found {found} and {agents}:\n{out}"
        );
        procs
    }

    /// Adds an app of one instance per agent whose tasks are real processes, each with a
    /// child of its own, and returns those processes once all of them run. Each task writes
    /// its pid and its child's into `pids/`.
    fn start_tasks(&self) -> Vec<Tracked> {
        let pids = self.root.join("pids");
        fs::create_dir_all(&pids).expect("create the pid dir");
        let cmd = format!(
            "sleep 3600 & echo $! > {dir}/$MESOS_TASK_ID.child; echo $$ > {dir}/$MESOS_TASK_ID.task; exec sleep 3600",
            dir = pids.display()
        );
        let app = json!({
            "id": "/dev/sleepers", "cmd": cmd, "instances": AGENTS,
            "cpus": 0.1, "mem": 16, "portDefinitions": [],
            "constraints": [["hostname", "UNIQUE"]],
        });
        let r = http::post(&self.addr, "/v2/apps", &app).expect("POST /v2/apps");
        assert_eq!(r.status, 201, "POST /v2/apps: {r}\n{}", self.describe());
        let written = || {
            fs::read_dir(&pids)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let text = fs::read_to_string(e.path()).ok()?;
                    let pid = text.trim().parse::<u32>().ok()?;
                    Some((e.file_name().to_string_lossy().into_owned(), pid))
                })
                .collect::<Vec<_>>()
        };
        wait_until(
            SETTLE,
            &format!("{AGENTS} tasks and their children wrote their pids"),
            || self.describe(),
            || written().len() == 2 * AGENTS,
        );
        written()
            .into_iter()
            .map(|(what, pid)| Tracked::new(format!("task process {what}"), pid))
            .collect()
    }

    /// Waits for dev to exit.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + SETTLE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "drover dev did not exit within {SETTLE:?}\n{}",
                    self.describe()
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        // Whatever the test did, nothing of this dev may outlive it.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = kill(self.pid(), Signal::SIGTERM);
            let deadline = Instant::now() + SETTLE;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Where dev's stdout goes.
#[derive(Debug, Clone, Copy)]
enum Stdout {
    /// A file.
    File,
    /// A pipe closed once dev has printed that it is running.
    ClosedAfterStart,
}

/// Copies dev's stdout into `file` line by line up to its last line after start-up, then
/// returns, closing the pipe.
fn copy_until_running(pipe: std::process::ChildStdout, mut file: File) {
    use std::io::{BufRead, Write};
    for line in std::io::BufReader::new(pipe).lines() {
        let Ok(line) = line else { return };
        let _ = writeln!(file, "{line}");
        if line.contains("Ctrl-C stops everything") {
            return;
        }
    }
}

fn dev_command(
    data: &Path,
    addr: &str,
    topology: &Path,
    extra: &[&str],
    security: Security,
) -> Command {
    let mut cmd = Command::new(DROVER);
    cmd.arg("dev");
    // Tokenless and plain HTTP: most tests here are about the cluster dev runs.
    if let Security::Insecure = security {
        cmd.arg("--insecure");
    }
    cmd.args(["--listen", addr, "--data-dir"])
        .arg(data)
        .arg("--topology")
        .arg(topology)
        .args(extra)
        .stdin(Stdio::null())
        .process_group(0);
    cmd
}

/// Whether dev runs as it does by default (TLS, join tokens, ACLs) or with `--insecure`.
#[derive(Debug, Clone, Copy)]
enum Security {
    Insecure,
    Secure,
}

/// The environment of a user whose CLI config is `root/xdg/drover/config.toml` (where a
/// secure dev writes one, since there is none).
fn cli_env(cmd: &mut Command, root: &Path) {
    cmd.env("XDG_CONFIG_HOME", root.join("xdg"));
    for var in [
        "DROVER_CONFIG",
        "DROVER_MASTER",
        "DROVER_TOKEN",
        "DROVER_CA_FILE",
    ] {
        cmd.env_remove(var);
    }
}

/// How the test stops dev.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// A signal to dev alone.
    Signal(Signal),
    /// SIGHUP to dev's whole process group, as when its terminal is closed; dev's output
    /// has no reader by then, as with a closed terminal.
    HangUpGroup,
}

/// Starts a dev, runs tasks on every agent, stops dev as `how` says, and checks that no
/// master, agent or task process is left.
fn stopping_dev_leaves_nothing_behind(name: &str, how: Stop) {
    let root = TempDir::new(name);
    let stdout = match how {
        Stop::HangUpGroup => Stdout::ClosedAfterStart,
        Stop::Signal(_) => Stdout::File,
    };
    let addr = format!("127.0.0.1:{}", free_ports(3));
    let mut dev = Dev::spawn_on(root.path(), &addr, &[], stdout, Security::Insecure);
    dev.wait_running();
    let mut tracked = vec![Tracked::new("drover dev", dev.child.id())];
    tracked.extend(dev.cluster_processes(3));
    let tasks = dev.start_tasks();
    assert_eq!(tasks.len(), 2 * AGENTS);
    tracked.extend(tasks);
    let not_running: Vec<_> = tracked.iter().filter(|p| !p.alive()).collect();
    assert!(
        not_running.is_empty(),
        "before the stop, every process runs: {not_running:?}"
    );

    if let Some(reader) = dev.reader.take() {
        reader.join().expect("the reader of dev's stdout");
    }
    match how {
        Stop::Signal(signal) => kill(dev.pid(), signal).expect("signal drover dev"),
        Stop::HangUpGroup => killpg(dev.pid(), Signal::SIGHUP).expect("SIGHUP dev's group"),
    }
    let status = dev.wait_exit();
    match how {
        Stop::Signal(Signal::SIGKILL) => {}
        _ => assert!(
            status.success(),
            "drover dev exits 0 after {how:?}, got {status}\n{}",
            dev.describe()
        ),
    }
    wait_until(
        SETTLE,
        &format!("no process of the dev cluster is left after {how:?}"),
        || {
            let left: Vec<_> = tracked.iter().filter(|p| p.alive()).collect();
            format!(
                "still running: {left:?}\nusing the data dir: {:?}\n{}",
                processes_using(&dev.data()),
                dev.describe()
            )
        },
        || tracked.iter().all(|p| !p.alive()) && processes_using(&dev.data()).is_empty(),
    );
}

#[test]
fn ctrl_c_stops_every_master_agent_and_task() {
    stopping_dev_leaves_nothing_behind("dev-sigint", Stop::Signal(Signal::SIGINT));
}

#[test]
fn sigterm_stops_every_master_agent_and_task() {
    stopping_dev_leaves_nothing_behind("dev-sigterm", Stop::Signal(Signal::SIGTERM));
}

#[test]
fn sighup_stops_every_master_agent_and_task() {
    stopping_dev_leaves_nothing_behind("dev-sighup", Stop::Signal(Signal::SIGHUP));
}

#[test]
fn a_closed_terminal_sighup_to_the_process_group_stops_every_master_agent_and_task() {
    stopping_dev_leaves_nothing_behind("dev-sighup-group", Stop::HangUpGroup);
}

#[test]
fn sigkill_of_dev_still_stops_every_master_agent_and_task() {
    stopping_dev_leaves_nothing_behind("dev-sigkill", Stop::Signal(Signal::SIGKILL));
}

/// Every file under `dir` with its length and modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            match entry.metadata() {
                Ok(m) if m.is_dir() => todo.push(path),
                Ok(m) => files.push((path, m.len(), m.modified().expect("mtime"))),
                Err(_) => {}
            }
        }
    }
    files.sort();
    files
}

#[test]
fn a_second_dev_on_a_data_dir_in_use_refuses_naming_the_first_and_touches_nothing() {
    let root = TempDir::new("dev-second");
    let mut first = Dev::spawn(root.path(), &["--masters", "1"]);
    first.wait_running();
    let logs = first.data().join("logs");
    let before = snapshot(&logs);
    assert!(
        before
            .iter()
            .any(|(p, len, _)| p.ends_with("master-1.log") && *len > 0),
        "the first dev's master has written its log: {before:?}"
    );

    let topology = root.path().join("topology.toml");
    let other = format!("127.0.0.1:{}", free_ports(1));
    let mut second = dev_command(
        &first.data(),
        &other,
        &topology,
        &["--masters", "1"],
        Security::Insecure,
    );
    let second_out = root.path().join("second.out");
    let second_err = root.path().join("second.err");
    second
        .stdout(File::create(&second_out).expect("create a file"))
        .stderr(File::create(&second_err).expect("create a file"));
    let mut second = second.spawn().expect("start the second dev");
    let mut status = None;
    wait_until(
        SETTLE,
        "the second drover dev exits",
        || first.describe(),
        || {
            status = second.try_wait().ok().flatten();
            status.is_some()
        },
    );
    let status = status.expect("an exit status");
    let stderr = fs::read_to_string(&second_err).unwrap_or_default();
    let stdout = fs::read_to_string(&second_out).unwrap_or_default();
    assert_eq!(
        status.code(),
        Some(1),
        "the second dev fails: {status}\n{stdout}\n{stderr}"
    );
    let first_pid = first.child.id().to_string();
    assert!(
        stderr.contains(&format!("pid {first_pid}"))
            && stderr.contains(&first.data().display().to_string()),
        "the refusal names the first dev's pid {first_pid} and the data dir:\n{stderr}"
    );
    assert!(
        !stdout.contains("running") && !stdout.contains("Starting"),
        "the second dev starts nothing: {stdout}"
    );
    assert_eq!(
        snapshot(&logs),
        before,
        "the second dev wrote no log (nor truncated one)"
    );
    assert!(
        matches!(first.child.try_wait(), Ok(None)),
        "the first dev still runs"
    );

    // A dead dev's lock is taken over: after SIGKILL, a new dev starts on the same data dir.
    let first_procs = first.cluster_processes(1);
    kill(first.pid(), Signal::SIGKILL).expect("SIGKILL the first dev");
    first.wait_exit();
    wait_until(
        SETTLE,
        "the first dev's processes are gone",
        || first.describe(),
        || first_procs.iter().all(|p| !p.alive()),
    );
    // Its masters were formed on the first dev's address: the new one uses it too.
    let mut third = Dev::spawn_on(
        root.path(),
        &first.addr,
        &["--masters", "1"],
        Stdout::File,
        Security::Insecure,
    );
    third.wait_running();
}

#[test]
fn a_process_that_fails_to_start_is_named_with_its_log_and_the_rest_is_stopped() {
    let root = TempDir::new("dev-fails");
    // A file where agent-local-b-1's work dir should be: that agent cannot start.
    let data = root.path().join("data");
    fs::create_dir_all(&data).expect("create the data dir");
    fs::write(data.join("agent-local-b-1"), "not a directory").expect("write a file");
    let mut dev = Dev::spawn(root.path(), &["--masters", "1"]);
    let status = dev.wait_exit();
    let out = dev.output();
    assert_eq!(status.code(), Some(1), "dev fails: {status}\n{out}");
    let log = data.join("logs").join("agent-local-b-1.log");
    assert!(
        out.contains("agent-local-b-1 exited")
            && out.contains(&log.display().to_string())
            && !out.contains("drover dev is running"),
        "dev names the agent that failed and its log {}, and never says it is running:\n{out}",
        log.display()
    );
    wait_until(
        SETTLE,
        "nothing of the failed dev is left",
        || format!("{:?}\n{}", processes_using(&data), dev.describe()),
        || processes_using(&data).is_empty(),
    );
}

#[test]
fn a_secure_dev_serves_https_and_the_cli_config_it_writes_makes_node_list_work() {
    let root = TempDir::new("dev-secure");
    let addr = format!("127.0.0.1:{}", free_ports(3));
    let mut dev = Dev::spawn_on(root.path(), &addr, &[], Stdout::File, Security::Secure);
    dev.wait_running();
    let out = dev.output();
    assert!(
        out.contains(&format!("UI:   https://{addr}/#token=")),
        "dev prints the UI's HTTPS address with the token:\n{out}"
    );
    dev.cluster_processes(3);
    let config = root.path().join("xdg/drover/config.toml");
    let text = fs::read_to_string(&config)
        .unwrap_or_else(|e| panic!("dev writes {}: {e}\n{}", config.display(), dev.describe()));
    assert!(text.contains("ca_file"), "{text}");
    assert!(
        http::get(&addr, "/ping").is_err(),
        "a secure dev's masters do not speak plain HTTP"
    );
    // The user's CLI, with nothing but the config dev wrote.
    let mut cmd = Command::new(DROVER);
    cmd.args(["node", "list"]);
    cli_env(&mut cmd, root.path());
    let (status, stdout, stderr) = common::run_to_exit(cmd, SETTLE);
    assert!(
        status.success(),
        "drover node list with dev's config: {stderr}\n{}",
        dev.describe()
    );
    for zone in ["local-a", "local-b", "local-c"] {
        assert!(stdout.contains(&format!("agent-{zone}-1")), "{stdout}");
    }
    kill(dev.pid(), Signal::SIGTERM).expect("signal drover dev");
    assert!(dev.wait_exit().success(), "{}", dev.describe());
    assert!(
        !config.exists(),
        "dev removes the config it wrote when it stops"
    );
}
