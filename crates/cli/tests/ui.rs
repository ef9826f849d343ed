//! The web UI in a real headless Chromium against a real `drover dev`: the Nodes page lists
//! every agent with its region and zone, and deploying the balanced-zones example from the
//! Deploy page shows its six instances over the four zones of `aws-us-east1`; an app with a VIP
//! and marathon-lb labels shows them on its Service page; a group file with nested groups
//! shows as a tree on the Services page (each app under its own group, a group folds and
//! unfolds, and stays folded when the page is drawn again), a group's page shows its dependencies and
//! version, and the Pods page answers without an error. Screenshots of each step go to
//! `target/ui-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them the test fails and says so.

mod common;
mod ui_support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use ui_support::{Browser, DevCluster, Page, SCREENSHOTS};

/// Regions and zones of `drover dev`'s default topology; the first region is the local one.
const REGIONS: [&str; 3] = ["local", "aws-us-east1", "aws-us-east2"];

/// How long the UI may take to show what the cluster did (placement, task start, events).
const SHOWN: Duration = Duration::from_secs(90);

const BALANCED: &str = include_str!("../../../examples/apps/balanced-zones.json");
const INVALID: &str = include_str!("../../../examples/apps/invalid.json");

/// The agents' rows as the Nodes page shows them.
const NODES: &str = r##"
  const text = (tr, css) => tr.querySelector(css)?.textContent.trim() ?? null;
  return {
    agents: [...document.querySelectorAll('#nodes tbody tr[data-type="agent"]')].map((tr) => ({
      host: text(tr, "td.host"), region: text(tr, "td.region"), zone: text(tr, "td.zone"),
      status: text(tr, "td.status"),
    })),
    leaders: document.querySelectorAll('#nodes tbody tr[data-type="master"][data-leader="true"]').length,
  };"##;

/// The Deploy page's answer: the HTTP status of a failure and the paths its errors name.
const DEPLOY_RESULT: &str = r##"
  const box = document.getElementById("deploy-result");
  return {
    status: box?.dataset.status ?? null,
    paths: [...document.querySelectorAll("#deploy-result li[data-path]")].map((li) => li.dataset.path),
    text: box?.innerText ?? "",
  };"##;

/// The dry run's answer: instances placed and left, and placed instances per region and zone.
const PLAN: &str = r##"
  const box = document.getElementById("deploy-result");
  return {
    placed: box?.dataset.placed ?? null,
    unplaced: box?.dataset.unplaced ?? null,
    zones: [...document.querySelectorAll("#plan-table tr.plan-zone")].map((tr) => ({
      region: tr.cells[0].textContent.trim(), zone: tr.cells[1].textContent.trim(), count: Number(tr.cells[2].textContent),
    })),
    text: box?.innerText ?? "",
  };"##;

/// The Service detail page: its route, and each instance's region, zone and state as shown.
const INSTANCES: &str = r##"
  const text = (tr, css) => tr.querySelector(css)?.textContent.trim() ?? null;
  return {
    hash: location.hash,
    instances: [...document.querySelectorAll("#instances tbody tr.instance")].map((tr) => ({
      host: text(tr, "td.host"), region: text(tr, "td.region"), zone: text(tr, "td.zone"), state: text(tr, "td.state"),
    })),
    picture: [...document.querySelectorAll("#service-where .zone-cell")].map((c) => ({
      region: c.dataset.region, zone: c.dataset.zone, count: Number(c.querySelector(".zone-count").textContent),
    })),
  };"##;

/// The Service page's load-balancing section: each port's VIPs and edge route as shown.
const ROUTES: &str = r##"
  return {
    hash: location.hash,
    routes: [...document.querySelectorAll("#routes tbody tr.route")].map((tr) => ({
      port: tr.dataset.portIndex,
      vips: [...tr.querySelectorAll(".vip")].map((v) => v.textContent.trim()),
      mode: tr.querySelector(".edge")?.dataset.mode ?? null,
      vhosts: [...tr.querySelectorAll(".vhost")].map((v) => v.textContent.trim()),
      service_port: tr.querySelector(".service-port")?.textContent.trim() ?? null,
    })),
  };"##;

/// An app reached through a VIP and both kinds of edge route (marathon-lb's labels).
const ROUTED: &str = r#"{
  "id": "/edge/web", "cmd": "sleep 100000", "instances": 0, "cpus": 0.1, "mem": 16,
  "portDefinitions": [{"port": 0, "labels": {"VIP_0": "/edge/web:8080"}}, {"port": 0}],
  "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.test",
             "HAPROXY_1_PORT": "10001", "HAPROXY_1_MODE": "tcp"}
}"#;

/// The Services page's row of the balanced-zones app.
const SERVICES: &str = r##"
  const tr = document.querySelector('#services tr.service[data-id="/balanced-zones"]');
  return tr ? { running: tr.querySelector("td.running").textContent.trim(),
                desired: tr.querySelector("td.desired").textContent.trim() } : null;"##;

fn strings(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Instances per zone of the rows `v` whose state is `running`, as `(region, zone) -> n`.
fn running_per_zone(v: &Value) -> BTreeMap<(String, String), u32> {
    let mut zones = BTreeMap::new();
    for i in v["instances"].as_array().into_iter().flatten() {
        if i["state"] == "running" {
            let key = (
                i["region"].as_str().unwrap_or_default().to_string(),
                i["zone"].as_str().unwrap_or_default().to_string(),
            );
            *zones.entry(key).or_insert(0) += 1;
        }
    }
    zones
}

/// Six running instances over four zones of `aws-us-east1`, two, two, one and one.
fn balanced_over_east1(zones: &BTreeMap<(String, String), u32>) -> bool {
    let mut counts: Vec<u32> = zones.values().copied().collect();
    counts.sort_unstable();
    counts == [1, 1, 2, 2]
        && zones
            .keys()
            .all(|(r, z)| r == "aws-us-east1" && z.starts_with("aws-us-east1-"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_page_and_deploying_balanced_zones_from_the_ui() {
    let chromedriver = ui_support::chromedriver();
    ui_support::fresh_screenshots();
    // Declared first, dropped last: the browser goes before the cluster.
    let dev = DevCluster::start();
    let browser = Browser::start(&chromedriver, dev.dir()).await;
    let page = Page {
        client: browser.client(),
        dev: &dev,
    };

    // Nodes: all twelve agents, each with its region ("(Local)" marked) and zone.
    page.open("#/nodes").await;
    let nodes = page
        .wait_for(
            "nodes",
            "the Nodes page to list 12 agents and a leader",
            SHOWN,
            NODES,
            |v| v["agents"].as_array().is_some_and(|a| a.len() == 12) && v["leaders"] == 1,
        )
        .await;
    page.screenshot("01-nodes").await;
    let mut shown: Vec<(String, String)> = nodes["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["region"].as_str().unwrap_or_default().to_string(),
                a["zone"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    shown.sort();
    let mut expected: Vec<(String, String)> = REGIONS
        .iter()
        .flat_map(|r| {
            let cell = if *r == "local" {
                "local (Local)".to_string()
            } else {
                r.to_string()
            };
            ["a", "b", "c", "d"].map(|z| (cell.clone(), format!("{r}-{z}")))
        })
        .collect();
    expected.sort();
    assert_eq!(
        shown, expected,
        "the Nodes page shows these (region, zone) cells for the agents: {nodes}"
    );

    // Deploy an invalid definition: the page lists the API's errors per path.
    page.open("#/deploy").await;
    page.type_into("#app-json-input", INVALID).await;
    page.click("#deploy").await;
    let invalid = page
        .wait_for(
            "deploy-invalid",
            "the Deploy page to show the 422 errors of examples/apps/invalid.json",
            SHOWN,
            DEPLOY_RESULT,
            |v| v["status"] == "422",
        )
        .await;
    page.screenshot("02-deploy-invalid").await;
    let paths = strings(&invalid, "paths");
    for path in ["/id", "/instances", "/constraints(0)"] {
        assert!(
            paths.iter().any(|p| p == path),
            "the Deploy page does not list an error for {path}: {invalid}"
        );
    }

    // Dry run of balanced-zones: six instances over the four zones of aws-us-east1.
    page.type_into("#app-json-input", BALANCED).await;
    page.click("#dry-run").await;
    let plan = page
        .wait_for(
            "dry-run",
            "the Deploy page to show the dry run of balanced-zones",
            SHOWN,
            PLAN,
            |v| v["placed"].is_string(),
        )
        .await;
    page.screenshot("03-deploy-dry-run").await;
    assert_eq!(
        (plan["placed"].as_str(), plan["unplaced"].as_str()),
        (Some("6"), Some("0")),
        "the dry run should place all 6 instances: {plan}"
    );
    let planned: BTreeMap<(String, String), u32> = plan["zones"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|z| {
            let key = (
                z["region"].as_str().unwrap_or_default().to_string(),
                z["zone"].as_str().unwrap_or_default().to_string(),
            );
            (key, z["count"].as_u64().unwrap_or(0) as u32)
        })
        .collect();
    assert!(
        balanced_over_east1(&planned),
        "the dry run should spread 2, 2, 1, 1 over the zones of aws-us-east1: {plan}"
    );

    // Deploy: the page moves to the service and shows its instances once they run.
    page.click("#deploy").await;
    let detail = page
        .wait_for(
            "service",
            "the service page of /balanced-zones to show 6 running instances over 4 zones of aws-us-east1",
            SHOWN,
            INSTANCES,
            |v| {
                v["hash"] == "#/services/balanced-zones"
                    && v["instances"].as_array().is_some_and(|a| a.len() == 6)
                    && balanced_over_east1(&running_per_zone(v))
            },
        )
        .await;
    page.screenshot("04-service-detail").await;
    let mut pictured: Vec<u64> = detail["picture"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["region"] == "aws-us-east1")
        .filter_map(|c| c["count"].as_u64())
        .collect();
    pictured.sort_unstable();
    assert_eq!(
        pictured,
        [1, 1, 2, 2],
        "the picture of where the service runs should show its zones: {detail}"
    );

    // Services: the app's row counts its running instances.
    page.open("#/services").await;
    page.wait_for(
        "services",
        "the Services page to show /balanced-zones with 6 of 6 running",
        SHOWN,
        SERVICES,
        |v| v["running"] == "6" && v["desired"] == "6",
    )
    .await;
    page.screenshot("05-services").await;

    // An app with a VIP and edge routes: its page shows each port's.
    let api = dev.url.trim_start_matches("http://");
    let routed: Value = serde_json::from_str(ROUTED).expect("ROUTED is JSON");
    let created = common::http::post(api, "/v2/apps", &routed)
        .unwrap_or_else(|e| panic!("POST /v2/apps {ROUTED}: {e}\n{}", dev.logs()));
    assert_eq!(created.status, 201, "POST /v2/apps: {}", created.body);
    page.open("#/services/edge/web").await;
    let shown = page
        .wait_for(
            "routes",
            "the service page of /edge/web to show its VIP and edge routes",
            SHOWN,
            ROUTES,
            |v| v["routes"].as_array().is_some_and(|a| a.len() == 2),
        )
        .await;
    page.screenshot("06-service-routes").await;
    let routes = &shown["routes"];
    assert_eq!(
        strings(&routes[0], "vips"),
        ["/edge/web:8080 (web.edge.marathon.l4lb.drover.directory:8080)"],
        "port 0's VIP and its name: {shown}"
    );
    assert_eq!(
        (routes[0]["mode"].as_str(), strings(&routes[0], "vhosts")),
        (Some("http"), vec!["web.example.test".to_string()]),
        "port 0's virtual host: {shown}"
    );
    assert_eq!(
        (
            routes[1]["mode"].as_str(),
            routes[1]["service_port"].as_str()
        ),
        (Some("tcp"), Some("10001")),
        "port 1's TCP service port: {shown}"
    );
    groups_tree(&page, &dev).await;
    eprintln!("screenshots in {SCREENSHOTS}");

    browser.close().await;
}

/// A group file with groups nested two deep, and a dependency (`backend` after `db`).
const TREE: &str = r#"{
  "id": "/tree",
  "groups": [
    {"id": "db", "apps": [{"id": "pg", "cmd": "exec sleep 100000", "instances": 1, "cpus": 0.05, "mem": 16}]},
    {"id": "backend", "dependencies": ["../db"],
     "apps": [{"id": "api", "cmd": "exec sleep 100000", "instances": 2, "cpus": 0.05, "mem": 16}],
     "groups": [
       {"id": "workers", "apps": [{"id": "queue", "cmd": "exec sleep 100000", "instances": 1, "cpus": 0.05, "mem": 16}]}
     ]}
  ]
}"#;

/// The tree on the Services page: each group with its parent, whether it is shown, and its
/// sums; each app with the group it is listed under and whether it is shown.
const TREE_SHOWN: &str = r##"
  const box = document.getElementById("groups-tree");
  const parent = (el) => el.parentElement?.closest("li.tree-group")?.dataset.id ?? null;
  const shown = (el) => el.offsetParent !== null;
  const text = (el, css) => el.querySelector(`:scope > .tree-row ${css}`)?.textContent.trim() ?? null;
  return {
    groups: [...(box?.querySelectorAll("li.tree-group") ?? [])].map((li) => ({
      id: li.dataset.id, parent: parent(li), shown: shown(li), open: li.dataset.open === "true",
      name: text(li, ".group-name"), apps: Number(li.querySelector(":scope > .tree-row .app-count")?.dataset.apps),
      running: text(li, ".counts .running"), desired: text(li, ".counts .desired"),
    })),
    apps: [...(box?.querySelectorAll("li.tree-app") ?? [])].map((li) => ({
      id: li.dataset.id, group: parent(li), shown: shown(li), name: li.querySelector("a")?.textContent.trim(),
    })),
  };"##;

/// The Group page: its id, version and dependencies, and the apps its tree lists.
const GROUP_PAGE: &str = r##"
  return {
    hash: location.hash,
    id: document.getElementById("group-id")?.textContent.trim() ?? null,
    version: document.getElementById("group-version")?.textContent.trim() ?? "",
    dependencies: [...document.querySelectorAll("#dependencies li")].map((li) => li.dataset.id),
    apps: [...document.querySelectorAll("#group-tree li.tree-app")].map((li) => li.dataset.id),
  };"##;

/// The Pods page: whether it says pods are not served, or lists them, and any error shown.
const PODS_PAGE: &str = r##"
  const error = document.getElementById("error");
  return {
    unavailable: document.getElementById("pods-unavailable")?.textContent.trim() ?? null,
    listed: !!(document.getElementById("pods") || document.getElementById("no-pods")),
    error: error && !error.hidden ? error.textContent.trim() : null,
  };"##;

fn entry<'a>(v: &'a Value, kind: &str, id: &str) -> &'a Value {
    v[kind]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == id))
        .unwrap_or(&Value::Null)
}

/// Every group and app of [`TREE`] under its own parent, all shown, the sums counted.
fn tree_as_posted(v: &Value) -> bool {
    let groups = [
        ("/tree", "/"),
        ("/tree/db", "/tree"),
        ("/tree/backend", "/tree"),
        ("/tree/backend/workers", "/tree/backend"),
    ];
    let apps = [
        ("/tree/db/pg", "/tree/db"),
        ("/tree/backend/api", "/tree/backend"),
        ("/tree/backend/workers/queue", "/tree/backend/workers"),
    ];
    groups.iter().all(|(id, parent)| {
        let g = entry(v, "groups", id);
        g["parent"] == *parent && g["shown"] == true
    }) && apps.iter().all(|(id, group)| {
        let a = entry(v, "apps", id);
        a["group"] == *group && a["shown"] == true
    }) && entry(v, "groups", "/tree")["running"] == "4"
}

/// Whether the apps and groups under `/tree/backend` are hidden (`folded`) or shown, and
/// everything else in `/tree` shown.
fn backend_folded(v: &Value, folded: bool) -> bool {
    let under = ["/tree/backend/api", "/tree/backend/workers/queue"];
    entry(v, "groups", "/tree/backend")["open"] == !folded
        && entry(v, "groups", "/tree/backend")["shown"] == true
        && entry(v, "groups", "/tree/backend/workers")["shown"] == !folded
        && under
            .iter()
            .all(|id| entry(v, "apps", id)["shown"] == !folded)
        && entry(v, "apps", "/tree/db/pg")["shown"] == true
}

/// The groups tree, a group's page and the Pods page (see the module's doc).
async fn groups_tree(page: &Page<'_>, dev: &DevCluster) {
    let api = dev.url.trim_start_matches("http://");
    let tree: Value = serde_json::from_str(TREE).expect("TREE is JSON");
    let created = common::http::post(api, "/v2/groups", &tree)
        .unwrap_or_else(|e| panic!("POST /v2/groups {TREE}: {e}\n{}", dev.logs()));
    assert_eq!(created.status, 201, "POST /v2/groups: {}", created.body);

    page.open("#/services").await;
    let shown = page
        .wait_for(
            "groups-tree",
            "the Services page to show /tree's nested groups with each app under its own group, 4 running",
            SHOWN,
            TREE_SHOWN,
            tree_as_posted,
        )
        .await;
    page.screenshot("07-groups-tree").await;
    let backend = entry(&shown, "groups", "/tree/backend");
    assert_eq!(
        (backend["name"].as_str(), backend["apps"].as_u64()),
        (Some("backend"), Some(2)),
        "backend is named by its last segment and counts its apps, nested ones included: {shown}"
    );
    assert_eq!(
        (backend["running"].as_str(), backend["desired"].as_str()),
        (Some("3"), Some("3")),
        "backend sums the instances of the apps under it: {shown}"
    );
    assert_eq!(
        entry(&shown, "apps", "/tree/backend/workers/queue")["name"],
        "queue",
        "apps are named by their last segment: {shown}"
    );

    // Fold backend: what is under it goes, db's app stays.
    let toggle = r#"li.tree-group[data-id="/tree/backend"] > .tree-row > button.toggle"#;
    page.click(&format!("#groups-tree {toggle}")).await;
    page.wait_for(
        "groups-tree-folded",
        "backend's apps and groups to be hidden once it is folded",
        SHOWN,
        TREE_SHOWN,
        |v| backend_folded(v, true),
    )
    .await;
    page.screenshot("08-groups-tree-folded").await;
    // It stays folded when the tree is drawn anew: to the Nodes page and back.
    page.eval(r##"location.hash = "#/nodes";"##).await;
    page.wait_for(
        "nodes-again",
        "the Nodes page to show again",
        SHOWN,
        r##"return !!document.querySelector("#nodes tbody tr") && !document.getElementById("groups-tree");"##,
        |v| v == true,
    )
    .await;
    page.eval(r##"location.hash = "#/services";"##).await;
    let redrawn = page
        .wait_for(
            "groups-tree-redrawn",
            "the tree to be drawn again on the Services page",
            SHOWN,
            TREE_SHOWN,
            |v| entry(v, "groups", "/tree/backend").is_object(),
        )
        .await;
    assert!(
        backend_folded(&redrawn, true),
        "backend stays folded when the tree is drawn again: {redrawn}"
    );
    page.click(&format!("#groups-tree {toggle}")).await;
    page.wait_for(
        "groups-tree-unfolded",
        "backend's apps and groups to be shown again once it is unfolded",
        SHOWN,
        TREE_SHOWN,
        |v| backend_folded(v, false),
    )
    .await;

    // A group's page: its dependencies and version, and the apps under it.
    page.click(r#"#groups-tree li.tree-group[data-id="/tree/backend"] > .tree-row > a.group-name"#)
        .await;
    let group = page
        .wait_for(
            "group-page",
            "the page of /tree/backend to show its dependency and version",
            SHOWN,
            GROUP_PAGE,
            |v| {
                v["hash"] == "#/groups/tree/backend"
                    && !v["version"]
                        .as_str()
                        .is_none_or(|s| s.is_empty() || s == "N/A")
            },
        )
        .await;
    page.screenshot("09-group-page").await;
    assert_eq!(group["id"], "/tree/backend", "{group}");
    assert_eq!(strings(&group, "dependencies"), ["/tree/db"], "{group}");
    let mut apps = strings(&group, "apps");
    apps.sort();
    assert_eq!(
        apps,
        ["/tree/backend/api", "/tree/backend/workers/queue"],
        "{group}"
    );

    // Pods: without /v2/pods the page says they are not available, and shows no error.
    page.open("#/pods").await;
    let pods = page
        .wait_for(
            "pods",
            "the Pods page to say pods are not available, or to list them",
            SHOWN,
            PODS_PAGE,
            |v| v["unavailable"].is_string() || v["listed"] == true,
        )
        .await;
    page.screenshot("10-pods").await;
    assert!(
        pods["error"].is_null(),
        "the Pods page shows no error: {pods}"
    );
}
