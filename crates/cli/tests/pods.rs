//! Marathon pods across processes (issue 14, scope 8): real `drover master` and `drover agent`
//! binaries, real container processes. A pod of two containers runs both in ONE instance on
//! one agent, in one sandbox, with the same allocated endpoint port and output files of
//! their own; SIGKILL of one container (or its exit with a code) fails the instance, the
//! agent stops the other, a new instance replaces it, and `::status` says how it ended;
//! `::versions` and DELETE (which stops both containers) answer as Marathon's. A PUT rolls
//! the instances to the new version, the pod's group scales it, `DELETE ::instances` kills
//! and replaces the instances named; bad requests get 4xx answers that say what to do; and
//! `drover pod` drives it all as a user would.
//!
//! Waits poll conditions with deadlines; nothing asserts on how fast anything happened.

mod agent_support;
mod common;
mod scheduler_support;

use std::path::{Path, PathBuf};

use agent_support::{SETTLE, Site};
use common::http::raw;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use scheduler_support::site::{CONVERGE, add_agents, send, site, start_agents};
use scheduler_support::{fast_master_flags, wait_showing};
use serde_json::{Value, json};

const POD: &str = "/shop/pair";

/// A container that records its pid (the shell's: the container's process) and the ports it
/// sees in the sandbox, writes a line to stdout and one to stderr, then runs until a file
/// `<name>.stop` appears in the sandbox, and exits with code 3.
fn container(name: &str, endpoints: Value) -> Value {
    json!({
        "name": name,
        "exec": {"command": {"shell": format!(
            "echo \"$ENDPOINT_HTTP $PORT0 $PORTS\" > \"$MESOS_SANDBOX/{name}.ports\"; echo $$ > \"$MESOS_SANDBOX/{name}.pid\"; echo {name} out; echo {name} err >&2; while [ ! -e \"$MESOS_SANDBOX/{name}.stop\" ]; do sleep 0.1; done; exit 3"
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

/// Waits until neither container process (`web`, `side`: pids) runs.
#[track_caller]
fn wait_ended(s: &mut Site, web: u32, side: u32, what: &str) {
    wait_showing(s, SETTLE, what, |_| {
        if alive(web) || alive(side) {
            Err(format!(
                "web {web} alive {}, side {side} alive {}",
                alive(web),
                alive(side)
            ))
        } else {
            Ok(())
        }
    });
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

/// The message of instance `id`'s entry in the pod's `terminationHistory`, once there is one.
fn end_message(s: &mut Site, id: &str) -> String {
    wait_showing(
        s,
        SETTLE,
        "the instance's end is in the pod's status",
        |s| {
            let r = send(s, "GET", &format!("/v2/pods{POD}::status"), None);
            let history = r.body_json["terminationHistory"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            history
                .iter()
                .find(|t| t["instanceID"] == id)
                .and_then(|t| t["message"].as_str())
                .map(str::to_string)
                .ok_or_else(|| format!("{}", r.body_json["terminationHistory"]))
        },
    )
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
    let ended = end_message(&mut s, &first);
    assert!(
        ended.contains("container side") && ended.contains("SIGKILL"),
        "the end of the first instance names the container and the signal: {ended}"
    );

    // Each container has its own output files in the sandbox.
    let sandbox = work_dir.join("sandboxes").join(&second);
    for name in ["web", "side"] {
        let out = wait_showing(&mut s, SETTLE, "the containers' output is written", |_| {
            let out = std::fs::read_to_string(sandbox.join(format!("{name}.stdout")))
                .map_err(|e| e.to_string())?;
            let err = std::fs::read_to_string(sandbox.join(format!("{name}.stderr")))
                .map_err(|e| e.to_string())?;
            if err.contains(&format!("{name} err")) {
                Ok(out)
            } else {
                Err(format!("stderr: {err:?}"))
            }
        });
        assert_eq!(
            out.trim(),
            format!("{name} out"),
            "{name}'s stdout holds its own output only"
        );
    }

    // A container that exits with a code: the instance ends, its status says which
    // container ended with which code, and a new instance replaces it.
    std::fs::write(sandbox.join("side.stop"), "").expect("ask side to exit");
    let (third, _, _) = wait_showing(
        &mut s,
        SETTLE,
        "a third instance replaces the second",
        |s| {
            let (id, port, st) = one_instance(s)?;
            if id == first || id == second {
                Err(format!("still an old instance: {st}"))
            } else {
                Ok((id, port, st))
            }
        },
    );
    let ended = end_message(&mut s, &second);
    assert!(
        ended.contains("container side exited with code 3"),
        "the end names the container and its exit code: {ended}"
    );
    wait_ended(
        &mut s,
        web2,
        side2,
        "both containers of the second instance ended",
    );
    let (web2, side2, _, _) = wait_showing(
        &mut s,
        SETTLE,
        "the third instance's containers run",
        |_| pids(&work_dir, &third),
    );

    // DELETE stops both containers.
    let r = send(&mut s, "DELETE", &format!("/v2/pods{POD}"), None);
    assert_eq!(r.status, 202, "{r:?}");
    assert!(r.header("marathon-deployment-id").is_some(), "{r:?}");
    wait_ended(&mut s, web2, side2, "both containers are stopped");
    let r = send(&mut s, "GET", &format!("/v2/pods{POD}"), None);
    assert_eq!(r.status, 404, "{r:?}");
}

/// The pod's live instances as `(id, status, version)` (the version from `specReference`).
fn instances(s: &mut Site) -> Result<Vec<(String, String, String)>, String> {
    let r = send(s, "GET", &format!("/v2/pods{POD}::status"), None);
    if r.status != 200 {
        return Err(format!("{r:?}"));
    }
    Ok(r.body_json["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            let version = text(&i["specReference"])
                .rsplit_once("::versions/")
                .map(|(_, v)| v.to_string())
                .unwrap_or_default();
            (text(&i["id"]), text(&i["status"]), version)
        })
        .collect())
}

/// Waits until the pod runs exactly `n` STABLE instances (of `version`, when given), none of
/// them in `not`, and no deployment is left; returns their ids.
#[track_caller]
fn wait_stable(
    s: &mut Site,
    n: usize,
    version: Option<&str>,
    not: &[String],
    what: &str,
) -> Vec<String> {
    wait_showing(s, CONVERGE, what, |s| {
        let all = instances(s)?;
        let deployments = send(s, "GET", "/v2/deployments", None);
        let ok = all.len() == n
            && all.iter().all(|(id, st, v)| {
                st == "STABLE" && version.is_none_or(|w| v == w) && !not.contains(id)
            })
            && deployments.body_json.as_array().is_some_and(Vec::is_empty);
        if ok {
            Ok(all.into_iter().map(|(id, _, _)| id).collect())
        } else {
            Err(format!("{all:?}; deployments {}", deployments.body))
        }
    })
}

#[test]
fn a_pod_update_rolls_its_instances_and_killed_instances_are_replaced() {
    let mut s = site("pods-change", 1, fast_master_flags());
    let agents = add_agents(&mut s, "local", &["local-a", "local-b"], 1);
    start_agents(&mut s, &agents);

    let r = send(&mut s, "POST", "/v2/pods", Some(&pod()));
    assert_eq!(r.status, 201, "{r:?}");
    let v1 = r.body_json["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let first = wait_stable(&mut s, 1, Some(&v1), &[], "the first version runs");

    // PUT a change: a new version, Marathon's deployment header, the instance rolled.
    let mut changed = pod();
    changed["environment"] = json!({"RELEASE": "2"});
    let r = send(&mut s, "PUT", &format!("/v2/pods{POD}"), Some(&changed));
    assert_eq!(r.status, 200, "{r:?}");
    let deployment = r.header("marathon-deployment-id").map(str::to_string);
    assert!(deployment.is_some(), "a change names its deployment: {r:?}");
    let v2 = r.body_json["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(v2, v1, "{r:?}");
    assert_eq!(r.body_json["environment"]["RELEASE"], "2", "{r:?}");
    let second = wait_stable(
        &mut s,
        1,
        Some(&v2),
        &first,
        "the instance rolls to the new version",
    );

    // The same definition again changes nothing: no deployment.
    let r = send(&mut s, "PUT", &format!("/v2/pods{POD}"), Some(&changed));
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.header("marathon-deployment-id").is_none(), "{r:?}");
    assert_eq!(r.body_json["version"], v2.as_str(), "{r:?}");

    // ::versions lists both, newest first; each version reads back as it was.
    let versions = send(&mut s, "GET", &format!("/v2/pods{POD}::versions"), None);
    assert_eq!(versions.body_json, json!([v2, v1]), "{versions:?}");
    let old = send(
        &mut s,
        "GET",
        &format!("/v2/pods{POD}::versions/{v1}"),
        None,
    );
    assert_eq!(old.status, 200, "{old:?}");
    assert!(old.body_json.get("environment").is_none(), "{old:?}");
    assert_eq!(old.body_json["version"], v1.as_str(), "{old:?}");
    let new = send(
        &mut s,
        "GET",
        &format!("/v2/pods{POD}::versions/{v2}"),
        None,
    );
    assert_eq!(new.body_json["environment"]["RELEASE"], "2", "{new:?}");
    let none = send(
        &mut s,
        "GET",
        &format!("/v2/pods{POD}::versions/1999-01-01"),
        None,
    );
    assert_eq!(none.status, 404, "{none:?}");
    assert!(
        none.message().contains("::versions"),
        "says where to look: {none:?}"
    );

    // The group the pod is in scales it: two instances (one per agent, hostname UNIQUE).
    let r = send(
        &mut s,
        "PUT",
        "/v2/groups/shop",
        Some(&json!({"scaleBy": 2})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let v3 = r.body_json["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // A scale starts one more instance and leaves the running one (at its version) alone.
    let pair = wait_stable(&mut s, 2, None, &[], "the group scales the pod to 2");
    assert!(
        pair.contains(&second[0]),
        "the running instance stays: {pair:?}"
    );
    let shown = send(&mut s, "GET", &format!("/v2/pods{POD}"), None);
    assert_eq!(shown.body_json["scaling"]["instances"], 2, "{shown:?}");
    assert_eq!(shown.body_json["version"], v3.as_str(), "{shown:?}");

    // DELETE ::instances/{id}: that instance is killed and replaced.
    let before = pair;
    let victim = before[0].clone();
    let r = send(
        &mut s,
        "DELETE",
        &format!("/v2/pods{POD}::instances/{victim}"),
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.body.contains(&victim),
        "the answer names the instance: {r:?}"
    );
    let after = wait_stable(
        &mut s,
        2,
        None,
        std::slice::from_ref(&victim),
        "the killed instance is replaced",
    );
    assert!(
        after.contains(&before[1]),
        "the other instance stays: {after:?}"
    );

    // DELETE ::instances with a list: both are killed and replaced.
    let r = send(
        &mut s,
        "DELETE",
        &format!("/v2/pods{POD}::instances"),
        Some(&json!(after)),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body_json.as_array().map(Vec::len), Some(2), "{r:?}");
    wait_stable(
        &mut s,
        2,
        None,
        &after,
        "both listed instances are replaced",
    );

    // An instance the pod does not have: 404 saying where to look, nothing killed.
    let r = send(
        &mut s,
        "DELETE",
        &format!("/v2/pods{POD}::instances/{}", first[0]),
        None,
    );
    assert_eq!(r.status, 404, "{r:?}");
    assert!(r.message().contains("::status"), "{r:?}");
}

#[test]
fn bad_pod_requests_get_4xx_answers_that_say_what_to_do() {
    let mut s = site("pods-bad", 1, fast_master_flags());
    let addr = s.masters.addr(1);

    // Malformed JSON: 400 naming the problem.
    let (status, body) = raw(&addr, "POST", "/v2/pods", "{\"id\": \"/shop/pair\", ");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("Invalid JSON")),
        "{body}"
    );
    let (status, body) = raw(&addr, "PUT", &format!("/v2/pods{POD}"), "[1, 2]");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("JSON object")),
        "{body}"
    );

    // 422 with Marathon's paths and what is wrong.
    let mut twice = pod();
    twice["containers"][1]["name"] = json!("web");
    let mut same_endpoint = pod();
    same_endpoint["containers"][1]["endpoints"] = json!([{"name": "http", "hostPort": 0}]);
    let mut same_port = pod();
    same_port["containers"][0]["endpoints"] = json!([{"name": "http", "hostPort": 31999}]);
    same_port["containers"][1]["endpoints"] = json!([{"name": "admin", "hostPort": 31999}]);
    let mut no_shell = pod();
    no_shell["containers"][0]["exec"] = json!({});
    let cases = [
        (twice, "/containers(1)/name", "used twice"),
        (
            same_endpoint,
            "/containers(1)/endpoints(0)/name",
            "used twice",
        ),
        (
            same_port,
            "/containers(1)/endpoints(0)/hostPort",
            "asked for twice",
        ),
        (
            no_shell,
            "/containers(0)/exec/command/shell",
            "exec.command.shell",
        ),
    ];
    for (body, path, needle) in cases {
        let r = send(&mut s, "POST", "/v2/pods", Some(&body));
        assert_eq!(r.status, 422, "{body}: {r:?}");
        assert!(r.body.contains(path), "wanted {path} in {r:?}");
        assert!(r.body.contains(needle), "wanted {needle:?} in {r:?}");
    }
    let mut other = pod();
    other["id"] = json!("/somewhere/else");
    let r = send(&mut s, "PUT", &format!("/v2/pods{POD}"), Some(&other));
    assert_eq!(r.status, 422, "{r:?}");
    assert!(
        r.message().contains("differs from the id in the path"),
        "{r:?}"
    );

    // An unknown pod: 404 saying how to list and create pods.
    for (method, path) in [
        ("GET", format!("/v2/pods{POD}")),
        ("GET", format!("/v2/pods{POD}::status")),
        ("GET", format!("/v2/pods{POD}::versions")),
        ("DELETE", format!("/v2/pods{POD}")),
        ("DELETE", format!("/v2/pods{POD}::instances")),
    ] {
        let r = send(&mut s, method, &path, None);
        assert_eq!(r.status, 404, "{method} {path}: {r:?}");
        assert!(
            r.message().contains("GET /v2/pods") && r.message().contains("POST /v2/pods"),
            "{method} {path}: {r:?}"
        );
    }
    let (status, body) = raw(
        &addr,
        "DELETE",
        &format!("/v2/pods{POD}::instances"),
        "{\"x\":1}",
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("JSON array")),
        "{body}"
    );

    // Nothing refused was created.
    let list = send(&mut s, "GET", "/v2/pods", None);
    assert_eq!(list.body_json, json!([]), "{list:?}");
}

#[test]
fn the_cli_adds_lists_shows_updates_and_removes_a_pod() {
    let mut s = site("pods-cli", 1, fast_master_flags());
    let agents = add_agents(&mut s, "local", &["local-a"], 1);
    start_agents(&mut s, &agents);
    let master = format!("http://{}", s.masters.addr(1));
    let drover = |s: &Site, args: &[&str]| {
        let mut all = vec![args[0], args[1], "--master", master.as_str()];
        all.extend(&args[2..]);
        s.run_drover(&all)
    };
    let ok = |s: &Site, args: &[&str]| {
        let (status, out, err) = drover(s, args);
        if !status.success() {
            s.fail(&format!("drover {args:?} failed ({status}):\n{out}\n{err}"));
        }
        out
    };
    let dir = s.dir().to_path_buf();
    let write = |name: &str, v: &Value| {
        let path = dir.join(name);
        std::fs::write(&path, v.to_string()).expect("write the pod file");
        path.to_string_lossy().into_owned()
    };
    // One agent: without hostname UNIQUE, so a rolling update can start the new instance
    // before it stops the old one.
    let pod = || {
        let mut p = pod();
        p.as_object_mut().expect("object").remove("scheduling");
        p
    };
    let file = write("pair.json", &pod());

    let added = ok(&s, &["pod", "add", &file, "--json"]);
    let added: Value =
        serde_json::from_str(&added).unwrap_or_else(|e| s.fail(&format!("{e}: {added}")));
    assert_eq!(added["id"], POD, "{added}");
    let v1 = added["version"].as_str().unwrap_or_default().to_string();
    let first = wait_stable(&mut s, 1, Some(&v1), &[], "the pod added by the CLI runs");

    let listed = ok(&s, &["pod", "list"]);
    let row = listed
        .lines()
        .find(|l| l.contains(POD))
        .unwrap_or_else(|| s.fail(&format!("{POD} not listed:\n{listed}")));
    for needle in ["STABLE", "web, side"] {
        assert!(row.contains(needle), "{needle} not in {row:?}");
    }
    let json_list = ok(&s, &["pod", "list", "--json"]);
    let json_list: Value = serde_json::from_str(&json_list).expect("JSON");
    assert_eq!(json_list[0]["id"], POD, "{json_list}");
    let shown = ok(&s, &["pod", "show", POD]);
    for needle in [first[0].as_str(), "web", "side", "http:", "is STABLE"] {
        assert!(shown.contains(needle), "{needle} not in:\n{shown}");
    }

    // An update from a file rolls the instance.
    let mut changed = pod();
    changed["environment"] = json!({"RELEASE": "2"});
    let file2 = write("pair2.json", &changed);
    let updated = ok(&s, &["pod", "update", &file2]);
    assert!(updated.contains("Updated /shop/pair"), "{updated}");
    let v2 = send(&mut s, "GET", &format!("/v2/pods{POD}"), None).body_json["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(v1, v2);
    wait_stable(
        &mut s,
        1,
        Some(&v2),
        &first,
        "the CLI's update rolls the instance",
    );

    // Mistakes are told in words, with a non-zero exit.
    let mut no_id = pod();
    no_id.as_object_mut().expect("object").remove("id");
    let file3 = write("no-id.json", &no_id);
    let (status, _, err) = drover(&s, &["pod", "update", &file3]);
    assert!(!status.success() && err.contains("has no \"id\""), "{err}");
    let (status, _, err) = drover(&s, &["pod", "show", "/shop/nothing"]);
    assert!(!status.success() && err.contains("does not exist"), "{err}");
    let mut bad = pod();
    bad["containers"][1]["name"] = json!("web");
    let file4 = write("bad.json", &bad);
    let (status, _, err) = drover(&s, &["pod", "add", &file4]);
    assert!(
        !status.success() && err.contains("/containers(1)/name"),
        "{err}"
    );

    let removed = ok(&s, &["pod", "remove", POD]);
    assert!(removed.contains("Removing /shop/pair"), "{removed}");
    wait_showing(
        &mut s,
        CONVERGE,
        "the pod is gone with its instances",
        |s| {
            let r = send(s, "GET", &format!("/v2/pods{POD}"), None);
            let tasks = send(s, "GET", "/v2/tasks", None);
            let none = tasks.body_json["tasks"]
                .as_array()
                .is_some_and(Vec::is_empty);
            if r.status == 404 && none {
                Ok(())
            } else {
                Err(format!("{r:?} {}", tasks.body))
            }
        },
    );
}
