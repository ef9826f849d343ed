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

/// `drover_lb_backend_connections_total` per instance id, from the metrics at `admin`.
fn connections_per_instance(s: &Site, admin: &str) -> std::collections::BTreeMap<String, usize> {
    let (_, text) = get(admin, "admin", "/metrics")
        .unwrap_or_else(|e| s.fail(&format!("metrics of {admin}: {e}")));
    text.lines()
        .filter(|l| l.starts_with("drover_lb_backend_connections_total{"))
        .filter_map(|l| {
            let id = l.split("instance=\"").nth(1)?.split('"').next()?;
            let n = l.rsplit(' ').next()?.parse().ok()?;
            Some((id.to_string(), n))
        })
        .collect()
}

/// The hostname of agent `n` of zone `zone` in [`add_agents`]' naming.
fn agent_host(zone: &str, n: usize) -> String {
    format!("agent-{zone}-{n}")
}

/// The address a hosts file gives `name`.
fn resolve(hosts_file: &std::path::Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(hosts_file).ok()?;
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let mut parts = l.split_whitespace();
        let ip = parts.next()?;
        parts.any(|n| n == name).then(|| ip.to_string())
    })
}

/// The instances of an app by zone, and the masters' word on each one's health.
struct Zones {
    a: BTreeSet<String>,
    b: BTreeSet<String>,
    /// (zone, healthy) of every task.
    health: Vec<(String, Option<bool>)>,
}

/// [`Zones`] of `app`.
fn by_zone(s: &mut Site, app: &str) -> Zones {
    let tasks = scheduler_support::site::app_tasks(s, app).unwrap_or_default();
    let zone = |z: &str| {
        tasks
            .iter()
            .filter(|t| t.zone == z)
            .map(|t| t.id.clone())
            .collect()
    };
    Zones {
        a: zone("local-a"),
        b: zone("local-b"),
        health: tasks.iter().map(|t| (t.zone.clone(), t.alive)).collect(),
    }
}

#[test]
fn a_vip_on_each_agent_prefers_its_zone_and_moves_when_the_zone_is_unhealthy() {
    let mut s = site("lb-vip", 1, fast_master_flags());
    let agents = add_agents(&mut s, "local", &["local-a", "local-b"], 1);
    let mut vip_admin = Vec::new();
    for (i, _) in &agents {
        let ip = s.agent(*i).ip.clone();
        let admin = format!("{ip}:{}", free_port());
        s.agent_mut(*i).extra_args =
            vec!["--vip-addr".into(), ip, "--vip-admin".into(), admin.clone()];
        vip_admin.push(admin);
    }
    start_agents(&mut s, &agents);
    let vip_port = free_port();
    let sick = s.dir().join("sick-");
    let mut app = id_app(
        "/vip/web",
        4,
        json!({}),
        json!({"VIP_0": format!("/web:{vip_port}")}),
    );
    app["constraints"] = json!([["@zone", "GROUP_BY"]]);
    // Healthy unless the test marks the instance's agent sick; not killed for it within the
    // test (a COMMAND check with maxConsecutiveFailures 0 kills at the first failure, as
    // Marathon documents for Mesos-level checks).
    app["healthChecks"] = json!([{
        "protocol": "COMMAND",
        "command": {"value": format!("test ! -e '{}'\"$HOST\"", sick.display())},
        "gracePeriodSeconds": 300, "intervalSeconds": 1, "delaySeconds": 0,
        "timeoutSeconds": 10, "maxConsecutiveFailures": 10_000,
    }]);
    s.create_app(&app);
    wait_app_running(&mut s, "/vip/web", 4);
    let (zone_a, zone_b) = s.wait_for(
        SETTLE,
        "all four instances are healthy, two per zone",
        |s| {
            let z = by_zone(s, "/vip/web");
            let healthy = z.health.iter().all(|(_, h)| *h == Some(true));
            (z.a.len() == 2 && z.b.len() == 2 && healthy).then_some((z.a, z.b))
        },
    );
    let all: BTreeSet<String> = zone_a.union(&zone_b).cloned().collect();

    // The name resolves, through the agent's hosts file, to the agent's own VIP address.
    let (a_agent, b_agent) = (s.agent(agents[0].0), s.agent(agents[1].0));
    let (a_hosts, b_hosts) = (
        a_agent.work_dir.join("vip-hosts"),
        b_agent.work_dir.join("vip-hosts"),
    );
    let (a_ip, b_ip) = (a_agent.ip.clone(), b_agent.ip.clone());
    let name = "web.marathon.l4lb.drover.directory";
    let via_a = s.wait_for(SETTLE, "agent a's hosts file names the VIP", |_| {
        resolve(&a_hosts, name)
    });
    assert_eq!(
        via_a, a_ip,
        "the VIP name resolves to agent a's own address"
    );
    assert_eq!(resolve(&b_hosts, name).as_deref(), Some(b_ip.as_str()));
    let (a_vip, b_vip) = (format!("{a_ip}:{vip_port}"), format!("{b_ip}:{vip_port}"));
    s.wait_until(SETTLE, "both agents serve the VIP", |_| {
        matches!(get(&a_vip, name, "/"), Ok((200, ref b)) if zone_a.contains(b))
            && matches!(get(&b_vip, name, "/"), Ok((200, ref b)) if zone_b.contains(b))
    });

    // Each agent's connections go to its own zone, spread over both of its instances.
    let from_a = count(&answers(&s, &a_vip, name, 20, &zone_a));
    assert_eq!(
        from_a.len(),
        2,
        "both zone-a instances serve agent a: {from_a:?}"
    );
    let from_b = count(&answers(&s, &b_vip, name, 20, &zone_b));
    assert_eq!(
        from_b.len(),
        2,
        "both zone-b instances serve agent b: {from_b:?}"
    );
    // The agent's own count per backend says the same.
    let per_backend = connections_per_instance(&s, &vip_admin[0]);
    let to_a: usize = zone_a
        .iter()
        .map(|id| per_backend.get(id).copied().unwrap_or(0))
        .sum();
    let to_b: usize = zone_b
        .iter()
        .map(|id| per_backend.get(id).copied().unwrap_or(0))
        .sum();
    assert!(
        to_a >= 20 && to_b == 0,
        "agent a's VIP connections per instance: {per_backend:?}"
    );

    // Zone a turns unhealthy: once the masters know, agent a sends to zone b, and no
    // connection fails on the way (the zone-a instances still answer meanwhile).
    // `$HOST` is the agent's hostname or (on newer masters) its address: mark both.
    let a_marks = [
        format!("{}{}", sick.display(), agent_host("local-a", 1)),
        format!("{}{a_ip}", sick.display()),
    ];
    for mark in &a_marks {
        std::fs::write(mark, "").expect("mark zone a sick");
    }
    s.wait_until(
        SETTLE,
        "the masters see zone a's instances unhealthy",
        |s| {
            by_zone(s, "/vip/web")
                .health
                .iter()
                .all(|(z, h)| (z == "local-a") == (*h == Some(false)))
        },
    );
    s.wait_until(SETTLE, "agent a's VIP sends to zone b", |s| {
        let got = answers(s, &a_vip, name, 1, &all);
        zone_b.contains(&got[0])
    });
    let moved = count(&answers(&s, &a_vip, name, 20, &zone_b));
    assert_eq!(
        moved.len(),
        2,
        "both zone-b instances take agent a's connections: {moved:?}"
    );

    // Healthy again: back home.
    for mark in &a_marks {
        std::fs::remove_file(mark).expect("heal zone a");
    }
    s.wait_until(SETTLE, "agent a's VIP sends to zone a again", |s| {
        let got = answers(s, &a_vip, name, 1, &all);
        zone_a.contains(&got[0])
    });
    answers(&s, &a_vip, name, 20, &zone_a);
}

#[test]
fn a_stopped_balancer_refuses_new_connections_and_lets_open_ones_finish() {
    use std::io::{Read, Write};
    let mut s = site("lb-drain", 1, fast_master_flags());
    let agents = add_agents(&mut s, "local", &["local-a"], 1);
    start_agents(&mut s, &agents);
    let tcp_port = free_port();
    s.create_app(&id_app(
        "/drain/db",
        1,
        json!({"HAPROXY_GROUP": "external", "HAPROXY_0_PORT": tcp_port.to_string()}),
        json!({}),
    ));
    let db = ids(&wait_app_running(&mut s, "/drain/db", 1));
    let mut lb = Lb::start(s.dir(), "drain", &s.master_list(), "127.0.2.1", &[]);
    s.notes.push(lb.note("drain"));
    let addr = lb.at(tcp_port);
    s.wait_until(
        SETTLE,
        "the balancer serves the TCP port",
        |_| matches!(get(&addr, "tcp", "/"), Ok((200, ref b)) if db.contains(b)),
    );
    // Open, then stop the balancer before sending anything on it.
    let mut open = std::net::TcpStream::connect(&addr).expect("connect through the balancer");
    open.set_read_timeout(Some(lb_support::EXCHANGE))
        .expect("timeout");
    s.wait_until(SETTLE, "the balancer counts the open connection", |_| {
        lb.metrics().is_ok_and(|m| {
            m.lines()
                .any(|l| l.starts_with("drover_lb_backend_active{") && l.ends_with(" 1"))
        })
    });
    lb.term();
    s.wait_until(
        SETTLE,
        "the stopped balancer refuses new connections",
        |_| std::net::TcpStream::connect(&addr).is_err(),
    );
    assert!(
        lb.exited().is_none(),
        "the balancer exited with a connection still open"
    );
    open.write_all(b"GET / HTTP/1.1\r\nHost: tcp\r\nConnection: close\r\n\r\n")
        .expect("send on the open connection");
    let mut answer = String::new();
    open.read_to_string(&mut answer).expect("read the answer");
    assert!(
        answer.starts_with("HTTP/1.") && answer.contains(" 200 "),
        "{answer}"
    );
    assert!(db.iter().any(|id| answer.contains(id.as_str())), "{answer}");
    drop(open);
    let status = s.wait_for(SETTLE, "the drained balancer exits", |_| lb.exited());
    assert!(status.success(), "exit status {status}");
}

#[test]
fn bad_flags_and_a_taken_address_say_what_is_wrong() {
    use std::process::Command;
    let run = |args: &[&str]| {
        let mut cmd = Command::new(common::DROVER);
        cmd.arg("lb").arg("--insecure").args(args);
        common::run_to_exit(cmd, common::EXIT)
    };
    let (status, _, err) = run(&["--masters", ","]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("--masters"), "{err}");
    let (status, _, err) = run(&["--masters", "127.0.0.1:1", "--domain", "{}"]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("--domain"), "{err}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let admin = format!("127.0.0.1:{}", free_port());
    let (status, _, err) = run(&[
        "--masters",
        "127.0.0.1:1",
        "--http",
        &addr,
        "--admin",
        &admin,
    ]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains(&addr) && err.contains("--http"), "{err}");
}
