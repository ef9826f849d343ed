//! Failover of proxied traffic across processes (issue 15, "Must be true when done"): steady
//! load through `drover lb` (an HTTP virtual host and a TCP service port, fresh connection per
//! request) while an instance is SIGKILLed, and while every master is killed and restarted.
//! A connect error to a dead instance is retried on another at once, so no request fails once
//! the masters know of the kill, and none for want of a retry before (only a request the
//! instance had already taken when it died can fail: its connection dies with it). The
//! balancer keeps its last view while no master answers: nothing fails then either.
//!
//! Removal: an instance killed through the API, one SIGKILLed and two that turn unhealthy
//! each leave the balancer's backends (its `/routes` lists the removal); from then on no
//! request reaches them (the killed-on-purpose and unhealthy ones still answer, so one would
//! show) and the balancer's connection count to them stays where it was. The event →
//! removal time of each is printed (docs/benchmarks.md), not asserted.

mod agent_support;
mod common;
mod lb_support;
mod scheduler_support;

use std::collections::BTreeSet;
use std::time::Instant;

use agent_support::procs::kill_group;
use agent_support::{SETTLE, Site};
use lb_support::{Lb, Load, SERVE_ID_TWICE, failures};
use scheduler_support::fast_master_flags;
use scheduler_support::site::{add_agents, app_tasks, send, site, start_agents, wait_app_running};
use serde_json::json;

use crate::common::free_port;

/// Requests that must succeed in a row before, between and after the faults: enough to
/// cover every instance several times.
const STEADY: usize = 30;

/// A site of `masters` masters and two agents, an app of three instances behind a vhost and
/// a TCP service port, one balancer serving both, and the load's targets.
fn steady_site(name: &str, masters: u32) -> (Site, Lb, Vec<(String, String)>) {
    let mut s = site(name, masters, fast_master_flags());
    let agents = add_agents(&mut s, "local", &["local-a", "local-b"], 1);
    start_agents(&mut s, &agents);
    let tcp_port = free_port();
    s.create_app(&json!({
        "id": "/steady/web", "cmd": SERVE_ID_TWICE, "instances": 3, "cpus": 0.05, "mem": 8,
        "portDefinitions": [{"port": 0}, {"port": 0}],
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "steady.example.test",
                   "HAPROXY_1_PORT": tcp_port.to_string()},
    }));
    wait_app_running(&mut s, "/steady/web", 3);
    let lb = Lb::start(s.dir(), "edge", &s.master_list(), "127.0.2.1", &[]);
    s.notes.push(lb.note("edge"));
    let targets = vec![
        (lb.http(), "steady.example.test".to_string()),
        (lb.at(tcp_port), "tcp".to_string()),
    ];
    for (addr, host) in &targets {
        s.wait_until(SETTLE, &format!("{addr} serves {host}"), |_| {
            matches!(lb_support::get(addr, host, "/"), Ok((200, _)))
        });
    }
    (s, lb, targets)
}

/// Waits until `load` has `n` successes after `t`.
fn wait_ok(s: &mut Site, load: &Load, t: Instant, n: usize, what: &str) {
    s.wait_until(SETTLE, &format!("{n} requests succeed {what}"), |_| {
        load.ok_since(t) >= n
    });
}

#[test]
fn sigkill_of_an_instance_under_steady_load_fails_no_request_once_the_masters_know() {
    let (mut s, _lb, targets) = steady_site("lb-sigkill", 1);
    let before: BTreeSet<String> = app_tasks(&mut s, "/steady/web")
        .unwrap_or_default()
        .iter()
        .map(|t| t.id.clone())
        .collect();
    let load = Load::start(targets);
    let t0 = Instant::now();
    wait_ok(&mut s, &load, t0, STEADY, "before the kill");
    let victim = before
        .iter()
        .next()
        .cloned()
        .unwrap_or_else(|| s.fail("no instance"));
    let process = s
        .task_process(&victim)
        .unwrap_or_else(|| s.fail(&format!("{victim} has no process")));
    let killed = Instant::now();
    // SIGKILL to the instance's process group: both of its servers die at once.
    kill_group(process);
    s.wait_until(SETTLE, "the masters see the killed instance gone", |s| {
        let ts = app_tasks(s, "/steady/web").unwrap_or_default();
        !ts.iter().any(|t| t.id == victim && t.running())
    });
    let known = Instant::now();
    s.wait_until(SETTLE, "the masters replace the killed instance", |s| {
        let ts = app_tasks(s, "/steady/web").unwrap_or_default();
        ts.len() == 3 && ts.iter().all(|t| t.running()) && !ts.iter().any(|t| t.id == victim)
    });
    let replaced = Instant::now();
    wait_ok(&mut s, &load, replaced, STEADY, "after the replacement");
    let samples = load.finish();
    let describe = |failed: Vec<String>, what: &str| {
        format!(
            "{} of {} requests failed {what} (times relative to the SIGKILL; the masters knew at +{}ms, replaced at +{}ms):\n{}",
            failed.len(),
            samples.len(),
            (known - killed).as_millis(),
            (replaced - killed).as_millis(),
            failed.join("\n")
        )
    };
    // Once the masters know, nothing fails.
    let after: Vec<_> = samples.iter().filter(|x| x.at >= known).cloned().collect();
    let failed_after = failures(&after, killed);
    if !failed_after.is_empty() {
        s.fail(&describe(failed_after, "after the masters knew"));
    }
    // Before, only a request the dying instance had already taken may fail: never one the
    // balancer could not place (a connect error it did not retry: 502 "could be reached",
    // 503 "no ready instance").
    let failed = failures(&samples, killed);
    if failed
        .iter()
        .any(|f| f.contains("could be reached") || f.contains("no ready instance"))
    {
        s.fail(&describe(failed, "for want of a retry"));
    }
    eprintln!("{}", describe(failed, "in flight at the kill (allowed)"));
    let served_by_victim_after = samples
        .iter()
        .filter(|x| x.at > replaced && x.answer.as_deref() == Ok(victim.as_str()))
        .count();
    assert_eq!(
        served_by_victim_after, 0,
        "the killed instance answered after its replacement"
    );
}

#[test]
fn restarting_every_master_does_not_interrupt_proxied_traffic() {
    let (mut s, lb, targets) = steady_site("lb-masters", 3);
    let load = Load::start(targets);
    let t0 = Instant::now();
    wait_ok(&mut s, &load, t0, STEADY, "before the masters go");
    s.masters.kill_all();
    let down = Instant::now();
    // Until the balancer has found every master gone, and served on from its last view.
    s.wait_until(SETTLE, "the balancer finds no master", |_| {
        lb.log_tail().contains("keeping the last routes")
    });
    let noticed = Instant::now();
    wait_ok(&mut s, &load, noticed, STEADY, "while no master runs");
    s.masters.start_all();
    s.masters.wait_for_leader(SETTLE);
    let up = Instant::now();
    wait_ok(&mut s, &load, up, STEADY, "after the masters are back");
    let samples = load.finish();
    let failed = failures(&samples, down);
    if !failed.is_empty() {
        s.fail(&format!(
            "{} of {} requests failed (times relative to killing the masters; back at +{}ms):\n{}",
            failed.len(),
            samples.len(),
            (up - down).as_millis(),
            failed.join("\n")
        ));
    }
}

/// The balancer's word on one instance leaving its backends (`GET /routes`, `removals`).
#[derive(Debug, Clone)]
struct Removal {
    cause: String,
    /// Event → removal, ms (none when a read found it out before any event said so).
    after_event_ms: Option<i64>,
}

/// The removal of `id` as the balancer at `admin` lists it, if it has happened.
fn removal(admin: &str, id: &str) -> Option<Removal> {
    let r = common::http::get(admin, "/routes").ok()?;
    r.body_json["removals"]
        .as_array()?
        .iter()
        .find(|x| x["instance"] == id)
        .map(|x| {
            let removed = x["removed_at_ms"].as_i64();
            let event = x["event_at"]
                .as_str()
                .and_then(master::clock::parse_iso)
                .and_then(|ms| i64::try_from(ms).ok());
            Removal {
                cause: x["cause"].as_str().unwrap_or_default().to_string(),
                after_event_ms: removed.zip(event).map(|(r, e)| r - e),
            }
        })
}

/// `drover_lb_backend_connections_total` of instance `id`, from the metrics at `admin`.
fn connections_to(s: &Site, admin: &str, id: &str) -> u64 {
    let text = common::http::get(admin, "/metrics")
        .unwrap_or_else(|e| s.fail(&format!("metrics of {admin}: {e}")))
        .body;
    text.lines()
        .filter(|l| l.starts_with("drover_lb_backend_connections_total{"))
        .filter(|l| l.contains(&format!("instance=\"{id}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn an_instance_killed_failed_or_unhealthy_leaves_the_balancer_before_another_connection_reaches_it()
{
    let mut s = site("lb-removal", 1, fast_master_flags());
    let agents = add_agents(&mut s, "local", &["local-a", "local-b"], 1);
    start_agents(&mut s, &agents);
    let sick = s.dir().join("sick-");
    // SIGTERM is ignored, so an instance being killed goes on answering for its grace
    // period: a connection sent to it would show. The leader publishes TASK_KILLING when the
    // kill commits, so the balancer takes it out then, not at TASK_KILLED after the grace.
    s.create_app(&json!({
        "id": "/removal/web", "cmd": format!("trap '' TERM; {}", lb_support::SERVE_ID),
        "instances": 4, "cpus": 0.05, "mem": 8, "taskKillGracePeriodSeconds": 2,
        "portDefinitions": [{"port": 0}],
        "constraints": [["@zone", "GROUP_BY"]],
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "removal.example.test"},
        // Healthy until the test marks the instance's agent sick, and not killed for it.
        "healthChecks": [{
            "protocol": "COMMAND",
            "command": {"value": format!("test ! -e '{}'\"$HOST\"", sick.display())},
            "gracePeriodSeconds": 300, "intervalSeconds": 1, "delaySeconds": 0,
            "timeoutSeconds": 10, "maxConsecutiveFailures": 10_000,
        }],
    }));
    wait_app_running(&mut s, "/removal/web", 4);
    let tasks = s.wait_for(SETTLE, "all four instances are healthy", |s| {
        let ts = app_tasks(s, "/removal/web").unwrap_or_default();
        (ts.len() == 4 && ts.iter().all(|t| t.alive == Some(true))).then_some(ts)
    });
    let zone = |z: &str| -> Vec<String> {
        tasks
            .iter()
            .filter(|t| t.zone == z)
            .map(|t| t.id.clone())
            .collect()
    };
    let (in_a, in_b) = (zone("local-a"), zone("local-b"));
    assert_eq!((in_a.len(), in_b.len()), (2, 2), "two instances per zone");
    let lb = Lb::start(s.dir(), "edge", &s.master_list(), "127.0.2.1", &[]);
    s.notes.push(lb.note("edge"));
    let admin = lb.at(lb.admin_port);
    let target = (lb.http(), "removal.example.test".to_string());
    s.wait_until(SETTLE, "the balancer serves the vhost", |_| {
        matches!(lb_support::get(&target.0, &target.1, "/"), Ok((200, _)))
    });
    let load = Load::start(vec![target]);
    wait_ok(&mut s, &load, Instant::now(), STEADY, "before any removal");

    // Each way out, one after the other: the balancer's removal as its /routes lists it; from
    // then on no request may reach the instance (the ones that are killed on purpose or
    // unhealthy still answer), and its count of connections must not grow.
    let mut removed: Vec<Gone> = Vec::new();
    let mut wait_removed = |s: &mut Site, id: &str, how: &'static str| {
        let removal = s.wait_for(
            SETTLE,
            &format!("the balancer removes {id} ({how})"),
            |_| removal(&admin, id),
        );
        let seen = Instant::now();
        let connections = connections_to(s, &admin, id);
        removed.push(Gone {
            id: id.to_string(),
            how,
            removal,
            seen,
            connections,
        });
    };

    // Killed on purpose (replaced: the scheduler starts another).
    let killed = in_a[0].clone();
    let r = send(
        &mut s,
        "POST",
        "/v2/tasks/delete",
        Some(&json!({"ids": [killed.clone()]})),
    );
    assert_eq!(r.status, 200, "POST /v2/tasks/delete: {r:?}");
    wait_removed(&mut s, &killed, "killed through the API");

    // Fails: SIGKILL to its process group.
    let failed = in_a[1].clone();
    let process = s
        .task_process(&failed)
        .unwrap_or_else(|| s.fail(&format!("{failed} has no process")));
    kill_group(process);
    wait_removed(&mut s, &failed, "SIGKILLed");

    // Unhealthy: zone b's agent is marked sick (by hostname and by address, as `$HOST` may be
    // either); its instances keep running and answering.
    let b_agent = s.agent(agents[1].0);
    for mark in [
        format!("{}{}", sick.display(), b_agent.hostname),
        format!("{}{}", sick.display(), b_agent.ip),
    ] {
        std::fs::write(&mark, "").expect("mark zone b sick");
    }
    for id in &in_b {
        wait_removed(&mut s, id, "unhealthy");
    }

    wait_ok(&mut s, &load, Instant::now(), STEADY, "after the removals");
    let samples = load.finish();
    for g in &removed {
        let served = samples
            .iter()
            .filter(|x| x.at >= g.seen && x.answer.as_deref() == Ok(g.id.as_str()))
            .count();
        assert_eq!(
            served, 0,
            "{} ({}) answered {served} request(s) sent after the balancer removed it ({:?})",
            g.id, g.how, g.removal
        );
        let now = connections_to(&s, &admin, &g.id);
        assert_eq!(
            now,
            g.connections,
            "the balancer sent {} connection(s) to {} ({}) after removing it ({:?})",
            now.saturating_sub(g.connections),
            g.id,
            g.how,
            g.removal
        );
        eprintln!(
            "removal of {} ({}): cause {}, {}",
            g.id,
            g.how,
            g.removal.cause,
            g.removal
                .after_event_ms
                .map_or("by a read before any event".to_string(), |ms| format!(
                    "{ms} ms after the master's event"
                ))
        );
    }
    let by_api = removed
        .iter()
        .find(|g| g.id == killed)
        .expect("the API kill's removal");
    assert_eq!(
        by_api.removal.cause, "TASK_KILLING",
        "an ordered kill takes the instance out when it commits, before its grace period ends: {by_api:?}"
    );
    assert!(
        removed.iter().any(|g| g.removal.cause != "read"),
        "every removal came from a read, none from the masters' events: {removed:?}"
    );
}

/// An instance the test took out, and what the balancer said and counted when it had.
#[derive(Debug)]
struct Gone {
    id: String,
    how: &'static str,
    removal: Removal,
    /// When the test saw the removal.
    seen: Instant,
    /// The balancer's connections to it then.
    connections: u64,
}
