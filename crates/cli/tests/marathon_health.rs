//! Health checks where Marathon makes them (issue 14, scope 2), across processes: real
//! `drover master` and `drover agent` binaries on loopback, each agent on its own address
//! (127.0.1.N) with that address as its hostname, as DC/OS names its agents. A task that
//! binds only `$HOST:$PORT0` is reachable by Marathon-level `HTTP` checks, which reach tasks
//! at their host, not at 127.0.0.1. Its tasks carry the app's declared ports as
//! `servicePorts`, as Marathon's do.
//!
//! Waits poll conditions with deadlines and fail with the logs of every process.

mod agent_support;
mod common;

use agent_support::{SETTLE, Site};
use client::App;
use serde_json::json;

/// busybox's HTTP server on `$HOST:$PORT0` only (not on every interface).
const SERVE_ON_HOST: &str = "echo ok > index.html && exec busybox httpd -f -p \"$HOST:$PORT0\"";

#[test]
fn an_app_binding_host_and_port0_with_an_http_check_is_healthy_on_agents_with_distinct_addresses() {
    let mut s = Site::new("marathon-health-host", 1);
    s.start_masters();
    // add_agent gives agent n the address 127.0.1.(n+1). The first is named by its address,
    // as DC/OS names agents; the second has a name that does not resolve, as `drover dev`'s
    // agents do. Either way its tasks' $HOST is its address.
    let mut hostnames = Vec::new();
    for (n, name) in ["127.0.1.1", "agent-b"].into_iter().enumerate() {
        let a = s.add_agent(name, "local", &format!("local-{n}"));
        assert_eq!(
            s.agent(a).ip,
            format!("127.0.1.{}", n + 1),
            "agent {a}'s address"
        );
        s.start_agent_active(a);
        hostnames.push(name.to_string());
    }
    let app_id = "/health/on-host";
    s.create_app(&json!({
        "id": app_id, "cmd": SERVE_ON_HOST, "instances": 2, "cpus": 0.1, "mem": 16,
        // A declared port is the app's service port; the host port comes from the agent.
        "portDefinitions": [{"port": 10042, "name": "http"}],
        "constraints": [["hostname", "UNIQUE"]],
        "healthChecks": [{
            "protocol": "HTTP", "path": "/index.html", "portIndex": 0,
            "gracePeriodSeconds": 600, "intervalSeconds": 1, "delaySeconds": 0,
            "timeoutSeconds": 10, "maxConsecutiveFailures": 3,
        }],
    }));
    let healthy = |app: &App| {
        let tasks = app.tasks.as_deref().unwrap_or_default();
        tasks.len() == 2
            && tasks.iter().all(|t| {
                t.health_check_results.first().is_some_and(|h| h.alive) && t.state == "TASK_RUNNING"
            })
    };
    let app = s.wait_for(SETTLE, "both instances are healthy", |s| {
        s.app(app_id).filter(healthy)
    });
    assert_eq!(app.counts().tasks_healthy, 2, "{app:?}");
    assert_eq!(app.counts().tasks_unhealthy, 0, "{app:?}");
    let mut hosts: Vec<String> = app
        .tasks
        .iter()
        .flatten()
        .filter_map(|t| t.host.clone())
        .collect();
    hosts.sort();
    assert_eq!(hosts, hostnames, "one instance on each agent: {app:?}");
    for t in app.tasks.iter().flatten() {
        assert_eq!(t.service_ports, vec![10042], "servicePorts of {}", t.id);
        assert_ne!(t.ports, vec![10042], "host ports of {}", t.id);
    }
    // The server listens on $HOST only: 127.0.0.1 does not answer on its port.
    for t in app.tasks.iter().flatten() {
        let port = u16::try_from(t.ports[0]).expect("a TCP port");
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "task {} also listens on 127.0.0.1:{port}, so this test proves nothing",
            t.id
        );
    }
}
