//! Marathon's application groups across processes (issue 14, scope 3): real `drover master`
//! and `drover agent` binaries, real task processes. A group file with three nested groups
//! and a dependency chain deploys in dependency order (read from the order of `/v2/events`),
//! scales by a factor, rolls back to its first version and is deleted with every task
//! stopped; bad group files get Marathon's 4xx answers.
//!
//! Waits poll conditions with deadlines; nothing asserts on how fast anything happened.

mod agent_support;
mod common;
mod scheduler_support;

use std::collections::BTreeMap;

use agent_support::events::EventStream;
use agent_support::{SETTLE, Site};
use client::{Change, Event};
use common::http::raw;
use scheduler_support::site::{CONVERGE, add_agents, send, site, start_agents};
use scheduler_support::{
    HealthGate, describe, event_types, expect_event, fast_master_flags, tasks, wait_showing,
};
use serde_json::{Value, json};

const DB: &str = "/shop/db/pg";
const API: &str = "/shop/backend/api";
const WEB: &str = "/shop/front/web";

/// The group file: `/shop/db/pg` (healthy only once its gate opens), `/shop/backend/api`
/// needing `../db`, and `/shop/front` (with `web`) needing `../backend`.
fn shop(gate: &HealthGate) -> Value {
    let app = |id: &str, n: u32| {
        json!({"id": id, "cmd": "exec sleep 100000", "instances": n, "cpus": 0.05, "mem": 8,
               "portDefinitions": []})
    };
    let mut pg = app("pg", 1);
    pg["healthChecks"] = json!([gate.check()]);
    let mut api = app("api", 2);
    api["dependencies"] = json!(["../db"]);
    json!({
        "id": "/shop",
        "groups": [
            {"id": "db", "apps": [pg]},
            {"id": "backend", "apps": [api]},
            {"id": "front", "dependencies": ["../backend"], "apps": [app("web", 1)]},
        ]
    })
}

/// The instance counts of the group's apps, and whether each runs them all.
fn counts(s: &mut Site) -> BTreeMap<String, (u32, usize, usize)> {
    let mut out = BTreeMap::new();
    for id in [DB, API, WEB] {
        if let Some(app) = s.app(id) {
            let ts = tasks(&app);
            let running = ts.iter().filter(|t| t.running()).count();
            let wanted = app.definition["instances"].as_u64().unwrap_or(0) as u32;
            out.insert(id.to_string(), (wanted, ts.len(), running));
        }
    }
    out
}

/// Waits until the group's apps run `want` instances each (db, api, web) and no deployment
/// is left.
#[track_caller]
fn wait_counts(s: &mut Site, want: [usize; 3], what: &str) {
    wait_showing(s, CONVERGE, what, |s| {
        let c = counts(s);
        let deployments = s
            .get("/v2/deployments")
            .map(|r| r.body_json.as_array().map_or(0, Vec::len))
            .unwrap_or(1);
        let ok = [DB, API, WEB].iter().zip(want).all(|(id, n)| {
            c.get(*id)
                .is_some_and(|(w, t, r)| *w as usize == n && *t == n && *r == n)
        });
        if ok && deployments == 0 {
            Ok(())
        } else {
            Err(format!("{c:?}, {deployments} deployment(s)"))
        }
    });
}

/// The index in `events` of the first `TASK_RUNNING` of `app`, and of its last one.
fn running_at(events: &[Event], app: &str) -> Vec<usize> {
    events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Event::StatusUpdateEvent {
                app_id,
                task_status,
                ..
            } if app_id == app && task_status == "TASK_RUNNING" => Some(i),
            _ => None,
        })
        .collect()
}

#[test]
fn a_group_deploys_in_dependency_order_scales_rolls_back_and_is_deleted() {
    let mut s = site("groups-life", 1, fast_master_flags());
    let agents = add_agents(&mut s, "local", &["local-a", "local-b"], 1);
    start_agents(&mut s, &agents);
    let addr = s.masters.addr(1);
    let gate = HealthGate::new(s.dir());
    let mut events = EventStream::open(&addr, &[])
        .unwrap_or_else(|e| s.fail(&format!("subscribe to /v2/events: {e}")));

    // Create: the database first; nothing that needs it starts before it is healthy.
    let r = send(&mut s, "POST", "/v2/groups", Some(&shop(&gate)));
    assert_eq!(r.status, 201, "{r}");
    assert_eq!(r.header("location"), Some("/v2/groups/shop"), "{r}");
    let v1 = r.typed::<Change>().version;
    wait_showing(&mut s, SETTLE, "the database runs (not healthy yet)", |s| {
        let ts = s.app(DB).map(|a| tasks(&a)).unwrap_or_default();
        if ts.len() == 1 && ts[0].running() {
            Ok(())
        } else {
            Err(describe(&ts))
        }
    });
    let api_tasks = s.app(API).map(|a| tasks(&a)).unwrap_or_default();
    assert!(
        api_tasks.is_empty(),
        "{API} started before its dependency {DB} was healthy: {}",
        describe(&api_tasks)
    );
    let plan = s.get("/v2/deployments").expect("deployments");
    let plan: Vec<client::Deployment> = plan.typed();
    assert_eq!(plan.len(), 1, "{plan:?}");
    assert_eq!(
        (plan[0].total_steps, plan[0].current_step),
        (3, 1),
        "{plan:?}"
    );
    gate.open(&v1);
    wait_counts(&mut s, [1, 2, 1], "the group is deployed");
    let done = expect_event(
        &s,
        &mut events,
        SETTLE,
        "group_change_success",
        |e| match e {
            Event::GroupChangeSuccess { group_id, version } if group_id == "/shop" => {
                Some(version.clone())
            }
            _ => None,
        },
    );
    assert_eq!(done, v1);
    let seen = events.seen().to_vec();
    let healthy = seen
        .iter()
        .position(|e| matches!(e, Event::HealthStatusChangedEvent { app_id, alive: true, .. } if app_id == DB))
        .unwrap_or_else(|| s.fail(&format!("no healthy event for {DB}: {:?}", event_types(&seen))));
    let (api_at, web_at) = (running_at(&seen, API), running_at(&seen, WEB));
    assert_eq!(api_at.len(), 2, "{:?}", event_types(&seen));
    assert!(
        api_at[0] > healthy,
        "{API} ran (event {}) before {DB} was healthy (event {healthy})",
        api_at[0]
    );
    assert!(
        web_at.first().is_some_and(|w| *w > api_at[1]),
        "{WEB} ran ({web_at:?}) before both of {API}'s instances ({api_at:?})"
    );
    let steps = seen
        .iter()
        .filter(|e| matches!(e, Event::DeploymentStepSuccess { plan, .. } if plan.version == v1))
        .count();
    assert_eq!(steps, 3, "one deployment_step_success per step");

    // The tree as Marathon shows it.
    let tree = s.get("/v2/groups/shop").expect("group");
    assert_eq!(tree.status, 200, "{tree}");
    let group: client::Group = tree.typed();
    let ids: Vec<&str> = group.all_apps().iter().map(|a| a.id()).collect();
    assert_eq!(ids, vec![API, DB, WEB], "{tree}");
    let under = s.get("/v2/apps/shop/*").expect("apps under /shop");
    assert_eq!(under.typed::<client::AppList>().apps.len(), 3, "{under}");

    // Scale by 2: every app under the group doubles.
    let r = send(
        &mut s,
        "PUT",
        "/v2/groups/shop",
        Some(&json!({"scaleBy": 2})),
    );
    assert_eq!(r.status, 200, "{r}");
    gate.open(&r.typed::<Change>().version);
    wait_counts(&mut s, [2, 4, 2], "the group is scaled by 2");

    // Roll back to the first version.
    let versions = s.get("/v2/groups/shop/versions").expect("versions");
    let versions: Vec<String> = versions.typed();
    assert!(versions.contains(&v1), "{versions:?}");
    let r = send(
        &mut s,
        "PUT",
        "/v2/groups/shop",
        Some(&json!({"version": v1})),
    );
    assert_eq!(r.status, 200, "{r}");
    gate.open(&r.typed::<Change>().version);
    wait_counts(&mut s, [1, 2, 1], "the group is rolled back");

    // Delete: everything under it stops, processes included.
    let ids: Vec<String> = [DB, API, WEB]
        .iter()
        .flat_map(|id| s.app(id).map(|a| tasks(&a)).unwrap_or_default())
        .map(|t| t.id)
        .collect();
    let procs: Vec<_> = ids
        .iter()
        .map(|id| {
            s.task_process(id)
                .unwrap_or_else(|| s.fail(&format!("task {id} has no process")))
        })
        .collect();
    let r = send(&mut s, "DELETE", "/v2/groups/shop", None);
    assert_eq!(r.status, 200, "{r}");
    wait_showing(
        &mut s,
        CONVERGE,
        "every task of the group has stopped",
        |s| {
            let left: Vec<u32> = procs
                .iter()
                .filter(|p| p.is_alive())
                .map(|p| p.pid)
                .collect();
            let tasks = s.get("/v2/tasks").map(|r| r.body_json["tasks"].clone());
            let none = tasks
                .as_ref()
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty);
            if left.is_empty() && none {
                Ok(())
            } else {
                Err(format!("live pids {left:?}, tasks {tasks:?}"))
            }
        },
    );
    let gone = s.get("/v2/groups/shop").expect("answer");
    assert_eq!(gone.status, 404, "{gone}");
}

#[test]
fn bad_group_files_get_marathons_answers() {
    let mut s = site("groups-bad", 1, fast_master_flags());
    let addr = s.masters.addr(1);
    let app = |id: &str, deps: &[&str]| json!({"id": id, "cmd": "sleep 1", "instances": 0, "dependencies": deps});
    let cases = [
        (
            json!({"id": "/g", "apps": [app("a", &["/nowhere"])]}),
            422,
            "/g/a depends on /nowhere",
        ),
        (
            json!({"id": "/g", "apps": [app("a", &["b"]), app("b", &["a"])]}),
            422,
            "cyclic dependencies: /g/a -> /g/b -> /g/a",
        ),
        (
            json!({"id": "/g", "apps": [app("/other/a", &[])]}),
            422,
            "app /other/a is not in group /g",
        ),
        (
            json!({"id": "/g", "groups": [{"id": "x", "apps": [app("y", &[])]}], "apps": [app("x", &[])]}),
            422,
            "/g/x is both an app and a group",
        ),
        (
            json!({"id": "/g", "apps": [{"id": "a", "cpus": -1}]}),
            422,
            "/apps(0)",
        ),
    ];
    for (body, status, needle) in cases {
        let r = send(&mut s, "POST", "/v2/groups", Some(&body));
        assert_eq!(r.status, status, "{body}: {r}");
        assert!(
            r.to_string().contains(needle),
            "{body}: wanted {needle:?} in {r}"
        );
    }
    let (status, body) = raw(&addr, "POST", "/v2/groups", "{\"id\": \"/g\", ");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("Invalid JSON")),
        "{body}"
    );
    // Nothing of the refused files was created; a good one is, once.
    assert_eq!(s.get("/v2/groups/g").expect("answer").status, 404);
    let ok = json!({"id": "/g", "apps": [app("a", &[])]});
    assert_eq!(send(&mut s, "POST", "/v2/groups", Some(&ok)).status, 201);
    // An app may not take a group's id.
    let clash = send(
        &mut s,
        "POST",
        "/v2/apps",
        Some(&json!({"id": "/g", "cmd": "sleep 1"})),
    );
    assert_eq!(clash.status, 422, "{clash}");
    assert!(
        clash.message().contains("may not have the same identifier"),
        "{clash}"
    );
    let again = send(&mut s, "POST", "/v2/groups", Some(&ok));
    assert_eq!(again.status, 409, "{again}");
    assert!(again.message().contains("already created"), "{again}");
    // A dry run answers the plan and changes nothing.
    let dry = send(
        &mut s,
        "PUT",
        "/v2/groups/g?dryRun=true&force=true",
        Some(&json!({"apps": [{"id": "b", "cmd": "sleep 1", "instances": 0}]})),
    );
    assert_eq!(dry.status, 200, "{dry}");
    let steps = dry.body_json["steps"].to_string();
    assert!(steps.contains("/g/a") && steps.contains("/g/b"), "{dry}");
    assert!(s.app("/g/b").is_none(), "a dry run created /g/b");
}

#[test]
fn the_cli_adds_lists_shows_scales_and_removes_a_group() {
    let mut s = site("groups-cli", 1, fast_master_flags());
    let agents = add_agents(&mut s, "local", &["local-a"], 1);
    start_agents(&mut s, &agents);
    let master = format!("http://{}", s.masters.addr(1));
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/groups/shop.json");
    let file = file.to_str().expect("utf-8 path");
    let drover = |s: &Site, args: &[&str]| {
        let mut all = vec![args[0], args[1], "--master", master.as_str()];
        all.extend(&args[2..]);
        let (status, out, err) = s.run_drover(&all);
        if !status.success() {
            s.fail(&format!("drover {args:?} failed ({status}):\n{out}\n{err}"));
        }
        out
    };
    let added = drover(&s, &["group", "add", file, "--json"]);
    let change: Change =
        serde_json::from_str(&added).unwrap_or_else(|e| s.fail(&format!("{e}: {added}")));
    assert!(change.deployment_id.is_some(), "{added}");
    wait_counts(&mut s, [1, 2, 1], "the example group is deployed");
    let listed = drover(&s, &["group", "list", "--json"]);
    let root: client::Group =
        serde_json::from_str(&listed).unwrap_or_else(|e| s.fail(&format!("{e}: {listed}")));
    assert_eq!(root.id, "/");
    assert_eq!(root.all_apps().len(), 3, "{listed}");
    let shown = drover(&s, &["group", "show", "/shop"]);
    for needle in ["/shop/front", "/shop/backend", WEB, "/shop/db"] {
        assert!(shown.contains(needle), "{needle} not in:\n{shown}");
    }
    drover(&s, &["group", "scale", "/shop", "2"]);
    wait_counts(&mut s, [2, 4, 2], "the example group is scaled by 2");
    drover(&s, &["group", "remove", "/shop"]);
    wait_showing(&mut s, CONVERGE, "the example group is gone", |s| {
        let r = s.get("/v2/groups/shop").map(|r| r.status);
        let tasks = s.get("/v2/tasks").map(|r| r.body_json["tasks"].clone());
        if r == Some(404)
            && tasks
                .as_ref()
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
        {
            Ok(())
        } else {
            Err(format!("{r:?} {tasks:?}"))
        }
    });
}
