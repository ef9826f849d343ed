//! Rolling upgrades (issue 16, scope 4), with the real `drover` binary on loopback: a data
//! dir and a backup written by an earlier release open and serve their apps.
//!
//! `fixtures/datadir-v2/` holds the data dir of a one-master cluster and a `drover operator
//! snapshot save` of it, written by the release that introduced versions (replicated format
//! 2, master and agent protocol 2); its `README.md` says how. They are never regenerated: a
//! change that fails this test breaks every cluster that upgrades from that release.
//!
//! Waits poll with deadlines; nothing here asserts on timings.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use client::{App, AppEnvelope, AppList, Change, Versions};
use common::{Cluster, DROVER, ELECTION, WRITE, http};
use serde_json::json;

/// The address the fixture's master recorded for itself in the replicated membership: the
/// master must listen on exactly it (an unusual loopback address, so that no other test
/// takes it).
const FIXTURE_ADDR: &str = "127.77.16.1:7716";

/// The id of the fixture's cluster.
const CLUSTER_ID: &str = "e56f2135-4452-4221-ac95-4cfd6df6e72b";

/// The versions `/prod/web` was stored at, oldest first (created, then updated).
const WEB_VERSIONS: [&str; 2] = ["2026-12-04T19:10:31.425Z", "2026-12-04T19:10:31.746Z"];

/// The version `/db` was stored at.
const DB_VERSION: &str = "2026-12-04T19:10:32.058Z";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/datadir-v2")
        .join(name)
}

/// Copies the directory `from` to `to` (files and subdirectories).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    let entries =
        std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
    for entry in entries {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// `GET path` from master 1, retried while it answers 5xx (a leader settling in); 200 or
/// the test fails with the masters' logs.
fn get(c: &mut Cluster, path: &str) -> http::Response {
    let r = c.get_settled(1, path, WRITE);
    if r.status != 200 {
        c.fail(&format!("GET {path}: {r}"));
    }
    r
}

/// The fixture's apps as the master serves them: `/prod/web` at its second version, `/db`,
/// with the fields they were created with, and every stored version of `/prod/web`.
fn assert_serves_the_fixture_apps(c: &mut Cluster) {
    let list: AppList = get(c, "/v2/apps").typed();
    let mut ids: Vec<&str> = list.apps.iter().map(App::id).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["/db", "/prod/web"], "the stored apps");

    let web: AppEnvelope = get(c, "/v2/apps/prod/web").typed();
    let web = web.app;
    assert_eq!(
        web.version, WEB_VERSIONS[1],
        "the current version is the update"
    );
    assert_eq!(web.field("cmd"), &json!("exec sleep 200000"));
    assert_eq!(web.field("cpus"), &json!(0.5));
    assert_eq!(web.field("mem"), &json!(64.0));
    assert_eq!(web.field("env"), &json!({"MODE": "prod"}));
    assert_eq!(web.label("release"), Some("two"));
    assert_eq!(web.field("constraints"), &json!([["hostname", "UNIQUE"]]));
    assert_eq!(web.field("portDefinitions")[0]["name"], json!("http"));
    if let Err(e) = web.parse_definition() {
        c.fail(&format!("/prod/web is not a valid app: {e:?}"));
    }

    let versions: Versions = get(c, "/v2/apps/prod/web/versions").typed();
    let newest_first: Vec<&str> = WEB_VERSIONS.iter().rev().copied().collect();
    assert_eq!(versions.versions, newest_first, "both stored versions");
    let first: App = get(
        c,
        &format!("/v2/apps/prod/web/versions/{}", WEB_VERSIONS[0]),
    )
    .typed();
    assert_eq!(first.field("cmd"), &json!("exec sleep 100000"));
    assert_eq!(first.field("cpus"), &json!(0.25));
    assert_eq!(first.label("release"), Some("one"));

    let db: AppEnvelope = get(c, "/v2/apps/db").typed();
    assert_eq!(db.app.version, DB_VERSION);
    assert_eq!(db.app.label("role"), Some("database"));
    assert_eq!(db.app.field("mem"), &json!(32.0));
}

#[test]
fn the_stored_data_dir_opens_and_serves_its_apps_and_takes_new_versions() {
    let mut c = Cluster::new("stored-datadir", 1);
    let data_dir = c.dir().join("master-1");
    copy_dir(&fixture("data"), &data_dir);
    {
        let m = c.master_mut(1);
        m.addr = FIXTURE_ADDR.to_string();
        m.data_dir = data_dir;
    }
    c.start_all();
    let leader = c.wait_for_leader(ELECTION);
    assert_eq!(leader, FIXTURE_ADDR);
    let health = c
        .health(1)
        .unwrap_or_else(|| c.fail("the master does not answer /health"));
    assert_eq!(
        health.cluster_id.as_deref(),
        Some(CLUSTER_ID),
        "the stored cluster, not a new one"
    );
    assert_serves_the_fixture_apps(&mut c);

    // It is a working cluster, not a read-only relic: a change is stored as a third version.
    let next = json!({
        "id": "/prod/web", "cmd": "exec sleep 200000", "instances": 0, "cpus": 0.5, "mem": 64,
        "env": {"MODE": "prod"}, "labels": {"release": "three"},
        "constraints": [["hostname", "UNIQUE"]], "portDefinitions": [{"port": 0, "name": "http"}],
    });
    let change: Change = c.put_app_acked(1, &next, WRITE).typed();
    let versions: Versions = get(&mut c, "/v2/apps/prod/web/versions").typed();
    assert_eq!(versions.versions.len(), 3, "{versions:?}");
    assert_eq!(versions.versions[0], change.version);
}

#[test]
fn the_stored_backup_restores_into_a_fresh_cluster_and_serves_its_apps() {
    let mut c = Cluster::launch("stored-backup", 1);
    c.wait_for_leader(ELECTION);
    let out = Command::new(DROVER)
        .args(["operator", "snapshot", "restore"])
        .arg(fixture("backup.json"))
        .args(["--master", &c.addr(1)])
        .output()
        .expect("run drover operator snapshot restore");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "restore failed: {stdout}\n{stderr}\n{}",
        c.logs()
    );
    assert!(
        stdout.contains("restored 2 apps with 3 versions"),
        "{stdout}"
    );
    assert_serves_the_fixture_apps(&mut c);
}
