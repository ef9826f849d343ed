//! Readiness checks and the launch delay as Marathon has them (issue 14, scopes 5 and 6),
//! across processes: real `drover master` and `drover agent` binaries on loopback, the agent
//! on its own address (127.0.1.1).
//!
//! - A rolling restart of an app with a readiness check keeps the old instance running until
//!   its successor is ready: the task serves its sandbox with busybox's HTTP server on
//!   `$HOST:$PORT0`, so `GET /ready` is a 404 (not ready) until the test writes `ready` into
//!   that task's sandbox. While it waits, `/v2/deployments` shows the successor's readiness
//!   result (`ready: false`) in the restart's current action.
//! - A crash-looping app waits out its backoff in the launch queue, and
//!   `DELETE /v2/queue/{app}/delay` ends the wait at once.
//!
//! Waits poll conditions with deadlines and fail with the logs of every process.

mod agent_support;
mod common;

use std::path::PathBuf;

use agent_support::{SETTLE, Site};
use client::{App, DelayResult, Deployment, Queue, ReadinessCheckResult, Tasks};
use common::http;
use serde_json::json;

/// busybox's HTTP server on `$HOST:$PORT0`, serving the sandbox (`/ready` once the file is
/// there).
const SERVE_SANDBOX: &str = "exec busybox httpd -f -p \"$HOST:$PORT0\" -h .";

const APP: &str = "/ready/web";

/// The app with a readiness check on its one port, checked every 2 s (Marathon's minimum
/// with a 1 s timeout), keeping the last answer.
fn definition() -> serde_json::Value {
    json!({
        "id": APP, "cmd": SERVE_SANDBOX, "instances": 1, "cpus": 0.1, "mem": 16,
        "portDefinitions": [{"port": 0, "name": "http-api"}],
        "readinessChecks": [{
            "name": "warm", "protocol": "HTTP", "path": "/ready", "portName": "http-api",
            "intervalSeconds": 2, "timeoutSeconds": 1, "httpStatusCodesForReady": [200],
            "preserveLastResponse": true,
        }],
    })
}

/// The app with its tasks and readiness results.
fn app(s: &mut Site) -> Option<App> {
    let r = s.get(&format!("/v2/apps{APP}?embed=app.readiness"))?;
    (r.status == 200).then(|| r.typed::<client::AppEnvelope>().app)
}

/// The readiness result of `task`, once its agent has reported one.
fn result_of(app: &App, task: &str) -> Option<ReadinessCheckResult> {
    app.readiness_check_results
        .iter()
        .flatten()
        .find(|r| r.task_id == task)
        .cloned()
}

/// The deployments that hold the app.
fn deployments(s: &mut Site) -> Option<Vec<Deployment>> {
    let r = s.get("/v2/deployments").filter(|r| r.status == 200)?;
    Some(
        r.typed::<Vec<Deployment>>()
            .into_iter()
            .filter(|d| d.affected_apps.iter().any(|a| a == APP))
            .collect(),
    )
}

/// The sandbox of task `id` on the site's one agent.
fn sandbox(s: &Site, id: &str) -> PathBuf {
    s.agent(0)
        .checkpoints()
        .into_iter()
        .find(|c| c.instance_id == id)
        .map(|c| c.sandbox)
        .unwrap_or_else(|| s.fail(&format!("no checkpoint of task {id}")))
}

/// Makes task `id` ready: its server now has `/ready`.
fn make_ready(s: &Site, id: &str) {
    let path = sandbox(s, id).join("ready");
    std::fs::write(&path, "ready\n")
        .unwrap_or_else(|e| s.fail(&format!("write {}: {e}", path.display())));
}

#[test]
fn a_rolling_restart_keeps_the_old_instance_until_its_successor_is_ready() {
    let mut s = Site::new("marathon-readiness", 1);
    s.start_masters();
    let a = s.add_agent("127.0.1.1", "local", "local-0");
    s.start_agent_active(a);
    s.create_app(&definition());

    // The first instance runs, its check has answered 404: not ready, the deployment waits.
    let first = s.wait_for(
        SETTLE,
        "the first task runs and answered its readiness check",
        |s| {
            let app = app(s)?;
            let task = app.tasks.as_deref()?.first()?.clone();
            // The first check may find the server not listening yet: no answer to keep.
            let result = result_of(&app, &task.id).filter(|r| r.last_response.is_some())?;
            (task.state == "TASK_RUNNING").then_some((task.id, result))
        },
    );
    let (first, result) = first;
    assert_eq!(result.name, "warm");
    assert!(!result.ready, "{result:?}");
    let answer = result
        .last_response
        .expect("preserveLastResponse keeps the answer");
    assert_eq!(answer.status, 404, "{answer:?}");
    assert_eq!(
        deployments(&mut s).map(|d| d.len()),
        Some(1),
        "the deployment waits for readiness"
    );
    make_ready(&s, &first);
    s.wait_until(
        SETTLE,
        "the first deployment finishes once the task is ready",
        |s| {
            let ready = app(s)
                .and_then(|a| result_of(&a, &first))
                .is_some_and(|r| r.ready);
            ready && deployments(s).is_some_and(|d| d.is_empty())
        },
    );

    // A restart: a successor starts; until it is ready, the old instance keeps running.
    let via = s.masters.live_ids()[0];
    let r = http::post(
        &s.masters.addr(via),
        &format!("/v2/apps{APP}/restart"),
        &json!({}),
    )
    .unwrap_or_else(|e| s.fail(&format!("restart: {e}")));
    assert_eq!(r.status, 200, "restart: {r}");
    let successor = s.wait_for(SETTLE, "the successor runs and answered: not ready", |s| {
        let app = app(s)?;
        let task = app
            .tasks
            .iter()
            .flatten()
            .find(|t| t.id != first && t.state == "TASK_RUNNING")?
            .clone();
        let result = result_of(&app, &task.id).filter(|r| r.last_response.is_some())?;
        (!result.ready).then_some(task.id)
    });
    // Its agent has checked it and found it not ready: by now the old one would be stopped
    // if readiness were not waited for.
    let tasks = s.get("/v2/tasks").expect("tasks").typed::<Tasks>().tasks;
    let old = tasks.iter().find(|t| t.id == first);
    assert_eq!(
        old.map(|t| t.state.as_str()),
        Some("TASK_RUNNING"),
        "the old instance runs while its successor is not ready: {tasks:?}"
    );
    assert!(
        s.task_process(&first).is_some_and(|p| p.is_alive()),
        "the old instance's process is alive"
    );
    // The restart's current action shows the successor's readiness, not the old one's.
    let restart = deployments(&mut s).unwrap_or_default();
    assert_eq!(restart.len(), 1, "the restart is in progress: {restart:?}");
    let action = restart[0]
        .current_actions
        .iter()
        .find(|a| a.app == APP)
        .unwrap_or_else(|| panic!("the restart's current actions name {APP}: {restart:?}"));
    let shown: Vec<(&str, &str, bool)> = action
        .readiness_check_results
        .iter()
        .map(|r| (r.task_id.as_str(), r.name.as_str(), r.ready))
        .collect();
    assert_eq!(
        shown,
        [(successor.as_str(), "warm", false)],
        "the deployment shows the successor not ready (and not the old instance): {restart:?}"
    );
    let answer = action.readiness_check_results[0].last_response.as_ref();
    assert_eq!(
        answer.map(|a| a.status),
        Some(404),
        "its last answer is kept: {restart:?}"
    );
    // Both run: the status filter lists both, and refuses what Marathon does not know.
    let running = s
        .get("/v2/tasks?status=running")
        .expect("tasks")
        .typed::<Tasks>()
        .tasks;
    assert_eq!(running.len(), 2, "{running:?}");
    let staging = s
        .get("/v2/tasks?status=staging")
        .expect("tasks")
        .typed::<Tasks>()
        .tasks;
    assert!(staging.is_empty(), "{staging:?}");
    let bad = s.get("/v2/tasks?status=sleeping").expect("an answer");
    assert_eq!(bad.status, 400, "{bad}");
    assert!(bad.message().contains("running or staging"), "{bad}");

    make_ready(&s, &successor);
    s.wait_until(
        SETTLE,
        "the old instance goes and the restart finishes",
        |s| {
            let Some(app) = app(s) else { return false };
            let ids: Vec<&str> = app.tasks.iter().flatten().map(|t| t.id.as_str()).collect();
            ids == [successor.as_str()]
                && result_of(&app, &successor).is_some_and(|r| r.ready)
                && deployments(s).is_some_and(|d| d.is_empty())
        },
    );
}

#[test]
fn a_crash_looping_app_shows_its_delay_and_a_reset_launches_it_at_once() {
    let mut s = Site::new("marathon-delay", 1);
    s.start_masters();
    let a = s.add_agent("127.0.1.1", "local", "local-0");
    s.start_agent_active(a);
    let launches = s.dir().join("launches");
    let app_id = "/ready/crashing";
    s.create_app(&json!({
        "id": app_id, "instances": 1, "cpus": 0.1, "mem": 16,
        "cmd": format!("echo started >> {}; exit 1", launches.display()),
        // An hour: without the reset, nothing would launch again during the test.
        "backoffSeconds": 3600, "maxLaunchDelaySeconds": 3600,
    }));
    let launched = |s: &Site| {
        std::fs::read_to_string(s.dir().join("launches"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let delay = s.wait_for(SETTLE, "the app failed once and waits out its delay", |s| {
        let r = s
            .get(&format!("/v2/queue{app_id}/delay"))
            .filter(|r| r.status == 200)?;
        let d: DelayResult = r.typed();
        d.queue_delay.filter(|q| q.time_left_seconds > 0).map(|_| d)
    });
    assert_eq!(delay.current_delay_seconds, 3600, "{delay:?}");
    assert_eq!(delay.max_launch_delay_seconds, 3600, "{delay:?}");
    assert!(!delay.queue_delay.expect("queued").overdue, "{delay:?}");
    assert_eq!(launched(&s), 1, "one launch, then the delay");
    let queue = s.get("/v2/queue").expect("queue").typed::<Queue>().queue;
    let item = queue.iter().find(|q| q.app_id() == Some(app_id));
    assert!(
        item.is_some_and(|q| q.delay.time_left_seconds > 0 && !q.delay.overdue),
        "the queue entry shows the delay: {queue:?}"
    );

    let via = s.masters.live_ids()[0];
    let addr = s.masters.addr(via);
    let r = http::delete(&addr, &format!("/v2/queue{app_id}/delay"))
        .unwrap_or_else(|e| s.fail(&format!("reset: {e}")));
    assert_eq!(r.status, 204, "reset: {r}");
    s.wait_until(SETTLE, "the reset app is launched again at once", |s| {
        launched(s) >= 2
    });

    for (method, path) in [
        ("GET", "/v2/queue/no-such-app/delay"),
        ("DELETE", "/v2/queue/no-such-app/delay"),
    ] {
        let r = http::request(
            &addr,
            method,
            path,
            None,
            std::time::Duration::from_secs(30),
        )
        .unwrap_or_else(|e| s.fail(&format!("{method} {path}: {e}")));
        assert_eq!(r.status, 404, "{method} {path}: {r}");
        assert!(r.message().contains("/no-such-app"), "{method} {path}: {r}");
    }
}
