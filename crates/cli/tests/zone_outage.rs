//! A zone outage, across processes (issue 10, scope 2 and "Must be true when done"): real
//! `drover master` and `drover agent` binaries on loopback, nine agents in three zones of one
//! region, two apps (one spread by `["@zone","GROUP_BY"]`, one `["hostname","UNIQUE"]`).
//!
//! - A zone whose agents all stop answering (SIGSTOP: no heartbeats, sockets kept) while the
//!   other zones are healthy is a zone outage: every instance it held runs in the other zones
//!   within one unreachable timeout plus a few passes, balanced as `GROUP_BY` demands, and
//!   `/v1/cluster/health` and the event stream name the zone. When the zone answers again
//!   its agents kill the replaced originals and the apps keep their wanted counts throughout.
//! - With every zone's agents stopped, the leader assumes that it is the one cut off and
//!   replaces nothing; when the agents continue, the apps are as before, same instance ids.
//!
//! The masters run with an eviction interval of ten minutes (the pace of a partly unreachable
//! zone), so a zone outage that were paced like a partial one would hold two of the zone's
//! three agents for the whole test: the first test tells the two policies apart without
//! depending on how fast the machine is. Waits poll to deadlines and fail with what they
//! last saw and every process's log tail.

mod agent_support;
mod common;
mod scheduler_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use agent_support::events::EventStream;
use agent_support::{SETTLE, Site};
use client::{AppEnvelope, Check, ClusterHealth, Event, Status};
use scheduler_support::site::{
    CONVERGE, ZONES, add_agents, app_tasks, pause_every_agent, processes_of, site, sleeper,
    slow_eviction_flags, start_agents, wait_app_running,
};
use scheduler_support::{
    LaunchLog, Sampler, Task, count_by, describe, drain, event_types, ids, listed_tasks, per_zone,
    set_flag, spread, tasks, wait_showing,
};
use serde_json::{Value, json};

/// `--agent-unreachable-ms`: an agent silent this long is unreachable.
const UNREACHABLE_MS: u64 = 2500;

/// [`UNREACHABLE_MS`] as a duration.
const UNREACHABLE: Duration = Duration::from_millis(UNREACHABLE_MS);

/// From the cut to every instance of the lost zone running elsewhere: one unreachable
/// timeout plus a few scheduler passes, with room for a loaded 2-core machine. A paced
/// replacement (one agent per ten-minute interval) cannot meet it however fast the machine.
const ZONE_OUTAGE_DEADLINE: Duration = Duration::from_millis(UNREACHABLE_MS + 10_000);

/// How long "nothing is replaced" is watched once every instance shows as unreachable: many
/// scheduler passes (at least two a second) and heartbeat intervals (250 ms).
const HOLD: Duration = Duration::from_secs(5);

/// Agents per zone.
const PER_ZONE: usize = 3;

/// The app spread over zones, and its instances (one per agent).
const SPREAD: &str = "/zone/spread";
const SPREAD_N: usize = 9;

/// The app with one instance per host: after a zone is lost, exactly as many agents remain.
const UNIQUE: &str = "/zone/unique";
const UNIQUE_N: usize = 6;

/// The zone that is cut off in the first test.
const LOST: &str = "local-a";

/// Nine agents in three zones, both apps running and balanced.
struct Zoned {
    s: Site,
    agents: Vec<(usize, String)>,
    log: LaunchLog,
    /// The tasks of each app once it first ran.
    before: BTreeMap<&'static str, Vec<Task>>,
}

impl Zoned {
    fn start(name: &str) -> Self {
        let mut flags = slow_eviction_flags();
        set_flag(
            &mut flags,
            "--agent-unreachable-ms",
            &UNREACHABLE_MS.to_string(),
        );
        let mut s = site(name, 1, flags);
        let agents = add_agents(&mut s, "local", &ZONES, PER_ZONE);
        start_agents(&mut s, &agents);
        let log = LaunchLog::new(s.dir(), name);
        let mut spread_app = sleeper(SPREAD, SPREAD_N as u32, &log);
        spread_app["constraints"] = json!([["@zone", "GROUP_BY"]]);
        s.create_app(&spread_app);
        let mut unique_app = sleeper(UNIQUE, UNIQUE_N as u32, &log);
        unique_app["constraints"] = json!([["hostname", "UNIQUE"]]);
        s.create_app(&unique_app);

        let spread_tasks = wait_app_running(&mut s, SPREAD, SPREAD_N);
        let zones = per_zone(&spread_tasks, &ZONES);
        if spread(zones.values()) > 0 {
            s.fail(&format!(
                "{SPREAD}: {SPREAD_N} instances over 3 zones: {zones:?}"
            ));
        }
        let unique_tasks = wait_app_running(&mut s, UNIQUE, UNIQUE_N);
        if count_by(&unique_tasks, |t| &t.host).len() != UNIQUE_N {
            s.fail(&format!(
                "{UNIQUE} repeats a host: {}",
                describe(&unique_tasks)
            ));
        }
        if !unique_tasks.iter().any(|t| t.zone == LOST) {
            s.fail(&format!(
                "{UNIQUE} has nothing in {LOST} to move: {}",
                describe(&unique_tasks)
            ));
        }
        let before = BTreeMap::from([(SPREAD, spread_tasks), (UNIQUE, unique_tasks)]);
        Zoned {
            s,
            agents,
            log,
            before,
        }
    }

    /// Agents of `zone`.
    fn zone(&self, zone: &str) -> Vec<usize> {
        self.agents
            .iter()
            .filter(|(_, z)| z == zone)
            .map(|(i, _)| *i)
            .collect()
    }

    /// Instance ids of both apps at the start.
    fn original_ids(&self) -> BTreeSet<String> {
        self.before.values().flat_map(|ts| ids(ts)).collect()
    }

    /// Instance ids that ran in `zone` at the start.
    fn ids_in(&self, zone: &str) -> BTreeSet<String> {
        self.before
            .values()
            .flatten()
            .filter(|t| t.zone == zone)
            .map(|t| t.id.clone())
            .collect()
    }
}

/// Both apps' tasks, or what is wrong with them, checked by `ok` (one call per app, with the
/// app id, its wanted count and its tasks).
fn both_apps(
    s: &mut Site,
    ok: impl Fn(&str, usize, &[Task]) -> Result<(), String>,
) -> Result<BTreeMap<&'static str, Vec<Task>>, String> {
    let mut out = BTreeMap::new();
    let mut wrong = Vec::new();
    for (app, n) in [(SPREAD, SPREAD_N), (UNIQUE, UNIQUE_N)] {
        let ts = app_tasks(s, app).unwrap_or_default();
        if let Err(e) = ok(app, n, &ts) {
            wrong.push(format!("\n{app}: {e}: {}", describe(&ts)));
        }
        out.insert(app, ts);
    }
    if wrong.is_empty() {
        Ok(out)
    } else {
        Err(wrong.concat())
    }
}

/// `n` tasks, all running, balanced as the app's constraint demands over the zones that
/// hold them (`GROUP_BY`: within one; `UNIQUE`: no host twice).
fn whole_and_balanced(app: &str, n: usize, ts: &[Task]) -> Result<(), String> {
    if ts.len() != n || !ts.iter().all(Task::running) {
        return Err(format!("wants {n} running"));
    }
    let by_zone = count_by(ts, |t| &t.zone);
    if app == SPREAD && spread(by_zone.values()) > 1 {
        return Err(format!(
            "GROUP_BY zone is off by more than one: {by_zone:?}"
        ));
    }
    if app == UNIQUE && count_by(ts, |t| &t.host).len() != n {
        return Err("a host holds two instances".into());
    }
    Ok(())
}

/// The non-passing checks of `/v1/cluster/health` that name `zone` and say something about
/// it: not the `GROUP_BY` counts (which name every value of an unbalanced app) nor the list
/// of unreachable agents (whose hostnames here contain their zone's name).
fn health_naming(s: &mut Site, zone: &str) -> Option<Vec<Check>> {
    const NOT_ABOUT_ZONES: [&str; 2] = ["group-by-balance", "agents-reachable"];
    let r = s.get("/v1/cluster/health").filter(|r| r.status == 200)?;
    Some(
        r.typed::<ClusterHealth>()
            .checks
            .into_iter()
            .filter(|c| c.status != Status::Pass)
            .filter(|c| !NOT_ABOUT_ZONES.contains(&c.name.as_str()))
            .filter(|c| c.reason.contains(zone))
            .collect(),
    )
}

/// `/v1/cluster/health`'s checks, for failure messages.
fn health_text(s: &mut Site) -> String {
    s.get("/v1/cluster/health")
        .map(|r| match r.decode::<ClusterHealth>() {
            Ok(health) => format!("{:?}", health.checks),
            Err(_) => r.to_string(),
        })
        .unwrap_or_else(|| "no answer".into())
}

/// An event about the zones' states (`eviction_protection_event`) that names `zone` among
/// those not healthy.
fn names_zone(e: &Event, zone: &str) -> bool {
    matches!(e, Event::EvictionProtectionEvent { zones, .. } if zones.iter().any(|z| z == zone))
}

/// Running instances of one app in a `/v2/apps{id}` answer (0 when it is not one).
fn running_in(body: &Value) -> usize {
    client::decode::<AppEnvelope>("GET /v2/apps{id}", body.clone())
        .map_or(0, |a| tasks(&a.app).iter().filter(|t| t.running()).count())
}

#[test]
fn a_zone_cut_off_has_all_its_instances_replaced_in_the_other_zones_at_once_and_its_return_costs_none()
 {
    let z = Zoned::start("zone-outage");
    let lost_agents = z.zone(LOST);
    let stranded = z.ids_in(LOST);
    let stranded_procs = processes_of(&z.s, &stranded);
    let Zoned {
        mut s, log, before, ..
    } = z;
    let first_launches = log.ids();
    // drover's own event, sent only to a reader that asks for it by name.
    let mut events = EventStream::open(&s.masters.addr(1), &["eviction_protection_event"])
        .unwrap_or_else(|e| s.fail(&format!("subscribe to /v2/events: {e}")));

    // The zone is cut off: none of its agents heartbeats any more. The other two zones are
    // healthy, so this is a zone outage, not a partition of the leader.
    for &i in &lost_agents {
        s.pause_agent(i);
    }
    let cut_at = Instant::now();
    let what = format!(
        "every instance runs outside {LOST}, balanced, within one unreachable timeout ({UNREACHABLE:?}) plus a few passes"
    );
    let moved = wait_showing(&mut s, ZONE_OUTAGE_DEADLINE, &what, |s| {
        both_apps(s, |app, n, ts| {
            whole_and_balanced(app, n, ts)?;
            match ts.iter().find(|t| t.zone == LOST) {
                Some(t) => Err(format!("{} is still in {LOST}", t.id)),
                None => Ok(()),
            }
        })
    });
    let took = cut_at.elapsed();
    let spread_zones = per_zone(&moved[SPREAD], &ZONES);
    assert_eq!(spread_zones[LOST], 0, "{spread_zones:?}");
    assert!(
        spread(spread_zones.values().filter(|&&n| n > 0)) <= 1,
        "{SPREAD} over the remaining zones: {spread_zones:?}"
    );
    // The instances outside the lost zone ran on; one new instance per stranded one.
    for (app, ts) in &before {
        let kept: BTreeSet<String> = ts
            .iter()
            .filter(|t| t.zone != LOST)
            .map(|t| t.id.clone())
            .collect();
        let now = ids(&moved[app]);
        assert!(
            kept.is_subset(&now),
            "{app}: instances outside {LOST} were replaced too: before {kept:?}, now {now:?}"
        );
    }
    let launched = log.ids();
    assert_eq!(
        launched.len(),
        first_launches.len() + stranded.len(),
        "launches: the originals, then one per instance of {LOST} (took {took:?})"
    );
    assert_eq!(log.repeated(), BTreeMap::new(), "instances launched twice");

    // The zone's state shows in cluster health and in the events.
    let what = format!("/v1/cluster/health names {LOST} in a check that does not pass");
    wait_showing(&mut s, SETTLE, &what, |s| match health_naming(s, LOST) {
        Some(c) if !c.is_empty() => Ok(c),
        _ => Err(health_text(s)),
    });
    let what = format!("an event on /v2/events names {LOST}");
    let first = events.seen().iter().any(|e| names_zone(e, LOST))
        || events
            .wait_for(SETTLE, |e| names_zone(e, LOST).then_some(()))
            .is_some();
    if !first {
        s.fail(&format!(
            "no {what}; event types seen: {:?}",
            event_types(events.seen())
        ));
    }
    // The zone's latest state, as announced before it returns (read what is in flight).
    drain(&mut events, Duration::from_secs(1));
    let Some(outage_event) = events
        .seen()
        .iter()
        .rev()
        .find(|e| names_zone(e, LOST))
        .cloned()
    else {
        s.fail(&format!("no event naming {LOST} among those seen"));
    };

    // The zone answers again. Its agents kill the originals that were replaced meanwhile; the
    // apps keep their wanted number of running instances all along (a rebalance onto the
    // returned zone launches before it kills).
    let samplers: Vec<(&str, usize, Sampler<usize>)> = [(SPREAD, SPREAD_N), (UNIQUE, UNIQUE_N)]
        .into_iter()
        .map(|(app, n)| {
            let sampler = Sampler::start(
                vec![s.masters.addr(1)],
                &format!("/v2/apps{app}"),
                Duration::from_millis(50),
                |body| Some(running_in(body)),
            );
            (app, n, sampler)
        })
        .collect();
    for &i in &lost_agents {
        s.resume_agent(i);
    }
    let what = format!("{LOST}'s agents kill the replaced originals {stranded:?}");
    s.wait_until(SETTLE, &what, |_| {
        stranded_procs.values().all(|p| !p.is_alive())
    });
    let what = format!("both apps are whole and balanced, {SPREAD} again in {LOST}");
    let end = wait_showing(&mut s, CONVERGE, &what, |s| {
        both_apps(s, |app, n, ts| {
            whole_and_balanced(app, n, ts)?;
            if app == SPREAD && !ts.iter().any(|t| t.zone == LOST) {
                return Err(format!("nothing in {LOST} yet"));
            }
            Ok(())
        })
    });
    for (app, n, sampler) in samplers {
        let samples = sampler.finish();
        let least = samples.iter().copied().min();
        assert!(
            !samples.is_empty() && least >= Some(n),
            "{app}: running instances dropped below {n} after {LOST} returned (least {least:?} in {} samples)",
            samples.len()
        );
    }
    let end_ids: BTreeSet<String> = end.values().flat_map(|ts| ids(ts)).collect();
    assert!(
        end_ids.is_disjoint(&stranded),
        "a replaced original came back: {:?}",
        end_ids.intersection(&stranded).collect::<Vec<_>>()
    );
    assert_eq!(log.repeated(), BTreeMap::new(), "instances launched twice");

    // The zone's return shows too: health no longer flags it, and a new event of the kind
    // that announced the outage says so.
    let what = format!("/v1/cluster/health no longer flags {LOST}");
    wait_showing(&mut s, SETTLE, &what, |s| match health_naming(s, LOST) {
        Some(c) if c.is_empty() => Ok(()),
        _ => Err(health_text(s)),
    });
    let kind = outage_event.event_type();
    let returned = events.wait_for(SETTLE, |e| {
        (e.event_type() == kind && *e != outage_event).then_some(())
    });
    if returned.is_none() {
        s.fail(&format!(
            "no {kind} after {LOST} returned; the outage was announced by {outage_event:?}; event types seen: {:?}",
            event_types(events.seen())
        ));
    }
}

#[test]
fn with_every_zone_cut_off_nothing_is_replaced_and_the_same_instances_run_on() {
    let z = Zoned::start("zone-all-cut");
    let original = z.original_ids();
    let original_procs = processes_of(&z.s, &original);
    let Zoned {
        mut s, agents, log, ..
    } = z;
    let first_launches = log.ids();
    // Every instance id the masters show, all along.
    let seen = Sampler::start(
        vec![s.masters.addr(1)],
        "/v2/tasks",
        Duration::from_millis(50),
        |body| Some(ids(&listed_tasks(body)?)),
    );

    pause_every_agent(&mut s, &agents);
    let what = "every original instance shows as unreachable, and no other";
    wait_showing(&mut s, SETTLE, what, |s| {
        both_apps(s, |_, n, ts| {
            if ts.len() == n && ts.iter().all(|t| t.state == "TASK_UNREACHABLE") {
                Ok(())
            } else {
                Err(format!("wants {n} unreachable"))
            }
        })
        .and_then(|now| {
            let now: BTreeSet<String> = now.values().flat_map(|ts| ids(ts)).collect();
            if now == original {
                Ok(())
            } else {
                Err(format!("ids {now:?}, originally {original:?}"))
            }
        })
    });
    let what = "/v1/cluster/health fails a check (the leader is cut off)";
    wait_showing(&mut s, SETTLE, what, |s| {
        let r = s.get("/v1/cluster/health").filter(|r| r.status == 200);
        match r {
            Some(r) if r.typed::<ClusterHealth>().status == Status::Fail => Ok(()),
            _ => Err(health_text(s)),
        }
    });
    // Held means held: over many passes, nothing is launched and no instance is dropped.
    let hold_until = Instant::now() + HOLD;
    while Instant::now() < hold_until {
        let now: BTreeSet<String> = [SPREAD, UNIQUE]
            .iter()
            .flat_map(|app| ids(&app_tasks(&mut s, app).unwrap_or_default()))
            .collect();
        if !now.is_empty() && now != original {
            s.fail(&format!(
                "instances changed while every zone was cut off: {now:?}, originally {original:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        log.ids(),
        first_launches,
        "launches while every zone was cut off"
    );

    for (i, _) in &agents {
        s.resume_agent(*i);
    }
    let what = "both apps run their original instances again";
    let end = wait_showing(&mut s, SETTLE, what, |s| {
        both_apps(s, whole_and_balanced).and_then(|apps| {
            let now: BTreeSet<String> = apps.values().flat_map(|ts| ids(ts)).collect();
            if now == original {
                Ok(apps)
            } else {
                Err(format!("ids {now:?}, originally {original:?}"))
            }
        })
    });
    let ever: BTreeSet<String> = seen.finish().into_iter().flatten().collect();
    assert_eq!(ever, original, "instance ids the masters ever showed");
    for (app, ts) in &end {
        let zones = per_zone(ts, &ZONES);
        assert!(
            spread(zones.values()) <= 1,
            "{app} after the return: {zones:?}"
        );
    }
    for (id, p) in &original_procs {
        assert!(p.is_alive(), "{id} (pid {}) was killed", p.pid);
    }
    assert_eq!(log.ids(), original, "launches: only the originals");
}
