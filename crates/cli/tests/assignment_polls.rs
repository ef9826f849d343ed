//! An agent's assignments long poll returns only when its own assignments change: commits
//! that concern other agents (placements, scale-ups, app updates) do not wake it.
//!
//! One real master; the two agents are played by the test over HTTP (register, heartbeat,
//! long poll), so that every answer of the poll can be counted.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::Cluster;
use common::http;
use serde_json::{Value, json};

const ROUND: Duration = Duration::from_secs(30);

fn agent(id: &str, ip: &str) -> Value {
    json!({
        "agent": {
            "id": id, "hostname": format!("{id}.test"), "ip": ip,
            "resources": {"cpus": 8, "mem": 8192, "disk": 10000},
        },
        "version": "test",
    })
}

/// Keeps an agent alive for the master while the test runs.
fn heartbeat_forever(addr: String, id: &'static str) {
    thread::spawn(move || {
        loop {
            let _ = http::post(
                &addr,
                &format!("/internal/agents/{id}/heartbeat"),
                &json!({}),
            );
            thread::sleep(Duration::from_millis(300));
        }
    });
}

/// One long poll, answered on `tx` with its revision and task ids.
fn poll(
    addr: String,
    id: &'static str,
    after: u64,
    wait_ms: u64,
) -> mpsc::Receiver<(u64, Vec<String>)> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let path = format!("/internal/agents/{id}/assignments?after={after}&wait_ms={wait_ms}");
        let r = http::request(
            &addr,
            "GET",
            &path,
            None,
            Duration::from_millis(wait_ms) + ROUND,
        )
        .expect("the long poll is answered");
        assert_eq!(r.status, 200, "{}", r.body);
        // The internal agent protocol (`state::protocol::Assignments`), not the public API
        // that `client` types: read raw.
        let tasks = r.body_json["tasks"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t["instance_id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let _ = tx.send((r.body_json["revision"].as_u64().unwrap_or(0), tasks));
    });
    rx
}

fn app_on(id: &str, host: &str, instances: u32) -> Value {
    json!({
        "id": id, "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": instances,
        "portDefinitions": [], "constraints": [["hostname", "CLUSTER", host]],
    })
}

#[test]
fn a_poll_returns_only_when_that_agents_own_assignments_change() {
    let mut c = Cluster::launch("assignment-polls", 1);
    c.wait_for_leader(common::ELECTION);
    let addr = c.addr(1);
    for (id, ip) in [("agent-a", "127.0.10.1"), ("agent-b", "127.0.10.2")] {
        let r = http::post(&addr, "/internal/agents/register", &agent(id, ip)).expect("registers");
        assert_eq!(r.status, 200, "{}", r.body);
    }
    heartbeat_forever(addr.clone(), "agent-a");
    heartbeat_forever(addr.clone(), "agent-b");

    // Agent B's first poll answers at once (after=0 with nothing assigned is answered by the
    // wait running out; use a short one), and gives it the revision to wait after.
    let (b_revision, b_tasks) = poll(addr.clone(), "agent-b", 0, 200)
        .recv_timeout(ROUND)
        .expect("the first poll is answered");
    assert!(b_tasks.is_empty());

    // B waits (up to 25 s) while everything that happens concerns agent A only.
    let waiting = poll(addr.clone(), "agent-b", b_revision, 25_000);
    let answered_before = c
        .metric(1, "drover_assignment_polls_answered_total")
        .unwrap_or(0.0);
    for n in 1..=5 {
        // Forced: the fake agents never run anything, so no deployment finishes.
        let r = http::put(
            &addr,
            "/v2/apps/only-on-a?force=true",
            &app_on("/only-on-a", "agent-a.test", n),
        )
        .expect("the master answers");
        assert!(r.is_success(), "{}", r.body);
        // Wait until A has been assigned the new instance.
        c.wait_until(ROUND, "A to be assigned all of /only-on-a", |_| {
            let (_, tasks) = poll(addr.clone(), "agent-a", 0, 1)
                .recv_timeout(ROUND)
                .expect("A's poll is answered");
            tasks.len() == n as usize
        });
    }
    // A's assignments changed five times; B's poll has not returned.
    assert!(
        waiting.try_recv().is_err(),
        "B's poll returned although only A's assignments changed"
    );
    let answered = c
        .metric(1, "drover_assignment_polls_answered_total")
        .unwrap_or(0.0);
    assert!(
        answered > answered_before,
        "A's polls were answered and counted"
    );

    // Now something for B: its waiting poll returns, with the new task and a new revision.
    let r = http::put(
        &addr,
        "/v2/apps/on-b?force=true",
        &app_on("/on-b", "agent-b.test", 1),
    )
    .expect("the master answers");
    assert!(r.is_success(), "{}", r.body);
    let (revision, tasks) = waiting
        .recv_timeout(ROUND)
        .expect("B's poll returns when B is assigned something");
    assert!(revision > b_revision, "{revision} > {b_revision}");
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert!(tasks[0].starts_with("on-b.instance-"), "{tasks:?}");
}

#[test]
fn a_poll_with_definitions_once_carries_each_app_version_once_and_expands_to_the_full_answer() {
    let mut c = Cluster::launch("assignment-definitions", 1);
    c.wait_for_leader(common::ELECTION);
    let addr = c.addr(1);
    let r = http::post(
        &addr,
        "/internal/agents/register",
        &agent("agent-a", "127.0.11.1"),
    )
    .expect("registers");
    assert_eq!(r.status, 200, "{}", r.body);
    heartbeat_forever(addr.clone(), "agent-a");
    for app in ["/web", "/db"] {
        let r = http::put(
            &addr,
            &format!("/v2/apps{app}?force=true"),
            &app_on(app, "agent-a.test", 3),
        )
        .expect("the master answers");
        assert!(r.is_success(), "{}", r.body);
    }
    let path = "/internal/agents/agent-a/assignments?after=0&wait_ms=1";
    let mut answers = (Value::Null, Value::Null);
    c.wait_until(ROUND, "six instances to be assigned to agent-a", |_| {
        let shared = http::get(&addr, &format!("{path}&definitions=once")).expect("answered");
        let full = http::get(&addr, path).expect("answered");
        assert_eq!(
            (shared.status, full.status),
            (200, 200),
            "{} {}",
            shared.body,
            full.body
        );
        let placed = |v: &Value| v["tasks"].as_array().map_or(0, Vec::len);
        let done = placed(&shared.body_json) == 6 && placed(&full.body_json) == 6;
        answers = (shared.body_json, full.body_json);
        done && answers.0["revision"] == answers.1["revision"]
    });
    let (shared, full) = answers;

    // One definition per app version, tasks naming theirs; the full form has one per task.
    let definitions = shared["definitions"].as_array().expect("definitions");
    let mut ids: Vec<&str> = definitions
        .iter()
        .filter_map(|d| d["app"]["id"].as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["/db", "/web"], "{shared}");
    for t in shared["tasks"].as_array().expect("tasks") {
        assert!(t.get("app").is_none(), "{t}");
        assert!(t["app_id"].is_string(), "{t}");
    }
    for t in full["tasks"].as_array().expect("tasks") {
        assert!(t["app"]["cmd"].is_string(), "{t}");
    }
    // Two definitions on the wire instead of six.
    let commands = |v: &Value| v.to_string().matches("\"cmd\":").count();
    assert_eq!((commands(&shared), commands(&full)), (2, 6), "{shared}");

    // What the agent reads from either is the same.
    let expanded = serde_json::from_value::<state::protocol::SharedAssignments>(shared)
        .expect("the shared form reads")
        .expand()
        .expect("every task's definition is there");
    let read: state::protocol::Assignments =
        serde_json::from_value(full).expect("the full form reads");
    assert_eq!(expanded, read);
}
