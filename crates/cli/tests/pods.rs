//! Marathon pods across processes (issue 14, scope 8): real `drover master` and `drover agent`
//! binaries, real container processes. A pod of two containers runs both in ONE instance on
//! one agent, in one sandbox, with the same allocated endpoint port; SIGKILL of one
//! container fails the instance, the agent stops the other, and a new instance replaces it;
//! `::status`, `::versions` and DELETE (which stops both containers) answer as Marathon's.
//!
//! Waits poll conditions with deadlines; nothing asserts on how fast anything happened.

mod agent_support;
mod common;
mod scheduler_support;

use std::path::{Path, PathBuf};

use agent_support::{SETTLE, Site};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use scheduler_support::site::{add_agents, send, site, start_agents};
use scheduler_support::{fast_master_flags, wait_showing};
use serde_json::{Value, json};

const POD: &str = "/shop/pair";

/// A container that records its pid and the ports it sees in the sandbox, then sleeps (the
/// `exec` keeps the pid: the recorded pid is the container's process).
fn container(name: &str, endpoints: Value) -> Value {
    json!({
        "name": name,
        "exec": {"command": {"shell": format!(
            "echo \"$ENDPOINT_HTTP $PORT0 $PORTS\" > \"$MESOS_SANDBOX/{name}.ports\"; echo $$ > \"$MESOS_SANDBOX/{name}.pid\"; exec sleep 100000"
        )}},
        "resources": {"cpus": 0.05, "mem": 8},
        "endpoints": endpoints,
    })
}

fn pod() -> Value {
    json!({
        "id": POD,
        "labels": {"team": "blue"},
        "scaling": {"kind": "fixed", "instances": 1},
        "scheduling": {"placement": {"constraints": [{"fieldName": "hostname", "operator": "UNIQUE"}]}},
        "containers": [
            container("web", json!([{"name": "http", "hostPort": 0}])),
            container("side", json!([])),
        ]
    })
}

/// True while `pid` runs (a zombie has ended).
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .is_some_and(|s| s != 'Z')
}

/// The one live instance in the pod's status: (instance id, allocated port of `http`).
fn one_instance(s: &mut Site) -> Result<(String, u64, Value), String> {
    let r = s
        .get(&format!("/v2/pods{POD}::status"))
        .ok_or("no answer")?;
    if r.status != 200 {
        return Err(format!("{r:?}"));
    }
    let st = r.body_json;
    let instances = st["instances"].as_array().cloned().unwrap_or_default();
    let running: Vec<&Value> = instances
        .iter()
        .filter(|i| i["status"] == "STABLE")
        .collect();
    if running.len() != 1 || instances.len() != 1 {
        return Err(format!("{st}"));
    }
    let i = running[0];
    let port = i["containers"][0]["endpoints"][0]["allocatedHostPort"]
        .as_u64()
        .ok_or_else(|| format!("no allocated port: {st}"))?;
    Ok((
        i["id"].as_str().unwrap_or_default().to_string(),
        port,
        st.clone(),
    ))
}

/// The pids the containers of instance `id` recorded in its sandbox, once both did.
fn pids(work_dir: &Path, id: &str) -> Result<(u32, u32, String, String), String> {
    let sandbox: PathBuf = work_dir.join("sandboxes").join(id);
    let read = |f: &str| {
        std::fs::read_to_string(sandbox.join(f))
            .map(|t| t.trim().to_string())
            .map_err(|e| format!("{}: {e}", sandbox.join(f).display()))
    };
    let web: u32 = read("web.pid")?.parse().map_err(|e| format!("{e}"))?;
    let side: u32 = read("side.pid")?.parse().map_err(|e| format!("{e}"))?;
    Ok((web, side, read("web.ports")?, read("side.ports")?))
}

#[test]
fn a_pod_runs_its_containers_as_one_instance_and_is_replaced_when_one_dies() {
    let mut s = site("pods-life", 1, fast_master_flags());
    let agents = add_agents(&mut s, "local", &["local-a"], 1);
    start_agents(&mut s, &agents);
    let work_dir = s.agent(agents[0].0).work_dir.clone();

    // Discovery, then bad input: Marathon's 422 naming the path.
    let head = send(&mut s, "HEAD", "/v2/pods", None);
    assert_eq!(head.status, 200, "{head:?}");
    let mut bad = pod();
    bad["containers"][1]["name"] = json!("web");
    let r = send(&mut s, "POST", "/v2/pods", Some(&bad));
    assert_eq!(r.status, 422, "{r:?}");
    assert!(
        r.body.contains("/containers(1)/name"),
        "the 422 names the duplicate: {}",
        r.body
    );
    let r = send(&mut s, "POST", "/v2/pods", Some(&json!({"id": "/nothing"})));
    assert_eq!(r.status, 422, "{r:?}");
    assert!(r.body.contains("/containers"), "{}", r.body);

    // Create: one instance, both containers in its sandbox, one port seen by both.
    let r = send(&mut s, "POST", "/v2/pods", Some(&pod()));
    assert_eq!(r.status, 201, "{r:?}");
    assert!(r.header("marathon-deployment-id").is_some(), "{r:?}");
    assert_eq!(r.header("location"), Some("/v2/pods/shop/pair"), "{r:?}");
    let version = r.body_json["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (first, port, status) =
        wait_showing(&mut s, SETTLE, "the pod's instance is stable", one_instance);
    assert_eq!(status["spec"]["id"], POD, "{status}");
    let (web, side, web_ports, side_ports) = wait_showing(
        &mut s,
        SETTLE,
        "both containers recorded their pids",
        |_| pids(&work_dir, &first),
    );
    assert_ne!(web, side, "two containers, two processes");
    assert!(alive(web) && alive(side), "both containers run");
    let expected = format!("{port} {port} {port}");
    assert_eq!(web_ports, expected, "web sees the allocated endpoint port");
    assert_eq!(side_ports, expected, "side sees the same endpoint port");

    // The namespace is shared with apps, and apps do not list pods.
    let r = send(
        &mut s,
        "POST",
        "/v2/apps",
        Some(&json!({"id": POD, "cmd": "sleep 1"})),
    );
    assert_eq!(r.status, 409, "an app cannot take the pod's id: {r:?}");
    let apps = send(&mut s, "GET", "/v2/apps", None);
    assert!(
        !apps.body.contains(POD),
        "/v2/apps lists the pod: {}",
        apps.body
    );
    let r = send(&mut s, "GET", &format!("/v2/apps{POD}"), None);
    assert_eq!(r.status, 404, "{r:?}");
    let list = send(&mut s, "GET", "/v2/pods", None);
    assert_eq!(list.body_json[0]["id"], POD, "{list:?}");
    let versions = send(&mut s, "GET", &format!("/v2/pods{POD}::versions"), None);
    assert_eq!(versions.body_json, json!([version]), "{versions:?}");
    let v = send(
        &mut s,
        "GET",
        &format!("/v2/pods{POD}::versions/{version}"),
        None,
    );
    assert_eq!(v.body_json["containers"][0]["name"], "web", "{v:?}");
    let all = send(&mut s, "GET", "/v2/pods/::status", None);
    assert_eq!(all.body_json[0]["id"], POD, "{all:?}");

    // One container dies: the instance fails, its sibling is stopped, a new one runs.
    let _ = kill(Pid::from_raw(side as i32), Signal::SIGKILL);
    wait_showing(&mut s, SETTLE, "the sibling container is stopped", |_| {
        if alive(web) {
            Err(format!("web (pid {web}) still runs"))
        } else {
            Ok(())
        }
    });
    let (second, _, _) = wait_showing(&mut s, SETTLE, "a new instance replaces it", |s| {
        let (id, port, st) = one_instance(s)?;
        if id == first {
            Err(format!("still the first instance: {st}"))
        } else {
            Ok((id, port, st))
        }
    });
    let (web2, side2, _, _) = wait_showing(&mut s, SETTLE, "the new containers run", |_| {
        pids(&work_dir, &second)
    });
    assert!(
        alive(web2) && alive(side2),
        "the new instance's containers run"
    );
    assert!(
        ![web, side].contains(&web2) && ![web, side].contains(&side2),
        "new processes"
    );

    // DELETE stops both containers.
    let r = send(&mut s, "DELETE", &format!("/v2/pods{POD}"), None);
    assert_eq!(r.status, 202, "{r:?}");
    assert!(r.header("marathon-deployment-id").is_some(), "{r:?}");
    wait_showing(&mut s, SETTLE, "both containers are stopped", |_| {
        if alive(web2) || alive(side2) {
            Err(format!(
                "web {web2} alive {}, side {side2} alive {}",
                alive(web2),
                alive(side2)
            ))
        } else {
            Ok(())
        }
    });
    let r = send(&mut s, "GET", &format!("/v2/pods{POD}"), None);
    assert_eq!(r.status, 404, "{r:?}");
}
