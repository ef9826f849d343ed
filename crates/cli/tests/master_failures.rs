//! Highly available masters under failures, across processes (issue 3, "Must be true
//! when done"): the leader SIGKILLed, two of three masters SIGSTOPped, five masters losing
//! two, every master restarted. Waits poll conditions with deadlines; nothing here
//! asserts on timings.

mod common;

use client::{App, AppList, Versions};
use common::{Cluster, ELECTION, WRITE, app, assert_apps_present, framework_id, http, read_app};

#[test]
fn sigkill_of_the_leader_elects_another_and_loses_no_acknowledged_app() {
    let mut c = Cluster::launch("kill-leader", 3);
    let old = c.wait_for_leader(ELECTION);
    let old_id = c.id_of(&old);
    let mut acked = Vec::new();
    for (i, via) in c.ids().into_iter().enumerate() {
        let id = format!("/before/app-{i}");
        let op = format!("before-{i}");
        c.put_app_acked(via, &app(&id, &op), WRITE);
        acked.push((id, op));
    }

    c.kill(old_id);
    let new = c.wait_for_new_leader(&old, ELECTION);
    let survivors: Vec<u32> = c.ids().into_iter().filter(|&id| id != old_id).collect();
    assert!(
        survivors.contains(&c.id_of(&new)),
        "the new leader {new} is a survivor"
    );

    // Writes through every survivor (leader and follower) are acknowledged.
    for &via in &survivors {
        let id = format!("/after/via-{via}");
        let op = format!("after-{via}");
        let r = c.put_app_acked(via, &app(&id, &op), WRITE);
        assert!(r.status == 201 || r.status == 200, "{r}");
        acked.push((id, op));
    }
    assert_apps_present(&mut c, &survivors, &acked);

    // The killed master comes back with its data dir, follows, and serves the same apps.
    c.start(old_id);
    c.wait_caught_up(old_id, ELECTION);
    assert_apps_present(&mut c, &[old_id], &acked);
}

/// Writes while two of three masters are paused must fail with 503 and a JSON message
/// (not hang, not half-apply); after SIGCONT the cluster recovers.
fn writes_without_quorum(name: &str, pause_leader: bool) {
    let mut c = Cluster::launch(name, 3);
    let leader = c.wait_for_leader(ELECTION);
    let leader_id = c.id_of(&leader);
    let followers: Vec<u32> = c.ids().into_iter().filter(|&id| id != leader_id).collect();
    c.put_app_acked(leader_id, &app("/quorum/before", "before"), WRITE);

    let (paused, via) = if pause_leader {
        (vec![leader_id, followers[0]], followers[1])
    } else {
        (followers.clone(), leader_id)
    };
    for &id in &paused {
        c.stop(id);
    }

    let attempt = app("/quorum/during", "during");
    for (method, r) in [
        ("POST", http::post(&c.addr(via), "/v2/apps", &attempt)),
        (
            "PUT",
            http::put(&c.addr(via), "/v2/apps/quorum/during", &attempt),
        ),
        (
            "DELETE",
            http::delete(&c.addr(via), "/v2/apps/quorum/before"),
        ),
    ] {
        let r = r.unwrap_or_else(|e| {
            c.fail(&format!(
                "{method} through master {via} with masters {paused:?} stopped got no answer (it must fail with 503, not hang): {e}"
            ))
        });
        if r.status != 503 || r.message().is_empty() {
            c.fail(&format!(
                "{method} through master {via} with masters {paused:?} stopped: expected 503 with a JSON message, got {r}"
            ));
        }
    }
    if pause_leader {
        // Once the follower has noticed that there is no leader, it says so.
        c.wait_until(
            ELECTION,
            "the remaining follower reports that it knows no leader",
            |c| c.health(via).is_some_and(|h| h.leader.is_none()),
        );
        let r = http::post(&c.addr(via), "/v2/apps", &attempt).unwrap_or_else(|e| {
            c.fail(&format!(
                "POST through a follower without a leader got no answer: {e}"
            ))
        });
        if r.status != 503 || r.message() != "Could not determine the current leader" {
            c.fail(&format!("POST through a follower without a leader: {r}"));
        }
    }

    for &id in &paused {
        c.cont(id);
    }
    let leader = c.wait_for_leader(ELECTION);
    let leader_id = c.id_of(&leader);

    // Nothing is half-applied: each write that failed is either fully there or absent.
    for id in c.ids() {
        match read_app(&mut c, id, "/quorum/during") {
            None => {}
            Some(a)
                if a.label("op") == Some("during")
                    && a.parse_definition().is_ok_and(|d| {
                        d.cmd.as_deref() == attempt["cmd"].as_str()
                            && Some(d.mem) == attempt["mem"].as_f64()
                    }) => {}
            Some(a) => c.fail(&format!(
                "/quorum/during is half-applied on master {id}: {a:?}"
            )),
        }
        match read_app(&mut c, id, "/quorum/before") {
            None => {}
            Some(a) if a.label("op") == Some("before") => {}
            Some(a) => c.fail(&format!("/quorum/before changed without a write: {a:?}")),
        }
    }
    let versions = c.get_settled(leader_id, "/v2/apps/quorum/during/versions", WRITE);
    if versions.status == 200 {
        let n = versions.typed::<Versions>().versions.len();
        assert!(
            (1..=2).contains(&n),
            "two failed writes of one app left {n} versions: {versions}"
        );
    }

    // The cluster accepts writes again, through every master.
    for id in c.ids() {
        c.put_app_acked(id, &app(&format!("/quorum/after-{id}"), "after"), WRITE);
    }
    let list = c.get_settled(leader_id, "/v2/apps", WRITE);
    let apps = list.typed::<AppList>().apps;
    let ids: Vec<&str> = apps.iter().map(App::id).collect();
    for id in c.ids() {
        assert!(
            ids.contains(&format!("/quorum/after-{id}").as_str()),
            "{list}"
        );
    }
}

#[test]
fn with_both_followers_stopped_writes_fail_cleanly_and_recover() {
    writes_without_quorum("stop-followers", false);
}

#[test]
fn with_the_leader_and_a_follower_stopped_writes_fail_cleanly_and_recover() {
    writes_without_quorum("stop-leader", true);
}

#[test]
fn five_masters_survive_two_sigkills() {
    let mut c = Cluster::launch("five", 5);
    let mut acked = Vec::new();
    let mut killed = Vec::new();
    for round in 0..2 {
        let leader = c.wait_for_leader(ELECTION);
        let leader_id = c.id_of(&leader);
        let via = c.live_ids()[round % 2];
        let id = format!("/five/round-{round}");
        let op = format!("round-{round}");
        c.put_app_acked(via, &app(&id, &op), WRITE);
        acked.push((id, op));
        c.kill(leader_id);
        killed.push(leader_id);
        c.wait_for_new_leader(&leader, ELECTION);
    }
    let survivors = c.live_ids();
    assert_eq!(survivors.len(), 3, "{survivors:?}");
    for &via in &survivors {
        let id = format!("/five/after-{via}");
        let op = format!("after-{via}");
        c.put_app_acked(via, &app(&id, &op), WRITE);
        acked.push((id, op));
    }
    assert_apps_present(&mut c, &survivors, &acked);
    for &id in &killed {
        c.start(id);
    }
    for &id in &killed {
        c.wait_caught_up(id, ELECTION);
    }
    assert_apps_present(&mut c, &killed, &acked);
}

#[test]
fn stopping_every_master_and_starting_again_keeps_every_acknowledged_app() {
    let mut c = Cluster::launch("full-restart", 3);
    let leader = c.wait_for_leader(ELECTION);
    let leader_id = c.id_of(&leader);
    let cluster_id = c.wait_for(ELECTION, "the leader reports the cluster id", |c| {
        framework_id(c, leader_id)
    });
    let mut acked = Vec::new();
    for i in 0..6u32 {
        let id = format!("/durable/app-{i}");
        let op = format!("v1-{i}");
        c.put_app_acked(1 + i % 3, &app(&id, &op), WRITE);
        acked.push((id, op));
    }
    // A second version of one app and a deletion of another.
    c.put_app_acked(2, &app("/durable/app-0", "v2-0"), WRITE);
    acked[0].1 = "v2-0".to_string();
    let del = http::delete(&c.addr(3), "/v2/apps/durable/app-5")
        .unwrap_or_else(|e| c.fail(&e.to_string()));
    if del.status != 200 {
        c.fail(&format!("DELETE /v2/apps/durable/app-5: {del}"));
    }
    acked.pop();

    c.kill_all();
    c.start_all();
    let leader = c.wait_for_leader(ELECTION);
    let leader_id = c.id_of(&leader);
    let all = c.ids();
    assert_apps_present(&mut c, &all, &acked);
    let gone = read_app(&mut c, leader_id, "/durable/app-5");
    assert!(
        gone.is_none(),
        "a deleted app came back after a restart: {gone:?}"
    );
    let versions = c.get_settled(leader_id, "/v2/apps/durable/app-0/versions", WRITE);
    assert_eq!(
        versions.typed::<Versions>().versions.len(),
        2,
        "both versions of /durable/app-0 survive: {versions}"
    );
    // Each master answers /v2/info from what it has applied; once it has applied the log
    // again, the cluster id must be the one from before.
    for id in c.ids() {
        let after = c.wait_for(ELECTION, "the master reports a cluster id again", |c| {
            framework_id(c, id)
        });
        assert_eq!(
            after, cluster_id,
            "restarting never re-initialises the cluster (master {id})"
        );
    }
    for id in c.ids() {
        c.put_app_acked(id, &app(&format!("/durable/new-{id}"), "new"), WRITE);
    }
}
