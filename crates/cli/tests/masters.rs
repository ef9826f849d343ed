//! Highly available masters, tested across processes: real `drover master` binaries on
//! loopback ports (issue 3, "Must be true when done"): election, forwarding, the API's
//! answers, and the masters that must refuse to start. Failures (SIGKILL, SIGSTOP,
//! restarts) are in `master_failures.rs`. Waits poll conditions with deadlines; nothing
//! here asserts on timings.

mod common;

use client::system::DroverInfo;
use client::{App, AppEnvelope, AppList, Change, Deployment, Info, ProcessHealth, Versions};
use common::{
    Cluster, ELECTION, EXIT, WRITE, app, assert_apps_present, assert_leader_header, framework_id,
    http, run_to_exit,
};
use serde_json::json;

#[test]
fn three_masters_elect_one_leader_that_every_master_names() {
    let mut c = Cluster::launch("elect", 3);
    let leader = c.wait_for_leader(ELECTION);
    let leader_id = c.id_of(&leader);

    // Exactly one master calls itself leader in /health, in the term the others follow.
    c.wait_until(
        ELECTION,
        "one master reports role leader, the others follower of it",
        |c| {
            let hs: Vec<Option<ProcessHealth>> = c.ids().iter().map(|&id| c.health(id)).collect();
            let Some(hs) = hs.into_iter().collect::<Option<Vec<_>>>() else {
                return false;
            };
            let leaders: Vec<&ProcessHealth> = hs.iter().filter(|h| h.role == "leader").collect();
            leaders.len() == 1
                && leaders[0].id == u64::from(leader_id)
                && hs.iter().all(|h| {
                    h.leader.as_deref() == Some(leader.as_str()) && h.term == leaders[0].term
                })
                && hs.iter().filter(|h| h.role == "follower").count() == 2
        },
    );

    for id in c.ids() {
        let addr = c.addr(id);
        let r = http::get(&addr, "/v2/leader")
            .unwrap_or_else(|e| c.fail(&format!("GET /v2/leader on {id}: {e}")));
        // The whole body, not the `Leader` type: Marathon's exact shape, no other field.
        if r.status != 200 || r.body_json != json!({"leader": leader}) {
            c.fail(&format!(
                "GET /v2/leader on master {id}: {r}, expected leader {leader}"
            ));
        }
        assert_leader_header(&c, &r, &leader, &format!("GET /v2/leader on master {id}"));

        let h = c
            .health(id)
            .unwrap_or_else(|| c.fail(&format!("GET /health on master {id}")));
        assert_eq!(h.id, u64::from(id), "/health of master {id}: {h:?}");
        assert_eq!(h.region, "local", "/health of master {id}: {h:?}");
        assert!(
            !h.zone.is_empty(),
            "/health of master {id} has no zone: {h:?}"
        );

        let info = http::get(&addr, "/v2/info")
            .unwrap_or_else(|e| c.fail(&format!("GET /v2/info on {id}: {e}")));
        if info.status != 200 {
            c.fail(&format!("GET /v2/info on master {id}: {info}"));
        }
        // The type checks that version, the Raft term and commitIndex are there.
        let i = info.typed::<Info>();
        assert_eq!(i.name, "drover", "/v2/info on master {id}: {i:?}");
        assert!(!i.version.is_empty(), "/v2/info on master {id}: {i:?}");
        assert_eq!(
            i.leader.as_deref(),
            Some(leader.as_str()),
            "/v2/info on master {id}: {i:?}"
        );
        // Like /v2/leader, /v2/info is answered by each master itself: `elected` says
        // whether this one leads.
        assert_eq!(
            i.elected,
            id == leader_id,
            "/v2/info on master {id} (leader is {leader_id}): {i:?}"
        );
        // drover's own figures are in /v1/info, where strict Marathon clients do not read.
        let d: DroverInfo = http::get_as(&addr, "/v1/info")
            .unwrap_or_else(|e| c.fail(&format!("GET /v1/info on master {id}: {e}")));
        assert_eq!(d.id, u64::from(id), "/v1/info on master {id}: {d:?}");
        assert!(d.raft.term > 0, "/v1/info on master {id}: {d:?}");
        assert_eq!(
            d.raft.members.len(),
            3,
            "/v1/info members on master {id}: {d:?}"
        );
        assert!(
            info.body_json.get("drover").is_none(),
            "/v2/info carries only Marathon's fields: {info}"
        );

        let metrics = http::get(&addr, "/metrics")
            .unwrap_or_else(|e| c.fail(&format!("GET /metrics on {id}: {e}")));
        if metrics.status != 200
            || !metrics
                .body
                .lines()
                .any(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            c.fail(&format!("GET /metrics on master {id}: {metrics}"));
        }
    }
    // The leader fixes the cluster id just after its election, and each master answers
    // /v2/info from the state it has applied, so wait for them all to have it.
    c.wait_until(
        ELECTION,
        "every master reports the same cluster id as frameworkId",
        |c| {
            let ids: Vec<Option<String>> = c.ids().iter().map(|&id| framework_id(c, id)).collect();
            ids[0].is_some() && ids.iter().all(|f| *f == ids[0])
        },
    );
}

#[test]
fn an_app_written_through_a_follower_is_readable_from_every_master() {
    let mut c = Cluster::launch("follower-write", 3);
    let leader = c.wait_for_leader(ELECTION);
    let follower = c
        .ids()
        .into_iter()
        .find(|&id| c.addr(id) != leader)
        .expect("a follower");

    let a = app("/prod/web", "create-1");
    let r = http::post(&c.addr(follower), "/v2/apps", &a)
        .unwrap_or_else(|e| c.fail(&format!("POST /v2/apps through follower {follower}: {e}")));
    if r.status != 201 {
        c.fail(&format!("POST /v2/apps through follower {follower}: {r}"));
    }
    let created = r.typed::<App>();
    assert_eq!(created.id(), "/prod/web", "{r}");
    assert_eq!(created.label("op"), Some("create-1"), "{r}");
    assert!(
        r.header("Marathon-Deployment-Id")
            .is_some_and(|d| !d.is_empty()),
        "201 without Marathon-Deployment-Id: {:?}",
        r.headers
    );
    assert_leader_header(&c, &r, &leader, "POST through a follower");

    for id in c.ids() {
        let r = http::get(&c.addr(id), "/v2/apps/prod/web")
            .unwrap_or_else(|e| c.fail(&format!("GET on {id}: {e}")));
        let same = r.status == 200
            && r.decode::<AppEnvelope>().is_ok_and(|e| {
                e.app.label("op") == Some("create-1")
                    && e.app
                        .parse_definition()
                        .is_ok_and(|d| d.cmd.as_deref() == a["cmd"].as_str())
            });
        if !same {
            c.fail(&format!("GET /v2/apps/prod/web on master {id}: {r}"));
        }
        let list = http::get(&c.addr(id), "/v2/apps")
            .unwrap_or_else(|e| c.fail(&format!("GET /v2/apps on {id}: {e}")));
        let apps = list.typed::<AppList>().apps;
        let ids: Vec<&str> = apps.iter().map(App::id).collect();
        if ids != ["/prod/web"] {
            c.fail(&format!("GET /v2/apps on master {id}: {list}"));
        }
    }

    // Creating it again conflicts; replacing it through another follower adds a version.
    let again =
        http::post(&c.addr(follower), "/v2/apps", &a).unwrap_or_else(|e| c.fail(&e.to_string()));
    assert_eq!(again.status, 409, "second POST of the same app: {again}");
    let other = c
        .ids()
        .into_iter()
        .find(|&id| id != follower && c.addr(id) != leader)
        .expect("a second follower");
    // The app's first deployment holds it until the scheduler has finished it (a pass after
    // the write); a PUT before that is refused with 409, as Marathon refuses it.
    c.wait_until(ELECTION, "the app's first deployment to finish", |c| {
        http::get_as::<Vec<Deployment>>(&c.addr(other), "/v2/deployments")
            .is_ok_and(|ds| ds.is_empty())
    });
    let put = http::put(
        &c.addr(other),
        "/v2/apps/prod/web",
        &app("/prod/web", "update-2"),
    )
    .unwrap_or_else(|e| c.fail(&e.to_string()));
    let deploys = put.status == 200
        && put
            .decode::<Change>()
            .is_ok_and(|ch| !ch.version.is_empty() && ch.deployment_id.is_some());
    if !deploys {
        c.fail(&format!(
            "PUT of an existing app through follower {other}: {put}"
        ));
    }
    let versions = http::get(&c.addr(follower), "/v2/apps/prod/web/versions")
        .unwrap_or_else(|e| c.fail(&e.to_string()));
    let list = versions.typed::<Versions>().versions;
    if list.len() != 2 {
        c.fail(&format!("two writes, expected two versions: {versions}"));
    }
    let mut ops: Vec<String> = Vec::new();
    for v in &list {
        let r = http::get(
            &c.addr(follower),
            &format!("/v2/apps/prod/web/versions/{v}"),
        )
        .unwrap_or_else(|e| c.fail(&e.to_string()));
        if r.status != 200 {
            c.fail(&format!("GET version {v}: {r}"));
        }
        let version = r.typed::<App>();
        ops.push(version.label("op").unwrap_or_default().to_string());
    }
    ops.sort();
    assert_eq!(
        ops,
        ["create-1", "update-2"],
        "the versions hold both writes"
    );

    // Delete through a follower; then it is gone everywhere.
    let del = http::delete(&c.addr(follower), "/v2/apps/prod/web")
        .unwrap_or_else(|e| c.fail(&e.to_string()));
    let deploys = del.status == 200
        && del
            .decode::<Change>()
            .is_ok_and(|ch| ch.deployment_id.is_some());
    if !deploys {
        c.fail(&format!("DELETE through follower: {del}"));
    }
    for id in c.ids() {
        let r =
            http::get(&c.addr(id), "/v2/apps/prod/web").unwrap_or_else(|e| c.fail(&e.to_string()));
        if r.status != 404 || r.message() != "App '/prod/web' does not exist" {
            c.fail(&format!("GET of a deleted app on master {id}: {r}"));
        }
    }
    let del = http::delete(&c.addr(follower), "/v2/apps/prod/web")
        .unwrap_or_else(|e| c.fail(&e.to_string()));
    assert_eq!(del.status, 404, "DELETE of an absent app: {del}");
}

#[test]
fn every_answer_names_the_leader_and_followers_forward() {
    let mut c = Cluster::launch("forwarding", 3);
    let leader = c.wait_for_leader(ELECTION);
    for id in c.ids() {
        let addr = c.addr(id);
        for (method, path, body) in [
            ("GET", "/v2/apps", None),
            ("GET", "/v2/apps/missing", None),
            ("GET", "/health", None),
            (
                "POST",
                "/v2/apps",
                Some(json!({"id": "/bad", "instances": -1})),
            ),
        ] {
            let r = http::request(&addr, method, path, body.as_ref(), http::DEFAULT_TIMEOUT)
                .unwrap_or_else(|e| c.fail(&format!("{method} {path} on master {id}: {e}")));
            assert_leader_header(&c, &r, &leader, &format!("{method} {path} on master {id}"));
            if addr != leader && path.starts_with("/v2") {
                // The follower relayed the leader's answer, not one of its own.
                assert!(
                    r.status == 200 || r.status == 404 || r.status == 422,
                    "{method} {path} forwarded by master {id}: {r}"
                );
            }
        }
    }
    let missing =
        http::get(&c.addr(1), "/v2/apps/missing").unwrap_or_else(|e| c.fail(&e.to_string()));
    assert_eq!(missing.status, 404, "{missing}");
    assert_eq!(
        missing.message(),
        "App '/missing' does not exist",
        "{missing}"
    );
}

#[test]
fn an_invalid_app_gets_marathons_422_body() {
    let mut c = Cluster::launch("invalid", 3);
    let leader = c.wait_for_leader(ELECTION);
    for id in c.ids() {
        let bad = json!({"id": "/bad", "cmd": "sleep 1", "instances": -1, "mem": -5});
        let r =
            http::post(&c.addr(id), "/v2/apps", &bad).unwrap_or_else(|e| c.fail(&e.to_string()));
        if r.status != 422 {
            c.fail(&format!("POST of an invalid app on master {id}: {r}"));
        }
        assert_leader_header(&c, &r, &leader, "422 answer");
        let error = r
            .error()
            .unwrap_or_else(|| c.fail(&format!("422 without an error body: {r}")));
        assert_eq!(error.message, "Object is not valid", "{r}");
        let details = error.details.unwrap_or_default();
        let at = |path: &str| -> Vec<String> {
            details
                .iter()
                .filter(|d| d.path == path)
                .flat_map(|d| d.errors.clone())
                .collect()
        };
        assert_eq!(at("/instances"), ["got -1, expected 0 or more"], "{r}");
        assert_eq!(at("/mem"), ["got -5, expected 0.0 or more"], "{r}");

        let put =
            http::put(&c.addr(id), "/v2/apps/bad", &bad).unwrap_or_else(|e| c.fail(&e.to_string()));
        assert_eq!(
            put.status, 422,
            "PUT of an invalid app on master {id}: {put}"
        );
        assert_eq!(put.message(), "Object is not valid", "{put}");
    }
    let r = c.get_settled(1, "/v2/apps/bad", WRITE);
    assert_eq!(r.status, 404, "an invalid app is never stored: {r}");
}

/// Asserts that master `id` exits non-zero and that its stderr names both regions.
#[track_caller]
fn assert_refused_for_region(c: &mut Cluster, id: u32, cluster_region: &str, own: &str) {
    let status = c.wait_exit(id, ELECTION + EXIT);
    if status.success() {
        c.fail(&format!(
            "master {id} in region {own} must exit non-zero, got {status}"
        ));
    }
    let stderr = c.stderr(id);
    if !(stderr.contains(cluster_region) && stderr.contains(own)) {
        c.fail(&format!(
            "stderr of master {id} must name the cluster's region ({cluster_region}) and its own ({own}):\n{stderr}"
        ));
    }
}

#[test]
fn a_master_restarted_in_another_region_is_refused_naming_both_regions() {
    let mut c = Cluster::new("region-restart", 3);
    for id in c.ids() {
        c.master_mut(id).region = "us-east-1".to_string();
    }
    c.start_all();
    c.wait_for_leader(ELECTION);
    for id in c.ids() {
        c.wait_caught_up(id, ELECTION);
    }
    c.put_app_acked(1, &app("/region/kept", "kept"), WRITE);
    let follower = c
        .ids()
        .into_iter()
        .find(|&id| Some(c.addr(id)) != c.leader())
        .expect("a follower");

    c.kill(follower);
    c.master_mut(follower).region = "eu-west-1".to_string();
    c.start(follower);
    assert_refused_for_region(&mut c, follower, "us-east-1", "eu-west-1");

    // The refused master did no harm; back in the right region, it rejoins.
    c.master_mut(follower).region = "us-east-1".to_string();
    c.start(follower);
    c.wait_caught_up(follower, ELECTION);
    assert_apps_present(
        &mut c,
        &[1, 2, 3],
        &[("/region/kept".to_string(), "kept".to_string())],
    );
}

#[test]
fn a_new_cluster_refuses_the_master_in_another_region() {
    let mut c = Cluster::new("region-new", 3);
    for id in c.ids() {
        c.master_mut(id).region = "us-east-1".to_string();
    }
    c.master_mut(3).region = "eu-west-1".to_string();
    c.start_all();
    // Whichever master exits first tells which region the cluster took: it must be the
    // region of the majority (and of the master that forms the cluster), us-east-1.
    c.wait_until(ELECTION + EXIT, "one of the masters exits", |c| {
        c.live_ids().len() < 3
    });
    let live = c.live_ids();
    if live != [1, 2] {
        c.fail(&format!(
            "master 3 (eu-west-1) must be the one refused while masters 1 and 2 (us-east-1) keep running; running now: {live:?}"
        ));
    }
    assert_refused_for_region(&mut c, 3, "us-east-1", "eu-west-1");
    c.wait_for(ELECTION, "masters 1 and 2 agree on a leader", |c| {
        c.leader_among(&[1, 2])
    });

    c.master_mut(3).region = "us-east-1".to_string();
    c.start(3);
    c.wait_for_leader(ELECTION);
    c.wait_caught_up(3, ELECTION);
    for id in c.ids() {
        c.put_app_acked(id, &app(&format!("/region/{id}"), "x"), WRITE);
    }
    let live = c.live_ids();
    assert_eq!(live, [1, 2, 3], "every master runs");
}

#[test]
fn a_master_started_after_the_others_formed_the_cluster_joins_on_its_first_start() {
    // Masters started together do not start at the same instant: the first two can form
    // the cluster before the third looks. Its empty data dir is a first start, not a loss.
    let mut c = Cluster::new("late-first-start", 3);
    c.start_ids(&[1, 3]);
    c.wait_for_leader(ELECTION);
    c.put_app_acked(1, &app("/late/before", "before"), WRITE);
    c.start(2);
    c.wait_caught_up(2, ELECTION);
    c.put_app_acked(2, &app("/late/after", "after"), WRITE);
    assert_apps_present(
        &mut c,
        &[1, 2, 3],
        &[
            ("/late/before".to_string(), "before".to_string()),
            ("/late/after".to_string(), "after".to_string()),
        ],
    );
    assert_eq!(c.live_ids(), [1, 2, 3], "every master runs");
}

#[test]
fn a_master_whose_data_dir_was_lost_is_refused() {
    let mut c = Cluster::launch("lost-data", 3);
    let leader = c.wait_for_leader(ELECTION);
    for id in c.ids() {
        c.wait_caught_up(id, ELECTION);
    }
    c.put_app_acked(1, &app("/lost/kept", "kept"), WRITE);
    // Each master registers once it serves; only a registered master's empty data dir is a
    // loss (an unregistered one is starting for the first time).
    c.wait_for(ELECTION, "every master registered with the cluster", |c| {
        let registered = c.health(1)?.registered_masters;
        (registered == [1, 2, 3]).then_some(())
    });
    let follower = c
        .ids()
        .into_iter()
        .find(|&id| c.addr(id) != leader)
        .expect("a follower");
    c.kill(follower);
    let dir = c.master(follower).data_dir.clone();
    std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("remove {}: {e}", dir.display()));
    c.start(follower);
    let status = c.wait_exit(follower, ELECTION + EXIT);
    if status.success() {
        c.fail(&format!(
            "a master with a lost data dir must exit non-zero, got {status}"
        ));
    }
    let stderr = c.stderr(follower);
    if !stderr.contains(&dir.display().to_string()) {
        c.fail(&format!(
            "the refusal must name the data dir {}:\n{stderr}",
            dir.display()
        ));
    }
    // The two others still form a working cluster with every acknowledged app.
    let survivors: Vec<u32> = c.ids().into_iter().filter(|&id| id != follower).collect();
    c.wait_for(ELECTION, "the two others agree on a leader", |c| {
        c.leader_among(&survivors)
    });
    for &id in &survivors {
        c.put_app_acked(id, &app(&format!("/lost/after-{id}"), "after"), WRITE);
    }
    assert_apps_present(
        &mut c,
        &survivors,
        &[("/lost/kept".to_string(), "kept".to_string())],
    );
}

#[test]
fn delete_v2_leader_moves_leadership() {
    let mut c = Cluster::launch("abdicate", 3);
    let first = c.wait_for_leader(ELECTION);
    let r = http::delete(&first, "/v2/leader").unwrap_or_else(|e| c.fail(&e.to_string()));
    // The exact body, raw: Marathon's answer has this one field and no other.
    if r.status != 200 || r.body_json != json!({"message": "Leadership abdicated"}) {
        c.fail(&format!("DELETE /v2/leader on the leader: {r}"));
    }
    let second = c.wait_for_new_leader(&first, ELECTION);
    // A handover, not an election after silence: the old leader names the new one.
    let (first_id, second_id) = (c.id_of(&first), c.id_of(&second));
    c.wait_until(
        ELECTION,
        "the old leader says whom it handed over to",
        |c| {
            c.stderr(first_id)
                .contains(&format!("handed leadership to master {second_id}"))
        },
    );

    // Through a follower, the request is forwarded to the leader, which abdicates.
    let follower = c
        .ids()
        .into_iter()
        .find(|&id| c.addr(id) != second)
        .expect("a follower");
    let r =
        http::delete(&c.addr(follower), "/v2/leader").unwrap_or_else(|e| c.fail(&e.to_string()));
    // The exact body, raw: Marathon's answer has this one field and no other.
    if r.status != 200 || r.body_json != json!({"message": "Leadership abdicated"}) {
        c.fail(&format!(
            "DELETE /v2/leader through follower {follower}: {r}"
        ));
    }
    c.wait_for_new_leader(&second, ELECTION);
    for id in c.ids() {
        c.put_app_acked(id, &app(&format!("/abdicate/{id}"), "x"), WRITE);
    }
}

#[test]
fn a_leader_stopped_with_sigterm_hands_leadership_to_an_up_to_date_follower() {
    let mut c = Cluster::launch("handover", 3);
    let first = c.wait_for_leader(ELECTION);
    let first_id = c.id_of(&first);
    let follower = c.a_follower(first_id);
    c.put_app_acked(follower, &app("/handover/before", "before"), WRITE);

    // A transfer request that does not come from this follower's leader in its term is
    // refused with the reason, and changes nothing.
    let stale = json!({"leader": first_id, "term": 0, "last_log_index": 0});
    let r = http::post(&c.addr(follower), "/internal/raft/transfer", &stale)
        .unwrap_or_else(|e| c.fail(&e.to_string()));
    if r.status != 409 || !r.body.contains("stale") {
        c.fail(&format!("a stale transfer request: {r}"));
    }
    assert_eq!(
        c.leader().as_deref(),
        Some(first.as_str()),
        "the stale request moved nothing"
    );

    let status = c.terminate(first_id, EXIT);
    assert_eq!(
        status.code(),
        Some(0),
        "a SIGTERMed leader exits 0: {status}"
    );
    let said = c.stderr(first_id);
    let Some(to) = said
        .lines()
        .find_map(|l| l.split("handed leadership to master ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|id| id.parse::<u32>().ok())
    else {
        c.fail("the stopped leader must say which master it handed leadership to")
    };
    assert_ne!(to, first_id);
    // The master it named leads, having been told to take over, and every acknowledged
    // write is there.
    let survivors: Vec<u32> = c.ids().into_iter().filter(|&id| id != first_id).collect();
    let leader = c.wait_for(ELECTION, "the two others agree on a leader", |c| {
        c.leader_among(&survivors)
    });
    assert_eq!(
        c.id_of(&leader),
        to,
        "the leader is the master the old one named"
    );
    if !c
        .stderr(to)
        .contains(&format!("taking leadership over from master {first_id}"))
    {
        c.fail(&format!(
            "master {to} must say it took over from master {first_id}"
        ));
    }
    for &id in &survivors {
        c.put_app_acked(id, &app(&format!("/handover/after-{id}"), "after"), WRITE);
    }
    assert_apps_present(
        &mut c,
        &survivors,
        &[("/handover/before".to_string(), "before".to_string())],
    );
}

#[test]
fn delete_v2_leader_on_a_single_master_says_there_is_nobody_to_hand_to() {
    let mut c = Cluster::launch("abdicate-one", 1);
    let leader = c.wait_for_leader(ELECTION);
    let r = http::delete(&leader, "/v2/leader").unwrap_or_else(|e| c.fail(&e.to_string()));
    if r.status != 409 || !r.body.contains("no other master") {
        c.fail(&format!("DELETE /v2/leader on the only master: {r}"));
    }
    // It still leads and takes writes.
    c.put_app_acked(1, &app("/abdicate-one/x", "x"), WRITE);
}

#[test]
fn exit_on_leadership_loss_exits_with_103() {
    let mut c = Cluster::new("exit-103", 3);
    c.extra_args.push("--exit-on-leadership-loss".to_string());
    c.start_all();
    let leader = c.wait_for_leader(ELECTION);
    let leader_id = c.id_of(&leader);
    let r = http::delete(&leader, "/v2/leader").unwrap_or_else(|e| c.fail(&e.to_string()));
    if r.status != 200 {
        c.fail(&format!("DELETE /v2/leader: {r}"));
    }
    let status = c.wait_exit(leader_id, EXIT);
    assert_eq!(
        status.code(),
        Some(103),
        "exit status after leadership loss: {status}"
    );
    let stderr = c.stderr(leader_id);
    if !stderr.contains(&format!(
        "drover master {leader_id}: lost leadership of term"
    )) || !stderr.contains("exiting with code 103 (--exit-on-leadership-loss)")
    {
        c.fail("the exit on leadership loss must say why, with its code");
    }
    let survivors: Vec<u32> = c.ids().into_iter().filter(|&id| id != leader_id).collect();
    // Both survivors may stand at once, and openraft lets the higher id depose a leader of
    // the same term: a survivor elected for a moment then exits with 103 too, as the flag
    // says. Act as the supervisor the flag is for: restart it, and expect a leader.
    c.wait_for(ELECTION, "the two others agree on a new leader", |c| {
        for &id in &survivors {
            if !c.is_running(id) {
                let status = c.wait_exit(id, EXIT);
                assert_eq!(
                    status.code(),
                    Some(103),
                    "master {id} exited other than by losing leadership: {status}"
                );
                c.start(id);
            }
        }
        c.leader_among(&survivors)
    });
}

#[test]
fn an_even_number_of_masters_is_refused_with_a_reason() {
    for n in [2u32, 4] {
        let c = Cluster::new("even", n);
        let (status, stdout, stderr) = run_to_exit(c.command(1), EXIT);
        assert!(
            !status.success(),
            "{n} masters must be refused, got {status}\n{stdout}\n{stderr}"
        );
        let text = stderr.to_lowercase();
        assert!(
            text.contains(&n.to_string())
                && (text.contains("odd") || text.contains("quorum") || text.contains("even")),
            "the refusal of {n} masters must say why (odd count, quorum):\n{stderr}"
        );
    }
}
