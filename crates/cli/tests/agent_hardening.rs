//! Agent hardening (issue 9, the agent and disk cases), across processes: real `drover
//! agent` and `drover master` binaries on loopback, real task processes, and full disks that
//! are small tmpfs mounts each test makes itself (the tests run as root) and unmounts when it
//! is over.
//!
//! - a copy of a live agent's work dir is refused, and the original keeps its tasks; an agent
//!   that moved after its old registration became unreachable is accepted;
//! - a task whose checkpoint cannot be written is never started, and fails with the reason;
//! - the advertised disk is the work dir's own filesystem (an explicit `disk:` wins);
//! - sandboxes of ended tasks are removed by count and by age; `/v1/nodes` shows disk use;
//! - a hanging detect script is killed after 10 s; numeric flags are range-checked;
//! - SIGTERM and SIGINT stop the agent with 0 (also while it starts) and its tasks keep
//!   running.
//!
//! Waits poll conditions to deadlines and fail with every process's logs.

mod agent_support;
mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use agent_support::events::EventStream;
use agent_support::procs;
use agent_support::{DomainSource, SETTLE, Site, agent_id, write_script};
use client::{App, Event, NodeState};
use common::{DROVER, TempDir, domain_json, free_port, run_to_exit};
use serde_json::{Value, json};

/// A tmpfs of a given size mounted by the test; lazily unmounted on drop (processes the
/// test started may still hold files in it until their own clean-up).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap_or_else(|e| panic!("run mount: {e}"));
        assert!(
            status.success(),
            "mount -t tmpfs on {} failed ({status}): these tests run as root",
            dir.display()
        );
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    /// `(available bytes, block size)` of the mount, as `stat -f` reports them.
    fn space(&self) -> (u64, u64) {
        let out = Command::new("stat")
            .args(["-f", "-c", "%a %S"])
            .arg(&self.dir)
            .output()
            .unwrap_or_else(|e| panic!("run stat -f: {e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().unwrap());
        let (blocks, size) = (fields.next().unwrap(), fields.next().unwrap());
        (blocks * size, size)
    }

    /// Fills the mount with a file until `leave` bytes are left.
    fn fill_leaving(&self, leave: u64) {
        let (available, _) = self.space();
        assert!(
            available > leave,
            "the tmpfs has only {available} bytes left"
        );
        let filler = vec![0u8; usize::try_from(available - leave).unwrap()];
        fs::write(self.dir.join("filler"), filler).expect("write the filler");
        assert_eq!(self.space().0, leave, "what is left after filling");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// The ids of an app's tasks.
fn task_ids(app: &App) -> Vec<String> {
    app.tasks.iter().flatten().map(|t| t.id.clone()).collect()
}

/// A long-running app of `n` instances that does nothing.
fn sleeper(id: &str, n: u32) -> Value {
    json!({"id": id, "cmd": "exec sleep 1000", "instances": n, "cpus": 0.1, "mem": 16})
}

/// The last `error:` line of an agent's stderr.
fn final_error(s: &Site, i: usize) -> String {
    let err = s.agent(i).stderr();
    let mut lines: Vec<&str> = err.lines().collect();
    let Some(at) = lines.iter().rposition(|l| l.starts_with("error:")) else {
        s.fail(&format!("the agent printed no error:\n{err}"));
    };
    lines.drain(..at);
    lines.join("\n")
}

/// Names of the sandboxes in a work dir.
fn sandboxes(work_dir: &Path) -> BTreeSet<String> {
    fs::read_dir(work_dir.join("sandboxes"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_copy_of_a_live_agents_work_dir_is_refused_and_the_original_keeps_its_tasks() {
    let mut s = Site::new("hard-clone", 1);
    s.start_masters();
    let orig = s.add_agent("agent-orig", "local", "local-a");
    let copy = s.add_agent("agent-copy", "local", "local-b");
    s.start_agent_active(orig);
    s.create_app(&sleeper("/clone/sleepers", 2));
    let app = s.wait_running("/clone/sleepers", 2);
    let before = s.agent(orig).task_processes();

    let (from, to) = (
        s.agent(orig).work_dir.clone(),
        s.agent(copy).work_dir.clone(),
    );
    let status = Command::new("cp")
        .arg("-a")
        .arg(&from)
        .arg(&to)
        .status()
        .expect("run cp");
    assert!(status.success(), "cp -a of the work dir: {status}");
    let id = agent_id(&to);
    s.start_agent(copy);
    let status = s.wait_agent_exit(copy, SETTLE);
    if status.code() != Some(1) {
        s.fail(&format!(
            "the copy exited with {status}, expected 1 (refused)"
        ));
    }
    let error = final_error(&s, copy);
    let copy_dir = to.display().to_string();
    let (orig_ip, copy_ip) = (s.agent(orig).ip.clone(), s.agent(copy).ip.clone());
    for want in [
        id.as_str(),
        orig_ip.as_str(),
        copy_ip.as_str(),
        "copied",
        &format!("{copy_dir}/agent-id"),
        &format!("{copy_dir}/tasks"),
    ] {
        if !error.contains(want) {
            s.fail(&format!("the refusal does not say {want:?}:\n{error}"));
        }
    }

    // The original is still itself, at its address, with the same task processes.
    let node = s.wait_agent_active(orig);
    assert_eq!(
        (node.id.as_str(), node.ip.as_str()),
        (id.as_str(), orig_ip.as_str()),
        "{node:?}"
    );
    let after = s.wait_running("/clone/sleepers", 2);
    assert_eq!(task_ids(&after), task_ids(&app), "the app's instances");
    for (task, p) in &before {
        if !p.is_alive() || s.agent(orig).task_processes().get(task) != Some(p) {
            s.fail(&format!(
                "task {task} (pid {}) was disturbed by the copy",
                p.pid
            ));
        }
    }
    if let Some(n) = s.agent_node(copy) {
        s.fail(&format!("the refused copy is listed: {n:?}"));
    }
}

#[test]
fn an_agent_that_moved_after_its_old_registration_became_unreachable_is_accepted() {
    let mut s = Site::new("hard-moved", 1);
    s.masters.extra_args = vec!["--agent-unreachable-ms".into(), "1500".into()];
    s.start_masters();
    let a = s.add_agent("agent-moved", "local", "local-a");
    let first = s.start_agent_active(a);
    s.kill_agent(a);
    s.wait_for(
        SETTLE,
        "the masters list the killed agent as unreachable",
        |s| {
            s.agent_node(a)
                .filter(|n| n.state == NodeState::Unreachable)
        },
    );
    let new_ip = "127.0.1.200".to_string();
    s.agent_mut(a).ip = new_ip.clone();
    let node = s.start_agent_active(a);
    assert_eq!(node.id, first.id, "{node:?}");
    assert_eq!(node.ip, new_ip, "{node:?}");
}

#[test]
fn a_task_whose_checkpoint_cannot_be_written_never_runs_and_fails_with_the_reason() {
    let mut s = Site::new("hard-full", 1);
    s.start_masters();
    let a = s.add_agent("agent-full", "local", "local-a");
    let disk = Tmpfs::mount(&s.agent(a).work_dir.clone(), "4m");
    s.start_agent_active(a);
    let mut events = EventStream::open(&s.masters.addr(1), &["status_update_event"])
        .unwrap_or_else(|e| s.fail(&format!("subscribe to /v2/events: {e}")));
    // Room for one checkpoint of this app (3 or 4 pages) but not for the second one, which
    // names the held process: each attempt gets as far as the held process (its checkpoint
    // goes once the masters forget it, so the next attempt gets as far).
    let (_, page) = disk.space();
    disk.fill_leaving(4 * page);
    let app_id = "/full/app";
    s.create_app(&json!({
        "id": app_id, "cmd": "echo the command ran; exec sleep 1000", "instances": 1,
        "cpus": 0.1, "mem": 16, "env": {"PADDING": "x".repeat(10_000)},
    }));
    let sandbox = |s: &Site, task: &str| s.agent(a).work_dir.join("sandboxes").join(task);
    let next_failure = |s: &Site, events: &mut EventStream, app_id: &str| loop {
        let update = events.wait_for(SETTLE, |e| match e {
            Event::StatusUpdateEvent {
                app_id: of,
                task_id,
                task_status,
                message,
                ..
            } if of == app_id => Some((task_id.clone(), task_status.clone(), message.clone())),
            _ => None,
        });
        let Some((task_id, status, message)) = update else {
            s.fail(&format!(
                "no status update for {app_id}; seen {:?}",
                events.seen()
            ));
        };
        let reason = message.as_deref().unwrap_or_default();
        match status.as_str() {
            "TASK_STAGING" => continue,
            "TASK_FAILED"
                if reason.contains("not started")
                    && reason.contains("checkpoint")
                    && reason.contains("No space left on device") =>
            {
                break task_id;
            }
            _ => s.fail(&format!(
                "expected TASK_FAILED with the reason, got {status} of {task_id}: {message:?}"
            )),
        }
    };
    let mut failed = Vec::new();
    for _ in 0..2 {
        let task = next_failure(&s, &mut events, app_id);
        // Held, never released: its output files exist and are empty.
        let out = fs::read_to_string(sandbox(&s, &task).join("stdout"));
        if out.as_ref().map(String::as_str).ok() != Some("") {
            s.fail(&format!("stdout of the held attempt {task}: {out:?}"));
        }
        failed.push(task);
    }

    // With no room at all (no checkpoint left either), an attempt fails before any process.
    let r = common::http::request(
        &s.masters.addr(1),
        "DELETE",
        &format!("/v2/apps{app_id}?force=true"),
        None,
        Duration::from_secs(10),
    );
    if !r.as_ref().is_ok_and(|r| r.status == 200) {
        s.fail(&format!("DELETE {app_id}: {r:?}"));
    }
    s.wait_until(SETTLE, "every checkpoint of the deleted app is gone", |s| {
        s.agent(a).checkpoints().is_empty()
    });
    let (left, _) = disk.space();
    fs::write(
        disk.dir.join("filler-2"),
        vec![0u8; usize::try_from(left).unwrap()],
    )
    .expect("fill the rest");
    assert_eq!(disk.space().0, 0, "the tmpfs is full");
    let second = "/full/second";
    s.create_app(
        &json!({"id": second, "cmd": "echo the command ran; exec sleep 1000",
        "instances": 1, "cpus": 0.1, "mem": 16}),
    );
    let task = next_failure(&s, &mut events, second);
    if sandbox(&s, &task).join("stdout").exists() {
        s.fail(&format!("{task} got a process on a full disk"));
    }
    failed.push(task);
    // Nothing of the app ever ran, and nothing of it is left running.
    for task in &failed {
        let running = procs::processes_with_env("MESOS_TASK_ID", task);
        if !running.is_empty() {
            s.fail(&format!("task {task} has processes {running:?}"));
        }
    }
    for app in [app_id, second] {
        let running = procs::processes_with_env("MARATHON_APP_ID", app);
        if !running.is_empty() {
            s.fail(&format!("processes of {app} run: {running:?}"));
        }
    }
    let err = s.agent(a).stderr();
    if !err.contains("could not start") {
        s.fail("the agent did not log why the task could not start");
    }
}

#[test]
fn the_advertised_disk_is_the_work_dirs_own_filesystem_and_an_explicit_disk_wins() {
    let mut s = Site::new("hard-disk", 1);
    s.start_masters();
    let measured = s.add_agent("agent-measured", "local", "local-a");
    let explicit = s.add_agent("agent-explicit", "local", "local-b");
    let _m1 = Tmpfs::mount(&s.agent(measured).work_dir.clone(), "6m");
    let _m2 = Tmpfs::mount(&s.agent(explicit).work_dir.clone(), "6m");
    let ports = |s: &Site, i: usize| {
        let p: Vec<String> = s.agent(i).ports.iter().map(u16::to_string).collect();
        p.join(",")
    };
    let spec = format!("cpus:2;mem:1024;ports:[{}]", ports(&s, measured));
    s.agent_mut(measured).resources = Some(spec);
    let spec = format!("cpus:2;mem:1024;disk:123;ports:[{}]", ports(&s, explicit));
    s.agent_mut(explicit).resources = Some(spec);

    let node = s.start_agent_active(measured);
    let disk = node.resources.disk;
    if !(5.0..=6.0).contains(&disk) {
        s.fail(&format!(
            "an agent on a 6 MiB work dir offers disk {disk}, not its filesystem's: {node:?}"
        ));
    }
    let node = s.start_agent_active(explicit);
    assert_eq!(node.resources.disk, 123.0, "{node:?}");
}

#[test]
fn sandboxes_of_ended_tasks_are_removed_beyond_the_count_and_after_the_age() {
    let mut s = Site::new("hard-retention", 1);
    s.start_masters();
    let a = s.add_agent("agent-retention", "local", "local-a");
    // An age of 60 s sweeps every 6 s: soon enough to see running tasks' sandboxes swept.
    s.agent_mut(a).extra_args = ["--sandbox-retention-count", "2"]
        .into_iter()
        .chain(["--sandbox-retention-age", "60s"])
        .map(String::from)
        .collect();
    s.start_agent_active(a);
    let work_dir = s.agent(a).work_dir.clone();
    s.create_app(&sleeper("/retention/sleepers", 4));
    let app = s.wait_running("/retention/sleepers", 4);
    let ids: BTreeSet<String> = task_ids(&app).into_iter().collect();
    // A sweep after all four started keeps all four: running tasks' sandboxes never go.
    s.wait_for(
        SETTLE,
        "a sweep counts the four running tasks' sandboxes",
        |s| {
            s.agent_node(a)
                .filter(|n| n.disk_use.is_some_and(|d| d.sandboxes == 4))
        },
    );
    assert_eq!(sandboxes(&work_dir), ids, "one sandbox per running task");

    // All four end: the two ended last stay, within the age.
    s.put_app(&sleeper("/retention/sleepers", 0));
    let kept = s.wait_for(SETTLE, "two sandboxes of ended tasks are left", |s| {
        let left = sandboxes(&work_dir);
        let stopped = s
            .app("/retention/sleepers")
            .is_some_and(|a| task_ids(&a).is_empty());
        (stopped && left.len() == 2).then_some(left)
    });
    assert!(kept.is_subset(&ids), "kept {kept:?} of {ids:?}");
    let node = s.wait_for(SETTLE, "/v1/nodes shows the agent's disk use", |s| {
        s.agent_node(a)
            .filter(|n| n.disk_use.is_some_and(|d| d.sandboxes == 2))
    });
    let use_ = node.disk_use.unwrap_or_default();
    for (field, bytes) in [
        ("work_dir_bytes", use_.work_dir_bytes),
        ("available_bytes", use_.available_bytes),
        ("total_bytes", use_.total_bytes),
    ] {
        if bytes == 0 {
            s.fail(&format!("disk_use.{field} is 0: {node:?}"));
        }
    }

    // Restarted with an age of 1 s: what is left goes too.
    s.kill_agent(a);
    s.agent_mut(a).extra_args = vec!["--sandbox-retention-age".into(), "1s".into()];
    s.start_agent_active(a);
    s.wait_until(SETTLE, "no sandbox is left", |_| {
        sandboxes(&work_dir).is_empty()
    });
    if !s
        .agent(a)
        .stderr()
        .contains("removed the sandbox of ended task")
    {
        s.fail("the agent did not log the removals");
    }
}

#[test]
fn a_hanging_detect_script_is_killed_after_10_s_and_named() {
    let mut s = Site::new("hard-detect", 1);
    s.start_masters();
    let pid_file = s.dir().join("detect-child.pid");
    let script = write_script(
        s.dir(),
        "hanging-detect",
        &format!("sleep 1000 &\necho $! > {}\nwait", pid_file.display()),
    );
    let a = s.add_agent_with("agent-hang", DomainSource::Script(script.clone()));
    s.start_agent(a);
    let status = s.wait_agent_exit(a, SETTLE);
    if status.code() != Some(2) {
        s.fail(&format!("the agent exited with {status}, expected 2"));
    }
    let error = final_error(&s, a);
    for want in [
        script.display().to_string().as_str(),
        "within 10 s",
        "killed",
    ] {
        if !error.contains(want) {
            s.fail(&format!("the error does not say {want:?}:\n{error}"));
        }
    }
    let child: u32 = fs::read_to_string(&pid_file)
        .expect("the script wrote its child's pid")
        .trim()
        .parse()
        .expect("a pid");
    // SIGKILL is delivered asynchronously: gone soon after, not necessarily at once.
    let what = format!("the script's child {child} is gone");
    s.wait_until(SETTLE, &what, |_| procs::TaskProcess::of(child).is_none());
}

#[test]
fn numeric_agent_flags_out_of_range_exit_2_naming_flag_value_and_range() {
    let dir = TempDir::new("hard-flags");
    let work_dir = dir.path().join("agent");
    let cases: [(&str, &str, &[&str]); 10] = [
        ("--listen", "127.0.0.1:0", &["1 to 65535"]),
        ("--listen", "127.0.0.1:65536", &["1 to 65535"]),
        ("--masters", "127.0.0.1:0", &["1 to 65535"]),
        ("--heartbeat-interval-ms", "0", &["50..=60000"]),
        ("--heartbeat-interval-ms", "60001", &["50..=60000"]),
        ("--heartbeat-interval-ms", "-5", &[]),
        ("--sandbox-retention-count", "100001", &["0..=100000"]),
        ("--sandbox-retention-age", "366d", &["0s to 365d"]),
        ("--sandbox-retention-age", "10", &["0s to 365d"]),
        ("--sandbox-retention-age", "NaN", &["0s to 365d"]),
    ];
    for (flag, value, range) in cases {
        let mut cmd = Command::new(DROVER);
        cmd.arg("agent").arg("--insecure");
        if flag != "--masters" {
            cmd.args(["--masters", "127.0.0.1:1"]);
        }
        cmd.arg("--work-dir")
            .arg(&work_dir)
            .args(["--domain", &domain_json("local", "local-a")])
            .arg(format!("{flag}={value}"));
        let (status, _, err) = run_to_exit(cmd, Duration::from_secs(60));
        assert_eq!(status.code(), Some(2), "{flag} {value}: {status}\n{err}");
        for want in [flag, value].iter().chain(range) {
            assert!(err.contains(want), "{flag} {value}: no {want:?} in\n{err}");
        }
    }
    assert!(!work_dir.exists(), "a refused start made the work dir");
}

#[test]
fn sigterm_and_sigint_stop_the_agent_with_0_and_its_tasks_keep_running() {
    let mut s = Site::new("hard-signals", 1);
    s.masters.extra_args = vec!["--agent-unreachable-ms".into(), "600000".into()];
    s.start_masters();
    let a = s.add_agent("agent-signals", "local", "local-a");
    s.start_agent_active(a);
    s.create_app(&sleeper("/signals/sleeper", 1));
    s.wait_running("/signals/sleeper", 1);
    let before = s.agent(a).task_processes();
    for sig in ["TERM", "INT"] {
        s.signal_agent(a, sig);
        let status = s.wait_agent_exit(a, SETTLE);
        if status.code() != Some(0) {
            s.fail(&format!(
                "after SIG{sig} the agent exited with {status}, expected 0"
            ));
        }
        for (task, p) in &before {
            if !p.is_alive() {
                s.fail(&format!("task {task} died with the agent on SIG{sig}"));
            }
        }
        // The masters still list it active from before: wait for this process itself.
        s.start_agent(a);
        s.wait_until(SETTLE, "the restarted agent says it is registered", |s| {
            s.agent(a).health().is_some_and(|h| h["registered"] == true)
        });
    }
    s.wait_running("/signals/sleeper", 1);
    assert_eq!(
        s.agent(a).task_processes(),
        before,
        "the same task processes"
    );

    // Also while no master answers yet (registering).
    let lonely = s.add_agent("agent-lonely", "local", "local-b");
    s.agent_mut(lonely).masters = format!("127.0.0.1:{}", free_port());
    s.start_agent(lonely);
    s.wait_until(SETTLE, "the lonely agent tries to register", |s| {
        s.agent(lonely).stderr().contains("cannot register")
    });
    s.signal_agent(lonely, "TERM");
    let status = s.wait_agent_exit(lonely, SETTLE);
    assert_eq!(status.code(), Some(0), "{status}");

    // And while it is still starting: SIGTERM during its (slow) fault domain detection.
    let marker = s.dir().join("detecting");
    let script = write_script(
        s.dir(),
        "slow-detect",
        &format!(
            "touch {}
sleep 2
echo '{}'",
            marker.display(),
            domain_json("local", "local-c")
        ),
    );
    let early = s.add_agent_with("agent-early", DomainSource::Script(script));
    s.start_agent(early);
    s.wait_until(SETTLE, "the detect script runs", |_| marker.exists());
    s.signal_agent(early, "TERM");
    let status = s.wait_agent_exit(early, SETTLE);
    if status.code() != Some(0) {
        s.fail(&format!(
            "SIGTERM during start-up ended the agent with {status}, expected 0"
        ));
    }
    if s.agent_node(early).is_some() {
        s.fail("an agent stopped while starting registered anyway");
    }
}
