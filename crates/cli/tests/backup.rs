//! Backups (issue 16, scope 5), with the real `drover` binary on loopback: a snapshot saved
//! while a client keeps writing restores into a fresh cluster with every app and every
//! stored version, its groups and the event subscriptions, and the restored apps run on the new
//! cluster's agents; restoring over
//! apps the cluster has already is refused and changes nothing; files that are not backups
//! are refused with a message.
//!
//! Waits poll with deadlines; nothing here asserts on timings.

mod agent_support;
mod cli_support;
mod common;
mod scheduler_support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use agent_support::Site;
use cli_support::{Run, drover, write_file};
use common::http;
use scheduler_support::fast_master_flags;
use scheduler_support::site::{add_agents, site, start_agents, wait_app_running};
use serde_json::{Value, json};

fn sleeper(id: &str, n: u32, note: &str) -> Value {
    json!({
        "id": id, "cmd": "exec sleep 100000", "instances": n, "cpus": 0.05, "mem": 8,
        "portDefinitions": [], "labels": {"note": note},
    })
}

/// A site of one master and one agent in local/local-a.
fn small_site(name: &str) -> Site {
    let mut s = site(name, 1, fast_master_flags());
    let agents = add_agents(&mut s, "local", &["local-a"], 1);
    start_agents(&mut s, &agents);
    s
}

fn operator(s: &Site, args: &[&str]) -> Run {
    let master = s.masters.addr(1);
    let mut all = vec!["operator", "snapshot"];
    all.extend_from_slice(args);
    all.extend(["--master", master.as_str()]);
    drover(&all)
}

/// Every app's stored versions, newest first, as `GET /v2/apps/{id}/versions` answers.
fn versions(s: &mut Site, ids: &[String]) -> BTreeMap<String, Vec<String>> {
    ids.iter()
        .map(|id| {
            let r = s
                .get(&format!("/v2/apps{id}/versions"))
                .unwrap_or_else(|| s.fail(&format!("no master answers for {id}'s versions")));
            if r.status != 200 {
                s.fail(&format!("versions of {id}: {r}"));
            }
            let list = r.body_json["versions"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            (id.clone(), list)
        })
        .collect()
}

/// The apps of a backup file with their versions, newest first (the API's order).
fn backup_versions(file: &Path) -> BTreeMap<String, Vec<String>> {
    let backup: Value =
        serde_json::from_slice(&std::fs::read(file).expect("read the backup")).expect("JSON");
    assert_eq!(backup["format"], "drover-backup", "{}", backup["format"]);
    let apps = backup["state"]["apps"]
        .as_object()
        .expect("apps in the backup");
    apps.iter()
        .map(|(id, record)| {
            let mut list: Vec<String> = record["previous"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(std::iter::once(&record["current"]))
                .filter_map(|v| v["version"].as_str().map(str::to_string))
                .collect();
            list.reverse();
            (id.clone(), list)
        })
        .collect()
}

#[test]
fn a_snapshot_saved_under_load_restores_every_app_and_version_into_a_fresh_cluster() {
    let mut a = small_site("backup-a");
    a.create_app(&sleeper("/shop/web", 2, "v1"));
    wait_app_running(&mut a, "/shop/web", 2);
    for note in ["v2", "v3"] {
        a.put_app(&sleeper("/shop/web", 2, note));
    }
    a.create_app(&sleeper("/shop/db/primary", 1, "only"));
    let group = json!({"id": "/team", "dependencies": ["/shop/db/primary"], "apps": [
        {"id": "worker", "cmd": "exec sleep 100000", "instances": 0, "cpus": 0.05, "mem": 8,
         "portDefinitions": []}]});
    let r = http::post(&a.masters.addr(1), "/v2/groups", &group).expect("the master answers");
    assert_eq!(r.status, 201, "POST /v2/groups: {r}");
    let group_versions_a = a
        .get("/v2/groups/team/versions")
        .expect("answers")
        .body_json;
    let hook = "http://127.0.0.1:9/drover-backup-test";
    let r = http::post(
        &a.masters.addr(1),
        &format!("/v2/eventSubscriptions?callbackUrl={hook}"),
        &json!({}),
    )
    .expect("the master answers");
    assert_eq!(r.status, 200, "subscribe: {r}");

    // A client keeps creating apps while the snapshot is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, written) = (stop.clone(), written.clone());
        let addr = a.masters.addr(1);
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let app = json!({"id": format!("/load/app-{n}"), "cmd": "true", "instances": 0});
                if http::post(&addr, "/v2/apps", &app).is_ok_and(|r| r.status == 201) {
                    written.fetch_add(1, Ordering::SeqCst);
                }
                n += 1;
            }
        })
    };
    a.wait_until(agent_support::SETTLE, "the writer has created apps", |_| {
        written.load(Ordering::SeqCst) >= 3
    });
    let file = a.dir().join("backup.json");
    let file_arg = file.to_str().expect("UTF-8 path");
    let saved = operator(&a, &["save", file_arg]);
    assert!(saved.ok(), "{saved}");
    assert!(saved.stdout.contains("saved "), "{saved}");
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("the writer");
    let mode = std::fs::metadata(&file)
        .expect("the file")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the backup holds secrets' hashes and environments"
    );

    // The file is one consistent state of the cluster: the apps it holds are the cluster's,
    // with exactly the versions they have (their versions do not change after creation).
    let in_file = backup_versions(&file);
    assert!(in_file.contains_key("/shop/web") && in_file.contains_key("/shop/db/primary"));
    assert_eq!(in_file["/shop/web"].len(), 3, "{in_file:?}");
    assert!(
        in_file.keys().any(|id| id.starts_with("/load/")),
        "the writer's apps before the save are in it: {in_file:?}"
    );
    let ids: Vec<String> = in_file.keys().cloned().collect();
    assert_eq!(
        versions(&mut a, &ids),
        in_file,
        "the backup differs from the cluster"
    );

    // A fresh cluster gets every app with every version, and runs the instances.
    let mut b = small_site("backup-b");
    let restored = operator(&b, &["restore", file_arg]);
    assert!(restored.ok(), "{restored}");
    assert!(restored.stdout.contains("restored "), "{restored}");
    assert_eq!(
        versions(&mut b, &ids),
        in_file,
        "the restored cluster differs"
    );
    wait_app_running(&mut b, "/shop/web", 2);
    wait_app_running(&mut b, "/shop/db/primary", 1);
    let web = b.app("/shop/web").unwrap_or_else(|| b.fail("no /shop/web"));
    assert_eq!(
        web.label("note"),
        Some("v3"),
        "the current version is the newest"
    );
    let team = b.get("/v2/groups/team").expect("the master answers");
    assert_eq!(team.status, 200, "the group is restored: {team}");
    assert_eq!(
        team.body_json["dependencies"],
        json!(["/shop/db/primary"]),
        "{team}"
    );
    let group_versions_b = b
        .get("/v2/groups/team/versions")
        .expect("answers")
        .body_json;
    assert_eq!(group_versions_b, group_versions_a, "the group's versions");
    let subs = b.get("/v2/eventSubscriptions").expect("the master answers");
    assert_eq!(subs.body_json["callbackUrls"], json!([hook]), "{subs}");

    // Again: the apps are there now, so nothing is written.
    let again = operator(&b, &["restore", file_arg]);
    assert!(!again.ok(), "{again}");
    assert!(again.stderr.contains("has these apps already"), "{again}");
    assert!(
        again.stderr.contains("/load/") || again.stderr.contains("/shop/"),
        "{again}"
    );
    assert_eq!(
        versions(&mut b, &ids),
        in_file,
        "a refused restore changed the apps"
    );
}

#[test]
fn files_that_are_not_backups_are_refused_with_what_to_do() {
    let s = small_site("backup-bad");
    let dir = s.dir().to_path_buf();
    let cases = [
        ("not-json", "{ this is not json", "is not JSON"),
        (
            "app",
            r#"{"id": "/web", "cmd": "true"}"#,
            "is not a drover backup",
        ),
        (
            "future",
            r#"{"format": "drover-backup", "formatVersion": 99, "state": {}}"#,
            "format version 99",
        ),
        (
            "damaged",
            r#"{"format": "drover-backup", "formatVersion": 1, "state": {"apps": 7}}"#,
            "damaged backup",
        ),
    ];
    for (name, text, says) in cases {
        let path = write_file(&dir, name, text);
        let run = operator(&s, &["restore", path.to_str().expect("UTF-8")]);
        assert!(!run.ok(), "{name}: {run}");
        assert!(
            run.stderr.contains(says),
            "{name}: expected {says:?}:\n{run}"
        );
    }
    let missing = operator(&s, &["restore", "/nonexistent/backup.json"]);
    assert!(missing.stderr.contains("cannot read"), "{missing}");
    // A save into a directory that does not exist leaves nothing behind and says why.
    let nowhere = dir.join("no/such/dir/b.json");
    let run = operator(&s, &["save", nowhere.to_str().expect("UTF-8")]);
    assert!(!run.ok() && run.stderr.contains("cannot write"), "{run}");
    // A body that is not a restore part is a 400 with a message, through the API itself.
    let r = http::post(
        &s.masters.addr(1),
        "/v1/operator/restore",
        &json!({"apps": "many"}),
    )
    .expect("the master answers");
    assert_eq!(r.status, 400, "{r}");
    assert!(r.body.contains("not a restore part"), "{r}");
}
