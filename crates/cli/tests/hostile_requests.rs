//! Hostile requests against a 3-master cluster (issue 9): numbers beyond every limit, ids and
//! strings that could never run, bodies over the size limits, a PATCH of a missing app, a
//! panic while deciding about one app, and definitions near the size limit that followers
//! must catch up on. After each, every master is still up, a write still succeeds, and
//! nothing that was running was killed.
//!
//! Waits poll to deadlines; nothing here asserts how fast anything happened.

mod agent_support;
mod common;
mod scheduler_support;

use std::collections::BTreeSet;
use std::time::Duration;

use agent_support::{SETTLE, Site};
use client::{AppEnvelope, Queue};
use common::http;
use scheduler_support::site::{
    add_agents, processes_of, send, site, sleeper, start_agents, wait_app_running,
};
use scheduler_support::{LaunchLog, fast_master_flags, ids};
use serde_json::{Value, json};

/// A request to one master, answered (any status) within the harness's default timeout.
fn ask(s: &Site, id: u32, method: &str, path: &str, body: Option<&Value>) -> http::Response {
    let addr = s.masters.addr(id);
    http::request(&addr, method, path, body, http::DEFAULT_TIMEOUT)
        .unwrap_or_else(|e| s.fail(&format!("{method} {path} to master {id}: {e}")))
}

/// Every master runs and answers `/health`.
fn assert_every_master_up(s: &mut Site, after: &str) {
    for id in s.masters.ids() {
        if !s.masters.is_running(id) {
            s.fail(&format!("after {after}: master {id} exited"));
        }
        let r = ask(s, id, "GET", "/health", None);
        if r.status != 200 {
            s.fail(&format!("after {after}: master {id} /health answered {r}"));
        }
    }
}

/// The `errors` Marathon's 422 body lists under `path`.
fn errors_at(r: &http::Response, path: &str) -> Vec<String> {
    r.error()
        .and_then(|e| e.details)
        .into_iter()
        .flatten()
        .filter(|d| d.path == path)
        .flat_map(|d| d.errors)
        .collect()
}

fn app(fields: Value) -> Value {
    let mut base = json!({"id": "/hostile", "cmd": "sleep 1000", "cpus": 0.01, "mem": 8, "portDefinitions": []});
    if let (Some(b), Value::Object(f)) = (base.as_object_mut(), fields) {
        b.extend(f);
    }
    base
}

#[test]
fn hostile_requests_leave_every_master_up_and_kill_nothing() {
    let mut s = site("hostile", 3, fast_master_flags());
    let agents = add_agents(&mut s, "local", &["local-a", "local-b", "local-c"], 1);
    start_agents(&mut s, &agents);
    let log = LaunchLog::new(s.dir(), "steady");
    s.create_app(&sleeper("/steady", 3, &log));
    let before = ids(&wait_app_running(&mut s, "/steady", 3));
    let processes = processes_of(&s, &before);

    // (method, path, body, expected status, path in the 422 body, text the error contains)
    let big_label = "x".repeat(600 * 1024);
    let cases: Vec<(&str, String, Value, u16, &str, &str)> = vec![
        (
            "POST",
            "/v2/apps".into(),
            app(json!({"instances": 1_000_000_000})),
            422,
            "/instances",
            "expected 100000 or less",
        ),
        (
            "POST",
            "/v2/apps".into(),
            app(json!({"instances": 1e9})),
            422,
            "/instances",
            "got 1000000000, expected 100000 or less",
        ),
        (
            "POST",
            "/v2/apps".into(),
            app(json!({"instances": 18446744073709551615u64})),
            422,
            "/instances",
            "expected 100000 or less",
        ),
        (
            "PATCH",
            "/v2/apps/steady".into(),
            json!({"instances": 4294967296u64}),
            422,
            "/instances",
            "got 4294967296",
        ),
        (
            "PUT",
            "/v2/apps/steady".into(),
            sleeper("/steady", 0, &log)
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("instances".into(), json!(4294967296u64));
                    Value::Object(o)
                })
                .unwrap(),
            422,
            "/instances",
            "got 4294967296",
        ),
        (
            "POST",
            "/v2/apps".into(),
            app(json!({"cpus": 1e9})),
            422,
            "/cpus",
            "or less",
        ),
        (
            "POST",
            "/v2/apps".into(),
            app(json!({"mem": 1e300})),
            422,
            "/mem",
            "or less",
        ),
        (
            "POST",
            "/v2/apps".into(),
            app(json!({"disk": 1e20})),
            422,
            "/disk",
            "or less",
        ),
        (
            "POST",
            "/v2/apps".into(),
            app(json!({"backoffSeconds": 1e300})),
            422,
            "/backoffSeconds",
            "or less",
        ),
        (
            "POST",
            "/v2/apps".into(),
            app(json!({"maxLaunchDelaySeconds": 1e300})),
            422,
            "/maxLaunchDelaySeconds",
            "or less",
        ),
        (
            "POST",
            "/v2/apps".into(),
            app(json!({"backoffFactor": 1e300})),
            422,
            "/backoffFactor",
            "or less",
        ),
        (
            "POST",
            "/v2/apps".into(),
            app(json!({"taskKillGracePeriodSeconds": 1e300})),
            422,
            "/taskKillGracePeriodSeconds",
            "or less",
        ),
        (
            "POST",
            "/v2/apps".into(),
            app(json!({"healthChecks": [{"protocol": "TCP", "intervalSeconds": 1e300}]})),
            422,
            "/healthChecks(0)/intervalSeconds",
            "or less",
        ),
        (
            "POST",
            "/v2/apps".into(),
            app(
                json!({"healthChecks": [{"protocol": "TCP", "maxConsecutiveFailures": 4294967296u64}]}),
            ),
            422,
            "/healthChecks(0)/maxConsecutiveFailures",
            "or less",
        ),
        (
            "POST",
            "/v2/apps".into(),
            app(json!({"portDefinitions": [{"port": 99999999999u64}]})),
            422,
            "/portDefinitions(0)/port",
            "between 0 and 65535",
        ),
        (
            "POST",
            "/v2/apps".into(),
            app(
                json!({"portDefinitions": (0..101).map(|_| json!({"port": 0})).collect::<Vec<_>>()}),
            ),
            422,
            "/portDefinitions",
            "100 or fewer",
        ),
        (
            "POST",
            "/v2/apps".into(),
            app(
                json!({"unreachableStrategy": {"inactiveAfterSeconds": 1e300, "expungeAfterSeconds": 1e300}}),
            ),
            422,
            "/unreachableStrategy/inactiveAfterSeconds",
            "or less",
        ),
        (
            "POST",
            "/v2/apps".into(),
            app(json!({"id": format!("/{}", "a".repeat(250))})),
            422,
            "/id",
            "255 bytes",
        ),
        (
            "POST",
            "/v2/apps".into(),
            app(json!({"cmd": "sleep 1\u{0}0"})),
            422,
            "/cmd",
            "NUL byte",
        ),
        (
            "POST",
            "/v2/apps".into(),
            app(json!({"env": {"A": "\u{0}"}})),
            422,
            "/env/A",
            "NUL byte",
        ),
        (
            "POST",
            "/v2/apps".into(),
            app(json!({"labels": {"big": big_label}})),
            422,
            "/",
            "at most 524288 bytes",
        ),
        (
            "POST",
            "/v1/plan".into(),
            app(json!({"instances": 1_000_000_000})),
            422,
            "/instances",
            "expected 100000 or less",
        ),
        (
            "PATCH",
            "/v2/apps/missing".into(),
            json!({"instances": 2}),
            404,
            "",
            "does not exist",
        ),
    ];
    let ids_ = s.masters.ids();
    for (n, (method, path, body, status, at, text)) in cases.iter().enumerate() {
        // Alternate the masters, so followers (which forward) and the leader both answer.
        let via = ids_[n % ids_.len()];
        let what = format!("{method} {path} via master {via} ({at} {text})");
        let r = ask(&s, via, method, path, Some(body));
        if r.status != *status {
            s.fail(&format!("{what}: expected {status}, got {r}"));
        }
        let found = if at.is_empty() {
            r.message().contains(text)
        } else {
            errors_at(&r, at).iter().any(|e| e.contains(text))
        };
        if !found {
            s.fail(&format!("{what}: the answer does not say so: {r}"));
        }
        assert_every_master_up(&mut s, &what);
    }
    // A PATCH of a missing app did not create it.
    assert_eq!(send(&mut s, "GET", "/v2/apps/missing", None).status, 404);

    // A body over the API's limit is refused with a JSON message, by a follower too.
    let huge = app(json!({"labels": {"big": "x".repeat(3 * 512 * 1024)}}));
    for via in ids_.clone() {
        let r = ask(&s, via, "POST", "/v2/apps", Some(&huge));
        if r.status != 413 || r.message().is_empty() {
            s.fail(&format!(
                "a 1.5 MiB body via master {via}: expected 413 with a JSON message, got {r}"
            ));
        }
    }
    assert_every_master_up(&mut s, "bodies over the limit");

    // An app no agent can take, at the instance limit: accepted, queued with its reason,
    // and every master stays up while the scheduler keeps deciding about it.
    let nowhere = app(
        json!({"id": "/nowhere", "instances": 100_000, "constraints": [["hostname", "LIKE", "nowhere"]]}),
    );
    assert_eq!(send(&mut s, "POST", "/v2/apps", Some(&nowhere)).status, 201);
    s.wait_for(
        SETTLE,
        "/v2/queue lists /nowhere with 100000 waiting",
        |s| {
            let q = s.get("/v2/queue")?;
            q.typed_ok::<Queue>()?
                .queue
                .into_iter()
                .find(|e| e.app_id() == Some("/nowhere") && e.count == 100_000)
        },
    );
    assert_every_master_up(&mut s, "an app of 100000 instances that cannot be placed");

    // A write still succeeds and runs; nothing that was running was killed or replaced.
    let after = LaunchLog::new(s.dir(), "after");
    s.create_app(&sleeper("/after", 1, &after));
    wait_app_running(&mut s, "/after", 1);
    let now = ids(&wait_app_running(&mut s, "/steady", 3));
    assert_eq!(now, before, "the steady app's instances changed");
    for (id, p) in &processes {
        if !p.is_alive() {
            s.fail(&format!("task {id} of /steady was killed"));
        }
    }
    let launched: BTreeSet<String> = log.ids();
    assert_eq!(launched, before, "the steady app was relaunched");
}

#[test]
fn a_failure_deciding_about_one_app_stays_with_that_app() {
    let mut s = Site::new("contained", 1);
    s.masters.extra_args = fast_master_flags();
    s.masters
        .extra_env
        .push(("DROVER_FAILPOINT_PANIC_APP".into(), "/doomed".into()));
    s.start_masters();
    let agents = add_agents(&mut s, "local", &["local-a"], 1);
    start_agents(&mut s, &agents);
    let log = LaunchLog::new(s.dir(), "apps");
    s.create_app(&sleeper("/doomed", 1, &log));
    s.create_app(&sleeper("/fine", 2, &log));
    wait_app_running(&mut s, "/fine", 2);
    let entry = s.wait_for(SETTLE, "/v2/queue says why /doomed is not scheduled", |s| {
        let q = s.get("/v2/queue")?;
        q.typed_ok::<Queue>()?
            .queue
            .into_iter()
            .find(|e| e.app_id() == Some("/doomed"))
    });
    let error = entry.scheduling_error().unwrap_or_default();
    assert!(error.contains("could not schedule this app"), "{entry:?}");
    let check = s.wait_for(SETTLE, "cluster health names /doomed", |s| {
        scheduler_support::site::health_check(s, "scheduler")
            .filter(|c| c.status == client::Status::Fail)
    });
    assert!(check.reason.contains("/doomed"), "{check:?}");
    assert_every_master_up(&mut s, "a panic while scheduling /doomed");
    // Later changes still go through: the scheduler was not stopped by the panic.
    s.put_app(&sleeper("/fine", 3, &log));
    wait_app_running(&mut s, "/fine", 3);
}

#[test]
fn followers_catch_up_on_definitions_near_the_size_limit() {
    let mut s = Site::new("near-limit", 3);
    s.start_masters();
    let leader = s.masters.wait_for_leader_id(SETTLE);
    let follower = s.masters.a_follower(leader);
    s.masters.stop(follower);
    // 24 definitions of about 500 KiB: together far beyond one request body's limit.
    let label = "y".repeat(500 * 1024);
    let wanted: Vec<String> = (0..24).map(|i| format!("/near-limit-{i}")).collect();
    let leader_addr = s.masters.addr(leader);
    for id in &wanted {
        let body = json!({"id": id, "cmd": "true", "instances": 0, "labels": {"big": label}});
        let r = http::post(&leader_addr, "/v2/apps", &body)
            .unwrap_or_else(|e| s.fail(&format!("POST {id}: {e}")));
        if r.status != 201 {
            s.fail(&format!("POST {id} with the follower paused: {r}"));
        }
    }
    s.masters.cont(follower);
    s.masters.wait_caught_up(follower, Duration::from_secs(120));
    // Restarted, it replays those entries from its own disk and catches up again.
    s.masters.restart(follower);
    s.masters.wait_caught_up(follower, Duration::from_secs(120));
    // It holds its share of the quorum: with the leader gone, it and the third master
    // elect a leader and serve a write.
    let old = s.masters.addr(leader);
    s.masters.kill(leader);
    s.masters.wait_for_new_leader(&old, Duration::from_secs(60));
    let r = send(
        &mut s,
        "POST",
        "/v2/apps",
        Some(&json!({"id": "/after-failover", "cmd": "true", "instances": 0})),
    );
    assert_eq!(r.status, 201, "{r}");
    let addr = s.masters.addr(follower);
    for id in &wanted {
        let r = http::get(&addr, &format!("/v2/apps{id}"))
            .unwrap_or_else(|e| s.fail(&format!("GET {id}: {e}")));
        assert_eq!(r.status, 200, "{id} via the follower: {r}");
        let app = r.typed::<AppEnvelope>().app;
        assert_eq!(app.label("big").map(str::len), Some(label.len()));
    }
}
