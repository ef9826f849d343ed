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
