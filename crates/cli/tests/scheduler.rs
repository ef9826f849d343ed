//! The scheduler and the Marathon API, tested across processes (issue 5, "Must be true when
//! done"): real `drover master` and `drover agent` binaries on loopback, agents given fault
//! domains with `--domain`, real task processes. The seed examples, relaunch of a killed
//! process with backoff, a lost agent's instances replaced under `GROUP_BY` and its originals
//! killed when it returns, a whole zone lost and back, mass eviction protection (a zone, and a
//! leader that sees every zone unreachable), a rolling restart that keeps half its capacity
//! healthy, the leader killed during a deployment, and the event stream.
//!
//! Waits poll conditions with deadlines and fail with what they last saw and the logs of every
//! process; nothing here asserts on how fast anything happened (`benches/scheduling.rs` does
//! that). Tasks append their id to a launch log when they start, so the tests count launches
//! from what really ran, not only from what the masters say. Dropping a [`Site`] kills the
//! agents and every task process group they started.

mod agent_support;
mod common;
mod scheduler_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use agent_support::events::EventStream;
use agent_support::procs;
use agent_support::{SETTLE, Site};
use client::{AppEnvelope, Change, Event, Queue, Status};
use scheduler_support::site::{
    CONVERGE, Spread, ZONES, add_agents, app_tasks, create_gated_app, deployments_of, health_check,
    pause_every_agent, processes_of, restart, send, sigkill, site, sleeper, slow_eviction_flags,
    spread_app, start_agents, wait_app_running, wait_deployed,
};
use scheduler_support::{
    HTTP_SERVER, HealthGate, LaunchLog, Sampler, Task, count_by, describe, drain, event_types,
    expect_event, fast_master_flags, http_health_check, ids, listed_tasks, per_zone, spread, tasks,
    wait_showing,
};
use serde_json::{Value, json};

#[test]
fn the_seed_examples_run_in_their_regions_and_zones() {
    let mut s = site("sched-seed", 1, fast_master_flags());
    let mut agents = Vec::new();
    for region in ["local", "aws-us-east1", "aws-us-east2"] {
        let zones: Vec<String> = ["a", "b", "c", "d"]
            .iter()
            .map(|z| format!("{region}-{z}"))
            .collect();
        let zones: Vec<&str> = zones.iter().map(String::as_str).collect();
        agents.extend(add_agents(&mut s, region, &zones, 1));
    }
    start_agents(&mut s, &agents);
    // hostname → (region, zone), as the test configured the agents.
    let domain_of: BTreeMap<String, (String, String)> = agents
        .iter()
        .map(|(i, zone)| {
            let region = zone.rsplit_once('-').map(|(r, _)| r).unwrap_or_default();
            (
                s.agent(*i).hostname.clone(),
                (region.to_string(), zone.clone()),
            )
        })
        .collect();

    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/apps");
    for name in ["remote-region", "balanced-zones", "local-only"] {
        let path = examples.join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let app: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        s.create_app(&app);
    }

    // Every task is where its agent is, and says so.
    let check_domains = |s: &Site, app: &str, ts: &[Task]| {
        for t in ts {
            let Some((region, zone)) = domain_of.get(&t.host) else {
                s.fail(&format!(
                    "{app}: task {} runs on unknown host {}",
                    t.id, t.host
                ));
            };
            if t.region != *region || t.zone != *zone {
                s.fail(&format!(
                    "{app}: task {} on {} says {}/{}, but the agent is in {region}/{zone}",
                    t.id, t.host, t.region, t.zone
                ));
            }
        }
    };

    let remote = wait_app_running(&mut s, "/remote-region", 5);
    check_domains(&s, "/remote-region", &remote);
    let regions = count_by(&remote, |t| &t.region);
    assert_eq!(
        regions,
        BTreeMap::from([("aws-us-east1".to_string(), 5)]),
        "/remote-region with [\"@region\",\"IS\",\"aws-us-east1\"]: instances per region"
    );

    let balanced = wait_app_running(&mut s, "/balanced-zones", 6);
    check_domains(&s, "/balanced-zones", &balanced);
    let zones = count_by(&balanced, |t| &t.zone);
    let mut sizes: Vec<usize> = zones.values().copied().collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(
        sizes,
        vec![2, 2, 1, 1],
        "/balanced-zones (@zone GROUP_BY 4 in aws-us-east1): instances per zone {zones:?}"
    );
    assert!(
        zones.keys().all(|z| z.starts_with("aws-us-east1-")),
        "/balanced-zones left aws-us-east1: {zones:?}"
    );

    let local = wait_app_running(&mut s, "/local-only", 4);
    check_domains(&s, "/local-only", &local);
    let regions = count_by(&local, |t| &t.region);
    assert_eq!(
        regions,
        BTreeMap::from([("local".to_string(), 4)]),
        "/local-only has no region constraint: only the local region"
    );
}

#[test]
fn an_instance_whose_process_is_killed_is_relaunched_after_its_backoff() {
    const BACKOFF: Duration = Duration::from_secs(3);
    let mut s = site("sched-relaunch", 1, fast_master_flags());
    let agents = add_agents(&mut s, "local", &["local-a"], 1);
    start_agents(&mut s, &agents);
    let log = LaunchLog::new(s.dir(), "relaunch");
    let app_id = "/relaunch/sleeper";
    let mut app = sleeper(app_id, 1, &log);
    app["backoffSeconds"] = json!(BACKOFF.as_secs());
    app["backoffFactor"] = json!(2);
    s.create_app(&app);
    let first = wait_app_running(&mut s, app_id, 1).remove(0);
    let process = s
        .task_process(&first.id)
        .unwrap_or_else(|| s.fail(&format!("no process for {}", first.id)));

    let killed_at = Instant::now();
    sigkill(process);
    // The failure delays the next launch, and /v2/queue says so.
    let what = format!("/v2/queue shows {app_id} waiting out its backoff");
    let delay = s.wait_for(SETTLE, &what, |s| {
        let r = s.get("/v2/queue")?;
        r.typed_ok::<Queue>()?
            .queue
            .into_iter()
            .find(|q| q.app_id() == Some(app_id) && !q.delay.overdue)
            .map(|q| q.delay)
    });
    let what = format!("a new instance of {app_id} runs instead of {}", first.id);
    let (second, seen_after) = s.wait_for(SETTLE, &what, |s| {
        let ts = app_tasks(s, app_id)?;
        let t = ts.first().filter(|t| ts.len() == 1 && t.running())?;
        (t.id != first.id && s.task_process(&t.id).is_some_and(|p| p.is_alive()))
            .then(|| (t.clone(), killed_at.elapsed()))
    });
    // A lower bound the app's backoffSeconds imposes (load can only make it longer).
    assert!(
        seen_after + Duration::from_millis(100) >= BACKOFF,
        "the replacement ran {seen_after:?} after the kill, before backoffSeconds {BACKOFF:?}; queue delay was {delay:?}"
    );
    assert!(!process.is_alive(), "the killed process lives");
    let launches = log.launches();
    let launched: Vec<&str> = launches.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        launched,
        vec![first.id.as_str(), second.id.as_str()],
        "launches: the original, then one relaunch"
    );
}

#[test]
fn a_killed_agents_instances_are_replaced_within_group_by_and_its_originals_die_when_it_returns() {
    // Nine instances over three zones of two agents: 2 + 1 in each zone.
    let Spread {
        mut s,
        agents,
        log,
        app_id,
        before,
    } = spread_app("sched-agent-lost", fast_master_flags(), 2, 9);
    let balanced: BTreeMap<String, usize> = ZONES.iter().map(|z| (z.to_string(), 3)).collect();

    // The agent with the most instances (two of its zone's three) goes.
    let per_host = count_by(&before, |t| &t.host);
    let lost_host = per_host
        .iter()
        .max_by_key(|(h, n)| (**n, (*h).clone()))
        .map(|(h, _)| h.clone())
        .expect("the app has tasks");
    let lost = s.agent_by_host(&lost_host);
    let lost_zone = agents
        .iter()
        .find(|(i, _)| *i == lost)
        .map(|(_, z)| z.clone())
        .expect("the agent has a zone");
    let mate = agents
        .iter()
        .find(|(i, z)| *i != lost && *z == lost_zone)
        .map(|(i, _)| *i)
        .expect("two agents per zone");
    let mate_host = s.agent(mate).hostname.clone();
    let originals: Vec<Task> = before
        .iter()
        .filter(|t| t.host == lost_host)
        .cloned()
        .collect();
    let original_ids = ids(&originals);
    let original_procs = processes_of(&s, &original_ids);

    s.kill_agent(lost);
    let what = format!(
        "{original_ids:?} are replaced and the app runs 9 instances again, none on {lost_host}"
    );
    let after = wait_showing(&mut s, SETTLE, &what, |s| {
        let ts = app_tasks(s, app_id).unwrap_or_default();
        if ts.len() == 9
            && ts.iter().all(|t| t.running() && t.host != lost_host)
            && ids(&ts).is_disjoint(&original_ids)
        {
            Ok(ts)
        } else {
            Err(describe(&ts))
        }
    });
    assert_eq!(
        per_zone(&after, &ZONES),
        balanced,
        "GROUP_BY: the replacements stay in zone {lost_zone}: {}",
        describe(&after)
    );
    let replacements: Vec<&Task> = after
        .iter()
        .filter(|t| !ids(&before).contains(&t.id))
        .collect();
    assert_eq!(replacements.len(), originals.len(), "{}", describe(&after));
    for t in &replacements {
        assert_eq!(
            t.host, mate_host,
            "replacement {} must go to the other agent of {lost_zone}",
            t.id
        );
    }
    for (id, p) in &original_procs {
        if !p.is_alive() {
            s.fail(&format!(
                "{id} (pid {}) ended while its agent was down; nobody told it to",
                p.pid
            ));
        }
    }

    // The agent returns and kills what is no longer assigned to it.
    s.start_agent(lost);
    s.wait_agent_active(lost);
    let what = format!("the returned agent {lost_host} kills its originals {original_procs:?}");
    s.wait_until(SETTLE, &what, |_| {
        original_procs.values().all(|p| !p.is_alive())
    });
    let end = wait_app_running(&mut s, app_id, 9);
    assert_eq!(
        ids(&end),
        ids(&after),
        "the instances after the agent returned"
    );
    assert_eq!(per_zone(&end, &ZONES), balanced);
    for id in &original_ids {
        let left = procs::processes_with_env("MESOS_TASK_ID", id);
        assert!(left.is_empty(), "processes of {id} still run: {left:?}");
    }
    assert_eq!(log.repeated(), BTreeMap::new(), "instances launched twice");
    assert_eq!(
        log.ids().len(),
        9 + originals.len(),
        "launches: 9, then one per lost instance"
    );
}

#[test]
fn a_zone_outage_moves_its_instances_evenly_to_the_other_zones_and_its_return_rebalances() {
    let sp = spread_app("sched-zone-outage", fast_master_flags(), 2, 6);
    let zone_a = sp.zone("local-a");
    let Spread {
        mut s,
        log,
        app_id,
        before,
        ..
    } = sp;
    let stranded = ids(&before
        .iter()
        .filter(|t| t.zone == "local-a")
        .cloned()
        .collect::<Vec<_>>());
    let stranded_procs = processes_of(&s, &stranded);

    // Zone local-a stops answering: both its agents are paused. (Two unreachable agents of
    // two engage mass eviction protection there: one more agent is released per second.)
    for &i in &zone_a {
        s.pause_agent(i);
    }
    let what = "the app runs 6 instances again, none in local-a";
    let moved = wait_showing(&mut s, CONVERGE, what, |s| {
        let ts = app_tasks(s, app_id).unwrap_or_default();
        if ts.len() == 6 && ts.iter().all(|t| t.running() && t.zone != "local-a") {
            Ok(ts)
        } else {
            Err(describe(&ts))
        }
    });
    let during = per_zone(&moved, &ZONES);
    if spread(
        during
            .iter()
            .filter(|(z, _)| *z != "local-a")
            .map(|(_, n)| n),
    ) > 1
    {
        s.fail(&format!(
            "local-a's instances were not spread evenly over the other zones: {during:?}"
        ));
    }

    // The zone returns: its agents kill the instances replaced meanwhile, and the app is
    // rebalanced onto it.
    for &i in &zone_a {
        s.resume_agent(i);
    }
    let what = format!("local-a's agents kill the replaced instances {stranded:?}");
    s.wait_until(SETTLE, &what, |_| {
        stranded_procs.values().all(|p| !p.is_alive())
    });
    let what = "the app is rebalanced: 6 running, local-a has instances again, zones within one";
    let end = wait_showing(&mut s, CONVERGE, what, |s| {
        let ts = app_tasks(s, app_id).unwrap_or_default();
        let z = per_zone(&ts, &ZONES);
        if ts.len() == 6
            && ts.iter().all(Task::running)
            && z["local-a"] > 0
            && spread(z.values()) <= 1
        {
            Ok(ts)
        } else {
            Err(format!("{z:?} {}", describe(&ts)))
        }
    });
    let end_zones = per_zone(&end, &ZONES);
    let end = wait_app_running(&mut s, app_id, 6);
    assert_eq!(per_zone(&end, &ZONES), end_zones, "the rebalanced app");
    assert_eq!(log.repeated(), BTreeMap::new(), "instances launched twice");
}

#[test]
fn mass_eviction_protection_engages_for_a_zone_and_shows_in_health_and_events() {
    let Spread {
        mut s,
        agents,
        app_id,
        log,
        ..
    } = spread_app("sched-eviction-shown", slow_eviction_flags(), 2, 6);
    let zone_a: Vec<usize> = agents
        .iter()
        .filter(|(_, z)| z == "local-a")
        .map(|(i, _)| *i)
        .collect();
    let mut events = EventStream::open(&s.masters.addr(1), &["eviction_protection_event"])
        .unwrap_or_else(|e| s.fail(&format!("subscribe to /v2/events: {e}")));
    let check = health_check(&mut s, "eviction-protection");
    assert_eq!(
        check.as_ref().map(|c| c.status),
        Some(Status::Pass),
        "before: {check:?}"
    );

    // Both agents of local-a go at once: two of the zone's two agents are unreachable.
    for &i in &zone_a {
        s.kill_agent(i);
    }
    let (cut_off, reason) = expect_event(
        &s,
        &mut events,
        SETTLE,
        "eviction protection engaged for zone local-a",
        |e| match e {
            Event::EvictionProtectionEvent {
                engaged: true,
                zones,
                cut_off,
                reason,
                ..
            } if zones.iter().any(|z| z == "local-a") => Some((*cut_off, reason.clone())),
            _ => None,
        },
    );
    assert!(!cut_off, "one zone of two is not cut off: {reason}");
    assert!(
        reason.contains("local-a"),
        "the reason names the zone: {reason}"
    );
    let check = wait_showing(
        &mut s,
        SETTLE,
        "cluster health warns of eviction protection in local-a",
        |s| match health_check(s, "eviction-protection") {
            Some(c) if c.status == Status::Warn && format!("{c:?}").contains("local-a") => Ok(c),
            other => Err(format!("{other:?}")),
        },
    );
    assert!(
        check.reason.contains("local-a"),
        "the reason names the zone: {check:?}"
    );

    // The zone returns: protection disengages, and the app is whole and balanced again.
    for &i in &zone_a {
        s.start_agent(i);
    }
    expect_event(
        &s,
        &mut events,
        SETTLE,
        "eviction protection disengaged",
        |e| matches!(e, Event::EvictionProtectionEvent { engaged: false, .. }).then_some(()),
    );
    wait_showing(
        &mut s,
        SETTLE,
        "cluster health passes eviction-protection",
        |s| match health_check(s, "eviction-protection") {
            Some(c) if c.status == Status::Pass => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    wait_showing(
        &mut s,
        CONVERGE,
        "the app runs 6 instances, zones within one",
        |s| {
            let ts = app_tasks(s, app_id).unwrap_or_default();
            let ok = ts.len() == 6
                && ts.iter().all(Task::running)
                && spread(per_zone(&ts, &ZONES).values()) <= 1;
            if ok { Ok(()) } else { Err(describe(&ts)) }
        },
    );
    assert_eq!(log.repeated(), BTreeMap::new(), "instances launched twice");
}

#[test]
fn mass_eviction_protection_replaces_one_agents_instances_per_interval() {
    // Two of local-a's three agents go: the zone is partly unreachable (a wholly lost zone
    // is an outage, replaced at once; see `a_zone_outage_moves_its_instances_…`), and a
    // partly unreachable zone is paced.
    let sp = spread_app("sched-eviction-limit", slow_eviction_flags(), 3, 9);
    let killed: Vec<usize> = sp.zone("local-a").into_iter().take(2).collect();
    let Spread {
        mut s,
        app_id,
        log,
        before,
        ..
    } = sp;
    let per_host = count_by(&before, |t| &t.host);
    assert_eq!(
        per_host.len(),
        9,
        "one instance per agent (spread within zones): {per_host:?}"
    );
    let killed_hosts: BTreeSet<String> = killed
        .iter()
        .map(|&i| s.agent(i).hostname.clone())
        .collect();
    let stranded = ids(&before
        .iter()
        .filter(|t| killed_hosts.contains(&t.host))
        .cloned()
        .collect::<Vec<_>>());

    for &i in &killed {
        s.kill_agent(i);
    }
    // One agent's instance is replaced at once; the other's waits for the interval (600 s).
    let what =
        "one of the two lost agents' instances is replaced and the other is held as unreachable";
    let held = wait_showing(&mut s, SETTLE, what, |s| {
        let ts = app_tasks(s, app_id).unwrap_or_default();
        let running: Vec<&Task> = ts.iter().filter(|t| t.running()).collect();
        let unreachable: Vec<&Task> = ts
            .iter()
            .filter(|t| t.state == "TASK_UNREACHABLE")
            .collect();
        let launched = log.ids().len();
        if ts.len() == 9
            && running.len() == 8
            && running.iter().all(|t| !killed_hosts.contains(&t.host))
            && unreachable.len() == 1
            && stranded.contains(&unreachable[0].id)
        {
            Ok(unreachable[0].clone())
        } else {
            Err(format!(
                "{}\n  {launched} launches in all (9 at the start)",
                describe(&ts)
            ))
        }
    });
    // Held means held: over many scheduler passes (it plans at least twice a second), the
    // instance stays and nothing more is launched.
    let launched = log.ids();
    let hold_until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < hold_until {
        let ts = app_tasks(&mut s, app_id).unwrap_or_default();
        if !ts.is_empty() && !ts.iter().any(|t| t.id == held.id) {
            s.fail(&format!(
                "the held instance {} was replaced within the eviction interval: {}",
                held.id,
                describe(&ts)
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(log.ids(), launched, "launches while protection held");
}

#[test]
fn with_every_zone_unreachable_the_leader_says_it_is_cut_off() {
    let Spread { mut s, agents, .. } = spread_app("sched-cut-off-shown", fast_master_flags(), 1, 3);
    let mut events = EventStream::open(&s.masters.addr(1), &["eviction_protection_event"])
        .unwrap_or_else(|e| s.fail(&format!("subscribe to /v2/events: {e}")));
    pause_every_agent(&mut s, &agents);
    let engaged = expect_event(
        &s,
        &mut events,
        SETTLE,
        "eviction protection: cut off",
        |e| match e {
            Event::EvictionProtectionEvent {
                cut_off: true,
                engaged,
                ..
            } => Some(*engaged),
            _ => None,
        },
    );
    assert!(engaged, "a cut-off leader holds replacements back");
    let check = wait_showing(
        &mut s,
        SETTLE,
        "cluster health fails eviction-protection",
        |s| match health_check(s, "eviction-protection") {
            Some(c) if c.status == Status::Fail => Ok(c),
            other => Err(format!("{other:?}")),
        },
    );
    assert!(check.reason.contains("cut off"), "{check:?}");

    for (i, _) in &agents {
        s.resume_agent(*i);
    }
    expect_event(
        &s,
        &mut events,
        SETTLE,
        "eviction protection disengaged",
        |e| matches!(e, Event::EvictionProtectionEvent { engaged: false, .. }).then_some(()),
    );
    for (i, _) in &agents {
        s.wait_agent_active(*i);
    }
}

#[test]
fn an_instance_whose_agent_returns_within_its_unreachable_strategy_runs_on() {
    let mut s = site("sched-unreachable-return", 1, fast_master_flags());
    let agents = add_agents(&mut s, "local", &["local-a", "local-b"], 1);
    start_agents(&mut s, &agents);
    let log = LaunchLog::new(s.dir(), "unreachable");
    let app_id = "/unreachable/patient";
    let mut app = sleeper(app_id, 1, &log);
    // Replace only after 5 minutes away: the agent returns long before.
    app["unreachableStrategy"] = json!({"inactiveAfterSeconds": 300, "expungeAfterSeconds": 600});
    s.create_app(&app);
    let first = wait_app_running(&mut s, app_id, 1).remove(0);
    let process = s
        .task_process(&first.id)
        .unwrap_or_else(|| s.fail(&format!("no process for {}", first.id)));
    let host = s.agent_by_host(&first.host);

    s.pause_agent(host);
    let what = format!("{} shows as unreachable and is not replaced", first.id);
    wait_showing(&mut s, SETTLE, &what, |s| {
        let ts = app_tasks(s, app_id).unwrap_or_default();
        if ts.len() == 1 && ts[0].id == first.id && ts[0].state == "TASK_UNREACHABLE" {
            Ok(())
        } else {
            Err(describe(&ts))
        }
    });
    s.resume_agent(host);
    s.wait_agent_active(host);
    let what = format!("{} runs again on its returned agent", first.id);
    wait_showing(&mut s, SETTLE, &what, |s| {
        let ts = app_tasks(s, app_id).unwrap_or_default();
        if ts.len() == 1 && ts[0].id == first.id && ts[0].running() {
            Ok(())
        } else {
            Err(describe(&ts))
        }
    });
    assert!(process.is_alive(), "the task process was killed");
    assert_eq!(log.ids(), ids(&[first]), "launches: only the original");
}

#[test]
fn with_every_zone_unreachable_the_leader_replaces_nothing() {
    let Spread {
        mut s,
        agents,
        app_id,
        log,
        before,
    } = spread_app("sched-cut-off", fast_master_flags(), 1, 3);
    let original = ids(&before);
    let original_procs = processes_of(&s, &original);
    let mut events = EventStream::open(&s.masters.addr(1), &["eviction_protection_event"])
        .unwrap_or_else(|e| s.fail(&format!("subscribe to /v2/events: {e}")));
    // Every instance id the masters ever show, all along.
    let seen = Sampler::start(
        vec![s.masters.addr(1)],
        "/v2/tasks",
        Duration::from_millis(50),
        |body| Some(ids(&listed_tasks(body)?)),
    );

    pause_every_agent(&mut s, &agents);
    expect_event(
        &s,
        &mut events,
        SETTLE,
        "eviction protection: cut off",
        |e| matches!(e, Event::EvictionProtectionEvent { cut_off: true, .. }).then_some(()),
    );
    let what = "the original instances all show as unreachable";
    wait_showing(&mut s, SETTLE, what, |s| {
        let ts = app_tasks(s, app_id).unwrap_or_default();
        if ids(&ts) == original && ts.iter().all(|t| t.state == "TASK_UNREACHABLE") {
            Ok(())
        } else {
            Err(format!(
                "{}\n  launches: {:?}",
                describe(&ts),
                log.launches()
            ))
        }
    });

    for (i, _) in &agents {
        s.resume_agent(*i);
    }
    expect_event(
        &s,
        &mut events,
        SETTLE,
        "eviction protection disengaged",
        |e| matches!(e, Event::EvictionProtectionEvent { engaged: false, .. }).then_some(()),
    );
    let end = wait_app_running(&mut s, app_id, 3);
    let ever: BTreeSet<String> = seen.finish().into_iter().flatten().collect();
    assert_eq!(
        ids(&end),
        original,
        "the instances after the agents returned"
    );
    assert_eq!(ever, original, "instance ids the masters ever showed");
    for (id, p) in &original_procs {
        assert!(p.is_alive(), "{id} (pid {}) was killed", p.pid);
    }
    assert_eq!(log.ids(), original, "launches: only the originals");
}

#[test]
fn a_rolling_restart_with_minimum_health_capacity_half_never_drops_below_half_healthy() {
    const N: usize = 4;
    let mut s = site("sched-rolling", 1, fast_master_flags());
    let agents = add_agents(&mut s, "local", &["local-a", "local-b"], 1);
    start_agents(&mut s, &agents);
    let log = LaunchLog::new(s.dir(), "rolling");
    let app_id = "/rolling/web";
    s.create_app(&json!({
        "id": app_id, "cmd": log.cmd(HTTP_SERVER), "instances": N,
        "cpus": 0.05, "mem": 8, "portDefinitions": [{"port": 0, "name": "http"}],
        "healthChecks": [http_health_check()],
        "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0},
    }));
    wait_app_running(&mut s, app_id, N);
    let what = format!("all {N} instances are healthy");
    let before = s.wait_for(SETTLE, &what, |s| {
        let a = s.app(app_id)?;
        (a.counts().tasks_healthy as usize == N && deployments_of(s, app_id)?.is_empty())
            .then(|| tasks(&a))
    });

    let leader = s.masters.wait_for_leader(SETTLE);
    // (tasksHealthy, deployments in progress, versions of the tasks) at every sample.
    let sampler = Sampler::start(
        vec![leader.clone()],
        &format!("/v2/apps{app_id}"),
        Duration::from_millis(20),
        |body| {
            let app = client::decode::<AppEnvelope>("GET /v2/apps/{id}", body.clone())
                .ok()?
                .app;
            let versions: BTreeSet<String> = tasks(&app).into_iter().map(|t| t.version).collect();
            Some((
                u64::from(app.counts().tasks_healthy),
                app.deployments.as_ref().map_or(0, Vec::len),
                versions,
            ))
        },
    );
    let r = send(&mut s, "POST", &format!("/v2/apps{app_id}/restart"), None);
    if r.status != 200 {
        s.fail(&format!("POST /v2/apps{app_id}/restart: {r}"));
    }
    let change = r.typed::<Change>();
    let version = change.version;
    let deployment = change.deployment_id.unwrap_or_default();
    assert_eq!(
        r.header("Marathon-Deployment-Id"),
        Some(deployment.as_str()),
        "{r}"
    );

    let what = format!("deployment {deployment} finishes with {N} healthy instances of {version}");
    let after = s.wait_for(CONVERGE, &what, |s| {
        let a = s.app(app_id)?;
        let ts = tasks(&a);
        (deployments_of(s, app_id)?.is_empty()
            && a.counts().tasks_healthy as usize == N
            && ts.len() == N
            && ts.iter().all(|t| t.version == version && t.running()))
        .then_some(ts)
    });
    let samples = sampler.finish();
    let during: Vec<&(u64, usize, BTreeSet<String>)> =
        samples.iter().filter(|(_, d, _)| *d > 0).collect();
    let mixed = samples.iter().filter(|(_, _, v)| v.len() > 1).count();
    assert!(
        !during.is_empty() && mixed > 0,
        "the sampler never saw the deployment in progress ({} samples)",
        samples.len()
    );
    // The trace, collapsed (shown with --no-capture): tasksHealthy/deployments/versions.
    let mut trace: Vec<String> = samples
        .iter()
        .map(|(h, d, v)| format!("{h}/{d}/{}", v.len()))
        .collect();
    trace.dedup();
    eprintln!("tasksHealthy/deployments/versions during the restart: {trace:?}");
    let min_healthy = (N as f64 * 0.5).ceil() as u64;
    let lowest = samples.iter().map(|(h, _, _)| *h).min().unwrap_or(0);
    if lowest < min_healthy {
        let trace: Vec<u64> = samples.iter().map(|(h, _, _)| *h).collect();
        s.fail(&format!(
            "tasksHealthy fell to {lowest} during the restart, below ceil({N} x 0.5) = {min_healthy}; samples: {trace:?}"
        ));
    }
    assert!(
        ids(&after).is_disjoint(&ids(&before)),
        "every instance was replaced"
    );
    assert_eq!(log.repeated(), BTreeMap::new(), "instances launched twice");
    assert_eq!(
        log.ids().len(),
        2 * N,
        "launches: {N} originals and {N} replacements"
    );
}

#[test]
fn killing_the_leader_during_a_deployment_the_new_leader_finishes_it_without_duplicate_launches() {
    const N: usize = 4;
    let mut s = site("sched-leader-kill", 3, fast_master_flags());
    let agents = add_agents(&mut s, "local", &["local-a", "local-b", "local-c"], 1);
    start_agents(&mut s, &agents);
    let log = LaunchLog::new(s.dir(), "failover");
    let app_id = "/failover/gated";
    let gate = HealthGate::new(s.dir());
    let before = create_gated_app(&mut s, &log, &gate, app_id, N);
    let addrs: Vec<String> = s
        .masters
        .ids()
        .iter()
        .map(|&id| s.masters.addr(id))
        .collect();
    // Every instance id any master shows, all along.
    let seen = Sampler::start(addrs, "/v2/tasks", Duration::from_millis(50), |body| {
        Some(ids(&listed_tasks(body)?))
    });

    let leader = s.masters.wait_for_leader(SETTLE);
    let leader_id = s.masters.id_of(&leader);
    let (version, deployment) = restart(&s, &leader, app_id);
    // The leader dies once the deployment has begun: new instances placed, old ones remain.
    let what = format!("the restart to {version} is under way");
    s.wait_until(SETTLE, &what, |s| {
        app_tasks(s, app_id).is_some_and(|ts| {
            ts.iter().any(|t| t.version == version) && ts.iter().any(|t| t.version != version)
        })
    });
    s.masters.kill(leader_id);
    let new_leader = s.masters.wait_for_new_leader(&leader, SETTLE);
    gate.open(&version);

    let what = format!("the new leader {new_leader} finishes deployment {deployment}");
    let after = wait_deployed(&mut s, app_id, N, &version, &what);
    let end = wait_app_running(&mut s, app_id, N);
    assert_eq!(ids(&end), ids(&after));
    let ever: BTreeSet<String> = seen.finish().into_iter().flatten().collect();

    // Exactly N task processes of the app run, one per instance.
    let dir = s
        .dir()
        .canonicalize()
        .expect("test dir")
        .display()
        .to_string();
    let running = procs::processes_where(|env| {
        env.get("MARATHON_APP_ID").is_some_and(|a| a == app_id)
            && env
                .get("MESOS_SANDBOX")
                .is_some_and(|p| p.starts_with(&dir))
    });
    let running_ids: BTreeSet<String> = running
        .iter()
        .filter_map(|&pid| procs::environ(pid).get("MESOS_TASK_ID").cloned())
        .collect();
    assert_eq!(running.len(), N, "task processes of {app_id}: {running:?}");
    assert_eq!(
        running_ids,
        ids(&end),
        "the running processes are the app's instances"
    );

    // No slot was launched twice: each instance started once, N old and N new in all.
    let launches = log.launches();
    assert_eq!(
        log.repeated(),
        BTreeMap::new(),
        "instances launched twice: {launches:?}"
    );
    let old: BTreeSet<&str> = launches
        .iter()
        .filter(|(_, v)| *v != version)
        .map(|(id, _)| id.as_str())
        .collect();
    let new: BTreeSet<&str> = launches
        .iter()
        .filter(|(_, v)| *v == version)
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(
        old,
        before.iter().map(|t| t.id.as_str()).collect(),
        "launches of the old version: the original instances only"
    );
    assert_eq!(
        new.len(),
        N,
        "launches of the new version: one per slot; ids {new:?}; the masters showed {ever:?}"
    );
    let placed: BTreeSet<&String> = ever
        .iter()
        .filter(|id| !old.contains(id.as_str()))
        .collect();
    assert_eq!(
        placed.len(),
        N,
        "new instances the masters ever placed (launched or not): {placed:?}"
    );
}

#[test]
fn a_rolling_restart_interrupted_by_a_leader_change_keeps_half_of_its_instances_healthy() {
    const N: usize = 4;
    let mut s = site("sched-leader-rolling", 3, fast_master_flags());
    let agents = add_agents(&mut s, "local", &["local-a", "local-b", "local-c"], 1);
    start_agents(&mut s, &agents);
    let log = LaunchLog::new(s.dir(), "rolling-failover");
    let app_id = "/failover/rolling";
    let gate = HealthGate::new(s.dir());
    create_gated_app(&mut s, &log, &gate, app_id, N);
    let leader = s.masters.wait_for_leader(SETTLE);
    let (version, deployment) = restart(&s, &leader, app_id);

    // Half the instances are replaced; the new ones cannot turn healthy (their gate is
    // closed), so the other half must keep running, whoever leads.
    let what = format!("{N}/2 instances of {version} and {N}/2 old ones remain");
    let old = wait_showing(&mut s, SETTLE, &what, |s| {
        let ts = app_tasks(s, app_id).unwrap_or_default();
        let old: Vec<Task> = ts
            .iter()
            .filter(|t| t.version != version)
            .cloned()
            .collect();
        if ts.len() == N && old.len() == N / 2 && old.iter().all(Task::running) {
            Ok(old)
        } else {
            Err(describe(&ts))
        }
    });
    let old_procs = processes_of(&s, &ids(&old));
    s.masters.kill(s.masters.id_of(&leader));
    let new_leader = s.masters.wait_for_new_leader(&leader, SETTLE);
    for (i, _) in &agents {
        s.wait_agent_active(*i);
    }
    let what = format!(
        "the new leader {new_leader} counts the {} old instances healthy (they are)",
        N / 2
    );
    wait_showing(&mut s, SETTLE, &what, |s| {
        let a = s.app(app_id);
        let healthy = a.as_ref().map(|a| a.counts().tasks_healthy as usize);
        let alive: Vec<bool> = old_procs.values().map(|p| p.is_alive()).collect();
        if healthy == Some(N / 2) && alive.iter().all(|a| *a) {
            Ok(())
        } else {
            Err(format!(
                "tasksHealthy {healthy:?}; old processes alive {alive:?}; {}",
                describe(&a.as_ref().map(tasks).unwrap_or_default())
            ))
        }
    });
    for (id, p) in &old_procs {
        if !p.is_alive() {
            s.fail(&format!(
                "old instance {id} was killed while the new ones were not healthy"
            ));
        }
    }
    gate.open(&version);
    let what = format!("the new leader finishes deployment {deployment}");
    wait_deployed(&mut s, app_id, N, &version, &what);
}

#[test]
fn after_a_leader_change_the_new_leader_knows_every_instances_health() {
    const N: usize = 2;
    let mut s = site("sched-leader-health", 3, fast_master_flags());
    let agents = add_agents(&mut s, "local", &["local-a", "local-b"], 1);
    start_agents(&mut s, &agents);
    let log = LaunchLog::new(s.dir(), "health");
    let app_id = "/failover/healthy";
    s.create_app(&json!({
        "id": app_id, "cmd": log.cmd(HTTP_SERVER), "instances": N,
        "cpus": 0.05, "mem": 8, "portDefinitions": [{"port": 0, "name": "http"}],
        "healthChecks": [http_health_check()],
    }));
    wait_app_running(&mut s, app_id, N);
    let what = format!("all {N} instances are healthy");
    let before = wait_showing(&mut s, SETTLE, &what, |s| {
        let ts = app_tasks(s, app_id).unwrap_or_default();
        if ts.len() == N && ts.iter().all(|t| t.alive == Some(true)) {
            Ok(ts)
        } else {
            Err(describe(&ts))
        }
    });

    // Health is the leader's memory, not replicated: the new leader must learn it again
    // from the agents (the instances stay healthy throughout, so nothing changes on them).
    let leader = s.masters.wait_for_leader(SETTLE);
    s.masters.kill(s.masters.id_of(&leader));
    let new_leader = s.masters.wait_for_new_leader(&leader, SETTLE);
    let what = format!("the new leader {new_leader} reports the {N} instances healthy");
    wait_showing(&mut s, SETTLE, &what, |s| {
        let a = s.app(app_id);
        let ts = a.as_ref().map(tasks).unwrap_or_default();
        let healthy = a.map(|a| a.counts().tasks_healthy as usize);
        if healthy == Some(N)
            && ids(&ts) == ids(&before)
            && ts.iter().all(|t| t.alive == Some(true))
        {
            Ok(())
        } else {
            Err(format!("tasksHealthy {healthy:?} {}", describe(&ts)))
        }
    });
    assert_eq!(log.ids(), ids(&before), "launches: only the originals");
}

#[test]
fn the_event_stream_delivers_marathons_events() {
    let mut s = site("sched-events", 1, fast_master_flags());
    let agents = add_agents(&mut s, "local", &["local-a", "local-b"], 1);
    start_agents(&mut s, &agents);
    let addr = s.masters.addr(1);
    let mut all = EventStream::open(&addr, &[])
        .unwrap_or_else(|e| s.fail(&format!("subscribe to /v2/events: {e}")));
    let filter = ["deployment_success", "app_terminated_event"];
    let mut filtered = EventStream::open(&addr, &filter)
        .unwrap_or_else(|e| s.fail(&format!("subscribe to /v2/events?event_type=…: {e}")));
    let is = |t: &'static str| move |e: &Event| (e.event_type() == t).then_some(());
    expect_event(
        &s,
        &mut all,
        SETTLE,
        "event_stream_attached",
        is("event_stream_attached"),
    );

    // A healthy app: posted, deployed, running, healthy.
    let web = "/events/web";
    s.create_app(&json!({
        "id": web, "cmd": HTTP_SERVER, "instances": 1, "cpus": 0.05, "mem": 8,
        "portDefinitions": [{"port": 0}], "healthChecks": [http_health_check()],
    }));
    let posted = expect_event(&s, &mut all, SETTLE, "api_post_event", |e| match e {
        Event::ApiPostEvent { app_definition, .. } => Some(app_definition["id"].clone()),
        _ => None,
    });
    assert_eq!(posted, web, "the posted definition's id");
    let plan = expect_event(&s, &mut all, SETTLE, "deployment_info", |e| match e {
        Event::DeploymentInfo { plan, .. } => Some(plan.clone()),
        _ => None,
    });
    assert!(plan.affected_apps().iter().any(|a| a == web), "{plan:?}");
    let started = plan.id;
    let task_id = expect_event(
        &s,
        &mut all,
        SETTLE,
        "status_update_event TASK_RUNNING",
        |e| match e {
            Event::StatusUpdateEvent {
                app_id,
                task_status,
                task_id,
                ..
            } if app_id == web && task_status == "TASK_RUNNING" => Some(task_id.clone()),
            _ => None,
        },
    );
    expect_event(&s, &mut all, SETTLE, "instance_changed_event", |e| {
        matches!(e, Event::InstanceChangedEvent { instance_id, .. } if *instance_id == task_id)
            .then_some(())
    });
    expect_event(
        &s,
        &mut all,
        SETTLE,
        "health_status_changed_event alive",
        |e| {
            matches!(e, Event::HealthStatusChangedEvent { instance_id, alive: true, .. }
                if *instance_id == task_id)
            .then_some(())
        },
    );
    expect_event(&s, &mut all, SETTLE, "deployment_step_success", |e| {
        matches!(e, Event::DeploymentStepSuccess { plan, .. } if plan.id == started).then_some(())
    });
    expect_event(&s, &mut all, SETTLE, "deployment_success", |e| {
        matches!(e, Event::DeploymentSuccess { id, .. } if *id == started).then_some(())
    });

    // An app whose health check fails: reported, then killed and replaced.
    let sick = "/events/sick";
    s.create_app(&json!({
        "id": sick, "cmd": "exec sleep 100000", "instances": 1, "cpus": 0.05, "mem": 8,
        "portDefinitions": [{"port": 0}],
        "healthChecks": [{
            "protocol": "HTTP", "path": "/", "portIndex": 0, "gracePeriodSeconds": 0,
            "intervalSeconds": 1, "delaySeconds": 0, "timeoutSeconds": 5, "maxConsecutiveFailures": 1,
        }],
    }));
    let sick_task = expect_event(
        &s,
        &mut all,
        SETTLE,
        "failed_health_check_event",
        |e| match e {
            Event::FailedHealthCheckEvent {
                app_id,
                instance_id,
                ..
            } if app_id == sick => Some(instance_id.clone()),
            _ => None,
        },
    );
    expect_event(
        &s,
        &mut all,
        SETTLE,
        "health_status_changed_event not alive",
        |e| {
            matches!(e, Event::HealthStatusChangedEvent { app_id, alive: false, .. }
                if app_id == sick)
            .then_some(())
        },
    );
    expect_event(&s, &mut all, SETTLE, "unhealthy_instance_kill_event", |e| {
        matches!(e, Event::UnhealthyInstanceKillEvent { instance_id, .. }
            if *instance_id == sick_task)
        .then_some(())
    });
    s.wait_until(SETTLE, "the unhealthy instance is replaced", |s| {
        app_tasks(s, sick).is_some_and(|ts| !ts.is_empty() && ts.iter().all(|t| t.id != sick_task))
    });

    // A deployment that cannot finish (no agent has 1000 cpus), rolled back.
    let r = send(
        &mut s,
        "PUT",
        &format!("/v2/apps{web}"),
        Some(&json!({"cpus": 1000})),
    );
    if r.status != 200 {
        s.fail(&format!("PUT /v2/apps{web} with cpus 1000: {r}"));
    }
    let stuck = r.typed::<Change>().deployment_id.unwrap_or_default();
    let r = send(&mut s, "DELETE", &format!("/v2/deployments/{stuck}"), None);
    if r.status != 200 {
        s.fail(&format!("DELETE /v2/deployments/{stuck}: {r}"));
    }
    let rollback = r.typed::<Change>().deployment_id.unwrap_or_default();
    let (plan, reason) = expect_event(&s, &mut all, SETTLE, "deployment_failed", |e| match e {
        Event::DeploymentFailed { id, plan, reason } if *id == stuck => {
            Some((plan.clone(), reason.clone()))
        }
        _ => None,
    });
    assert!(plan.affected_apps().iter().any(|a| a == web), "{plan:?}");
    assert_eq!(reason, "rolled back");
    expect_event(
        &s,
        &mut all,
        SETTLE,
        "deployment_success of the rollback",
        |e| matches!(e, Event::DeploymentSuccess { id, .. } if *id == rollback).then_some(()),
    );
    let app = s
        .app(web)
        .unwrap_or_else(|| s.fail("the rolled back app is gone"));
    let definition = app
        .parse_definition()
        .unwrap_or_else(|e| s.fail(&format!("{web} is not a valid definition: {e}")));
    assert_eq!(
        definition.cpus, 0.05,
        "the rollback restores the definition: {app:?}"
    );
    wait_app_running(&mut s, web, 1);

    // Deleting an app.
    let r = send(&mut s, "DELETE", &format!("/v2/apps{web}"), None);
    if r.status != 200 {
        s.fail(&format!("DELETE /v2/apps{web}: {r}"));
    }
    let terminated = |e: &Event| {
        matches!(e, Event::AppTerminatedEvent { app_id } if app_id == web).then_some(())
    };
    expect_event(&s, &mut all, SETTLE, "app_terminated_event", terminated);

    // The filtered stream got those two types, and only them.
    expect_event(
        &s,
        &mut filtered,
        SETTLE,
        "app_terminated_event (filtered)",
        terminated,
    );
    let types: BTreeSet<&str> = event_types(filtered.seen()).into_iter().collect();
    let wanted: BTreeSet<&str> = filter.into_iter().collect();
    assert_eq!(
        types, wanted,
        "event types on /v2/events?event_type=deployment_success&event_type=app_terminated_event"
    );

    // A subscriber that goes away is announced once the master notices (when it next writes
    // to it): more events follow until then.
    drop(filtered);
    let detached = is("event_stream_detached");
    let mut n = 0;
    while !all.seen().iter().any(|e| detached(e).is_some())
        && all.wait_for(Duration::from_secs(1), detached).is_none()
    {
        n += 1;
        if n > 60 {
            s.fail(&format!(
                "no event_stream_detached after a subscriber left; event types seen: {:?}",
                event_types(all.seen())
            ));
        }
        let r = send(
            &mut s,
            "PUT",
            "/v2/apps/events/ticker",
            Some(
                &json!({"cmd": "exec sleep 100000", "instances": 0, "labels": {"n": n.to_string()}}),
            ),
        );
        if !r.is_success() {
            s.fail(&format!("PUT /v2/apps/events/ticker: {r}"));
        }
    }
    drain(&mut all, Duration::from_millis(200));
    let seen: BTreeSet<&str> = event_types(all.seen()).into_iter().collect();
    for t in [
        "api_post_event",
        "status_update_event",
        "instance_changed_event",
        "health_status_changed_event",
        "failed_health_check_event",
        "unhealthy_instance_kill_event",
        "deployment_info",
        "deployment_success",
        "deployment_failed",
        "deployment_step_success",
        "app_terminated_event",
        "event_stream_attached",
        "event_stream_detached",
    ] {
        assert!(seen.contains(t), "{t} never came; seen {seen:?}");
    }
}
