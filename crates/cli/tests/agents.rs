//! Agents, tested across processes (issue 4, "Must be true when done"): real `drover agent`
//! and `drover master` binaries on loopback (127.0.0.1 for masters, 127.0.1.N for agents),
//! real task processes. Fault domain detection, registration and `drover node list`, the
//! refused duplicate address, the task environment and ports, health checks, an agent
//! SIGKILLed and restarted, every master stopped for 30 s, fencing of assignments from an
//! older term (against a fake master), and instances of a lost agent replaced elsewhere.
//!
//! Waits poll conditions with deadlines and fail with the logs of every process; nothing
//! here asserts on timings. Dropping a [`Site`] kills the agents and every task process group
//! they started.

mod agent_support;
mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use agent_support::events::EventStream;
use agent_support::fake_master::{self, FakeMaster};
use agent_support::http_stub::HttpStub;
use agent_support::procs::{self, TaskProcess};
use agent_support::{DomainSource, SETTLE, Site, agent_id, write_script};
use client::{App, Event, HealthCheckResult, Node, NodeState, Nodes};
use common::{DROVER, TempDir, free_port, run_to_exit};
use serde_json::{Value, json};

/// `(id, host, ports)` of every task of an app.
fn tasks_of(app: &App) -> Vec<(String, String, Vec<u64>)> {
    app.tasks
        .iter()
        .flatten()
        .map(|t| {
            let host = t.host.clone().unwrap_or_default();
            (t.id.clone(), host, t.ports.clone())
        })
        .collect()
}

/// A long-running app of `n` instances that does nothing.
fn sleeper(id: &str, n: u32) -> Value {
    json!({"id": id, "cmd": "exec sleep 1000", "instances": n, "cpus": 0.1, "mem": 16})
}

#[test]
fn an_agent_with_a_detect_script_registers_and_node_list_shows_its_region_and_zone() {
    let mut s = Site::new("agents-detect", 1);
    s.start_masters();
    let local_script = write_script(
        s.dir(),
        "detect-local-b",
        r#"echo '{"fault_domain":{"region":{"name":"local"},"zone":{"name":"local-b"}}}'"#,
    );
    let local = s.add_agent_with("agent-local-b", DomainSource::Script(local_script));
    // The shipped static example, placed in a remote region through its environment.
    let example = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/fault-domain-detect/static.sh")
        .canonicalize()
        .expect("examples/fault-domain-detect/static.sh exists");
    let remote = s.add_agent_with("agent-east2-b", DomainSource::Script(example));
    s.agent_mut(remote).env = vec![
        ("DROVER_REGION".into(), "aws-us-east2".into()),
        ("DROVER_ZONE".into(), "aws-us-east2-b".into()),
    ];
    s.start_agent(local);
    s.start_agent(remote);
    s.wait_agent_active(local);
    s.wait_agent_active(remote);
    // A master's own domain is listed once it has registered itself with the cluster, a
    // moment after the election; the node list before that shows N/A for it.
    s.wait_until(SETTLE, "/v1/nodes lists the master in local/local-a", |s| {
        s.get("/v1/nodes")
            .and_then(|r| r.typed_ok::<Nodes>())
            .is_some_and(|r| {
                r.nodes.iter().any(|n| {
                    matches!(n, Node::Master(m)
                    if m.region.as_deref() == Some("local") && m.zone.as_deref() == Some("local-a"))
                })
            })
    });
    let master = s.masters.addr(1);
    let expected = [
        (local, "local", "local-b", false),
        (remote, "aws-us-east2", "aws-us-east2-b", true),
    ];

    // --json: the answer of /v1/nodes, agents with "type":"agent".
    let (status, out, err) = s.run_drover(&["node", "list", "--master", &master, "--json"]);
    if !status.success() {
        s.fail(&format!(
            "drover node list --json exited with {status}\n{out}\n{err}"
        ));
    }
    let nodes: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| s.fail(&format!("node list --json is not JSON ({e}): {out}")));
    for (i, region, zone, is_remote) in expected {
        let a = s.agent(i);
        let node = nodes["nodes"]
            .as_array()
            .and_then(|ns| ns.iter().find(|n| n["hostname"] == a.hostname.as_str()))
            .unwrap_or_else(|| s.fail(&format!("node list --json lacks {}: {out}", a.hostname)));
        let want = json!({
            "type": "agent", "hostname": a.hostname, "ip": a.ip, "id": agent_id(&a.work_dir),
            "region": region, "zone": zone, "remote": is_remote, "state": "active",
        });
        for (k, v) in want.as_object().expect("object") {
            if node[k] != *v {
                s.fail(&format!(
                    "node list --json: {}'s {k} is {}, expected {v}; node {node}",
                    a.hostname, node[k]
                ));
            }
        }
    }

    // The table: HOSTNAME IP ID TYPE REGION ZONE, remote agents marked.
    let (status, out, err) = s.run_drover(&["node", "list", "--master", &master]);
    if !status.success() {
        s.fail(&format!(
            "drover node list exited with {status}\n{out}\n{err}"
        ));
    }
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows.first().map(Vec::as_slice),
        Some(&["HOSTNAME", "IP", "ID", "TYPE", "REGION", "ZONE"][..]),
        "node list header:\n{out}"
    );
    assert!(
        rows.iter()
            .any(|r| r.ends_with(&["master", "(leader)", "local", "local-a"])),
        "node list shows no leading master in local/local-a:\n{out}"
    );
    for (i, region, zone, is_remote) in expected {
        let a = s.agent(i);
        let id = agent_id(&a.work_dir);
        let mut want = vec![
            a.hostname.as_str(),
            a.ip.as_str(),
            id.as_str(),
            "agent",
            region,
        ];
        if is_remote {
            want.push("(remote)");
        }
        want.push(zone);
        assert!(
            rows.contains(&want),
            "node list has no row {want:?}:\n{out}"
        );
    }
}

#[test]
fn each_bad_detect_script_stops_the_agent_with_its_reason() {
    let dir = TempDir::new("agents-bad-detect");
    let missing = dir.path().join("no-such-script");
    let not_executable = dir.path().join("not-executable");
    fs::write(
        &not_executable,
        "#!/bin/sh\necho '{\"fault_domain\":{\"region\":{\"name\":\"r\"},\"zone\":{\"name\":\"z\"}}}'\n",
    )
    .expect("write script");
    fs::set_permissions(&not_executable, fs::Permissions::from_mode(0o644)).expect("chmod");
    let script = |name: &str, body: &str| write_script(dir.path(), name, body);
    let example = r#"{"fault_domain":{"region":{"name":"#;
    // (case, script, words its message must contain besides the script's path)
    let cases: Vec<(&str, PathBuf, Vec<&str>)> = vec![
        (
            "missing file",
            missing,
            vec!["cannot be read", "No such file"],
        ),
        (
            "not executable",
            not_executable,
            vec!["not an executable file", "chmod +x"],
        ),
        (
            "non-zero exit",
            script(
                "exits-3",
                "echo 'metadata service 169.254.169.254 did not answer' >&2\nexit 3",
            ),
            vec![
                "failed",
                "exit status: 3",
                "metadata service 169.254.169.254 did not answer",
            ],
        ),
        (
            "invalid JSON",
            script("not-json", "echo 'region=us-east-1 zone=us-east-1a'"),
            vec!["not valid JSON", example],
        ),
        (
            "missing region name",
            script(
                "no-region-name",
                r#"echo '{"fault_domain":{"region":{},"zone":{"name":"z1"}}}'"#,
            ),
            vec!["missing", "fault_domain.region.name", example],
        ),
        (
            "missing zone name",
            script(
                "no-zone-name",
                r#"echo '{"fault_domain":{"region":{"name":"r1"},"zone":{}}}'"#,
            ),
            vec!["missing", "fault_domain.zone.name", example],
        ),
        (
            "empty region name",
            script(
                "empty-region-name",
                r#"echo '{"fault_domain":{"region":{"name":" "},"zone":{"name":"z1"}}}'"#,
            ),
            vec!["fault_domain.region.name", "empty", example],
        ),
    ];
    for (case, path, words) in cases {
        let mut cmd = Command::new(DROVER);
        cmd.arg("agent")
            .arg("--insecure")
            // Nothing listens there: the agent must stop before it talks to any master.
            .args(["--masters", &format!("127.0.0.1:{}", free_port())])
            .arg("--work-dir")
            .arg(dir.path().join(format!("work-{}", case.replace(' ', "-"))))
            .args(["--advertise-ip", "127.0.1.1", "--hostname", "bad-detect"])
            .arg("--fault-domain-detect")
            .arg(&path);
        let (status, out, err) = run_to_exit(cmd, Duration::from_secs(60));
        let shown = format!("case {case}: exit {status}\n--- stdout\n{out}\n--- stderr\n{err}");
        assert!(!status.success(), "{shown}");
        assert_eq!(
            status.code(),
            Some(2),
            "a failing detect script exits with code 2 (drover agent --help); {shown}"
        );
        assert!(
            err.contains(&path.display().to_string()),
            "the message does not name the script; {shown}"
        );
        for w in words {
            assert!(err.contains(w), "the message lacks {w:?}; {shown}");
        }
        assert!(
            !err.contains("registered with"),
            "the agent went on to register; {shown}"
        );
    }
}

#[test]
fn a_second_live_agent_with_the_same_address_is_refused() {
    let mut s = Site::new("agents-dup-ip", 1);
    s.start_masters();
    let first = s.add_agent("agent-first", "local", "local-a");
    let second = s.add_agent("agent-second", "local", "local-b");
    let ip = s.agent(first).ip.clone();
    s.agent_mut(second).ip = ip.clone();
    s.start_agent_active(first);

    s.start_agent(second);
    let status = s.wait_agent_exit(second, SETTLE);
    let err = s.agent(second).stderr();
    if status.success() || status.code() != Some(1) {
        s.fail(&format!(
            "the duplicate agent exited with {status}, expected code 1 (refused)"
        ));
    }
    // The agent's own log lines name its address too: look at its final error only.
    let error = err
        .lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| s.fail(&format!("the refused agent printed no error:\n{err}")));
    for w in ["refused", ip.as_str()] {
        if !error.contains(w) {
            s.fail(&format!("the refusal {error:?} does not say {w:?}"));
        }
    }
    // The first agent is untouched, and the second was never listed.
    let node = s.wait_agent_active(first);
    assert_eq!(node.ip, ip, "{node:?}");
    if let Some(n) = s.agent_node(second) {
        s.fail(&format!("the refused agent is listed: {n:?}"));
    }
}

#[test]
fn instances_run_as_processes_with_marathons_environment_and_their_ports() {
    let mut s = Site::new("agents-env", 1);
    s.start_masters();
    let a = s.add_agent("agent-env-a", "local", "local-a");
    let b = s.add_agent("agent-env-b", "local", "local-b");
    s.start_agent_active(a);
    s.start_agent_active(b);
    let app_id = "/env/web";
    s.create_app(&json!({
        "id": app_id,
        // The environment is written atomically, then the task keeps running (exec: the
        // checkpointed pid is then the process that holds the environment).
        "cmd": "env > \"$MESOS_SANDBOX/env.tmp\" && mv \"$MESOS_SANDBOX/env.tmp\" \"$MESOS_SANDBOX/env.txt\" && exec sleep 1000",
        "instances": 2, "cpus": 0.1, "mem": 16,
        "portDefinitions": [{"port": 0, "name": "http"}, {"port": 0, "name": "admin-api"}],
        "env": {"GREETING": "hello from drover", "DB_URL": "postgres://db:5432/app?x=1"},
        "labels": {"team": "blue"},
        "constraints": [["hostname", "UNIQUE"]],
    }));
    let app = s.wait_running(app_id, 2);
    let version = app.version.clone();
    assert!(!version.is_empty(), "the app has no version: {app:?}");
    let tasks = tasks_of(&app);
    let hosts: Vec<&str> = tasks.iter().map(|t| t.1.as_str()).collect();
    assert!(
        hosts.contains(&"agent-env-a") && hosts.contains(&"agent-env-b"),
        "hostname UNIQUE: one instance per agent, got {hosts:?}"
    );

    for (task_id, host, ports) in &tasks {
        let i = s.agent_by_host(host);
        let agent = s.agent(i);
        let agent_ip = agent.ip.clone();
        assert_eq!(ports.len(), 2, "task {task_id} has ports {ports:?}");
        for p in ports {
            assert!(
                agent.ports.iter().any(|o| u64::from(*o) == *p),
                "task {task_id}'s port {p} is not one {host} offers ({:?})",
                agent.ports
            );
        }
        let cp = agent
            .checkpoints()
            .into_iter()
            .find(|cp| cp.instance_id == *task_id)
            .unwrap_or_else(|| s.fail(&format!("{host} has no checkpoint for {task_id}")));
        let process = cp.process.expect("a running task has a process");
        let sandbox = cp.sandbox.clone();
        let sandboxes = agent
            .work_dir
            .canonicalize()
            .expect("work dir")
            .join("sandboxes");
        assert!(
            sandbox.starts_with(&sandboxes),
            "sandbox {} is not under {}",
            sandbox.display(),
            sandboxes.display()
        );

        // What the task itself wrote, and what its process holds now.
        let env_file = sandbox.join("env.txt");
        let what = format!("task {task_id} wrote {}", env_file.display());
        s.wait_until(SETTLE, &what, |_| env_file.exists());
        let written: BTreeMap<String, String> = fs::read_to_string(&env_file)
            .expect("read env.txt")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let live = procs::environ(process.pid);
        let (p0, p1) = (ports[0].to_string(), ports[1].to_string());
        let want: Vec<(&str, String)> = vec![
            // The agent's advertised IP, not its hostname: tasks can bind it, and HTTP
            // health checks reach them there.
            ("HOST", agent_ip.clone()),
            ("PORT0", p0.clone()),
            ("PORT1", p1.clone()),
            ("PORT", p0.clone()),
            ("PORTS", format!("{p0},{p1}")),
            ("PORT_HTTP", p0.clone()),
            ("PORT_ADMIN_API", p1.clone()),
            ("MARATHON_APP_ID", app_id.to_string()),
            ("MARATHON_APP_VERSION", version.clone()),
            ("MESOS_TASK_ID", task_id.clone()),
            ("MESOS_SANDBOX", sandbox.display().to_string()),
            ("GREETING", "hello from drover".to_string()),
            ("DB_URL", "postgres://db:5432/app?x=1".to_string()),
            ("MARATHON_APP_LABEL_TEAM", "blue".to_string()),
        ];
        for (k, v) in &want {
            for (source, env) in [("env.txt", &written), ("/proc/PID/environ", &live)] {
                if env.get(*k) != Some(v) {
                    s.fail(&format!(
                        "task {task_id} on {host}: {k} in {source} is {:?}, expected {v:?}; all: {env:?}",
                        env.get(*k)
                    ));
                }
            }
        }
        // The task runs in its sandbox, in its own process group.
        let cwd = fs::read_link(format!("/proc/{}/cwd", process.pid)).expect("cwd of the task");
        assert_eq!(cwd, sandbox, "task {task_id}'s working directory");
        let st = procs::stat(process.pid).expect("stat of the task");
        assert_eq!(
            st.pgrp as u32, process.pid,
            "task {task_id} leads its own process group"
        );
        for f in ["stdout", "stderr"] {
            assert!(sandbox.join(f).is_file(), "sandbox of {task_id} lacks {f}");
        }
    }
}

#[test]
fn a_health_check_that_starts_failing_is_reported() {
    let mut s = Site::new("agents-health", 1);
    s.start_masters();
    let a = s.add_agent("agent-health", "local", "local-a");
    // One port, so the task gets it; the test serves HTTP there, then stops.
    let port = s.agent(a).ports[0];
    s.agent_mut(a).ports.truncate(1);
    s.start_agent_active(a);
    // HTTP checks reach tasks at the agent's advertised IP (their $HOST).
    let ip = s.agent(a).ip.clone();
    let mut stub = HttpStub::start(&ip, port);
    let app_id = "/health/web";
    s.create_app(&json!({
        "id": app_id, "cmd": "exec sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16,
        "portDefinitions": [{"port": 0, "name": "http"}],
        "healthChecks": [{
            "protocol": "HTTP", "path": "/health", "portIndex": 0,
            "gracePeriodSeconds": 0, "intervalSeconds": 1, "delaySeconds": 0,
            "timeoutSeconds": 5, "maxConsecutiveFailures": 1000,
        }],
    }));
    let app = s.wait_running(app_id, 1);
    let (task_id, _, ports) = tasks_of(&app).remove(0);
    assert_eq!(ports, vec![u64::from(port)], "the task's ports");

    let health = |s: &mut Site| -> Option<(App, HealthCheckResult)> {
        let app = s.app(app_id)?;
        let t = app.tasks.as_ref()?.iter().find(|t| t.id == task_id)?;
        let h = t.health_check_results.first()?.clone();
        Some((app, h))
    };
    let (app, h) = s.wait_for(SETTLE, "the task is reported healthy", |s| {
        health(s).filter(|(_, h)| h.alive)
    });
    assert_eq!(app.counts().tasks_healthy, 1, "{app:?}");
    assert_eq!(app.counts().tasks_unhealthy, 0, "{app:?}");
    assert_eq!(h.instance_id, task_id, "{h:?}");
    assert!(
        stub.paths().iter().any(|p| p == "/health"),
        "the check did not GET /health on port {port}: {:?}",
        stub.paths()
    );

    // Nothing listens on the port any more: the check fails, and the masters say so.
    stub.stop();
    let (app, h) = s.wait_for(SETTLE, "the task is reported unhealthy", |s| {
        health(s).filter(|(_, h)| !h.alive)
    });
    assert_eq!(app.counts().tasks_unhealthy, 1, "{app:?}");
    assert_eq!(app.counts().tasks_healthy, 0, "{app:?}");
    assert!(h.consecutive_failures >= 1, "{h:?}");
    let cause = h.last_failure_cause.as_deref().unwrap_or_default();
    assert!(
        cause.contains(&port.to_string()),
        "lastFailureCause does not name the port {port}: {h:?}"
    );
    assert!(h.last_failure.is_some(), "{h:?}");
    // Far from maxConsecutiveFailures: the same instance keeps running.
    let ids: Vec<String> = tasks_of(&app).into_iter().map(|t| t.0).collect();
    assert_eq!(ids, vec![task_id.clone()], "{app:?}");
}

#[test]
fn an_instance_failing_max_consecutive_failures_is_killed_and_replaced() {
    let mut s = Site::new("agents-unhealthy-kill", 1);
    s.start_masters();
    let a = s.add_agent("agent-unhealthy", "local", "local-a");
    s.start_agent_active(a);
    let mut events = EventStream::open(&s.masters.addr(1), &["unhealthy_instance_kill_event"])
        .unwrap_or_else(|e| s.fail(&format!("subscribe to /v2/events: {e}")));
    let app_id = "/health/broken";
    s.create_app(&json!({
        "id": app_id, "cmd": "exec sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16,
        "portDefinitions": [{"port": 0}],
        // Nothing listens on the task's port.
        "healthChecks": [{
            "protocol": "HTTP", "path": "/", "portIndex": 0,
            "gracePeriodSeconds": 0, "intervalSeconds": 1, "delaySeconds": 0,
            "timeoutSeconds": 5, "maxConsecutiveFailures": 1,
        }],
    }));
    // The first instance to run; it may already be on its way out.
    let (first, process) = s.wait_for(SETTLE, "an instance of the app has a process", |s| {
        let app = s.app(app_id)?;
        tasks_of(&app)
            .into_iter()
            .find_map(|(id, _, _)| Some((id.clone(), s.task_process(&id)?)))
    });
    let killed = events.wait_for(SETTLE, |e| match e {
        Event::UnhealthyInstanceKillEvent {
            instance_id,
            app_id,
            ..
        } if *instance_id == first => Some(app_id.clone()),
        _ => None,
    });
    let Some(killed_app) = killed else {
        s.fail(&format!(
            "no unhealthy_instance_kill_event for {first}; events seen: {:?}",
            events.seen()
        ));
    };
    assert_eq!(killed_app, app_id, "the killed instance's app");

    let what = format!("{first} is gone and its process ended, and a new instance replaced it");
    let replacement = s.wait_for(SETTLE, &what, |s| {
        let app = s.app(app_id)?;
        let ids: Vec<String> = tasks_of(&app).into_iter().map(|t| t.0).collect();
        (!process.is_alive() && !ids.contains(&first))
            .then(|| ids.into_iter().next())
            .flatten()
    });
    assert_ne!(replacement, first);
}

#[test]
fn an_agent_killed_and_restarted_finds_its_tasks_again() {
    let mut s = Site::new("agents-restart", 1);
    // The agent is down only for a moment; a long unreachable timeout keeps the masters from
    // replacing its instances meanwhile, whatever the load, so that what is tested is the
    // agent finding its tasks, not the masters' patience.
    s.masters.extra_args = vec!["--agent-unreachable-ms".into(), "600000".into()];
    s.start_masters();
    let a = s.add_agent("agent-restart", "local", "local-a");
    let before = s.start_agent_active(a);
    s.create_app(&sleeper("/restart/sleepers", 2));
    let app = s.wait_running("/restart/sleepers", 2);
    let mut ids: Vec<String> = tasks_of(&app).into_iter().map(|t| t.0).collect();
    ids.sort();
    let pids: BTreeMap<String, TaskProcess> = s.agent(a).task_processes();
    assert_eq!(
        pids.keys().cloned().collect::<Vec<_>>(),
        ids,
        "the agent's checkpoints name the app's instances"
    );

    s.kill_agent(a);
    for (id, p) in &pids {
        if !p.is_alive() {
            s.fail(&format!(
                "task {id} (pid {}) died with its agent; tasks must outlive the agent",
                p.pid
            ));
        }
    }
    s.start_agent(a);
    // A new app placed on the same agent after the restart: once it runs, the restarted
    // agent has been through a whole assignment set, which listed the old tasks too.
    s.create_app(&sleeper("/restart/after", 1));
    s.wait_running("/restart/after", 1);

    let app = s.wait_running("/restart/sleepers", 2);
    let mut after: Vec<String> = tasks_of(&app).into_iter().map(|t| t.0).collect();
    after.sort();
    assert_eq!(after, ids, "instance ids after the restart");
    let now = s.agent(a).task_processes();
    for (id, p) in &pids {
        if now.get(id) != Some(p) || !p.is_alive() {
            s.fail(&format!(
                "task {id} was pid {} before the restart; now its checkpoint says {:?} (alive {})",
                p.pid,
                now.get(id),
                p.is_alive()
            ));
        }
        let running = procs::processes_with_env("MESOS_TASK_ID", id);
        if running != vec![p.pid] {
            s.fail(&format!(
                "task {id} should be exactly pid {}, but these processes carry its id: {running:?}",
                p.pid
            ));
        }
        let found = format!("found task {id} again");
        if !s.agent(a).stderr().contains(&found) {
            s.fail(&format!("the restarted agent did not log {found:?}"));
        }
    }
    // Registered again as itself: same id, one agent.
    let node = s.wait_agent_active(a);
    assert_eq!(node.id, before.id, "{node:?}");
    let nodes: Nodes = s.get("/v1/nodes").expect("/v1/nodes").typed();
    let agents = nodes
        .nodes
        .iter()
        .filter(|n| matches!(n, Node::Agent(_)))
        .count();
    assert_eq!(agents, 1, "{nodes:?}");
}

/// Slow: the masters stay stopped for the 30 s the issue names.
#[test]
fn tasks_keep_running_while_every_master_is_stopped_for_30_s_and_the_agent_registers_again() {
    const OUTAGE: Duration = Duration::from_secs(30);
    let mut s = Site::new("agents-outage", 3);
    s.start_masters();
    let a = s.add_agent("agent-outage", "local", "local-a");
    s.start_agent_active(a);
    s.create_app(&sleeper("/outage/sleepers", 2));
    let app = s.wait_running("/outage/sleepers", 2);
    let mut ids: Vec<String> = tasks_of(&app).into_iter().map(|t| t.0).collect();
    ids.sort();
    let pids = s.agent(a).task_processes();
    let registrations = |s: &Site| s.agent(a).stderr().matches("registered with").count();
    let registered_before = registrations(&s);

    let stopped_at = Instant::now();
    for id in s.masters.ids() {
        s.masters.stop(id);
    }
    // The agent notices that no master answers...
    s.wait_until(SETTLE, "the agent says it is not registered", |s| {
        s.agent(a)
            .health()
            .is_some_and(|h| h["registered"] == false)
    });
    // ...and its tasks keep running for the whole outage.
    while stopped_at.elapsed() < OUTAGE {
        for (id, p) in &pids {
            if !p.is_alive() {
                s.fail(&format!(
                    "task {id} (pid {}) ended while the masters were stopped",
                    p.pid
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    for id in s.masters.ids() {
        s.masters.cont(id);
    }

    s.wait_until(SETTLE, "the agent registers again", |s| {
        registrations(s) > registered_before
            && s.agent(a).health().is_some_and(|h| h["registered"] == true)
    });
    s.wait_agent_active(a);
    // It takes assignments again: a new app runs on it.
    s.create_app(&sleeper("/outage/after", 1));
    s.wait_running("/outage/after", 1);
    let app = s.wait_running("/outage/sleepers", 2);
    let mut after: Vec<String> = tasks_of(&app).into_iter().map(|t| t.0).collect();
    after.sort();
    if after != ids {
        s.fail(&format!(
            "the instances changed over the outage: {ids:?} before, {after:?} after"
        ));
    }
    let now = s.agent(a).task_processes();
    for (id, p) in &pids {
        if now.get(id) != Some(p) || !p.is_alive() {
            s.fail(&format!(
                "task {id} was pid {} before the outage; now {:?} (alive {})",
                p.pid,
                now.get(id),
                p.is_alive()
            ));
        }
        let running = procs::processes_with_env("MESOS_TASK_ID", id);
        assert_eq!(running, vec![p.pid], "processes of task {id}");
    }
}

#[test]
fn an_assignment_from_an_older_term_is_ignored() {
    let mut s = Site::new("agents-fence", 0);
    let fake = FakeMaster::start(7);
    let a = s.add_agent("agent-fenced", "local", "local-a");
    s.agent_mut(a).masters = fake.addr().to_string();
    let kept = "fenced.instance-kept";
    let newer = "fenced.instance-from-old-term";
    fake.assign(
        7,
        vec![fake_master::task(kept, "/fenced", "exec sleep 1000", 7)],
    );
    s.notes.push(Box::new(fake.describer()));
    s.start_agent(a);
    let process = s.wait_for(
        SETTLE,
        "the term-7 task runs and is reported running",
        |s| {
            let p = s.agent(a).task_processes().get(kept).copied()?;
            let reported = fake
                .record()
                .updates_of(kept)
                .iter()
                .any(|u| u["condition"] == "running");
            (p.is_alive() && reported).then_some(p)
        },
    );
    let term_file = s.agent(a).work_dir.join("term");
    let read_term = || {
        fs::read_to_string(&term_file)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert_eq!(read_term(), "7", "{}", fake.describe());

    // A deposed leader (term 3) says: stop that task, start another one.
    let served_before = fake.record().served.len();
    fake.assign(
        3,
        vec![fake_master::task(newer, "/fenced", "exec sleep 1000", 3)],
    );
    let wait = "the agent has been answered from term 3 three times";
    s.wait_until(SETTLE, wait, |_| {
        fake.record().served[served_before..]
            .iter()
            .filter(|a| a.term == 3)
            .count()
            >= 3
    });
    let record = fake.record();
    let problems: Vec<String> = [
        (!process.is_alive()).then(|| format!("task {kept} (pid {}) ended", process.pid)),
        record
            .updates_of(kept)
            .iter()
            .any(|u| u["condition"] != "running" && u["condition"] != "staging")
            .then(|| format!("the agent reported {kept} stopping")),
        (!s.agent(a)
            .checkpoints()
            .iter()
            .all(|cp| cp.instance_id == kept))
        .then(|| format!("the agent started {newer}")),
        (!procs::processes_with_env("MESOS_TASK_ID", newer).is_empty())
            .then(|| format!("a process of {newer} runs")),
        (read_term() != "7").then(|| format!("WORK_DIR/term says {:?}", read_term())),
        (!s.agent(a)
            .stderr()
            .contains("ignoring assignments from term 3"))
        .then(|| "the agent did not log that it ignored term 3".to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !problems.is_empty() {
        s.fail(&format!(
            "an assignment from term 3 after term 7 was not ignored: {}\n{}",
            problems.join("; "),
            fake.describe()
        ));
    }

    // Control: the same change from a newer term (8) is obeyed, so the one from term 3
    // was ignored for its term.
    fake.assign(8, Vec::new());
    s.wait_until(SETTLE, "the term-8 answer stops the task", |_| {
        !process.is_alive()
            && fake
                .record()
                .updates_of(kept)
                .iter()
                .any(|u| u["condition"] == "killed")
    });
    assert_eq!(read_term(), "8", "{}", fake.describe());
}

#[test]
fn instances_of_a_killed_agent_are_replaced_within_their_constraints_and_killed_when_it_returns() {
    let mut s = Site::new("agents-replace", 1);
    s.start_masters();
    let zone_a = s.add_agent("agent-zone-a", "local", "local-a");
    let b1 = s.add_agent("agent-zone-b1", "local", "local-b");
    let b2 = s.add_agent("agent-zone-b2", "local", "local-b");
    for i in [zone_a, b1, b2] {
        s.start_agent_active(i);
    }
    let app_id = "/replace/pinned";
    let mut app = sleeper(app_id, 1);
    app["constraints"] = json!([["@zone", "IS", "local-b"]]);
    s.create_app(&app);
    let first = s.wait_running(app_id, 1);
    let (old_id, old_host, _) = tasks_of(&first).remove(0);
    let lost = s.agent_by_host(&old_host);
    assert!(
        lost == b1 || lost == b2,
        "placed on {old_host}, outside zone local-b"
    );
    let other = if lost == b1 { b2 } else { b1 };
    let old_process = s
        .task_process(&old_id)
        .unwrap_or_else(|| s.fail(&format!("no process for {old_id}")));

    s.kill_agent(lost);
    let what = format!("the masters call {old_host} unreachable");
    s.wait_until(SETTLE, &what, |s| {
        s.agent_node(lost)
            .is_some_and(|n| n.state == NodeState::Unreachable)
    });
    let what = format!("{old_id} is replaced by an instance on another agent");
    let replaced = s.wait_for(SETTLE, &what, |s| {
        let app = s.app(app_id)?;
        let tasks = tasks_of(&app);
        let running = app
            .tasks
            .as_ref()?
            .iter()
            .all(|t| t.state == "TASK_RUNNING");
        (tasks.len() == 1 && tasks[0].0 != old_id && running).then(|| tasks[0].clone())
    });
    assert_eq!(
        replaced.1,
        s.agent(other).hostname,
        "the replacement must go to the other agent of zone local-b"
    );
    // The lost agent's task still runs: nobody told it otherwise.
    assert!(
        old_process.is_alive(),
        "the orphaned task was not expected to end yet"
    );

    // The agent returns, learns that its instance is no longer wanted, and kills it.
    s.start_agent(lost);
    s.wait_agent_active(lost);
    let what = format!(
        "the returned agent kills {old_id} (pid {})",
        old_process.pid
    );
    s.wait_until(SETTLE, &what, |_| !old_process.is_alive());
    let app = s.wait_running(app_id, 1);
    let ids: Vec<String> = tasks_of(&app).into_iter().map(|t| t.0).collect();
    assert_eq!(ids, vec![replaced.0.clone()], "{app:?}");
    assert!(
        procs::processes_with_env("MESOS_TASK_ID", &old_id).is_empty(),
        "a process of {old_id} still runs"
    );
}
