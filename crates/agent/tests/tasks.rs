//! Tasks as real processes: environment, exit codes, kill semantics, and recovery after the
//! agent's restart.

mod common;

use std::sync::Arc;

use agent::outbox::Outbox;
use agent::procfs;
use common::*;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::json;
use state::Condition;
use state::protocol::TaskGoal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_runs_in_its_sandbox_with_marathon_s_environment() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(Outbox::new());
    let sup = supervisor(dir.path(), outbox.clone());
    let app = json!({
        "id": "/shop/web", "cpus": 0.25, "mem": 32,
        "cmd": "env > env.txt; echo hello; echo oops >&2; exec sleep 60",
        "portDefinitions": [{"port": 0, "name": "http"}, {"port": 0}],
        "env": {"COLOR": "blue"}
    });
    let task = assignment("shop_web.instance-a", app, vec![31005, 31006]);
    sup.reconcile(std::slice::from_ref(&task));
    status_where(&outbox, "shop_web.instance-a", |u| {
        u.condition == Condition::Running
    })
    .await;

    let sandbox = dir
        .path()
        .canonicalize()
        .unwrap()
        .join("sandboxes/shop_web.instance-a");
    let env = eventually("env.txt", || {
        let text = std::fs::read_to_string(sandbox.join("env.txt")).ok();
        async move { text.filter(|t| t.contains("COLOR=")) }
    })
    .await;
    for line in [
        // Tasks' HOST is the agent's advertised IP, not its hostname.
        "HOST=127.0.0.1",
        "PORT0=31005",
        "PORT1=31006",
        "PORT=31005",
        "PORTS=31005,31006",
        "PORT_HTTP=31005",
        "MARATHON_APP_ID=/shop/web",
        "MARATHON_APP_VERSION=2026-01-01T00:00:00.000Z",
        "MARATHON_APP_RESOURCE_CPUS=0.25",
        "MARATHON_APP_RESOURCE_MEM=32.0",
        "MESOS_TASK_ID=shop_web.instance-a",
        "COLOR=blue",
        &format!("MESOS_SANDBOX={}", sandbox.display()),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} missing in:\n{env}");
    }
    eventually("stdout and stderr files", || {
        let out = std::fs::read_to_string(sandbox.join("stdout")).unwrap_or_default();
        let err = std::fs::read_to_string(sandbox.join("stderr")).unwrap_or_default();
        async move { (out == "hello\n" && err == "oops\n").then_some(()) }
    })
    .await;

    let cp = checkpoint(dir.path(), "shop_web.instance-a");
    let pid = cp.process.expect("a checkpointed process");
    assert!(procfs::is_running(pid));

    // No longer listed: stopped and reported killed.
    sup.reconcile(&[]);
    let killed = status_where(&outbox, "shop_web.instance-a", |u| {
        u.condition.is_terminal()
    })
    .await;
    assert_eq!(killed.condition, Condition::Killed);
    assert!(!procfs::is_running(pid));
    let conditions: Vec<Condition> = updates(&outbox).iter().map(|u| u.condition).collect();
    assert_eq!(
        conditions,
        [Condition::Staging, Condition::Running, Condition::Killed]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_map_to_finished_failed_and_error() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(Outbox::new());
    let sup = supervisor(dir.path(), outbox.clone());
    sup.reconcile(&[
        assignment(
            "ok.instance-1",
            json!({"id": "/ok", "cmd": "exit 0"}),
            vec![],
        ),
        assignment(
            "bad.instance-1",
            json!({"id": "/bad", "cmd": "exit 3"}),
            vec![],
        ),
        assignment(
            "argv.instance-1",
            json!({"id": "/argv", "args": ["/bin/false"]}),
            vec![],
        ),
        assignment(
            "missing.instance-1",
            json!({"id": "/missing", "args": ["/no/such/program"]}),
            vec![],
        ),
    ]);
    let terminal = |id: &'static str| {
        let outbox = outbox.clone();
        async move { status_where(&outbox, id, |u| u.condition.is_terminal()).await }
    };
    let ok = terminal("ok.instance-1").await;
    assert_eq!((ok.condition, ok.exit_code), (Condition::Finished, Some(0)));
    let bad = terminal("bad.instance-1").await;
    assert_eq!((bad.condition, bad.exit_code), (Condition::Failed, Some(3)));
    assert_eq!(bad.message.as_deref(), Some("exited with code 3"));
    let argv = terminal("argv.instance-1").await;
    assert_eq!(
        (argv.condition, argv.exit_code),
        (Condition::Failed, Some(1))
    );
    let missing = terminal("missing.instance-1").await;
    assert_eq!(missing.condition, Condition::Error);
    let msg = missing.message.unwrap();
    assert!(msg.contains("cannot start `/no/such/program`"), "{msg}");

    // Ended tasks are never started again while the master still lists them.
    sup.reconcile(&[assignment(
        "ok.instance-1",
        json!({"id": "/ok", "cmd": "exit 0"}),
        vec![],
    )]);
    let staged = updates(&outbox)
        .iter()
        .filter(|u| u.condition == Condition::Staging)
        .count();
    assert_eq!(staged, 4);
    assert!(sup.running().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_is_sigterm_then_sigkill_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(Outbox::new());
    let sup = supervisor(dir.path(), outbox.clone());
    // Ignores SIGTERM (after noting it), so only SIGKILL ends it.
    let stubborn = json!({
        "id": "/stubborn", "taskKillGracePeriodSeconds": 0.5,
        "cmd": "trap 'echo term >> got-term' TERM; echo ready > ready; while true; do sleep 0.05; done"
    });
    let mut task = assignment("stubborn.instance-1", stubborn, vec![]);
    sup.reconcile(std::slice::from_ref(&task));
    let sandbox = dir
        .path()
        .canonicalize()
        .unwrap()
        .join("sandboxes/stubborn.instance-1");
    eventually("the trap to be set", || {
        let ready = sandbox.join("ready").exists();
        async move { ready.then_some(()) }
    })
    .await;
    let pid = checkpoint(dir.path(), "stubborn.instance-1")
        .process
        .unwrap();

    task.goal = TaskGoal::Killed;
    sup.reconcile(std::slice::from_ref(&task));
    let end = status_where(&outbox, "stubborn.instance-1", |u| {
        u.condition.is_terminal()
    })
    .await;
    assert_eq!(end.condition, Condition::Killed);
    let msg = end.message.unwrap();
    assert!(msg.contains("SIGKILL"), "{msg}");
    let got_term = std::fs::read_to_string(sandbox.join("got-term")).unwrap();
    assert!(got_term.starts_with("term"), "{got_term}");
    assert!(!procfs::is_running(pid));
    assert!(checkpoint(dir.path(), "stubborn.instance-1").kill_requested);

    // A task that stops on SIGTERM is reported killed without waiting for SIGKILL.
    let polite =
        json!({"id": "/polite", "cmd": "exec sleep 60", "taskKillGracePeriodSeconds": 600});
    let mut task = assignment("polite.instance-1", polite, vec![]);
    sup.reconcile(std::slice::from_ref(&task));
    status_where(&outbox, "polite.instance-1", |u| {
        u.condition == Condition::Running
    })
    .await;
    task.goal = TaskGoal::Killed;
    sup.reconcile(std::slice::from_ref(&task));
    let end = status_where(&outbox, "polite.instance-1", |u| u.condition.is_terminal()).await;
    assert_eq!(end.condition, Condition::Killed);
    let msg = end.message.unwrap();
    assert!(msg.contains("SIGTERM"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_before_it_started_is_reported_killed_once() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(Outbox::new());
    let sup = supervisor(dir.path(), outbox.clone());
    let mut task = assignment(
        "never.instance-1",
        json!({"id": "/never", "cmd": "sleep 60"}),
        vec![],
    );
    task.goal = TaskGoal::Killed;
    sup.reconcile(std::slice::from_ref(&task));
    sup.reconcile(std::slice::from_ref(&task));
    let all = updates(&outbox);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].condition, Condition::Killed);
    assert!(!dir.path().join("sandboxes/never.instance-1").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_app_without_an_engine_fails_at_once_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(Outbox::new());
    let sup = supervisor(dir.path(), outbox.clone());
    let app = json!({"id": "/boxed", "cmd": "sleep 60",
                     "container": {"type": "DOCKER", "docker": {"image": "busybox"}}});
    sup.reconcile(&[assignment("boxed.instance-1", app, vec![])]);
    let end = status_where(&outbox, "boxed.instance-1", |u| u.condition.is_terminal()).await;
    assert_eq!(end.condition, Condition::Error);
    assert_eq!(
        end.message.as_deref(),
        Some("this agent cannot run Docker containers: no engine in this test")
    );
    assert!(end.message.unwrap().starts_with(agent::NO_DOCKER));
}

/// Runs `f` on a runtime of its own that is then dropped, as if the agent process died:
/// runners and child handles go away, the task processes do not.
fn in_a_dying_agent<T>(f: impl std::future::Future<Output = T>) -> T {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let out = rt.block_on(f);
    drop(rt);
    out
}

#[test]
fn a_restarted_agent_finds_its_running_tasks_again_and_does_not_start_them_twice() {
    let dir = tempfile::tempdir().unwrap();
    let app = json!({"id": "/db", "cmd": "echo started >> starts; exec sleep 60"});
    let task = assignment("db.instance-1", app, vec![]);
    let pid = in_a_dying_agent(async {
        let outbox = Arc::new(Outbox::new());
        let sup = supervisor(dir.path(), outbox.clone());
        sup.reconcile(std::slice::from_ref(&task));
        status_where(&outbox, "db.instance-1", |u| {
            u.condition == Condition::Running
        })
        .await;
        checkpoint(dir.path(), "db.instance-1").process.unwrap()
    });
    assert!(
        procfs::is_running(pid),
        "the agent's death must not kill its tasks"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let outbox = Arc::new(Outbox::new());
        let sup = supervisor(dir.path(), outbox.clone());
        let found = sup.recover().await.unwrap();
        assert_eq!(found.running, vec!["db.instance-1".into()]);
        assert!(found.lost.is_empty());
        assert_eq!(sup.running(), vec!["db.instance-1".into()]);

        // The master still wants it running: nothing new starts.
        sup.reconcile(std::slice::from_ref(&task));
        assert_eq!(sup.tasks().len(), 1);
        assert_eq!(checkpoint(dir.path(), "db.instance-1").process, Some(pid));

        // It is watched: a stop reaches the same process and is reported.
        sup.reconcile(&[]);
        let end = status_where(&outbox, "db.instance-1", |u| u.condition.is_terminal()).await;
        assert_eq!(end.condition, Condition::Killed);
        assert!(!procfs::is_running(pid));
        let starts =
            std::fs::read_to_string(dir.path().join("sandboxes/db.instance-1/starts")).unwrap();
        assert_eq!(starts, "started\n");
        assert!(
            updates(&outbox)
                .iter()
                .all(|u| u.condition != Condition::Staging),
            "{:?}",
            updates(&outbox)
        );
    });
}

#[test]
fn a_task_that_exited_while_the_agent_was_down_is_reported_failed() {
    let dir = tempfile::tempdir().unwrap();
    let task = assignment(
        "gone.instance-1",
        json!({"id": "/gone", "cmd": "exec sleep 60"}),
        vec![],
    );
    let pid = in_a_dying_agent(async {
        let outbox = Arc::new(Outbox::new());
        let sup = supervisor(dir.path(), outbox.clone());
        sup.reconcile(std::slice::from_ref(&task));
        status_where(&outbox, "gone.instance-1", |u| {
            u.condition == Condition::Running
        })
        .await;
        checkpoint(dir.path(), "gone.instance-1").process.unwrap()
    });
    killpg(Pid::from_raw(pid.pid as i32), Signal::SIGKILL).unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        eventually("the process to die", || async move {
            (!procfs::is_running(pid)).then_some(())
        })
        .await;
        let outbox = Arc::new(Outbox::new());
        let sup = supervisor(dir.path(), outbox.clone());
        let found = sup.recover().await.unwrap();
        assert_eq!(found.lost, vec!["gone.instance-1".into()]);
        let all = updates(&outbox);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].condition, Condition::Failed);
        assert_eq!(
            all[0].message.as_deref(),
            Some("exited while the agent was down")
        );
        assert!(sup.running().is_empty());

        // Once the master no longer lists it and has its end, it is forgotten.
        outbox.acknowledge(1);
        sup.reconcile(&[]);
        assert!(sup.tasks().is_empty());
        assert!(!dir.path().join("tasks/gone.instance-1.json").exists());
    });
}
