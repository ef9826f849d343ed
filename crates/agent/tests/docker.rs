//! The Docker executor against the real engine (cargo feature `docker`). The image is built
//! here from Debian's busybox-static (`apt-get install busybox-static`): no registry needed.
#![cfg(feature = "docker")]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use agent::executor::ContainerRuntime;
use agent::outbox::Outbox;
use common::*;
use serde_json::json;
use state::Condition;
use state::protocol::TaskGoal;

const IMAGE: &str = "drover-test-busybox:1";

/// Imports a busybox rootfs as [`IMAGE`] unless the engine has it already.
fn ensure_image() {
    let present = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return;
    }
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "the Docker test needs /bin/busybox: apt-get install busybox-static"
    );
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(root.path().join("tmp")).unwrap();
    std::fs::copy(busybox, bin.join("busybox")).unwrap();
    for applet in ["sh", "sleep", "env", "echo", "cat", "true", "false"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    let tar = root.path().join("rootfs.tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(root.path())
        .arg("-cf")
        .arg(&tar)
        .args(["bin", "tmp"])
        .status()
        .unwrap()
        .success();
    assert!(ok, "tar failed");
    let out = Command::new("docker")
        .arg("import")
        .arg(&tar)
        .arg(IMAGE)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether a Docker engine answers. Outside CI a machine without one skips these tests and
/// says so; in CI (`CI` set) a missing engine fails them, so they never vanish silently.
fn engine_present(runtime: &ContainerRuntime) -> bool {
    if runtime.is_available() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI has a Docker engine, but it does not answer: {}",
        runtime.unavailable_reason()
    );
    eprintln!(
        "skipped: no Docker engine: {}",
        runtime.unavailable_reason()
    );
    false
}

fn container_exists(name: &str) -> bool {
    Command::new("docker")
        .args(["container", "inspect", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_task_runs_in_the_engine_with_its_environment_and_stops_like_a_process() {
    let runtime = ContainerRuntime::detect().await;
    if !engine_present(&runtime) {
        return;
    }
    ensure_image();
    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(Outbox::new());
    let sup = supervisor_with(dir.path(), outbox.clone(), runtime);
    let boxed = json!({
        "id": "/boxed", "mem": 64, "taskKillGracePeriodSeconds": 1,
        "cmd": "echo hello from $MESOS_TASK_ID; env > $MESOS_SANDBOX/env.txt; exec sleep 60",
        "container": {"type": "DOCKER", "docker": {"image": IMAGE}}
    });
    let failing = json!({
        "id": "/failing", "mem": 64, "cmd": "echo bad >&2; exit 4",
        "container": {"type": "DOCKER", "docker": {"image": IMAGE}}
    });
    let mut task = assignment("boxed.instance-d1", boxed, vec![31050]);
    sup.reconcile(&[
        task.clone(),
        assignment("failing.instance-d1", failing, vec![]),
    ]);

    let failed = status_where(&outbox, "failing.instance-d1", |u| {
        u.condition.is_terminal()
    })
    .await;
    assert_eq!(
        (failed.condition, failed.exit_code),
        (Condition::Failed, Some(4))
    );
    let sandboxes = dir.path().canonicalize().unwrap().join("sandboxes");
    let stderr = std::fs::read_to_string(sandboxes.join("failing.instance-d1/stderr")).unwrap();
    assert_eq!(stderr, "bad\n");
    assert!(!container_exists("drover-failing.instance-d1"));

    status_where(&outbox, "boxed.instance-d1", |u| {
        u.condition == Condition::Running
    })
    .await;
    let sandbox = sandboxes.join("boxed.instance-d1");
    let env = eventually("env.txt from inside the container", || {
        let text = std::fs::read_to_string(sandbox.join("env.txt")).ok();
        async move { text.filter(|t| t.contains("PORTS=")) }
    })
    .await;
    for line in [
        "PORT0=31050",
        // Tasks' HOST is the agent's advertised IP, not its hostname.
        "HOST=127.0.0.1",
        "MESOS_TASK_ID=boxed.instance-d1",
        "MESOS_SANDBOX=/mnt/mesos/sandbox",
        "MARATHON_APP_ID=/boxed",
        &format!("MARATHON_APP_DOCKER_IMAGE={IMAGE}"),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} missing in:\n{env}");
    }
    eventually("the container's stdout in the sandbox", || {
        let out = std::fs::read_to_string(sandbox.join("stdout")).unwrap_or_default();
        async move { (out == "hello from boxed.instance-d1\n").then_some(()) }
    })
    .await;
    assert_eq!(
        checkpoint(dir.path(), "boxed.instance-d1")
            .container
            .as_deref(),
        Some("drover-boxed.instance-d1")
    );

    task.goal = TaskGoal::Killed;
    sup.reconcile(&[task]);
    let end = status_where(&outbox, "boxed.instance-d1", |u| u.condition.is_terminal()).await;
    assert_eq!(end.condition, Condition::Killed);
    assert!(!container_exists("drover-boxed.instance-d1"));
}

#[test]
fn a_restarted_agent_finds_its_containers_again() {
    let dir = tempfile::tempdir().unwrap();
    let app = json!({
        "id": "/kept", "mem": 64, "cmd": "exec sleep 60",
        "container": {"type": "DOCKER", "docker": {"image": IMAGE}}
    });
    let task = assignment("kept.instance-d1", app, vec![]);
    let first = tokio::runtime::Runtime::new().unwrap();
    let started = first.block_on(async {
        let runtime = ContainerRuntime::detect().await;
        if !engine_present(&runtime) {
            return false;
        }
        ensure_image();
        let outbox = Arc::new(Outbox::new());
        let sup = supervisor_with(dir.path(), outbox.clone(), runtime);
        sup.reconcile(std::slice::from_ref(&task));
        status_where(&outbox, "kept.instance-d1", |u| {
            u.condition == Condition::Running
        })
        .await;
        true
    });
    // The agent process "dies": its runtime and everything on it go, the container stays.
    drop(first);
    if !started {
        return;
    }
    assert!(container_exists("drover-kept.instance-d1"));

    let second = tokio::runtime::Runtime::new().unwrap();
    second.block_on(async {
        let outbox = Arc::new(Outbox::new());
        let sup = supervisor_with(dir.path(), outbox.clone(), ContainerRuntime::detect().await);
        let found = sup.recover().await.unwrap();
        assert_eq!(found.running, vec!["kept.instance-d1".into()]);
        sup.reconcile(std::slice::from_ref(&task));
        assert_eq!(sup.tasks().len(), 1);
        sup.reconcile(&[]);
        let end = status_where(&outbox, "kept.instance-d1", |u| u.condition.is_terminal()).await;
        assert_eq!(end.condition, Condition::Killed);
        assert!(!container_exists("drover-kept.instance-d1"));
    });
}
