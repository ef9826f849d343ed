//! Failover of proxied traffic across processes (issue 15, "Must be true when done"): steady
//! load through `drover lb` (an HTTP virtual host and a TCP service port, fresh connection per
//! request) while an instance is SIGKILLed, and while every master is killed and restarted.
//! A connect error to a dead instance is retried on another at once, so no request fails once
//! the masters know of the kill, and none for want of a retry before (only a request the
//! instance had already taken when it died can fail: its connection dies with it). The
//! balancer keeps its last view while no master answers: nothing fails then either.

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
use scheduler_support::site::{add_agents, app_tasks, site, start_agents, wait_app_running};
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
