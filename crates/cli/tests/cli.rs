//! The operator's CLI (issue 6, item 2), tested by running the real `drover` binary against
//! a live cluster on loopback (one master in `local`, two agents in `local`, one in
//! `aws-us-east1`) and reading its stdout, stderr and exit code: `node list`, every `app`
//! command, `task list`, `deployment list` and `rollback`, `leader`, `cluster health` and
//! `events`; the errors when no master answers, when a file is missing, not JSON or not a
//! valid app, when an app is unknown, and when `drover plan`'s inventory is malformed; and
//! `--help` of every command showing an example.
//!
//! Waits poll with deadlines and fail with every process's logs; nothing here asserts on
//! timings. Dropping a cluster kills its masters, agents and every task they started.

mod agent_support;
mod cli_support;
mod common;

use std::collections::BTreeSet;
use std::path::Path;

use agent_support::events::EventStream;
use agent_support::{SETTLE, agent_id};
use cli_support::{
    AGENTS, CliCluster, Follower, Run, WAIT, drover, drover_env, write_file, write_json,
};
use client::{
    App, AppEnvelope, AppList, ClusterHealth, Deployment, Event, Node, Nodes, Plan, Stamped,
    Status, Tasks,
};
use common::TempDir;
use domain::AppDefinition;
use serde_json::{Value, json};

/// An address where no master answers (port 1 is privileged and unused on loopback).
const NOWHERE: &str = "127.0.0.1:1";

/// A long-running app of `n` instances that needs no ports.
fn sleeper(id: &str, n: u32) -> Value {
    json!({
        "id": id, "cmd": "exec sleep 1000", "instances": n, "cpus": 0.1, "mem": 16,
        "portDefinitions": [],
    })
}

/// The definition of an app as `--json` shows it, validated as the master validates one.
fn definition(app: &App) -> AppDefinition {
    app.parse_definition()
        .unwrap_or_else(|e| panic!("the definition of {} is not valid: {e}", app.id()))
}

/// The task ids of an app (`app show --json`'s `app`).
fn task_ids(app: &App) -> BTreeSet<String> {
    app.tasks.iter().flatten().map(|t| t.id.clone()).collect()
}

/// The names under "Commands:" in a `--help` text, without `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]

fn help_of_drover_and_of_every_subcommand_shows_an_example() {
    let mut missing = Vec::new();
    let mut seen = BTreeSet::new();
    let mut todo: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let run = drover(&args);
        assert!(run.ok(), "--help must exit 0:\n{run}");
        // An example is a command line of this very command, e.g. `  drover app add …`.
        let command = ["drover"]
            .into_iter()
            .chain(path.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        let example = run.stdout.lines().any(|l| {
            let l = l.trim_start();
            !l.starts_with("Usage:") && (l == command || l.starts_with(&format!("{command} ")))
        });
        if !example {
            missing.push(format!("`{command} --help`"));
        }
        seen.insert(path.join(" "));
        for sub in subcommands(&run.stdout) {
            let mut next = path.clone();
            next.push(sub);
            todo.push(next);
        }
    }
    for command in [
        "node list",
        "app add",
        "app list",
        "app show",
        "app update",
        "app scale",
        "app restart",
        "app remove",
        "app plan",
        "app why",
        "task list",
        "deployment list",
        "deployment rollback",
        "leader",
        "cluster health",
        "events",
        "plan",
        "dev",
    ] {
        assert!(
            seen.contains(command),
            "`drover --help` and its subcommands' help do not lead to `drover {command}`; found {seen:?}"
        );
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "these show no example of their command (a line `drover <command> …`):\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_cluster_command_says_no_master_answers_and_what_to_do() {
    let dir = TempDir::new("cli-no-master");
    let app = write_json(dir.path(), "app.json", &sleeper("/cli/nowhere", 1));
    let commands: Vec<Vec<&str>> = vec![
        vec!["node", "list"],
        vec!["node", "list", "--json"],
        vec!["app", "add", &app],
        vec!["app", "add", &app, "--wait"],
        vec!["app", "list"],
        vec!["app", "list", "--json"],
        vec!["app", "show", "/cli/nowhere"],
        vec!["app", "update", "/cli/nowhere", &app],
        vec!["app", "scale", "/cli/nowhere", "2", "--wait"],
        vec!["app", "restart", "/cli/nowhere"],
        vec!["app", "remove", "/cli/nowhere"],
        vec!["app", "plan", &app],
        vec!["app", "why", "/cli/nowhere"],
        vec!["task", "list"],
        vec!["task", "list", "--app", "/cli/nowhere", "--json"],
        vec!["deployment", "list"],
        vec!["deployment", "rollback", "a-deployment-id"],
        vec!["leader"],
        vec!["cluster", "health"],
        vec!["events", "--type", "api_post_event"],
    ];
    let mut runs: Vec<Run> = commands
        .iter()
        .map(|args| {
            let mut all = args.clone();
            all.extend(["--master", NOWHERE]);
            drover(&all)
        })
        .collect();
    // The environment variable is read like the flag.
    runs.push(drover_env(&["node", "list"], &[("DROVER_MASTER", NOWHERE)]));
    runs.push(drover_env(&["leader"], &[("DROVER_MASTER", NOWHERE)]));
    let mut wrong = Vec::new();
    for run in &runs {
        let said = [
            "no master answers",
            NOWHERE,
            "drover dev",
            "--master",
            "DROVER_MASTER",
        ];
        let lacking: Vec<&str> = said
            .into_iter()
            .filter(|s| !run.stderr.contains(s))
            .collect();
        if run.ok() || !lacking.is_empty() || !run.stdout.trim().is_empty() {
            wrong.push(format!(
                "{run}\n(expected a non-zero exit, nothing on stdout, and stderr saying {lacking:?})"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn plan_names_the_inventory_and_the_path_inside_it_when_the_inventory_is_malformed() {
    let dir = TempDir::new("cli-plan-inventory");
    let app = write_json(dir.path(), "app.json", &sleeper("/cli/planned", 2));
    let agent = |cpus: Value| {
        json!({
            "id": "a1", "hostname": "a1.example", "ip": "10.0.0.1",
            "domain": {"fault_domain": {"region": {"name": "local"}, "zone": {"name": "local-a"}}},
            "resources": {"cpus": cpus, "mem": 4096, "disk": 0, "ports": "[31000-32000]"},
        })
    };
    let good = write_json(
        dir.path(),
        "good.json",
        &json!({"agents": [agent(json!(4))]}),
    );
    let wrong_type = write_json(
        dir.path(),
        "wrong-type.json",
        &json!({"agents": [agent(json!("many"))]}),
    );
    let truncated = write_file(dir.path(), "truncated.json", "{\"agents\": [")
        .display()
        .to_string();
    let missing = dir.path().join("missing.json").display().to_string();

    // The same app plans fine on a well-formed inventory: the refusals below are the
    // inventory's.
    let run = drover(&["plan", "--nodes", &good, &app]);
    assert!(run.ok(), "plan on a good inventory:\n{run}");

    for (inventory, said) in [
        (&wrong_type, vec!["`agents[0].resources.cpus`", "not valid"]),
        (&truncated, vec!["`agents`", "not valid"]),
        (&missing, vec!["cannot read"]),
    ] {
        let run = drover(&["plan", "--nodes", inventory, &app]);
        assert_eq!(run.code(), Some(2), "exit code 2 expected:\n{run}");
        assert!(
            run.stderr.contains(inventory.as_str()),
            "the error names the inventory file {inventory}:\n{run}"
        );
        for s in said {
            assert!(run.stderr.contains(s), "the error says {s:?}:\n{run}");
        }
    }
}

#[test]
fn node_list_leader_and_cluster_health_describe_the_cluster_and_bad_requests_are_refused() {
    let c = CliCluster::start("cli-nodes");

    // The table: the exact header, the leader, every agent with its region and zone.
    let table = c.ok(&["node", "list"]);
    let rows = table.rows();
    c.check(
        rows.first().map(Vec::as_slice)
            == Some(&["HOSTNAME", "IP", "ID", "TYPE", "REGION", "ZONE"].map(String::from)[..]),
        "node list's header is HOSTNAME IP ID TYPE REGION ZONE",
        &table,
    );
    let leaders: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| r.ends_with(&["master", "(leader)", "local", "local-a"].map(String::from)))
        .collect();
    c.check(
        leaders.len() == 1,
        "node list shows one `master (leader)` in local/local-a",
        &table,
    );
    for (i, (host, region, zone)) in AGENTS.into_iter().enumerate() {
        let a = c.site.agent(i);
        let mut want = vec![
            host.to_string(),
            a.ip.clone(),
            agent_id(&a.work_dir),
            "agent".to_string(),
            region.to_string(),
        ];
        if region != "local" {
            want.push("(remote)".to_string());
        }
        want.push(zone.to_string());
        c.check(
            rows.contains(&want),
            &format!("node list has the row {want:?}"),
            &table,
        );
    }

    // The same through DROVER_MASTER instead of --master.
    let by_env = drover_env(&["node", "list"], &[("DROVER_MASTER", &c.master)]);
    c.check(
        by_env.ok() && by_env.rows() == rows,
        "node list with DROVER_MASTER prints what --master does",
        &by_env,
    );

    // --json: GET /v1/nodes.
    let as_json = c.ok(&["node", "list", "--json"]);
    let nodes = as_json.typed::<Nodes>().nodes;
    c.check(
        nodes.iter().any(
            |n| matches!(n, Node::Master(m) if m.leader && m.zone.as_deref() == Some("local-a")),
        ),
        "node list --json has the leading master in local-a",
        &as_json,
    );
    for (host, region, zone) in AGENTS {
        c.check(
            nodes.iter().any(|n| {
                matches!(n, Node::Agent(a)
                    if a.hostname == host
                        && a.region == region
                        && a.zone.as_deref() == Some(zone)
                        && a.remote == (region != "local"))
            }),
            &format!("node list --json has agent {host} in {region}/{zone}"),
            &as_json,
        );
    }

    let leader = c.ok(&["leader"]);
    c.check(
        leader.stdout.trim() == c.master,
        &format!("leader prints the one master, {}", c.master),
        &leader,
    );

    // cluster health: each check with a status and a reason; exit 1 only when one fails.
    let health = c.run(&["cluster", "health", "--json"]);
    // The type makes every check carry a name and one of pass, warn, fail.
    let answer = health.typed::<ClusterHealth>();
    let checks = &answer.checks;
    c.check(
        !checks.is_empty()
            && checks
                .iter()
                .all(|ch| !ch.name.is_empty() && !ch.reason.is_empty()),
        "cluster health --json lists checks, each with a name, a status and a reason",
        &health,
    );
    c.check(
        checks
            .iter()
            .any(|ch| ch.name == "masters-count" && ch.status == Status::Warn),
        "cluster health warns about a single master",
        &health,
    );
    c.check(
        health.ok() == (answer.status != Status::Fail),
        "cluster health --json exits non-zero exactly when the overall status is fail",
        &health,
    );
    let health = c.run(&["cluster", "health"]);
    let rows = health.rows();
    c.check(
        rows.first().map(Vec::as_slice)
            == Some(&["CHECK", "STATUS", "REASON"].map(String::from)[..]),
        "cluster health's header is CHECK STATUS REASON",
        &health,
    );
    let statuses = ["pass", "warn", "fail"];
    let shown: Vec<&str> = rows
        .iter()
        .skip(1)
        .filter(|r| r.len() >= 3 && statuses.contains(&r[1].as_str()))
        .map(|r| r[1].as_str())
        .collect();
    let worst = statuses
        .into_iter()
        .rev()
        .find(|s| shown.contains(s))
        .unwrap_or("pass");
    c.check(
        shown.len() == checks.len(),
        "cluster health shows one row per check",
        &health,
    );
    c.check(
        health
            .stdout
            .lines()
            .any(|l| l.trim() == format!("Overall: {worst}")),
        &format!("cluster health ends with `Overall: {worst}`, its worst check"),
        &health,
    );
    c.check(
        health.ok() == (worst != "fail"),
        "cluster health exits non-zero exactly when a check fails",
        &health,
    );

    // Refused input: each says what is wrong, with what, and exits non-zero.
    let dir = c.dir().to_path_buf();
    let missing = dir.join("no-such-app.json").display().to_string();
    let run = c.refused(&["app", "add", &missing]);
    c.check(
        run.stderr.contains(&missing) && run.stderr.contains("cannot read"),
        "app add of a missing file names it",
        &run,
    );
    let not_json = write_file(&dir, "not-json.json", "{\"id\": \"/cli/half\",\n")
        .display()
        .to_string();
    let run = c.refused(&["app", "add", &not_json]);
    c.check(
        run.stderr.contains(&not_json) && run.stderr.contains("not valid JSON"),
        "app add of a file that is not JSON names it and says so",
        &run,
    );
    let invalid = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/apps/invalid.json")
        .display()
        .to_string();
    let run = c.refused(&["app", "add", &invalid]);
    for said in [
        "Object is not valid",
        "422",
        "/id",
        "/instances",
        "/constraints(0)",
        "/constraints(1)",
        "/constraints(2)",
    ] {
        c.check(
            run.stderr.contains(said),
            &format!("app add of an invalid app prints Marathon's details, with {said:?}"),
            &run,
        );
    }
    let run = c.refused(&["app", "show", "/cli/unknown"]);
    c.check(
        run.stderr.contains("/cli/unknown")
            && run.stderr.contains("does not exist")
            && run.stderr.contains("404"),
        "app show of an unknown app says it does not exist (404)",
        &run,
    );
    let apps = c.ok(&["app", "list", "--json"]);
    c.check(
        apps.typed::<AppList>().apps.is_empty(),
        "no refused app was created",
        &apps,
    );
}

#[test]
fn an_app_is_planned_added_listed_shown_scaled_restarted_updated_and_removed() {
    let c = CliCluster::start("cli-apps");
    let dir = c.dir().to_path_buf();
    let mut web = sleeper("/cli/web", 2);
    web["constraints"] = json!([["@zone", "GROUP_BY"]]);
    web["labels"] = json!({"version": "1"});
    let web_file = write_json(&dir, "web.json", &web);

    // A dry run places one instance in each local zone and deploys nothing.
    let plan = c.ok(&["app", "plan", &web_file]);
    c.check(
        plan.stdout.contains("2 would be placed, 0 not")
            && plan
                .rows()
                .contains(&["local", "local-a", "1"].map(String::from).to_vec())
            && plan
                .rows()
                .contains(&["local", "local-b", "1"].map(String::from).to_vec()),
        "app plan places one instance in local-a and one in local-b",
        &plan,
    );
    let plan = c.ok(&["app", "plan", &web_file, "--json"]);
    let answer = plan.typed::<Plan>();
    let zones: BTreeSet<&str> = answer
        .placements
        .iter()
        .filter(|p| p.region == "local")
        .filter_map(|p| p.zone.as_deref())
        .collect();
    c.check(
        answer.placements.len() == 2
            && zones == BTreeSet::from(["local-a", "local-b"])
            && answer.unplaced == 0,
        "app plan --json: placements in local-a and local-b, unplaced 0, reasons",
        &plan,
    );
    let apps = c.ok(&["app", "list", "--json"]);
    c.check(
        apps.typed::<AppList>().apps.is_empty(),
        "app plan deploys nothing",
        &apps,
    );

    let add = c.ok(&["app", "add", &web_file, "--wait", "--timeout", WAIT]);
    c.check(
        add.stdout.contains("Created /cli/web") && add.stdout.contains("finished"),
        "app add --wait says the app was created and the deployment finished",
        &add,
    );

    let list = c.ok(&["app", "list"]);
    c.check(
        list.rows().first().map(Vec::as_slice)
            == Some(
                &[
                    "ID",
                    "RUNNING",
                    "HEALTHY",
                    "WANTED",
                    "CPUS",
                    "MEM",
                    "DEPLOYMENTS",
                ]
                .map(String::from)[..],
            )
            && list.rows_starting("/cli/web").first().is_some_and(|r| {
                r.get(1).map(String::as_str) == Some("2")
                    && r.get(3).map(String::as_str) == Some("2")
            }),
        "app list shows /cli/web with 2 running of 2 wanted",
        &list,
    );
    let list = c.ok(&["app", "list", "--json"]);
    c.check(
        matches!(&list.typed::<AppList>().apps[..],
            [a] if a.id() == "/cli/web" && definition(a).instances == 2),
        "app list --json has /cli/web with 2 instances",
        &list,
    );

    let show = c.ok(&["app", "show", "/cli/web"]);
    let running: Vec<Vec<String>> = show
        .rows()
        .into_iter()
        .filter(|r| r.contains(&"TASK_RUNNING".to_string()))
        .collect();
    c.check(
        show.stdout
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("/cli/web") && l.contains("wanted 2"))
            && running.len() == 2
            && running.iter().any(|r| r.contains(&"local-a".to_string()))
            && running.iter().any(|r| r.contains(&"local-b".to_string()))
            && show.stdout.contains("\"cmd\": \"exec sleep 1000\""),
        "app show: a summary line, 2 running tasks in local-a and local-b, the definition",
        &show,
    );
    let show = c.ok(&["app", "show", "/cli/web", "--json"]);
    let app = show.typed::<AppEnvelope>().app;
    let web_ids = task_ids(&app);
    c.check(
        app.id() == "/cli/web"
            && definition(&app).instances == 2
            && web_ids.len() == 2
            && app
                .tasks
                .iter()
                .flatten()
                .all(|t| t.region.as_deref() == Some("local")),
        "app show --json: /cli/web with 2 tasks in region local",
        &show,
    );

    // task list, with a second app to filter out.
    let worker = write_json(&dir, "worker.json", &sleeper("/cli/worker", 1));
    let add = c.ok(&["app", "add", &worker]);
    c.check(
        add.stdout.contains("Created /cli/worker") && !add.stdout.contains("finished"),
        "app add without --wait returns once the app is created",
        &add,
    );
    c.run_until(
        &["task", "list", "--app", "/cli/worker", "--json"],
        "/cli/worker has a running task",
        |run| {
            run.typed_ok::<Tasks>()
                .is_some_and(|v| matches!(&v.tasks[..], [t] if t.state == "TASK_RUNNING"))
        },
    );
    let tasks = c.ok(&["task", "list"]);
    let rows = tasks.rows();
    let of = |app: &str| {
        rows.iter()
            .filter(|r| r.get(1).is_some_and(|a| a == app))
            .count()
    };
    c.check(
        rows.first().map(Vec::as_slice)
            == Some(
                &[
                    "TASK", "APP", "HOST", "REGION", "ZONE", "STATE", "HEALTH", "PORTS",
                ]
                .map(String::from)[..],
            )
            && of("/cli/web") == 2
            && of("/cli/worker") == 1,
        "task list shows both apps' tasks under TASK APP HOST REGION ZONE STATE HEALTH PORTS",
        &tasks,
    );
    let tasks = c.ok(&["task", "list", "--app", "/cli/web"]);
    let rows = tasks.rows();
    c.check(
        rows.len() == 3
            && rows
                .iter()
                .skip(1)
                .all(|r| r.get(1).is_some_and(|a| a == "/cli/web")),
        "task list --app /cli/web shows only its 2 tasks",
        &tasks,
    );
    let tasks = c.ok(&["task", "list", "--json"]);
    let listed: BTreeSet<String> = tasks
        .typed::<Tasks>()
        .tasks
        .into_iter()
        .filter(|t| t.app_id == "/cli/web")
        .map(|t| t.id)
        .collect();
    c.check(
        listed == web_ids,
        &format!("task list --json has /cli/web's tasks {web_ids:?}"),
        &tasks,
    );

    let scale = c.ok(&["app", "scale", "/cli/web", "3", "--wait", "--timeout", WAIT]);
    c.check(
        scale.stdout.contains("started")
            && scale.stdout.contains("finished: 3 instance(s) of /cli/web"),
        "app scale --wait says the deployment started and finished with 3 instances",
        &scale,
    );
    let show = c.ok(&["app", "show", "/cli/web", "--json"]);
    let app = show.typed::<AppEnvelope>().app;
    let before = task_ids(&app);
    c.check(
        definition(&app).instances == 3 && app.counts().tasks_running == 3 && before.len() == 3,
        "after app scale 3: 3 instances wanted, 3 running",
        &show,
    );

    let restart = c.ok(&["app", "restart", "/cli/web", "--wait", "--timeout", WAIT]);
    c.check(
        restart.stdout.contains("finished"),
        "app restart --wait says the deployment finished",
        &restart,
    );
    let show = c.ok(&["app", "show", "/cli/web", "--json"]);
    let after = task_ids(&show.typed::<AppEnvelope>().app);
    c.check(
        after.len() == 3 && after.is_disjoint(&before),
        &format!("app restart replaced every task {before:?}"),
        &show,
    );

    let change = write_json(&dir, "web-v2.json", &json!({"labels": {"version": "2"}}));
    let update = c.ok(&["app", "update", "/cli/web", &change]);
    c.check(
        update.stdout.contains("Deployment") && update.stdout.contains("started"),
        "app update says a deployment started",
        &update,
    );
    let show = c.ok(&["app", "show", "/cli/web", "--json"]);
    let app = show.typed::<AppEnvelope>().app;
    c.check(
        app.label("version") == Some("2")
            && definition(&app).instances == 3
            && definition(&app).cmd.as_deref() == Some("exec sleep 1000"),
        "app update changed the label and kept the fields it did not give",
        &show,
    );

    // why: a placed app, and one no agent has the memory for.
    let why = c.ok(&["app", "why", "/cli/web"]);
    c.check(
        why.stdout.contains("Every instance of /cli/web is placed."),
        "app why of a placed app says so",
        &why,
    );
    let mut big = sleeper("/cli/too-big", 2);
    big["mem"] = json!(1_000_000);
    let big_file = write_json(&dir, "too-big.json", &big);
    let plan = c.ok(&["app", "plan", &big_file]);
    c.check(
        plan.stdout.contains("0 would be placed, 2 not")
            && plan.stdout.contains("insufficient mem"),
        "app plan of a too big app places nothing and says why",
        &plan,
    );
    let plan = c.ok(&["app", "plan", &big_file, "--json"]);
    let answer = plan.typed::<Plan>();
    c.check(
        answer.placements.is_empty()
            && answer.unplaced == 2
            && answer
                .reasons
                .get("insufficient mem")
                .is_some_and(|n| *n > 0),
        "app plan --json of a too big app: no placements, 2 unplaced, insufficient mem",
        &plan,
    );
    c.ok(&["app", "add", &big_file]);
    let why = c.run_until(
        &["app", "why", "/cli/too-big"],
        "app why says /cli/too-big is not placed",
        |run| run.ok() && run.stdout.contains("not placed"),
    );
    c.check(
        why.stdout
            .contains("2 instance(s) of /cli/too-big are not placed")
            && why.stdout.contains("too little free memory"),
        "app why says how many are not placed and that agents have too little free memory",
        &why,
    );
    // --wait fails when the deployment does not finish within --timeout.
    let mut big_wait = big.clone();
    big_wait["id"] = json!("/cli/too-big-wait");
    let big_wait = write_json(&dir, "too-big-wait.json", &big_wait);
    let run = c.refused(&["app", "add", &big_wait, "--wait", "--timeout", "5"]);
    c.check(
        run.stderr.contains("did not finish within 5 s"),
        "app add --wait of an app that cannot be placed exits non-zero when time runs out",
        &run,
    );

    let remove = c.ok(&["app", "remove", "/cli/web"]);
    c.check(
        remove.stdout.contains("Removed /cli/web"),
        "app remove says the app was removed",
        &remove,
    );
    let run = c.refused(&["app", "show", "/cli/web"]);
    c.check(
        run.stderr.contains("does not exist"),
        "a removed app does not exist",
        &run,
    );
    c.run_until(
        &["task", "list", "--json"],
        "/cli/web's tasks are gone",
        |run| {
            run.typed_ok::<Tasks>()
                .is_some_and(|v| v.tasks.iter().all(|t| t.app_id != "/cli/web"))
        },
    );
}

#[test]
fn events_are_followed_and_a_stuck_deployment_is_listed_and_rolled_back() {
    let c = CliCluster::start("cli-deployments");
    let dir = c.dir().to_path_buf();

    // `drover events`: one line per event, `TYPE<TAB>JSON`. A watcher of the master's
    // attach events tells when its subscription is open, so the change below is not
    // published before anyone listens.
    let mut attached = EventStream::open(&c.master, &["event_stream_attached"])
        .unwrap_or_else(|e| c.fail(&format!("open the event stream: {e}")));
    let is_attach = |e: &Event| matches!(e, Event::EventStreamAttached { .. }).then_some(());
    if attached.wait_for(SETTLE, is_attach).is_none() {
        c.fail("the watcher's own event_stream_attached did not arrive");
    }
    let mut events = Follower::spawn(
        &dir,
        &["events", "--type", "api_post_event", "--master", &c.master],
    );
    if attached.wait_for(SETTLE, is_attach).is_none() {
        c.fail(&format!(
            "drover events did not subscribe; its stderr:\n{}",
            events.stderr()
        ));
    }
    let probe = write_json(&dir, "probe.json", &sleeper("/cli/probe", 0));
    c.ok(&["app", "add", &probe]);
    let Some(line) = events.next_line(SETTLE) else {
        c.fail(&format!(
            "drover events printed nothing after an app was added; its stderr:\n{}",
            events.stderr()
        ));
    };
    let (kind, body) = line.split_once('\t').unwrap_or(("", ""));
    let event = serde_json::from_str(body)
        .map_err(|e| e.to_string())
        .and_then(|json| {
            client::decode::<Stamped>("drover events", json).map_err(|e| e.to_string())
        })
        .map(|s| s.event);
    let probed = matches!(&event, Ok(Event::ApiPostEvent { app_definition, .. })
        if app_definition["id"] == "/cli/probe");
    if kind != "api_post_event" || !probed {
        let read = event.map(|e| e.event_type());
        c.fail(&format!(
            "drover events printed {line:?} (read as {read:?}); expected `api_post_event<TAB>{{…/cli/probe…}}`"
        ));
    }
    events.kill();
    drop(attached);

    // A change whose health check never passes: its deployment stays until rolled back.
    let mut web = sleeper("/cli/web", 1);
    web["labels"] = json!({"version": "1"});
    let web_file = write_json(&dir, "web.json", &web);
    c.ok(&["app", "add", &web_file, "--wait", "--timeout", WAIT]);
    let sick = write_json(
        &dir,
        "web-sick.json",
        &json!({
            "labels": {"version": "sick"},
            "healthChecks": [{
                "protocol": "COMMAND", "command": {"value": "exit 1"},
                "gracePeriodSeconds": 3600, "intervalSeconds": 1, "maxConsecutiveFailures": 0,
            }],
        }),
    );
    let update = c.ok(&["app", "update", "/cli/web", &sick]);
    let Some(deployment) = update
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Deployment ")?.split_whitespace().next())
        .map(str::to_string)
    else {
        c.fail(&format!("app update names no deployment:\n{update}"));
    };

    let list = c.ok(&["deployment", "list"]);
    c.check(
        list.rows().first().map(Vec::as_slice)
            == Some(&["ID", "APPS", "ACTION", "VERSION"].map(String::from)[..])
            && list.rows_starting(&deployment).first().is_some_and(|r| {
                r.get(1).map(String::as_str) == Some("/cli/web")
                    && r.get(2).map(String::as_str) == Some("RestartApplication")
            }),
        &format!(
            "deployment list shows {deployment} restarting /cli/web under ID APPS ACTION VERSION"
        ),
        &list,
    );
    let list = c.ok(&["deployment", "list", "--json"]);
    c.check(
        list.typed::<Vec<Deployment>>()
            .iter()
            .any(|d| d.id == deployment && d.affected_apps == ["/cli/web"]),
        &format!("deployment list --json has {deployment}"),
        &list,
    );

    let rollback = c.ok(&["deployment", "rollback", &deployment]);
    c.check(
        rollback.stdout.contains("Rolling back"),
        "deployment rollback says it rolls back",
        &rollback,
    );
    let list = c.ok(&["deployment", "list", "--json"]);
    c.check(
        list.typed::<Vec<Deployment>>()
            .iter()
            .all(|d| d.id != deployment),
        &format!("{deployment} is gone after its rollback"),
        &list,
    );
    let show = c.ok(&["app", "show", "/cli/web", "--json"]);
    let app = show.typed::<AppEnvelope>().app;
    c.check(
        app.label("version") == Some("1") && definition(&app).health_checks.is_empty(),
        "after the rollback /cli/web has its previous definition again",
        &show,
    );
    // The rollback's own deployment runs the previous definition again, then ends.
    c.run_until(
        &["app", "show", "/cli/web", "--json"],
        "/cli/web runs 1 instance of its rolled-back version and has no deployment",
        |run| {
            run.typed_ok::<AppEnvelope>().is_some_and(|v| {
                let app = &v.app;
                app.deployments.as_ref().is_some_and(Vec::is_empty)
                    && matches!(app.tasks.as_deref(), Some([t])
                        if t.state == "TASK_RUNNING" && t.version == app.version)
            })
        },
    );

    let run = c.refused(&["deployment", "rollback", &deployment]);
    c.check(
        run.stderr.contains(&deployment)
            && run.stderr.contains("does not exist")
            && run.stderr.contains("404"),
        "rolling back a deployment that is gone says it does not exist (404)",
        &run,
    );
}
