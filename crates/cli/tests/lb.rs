//! `drover lb` and VIPs across processes (issue 15): real masters, agents and balancers on
//! loopback, instances that are `busybox httpd` answering with their own instance id (so the
//! client counts which instance served each connection).
//!
//! - Two `drover lb` processes serve an HTTP virtual host and a TCP service port declared
//!   with marathon-lb's labels; either can be killed and the other still serves.
//! - A client on an agent reaches an app through the agent's VIP; connections go to the
//!   agent's zone while its instances are healthy, and to the other zone when they are not.
//!
//! Waits poll to deadlines and fail with every process's log tail.

mod agent_support;
mod common;
mod lb_support;
mod scheduler_support;

use std::collections::BTreeSet;

use agent_support::{SETTLE, Site};
use lb_support::{Lb, SERVE_ID, count, get};
use scheduler_support::fast_master_flags;
use scheduler_support::site::{add_agents, site, start_agents, wait_app_running};
use serde_json::{Value, json};

use crate::common::free_port;

/// The ids of `tasks`.
fn ids(tasks: &[scheduler_support::Task]) -> BTreeSet<String> {
    tasks.iter().map(|t| t.id.clone()).collect()
}

/// An app of `n` instances answering their id on port 0, with `labels` and `port_labels`.
fn id_app(id: &str, n: u32, labels: Value, port_labels: Value) -> Value {
    json!({
        "id": id, "cmd": SERVE_ID, "instances": n, "cpus": 0.05, "mem": 8,
        "portDefinitions": [{"port": 0, "labels": port_labels}],
        "labels": labels,
    })
}

/// `n` answers of `GET /` through `addr` with `Host: host`; fails on the first that is not a
/// 200 from one of `expected`.
fn answers(s: &Site, addr: &str, host: &str, n: usize, expected: &BTreeSet<String>) -> Vec<String> {
    (0..n)
        .map(|i| match get(addr, host, "/") {
            Ok((200, body)) if expected.contains(&body) => body,
            other => s.fail(&format!(
                "request {i} through {addr} (Host {host}) got {other:?}, expected 200 from one of {expected:?}"
            )),
        })
        .collect()
}

#[test]
fn two_balancers_serve_a_marathon_lb_vhost_and_tcp_port_and_either_can_be_killed() {
    let mut s = site("lb-edge", 1, fast_master_flags());
    let agents = add_agents(&mut s, "local", &["local-a", "local-b"], 1);
    start_agents(&mut s, &agents);
    let tcp_port = free_port();
    s.create_app(&id_app(
        "/edge/web",
        2,
        json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.test"}),
        json!({}),
    ));
    s.create_app(&id_app(
        "/edge/db",
        1,
        json!({"HAPROXY_GROUP": "external", "HAPROXY_0_PORT": tcp_port.to_string(), "HAPROXY_0_MODE": "tcp"}),
        json!({}),
    ));
    let web = ids(&wait_app_running(&mut s, "/edge/web", 2));
    let db = ids(&wait_app_running(&mut s, "/edge/db", 1));
    let masters = s.master_list();
    let mut lbs = vec![
        Lb::start(s.dir(), "one", &masters, "127.0.2.1", &[]),
        Lb::start(s.dir(), "two", &masters, "127.0.2.2", &[]),
    ];
    for (i, lb) in lbs.iter().enumerate() {
        s.notes.push(lb.note(&format!("#{i} on {}", lb.ip)));
    }
    for lb in &lbs {
        let (http, tcp) = (lb.http(), lb.at(tcp_port));
        s.wait_until(
            SETTLE,
            &format!("{http} routes web.example.test and {tcp} the TCP port"),
            |_| {
                matches!(get(&http, "web.example.test", "/"), Ok((200, ref b)) if web.contains(b))
                    && matches!(get(&tcp, "anything", "/"), Ok((200, ref b)) if db.contains(b))
            },
        );
    }
    for lb in &lbs {
        let seen = count(&answers(&s, &lb.http(), "web.example.test", 10, &web));
        assert_eq!(
            seen.len(),
            2,
            "both instances of /edge/web serve through {}: {seen:?}",
            lb.http()
        );
        answers(&s, &lb.at(tcp_port), "tcp", 3, &db);
        match get(&lb.http(), "nobody.example.test", "/") {
            Ok((404, body)) => assert!(body.contains("nobody.example.test"), "{body}"),
            other => s.fail(&format!(
                "an unknown virtual host got {other:?}, expected a 404 naming it"
            )),
        }
    }
    let metrics = lbs[1]
        .metrics()
        .unwrap_or_else(|e| s.fail(&format!("metrics: {e}")));
    for id in &web {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("drover_lb_backend_connections_total") && l.contains(id.as_str())
            })
            .unwrap_or_else(|| s.fail(&format!("no connection count for {id}:\n{metrics}")));
        assert!(line.contains("service=\"/edge/web:0\""), "{line}");
    }

    // Either balancer can go: the other serves both routes on its own.
    lbs[0].kill();
    answers(&s, &lbs[1].http(), "web.example.test", 10, &web);
    answers(&s, &lbs[1].at(tcp_port), "tcp", 3, &db);
    let again = Lb::start(s.dir(), "one-again", &masters, "127.0.2.1", &[]);
    let http = again.http();
    s.wait_until(
        SETTLE,
        "the restarted balancer routes the vhost",
        |_| matches!(get(&http, "web.example.test", "/"), Ok((200, ref b)) if web.contains(b)),
    );
    lbs[1].kill();
    answers(&s, &again.http(), "web.example.test", 10, &web);
}
