//! Site-level helpers of the scheduler tests: masters and agents in zones, apps, their tasks
//! and deployments, as the masters' API shows them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use client::{Change, Check, ClusterHealth, Deployment};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use super::{
    HealthGate, LaunchLog, Task, describe, fast_master_flags, per_zone, set_flag, spread, tasks,
    wait_showing,
};
use crate::agent_support::procs::TaskProcess;
use crate::agent_support::{SETTLE, Site};
use crate::common::{free_port, http};

/// Bound for changes that take several scheduler steps (a rolling restart, a rebalance one
/// instance at a time): a liveness bound for a loaded 2-core machine, not a speed assertion.
pub const CONVERGE: Duration = Duration::from_secs(120);

/// A site with `masters` masters started with `flags`, and a leader.
pub fn site(name: &str, masters: u32, flags: Vec<String>) -> Site {
    let mut s = Site::new(name, masters);
    s.masters.extra_args = flags;
    s.start_masters();
    s
}

/// Adds `per_zone` agents to each zone of `region` (hostnames `agent-<zone>-<n>`), each with
/// eight ports; returns (index, zone) of each.
pub fn add_agents(
    s: &mut Site,
    region: &str,
    zones: &[&str],
    per_zone: usize,
) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for zone in zones {
        for n in 1..=per_zone {
            let i = s.add_agent(&format!("agent-{zone}-{n}"), region, zone);
            s.agent_mut(i).ports = (0..8).map(|_| free_port()).collect();
            out.push((i, zone.to_string()));
        }
    }
    out
}

/// Starts the agents, then waits until every one is active.
pub fn start_agents(s: &mut Site, agents: &[(usize, String)]) {
    for (i, _) in agents {
        s.start_agent(*i);
    }
    for (i, _) in agents {
        s.wait_agent_active(*i);
    }
}

/// A long-running app of `n` instances without ports whose tasks record their launch.
pub fn sleeper(id: &str, n: u32, log: &LaunchLog) -> Value {
    json!({
        "id": id, "cmd": log.cmd("exec sleep 100000"), "instances": n,
        "cpus": 0.05, "mem": 8, "portDefinitions": [],
    })
}

/// The app's tasks, if the masters answer.
pub fn app_tasks(s: &mut Site, id: &str) -> Option<Vec<Task>> {
    s.app(id).map(|a| tasks(&a))
}

/// Waits until app `id` runs `n` instances, all `TASK_RUNNING` with a live process (showing
/// the app's tasks if it does not); returns them.
#[track_caller]
pub fn wait_app_running(s: &mut Site, id: &str, n: usize) -> Vec<Task> {
    let what = format!("app {id} runs {n} instance(s)");
    wait_showing(s, SETTLE, &what, |s| {
        let ts = app_tasks(s, id).unwrap_or_default();
        if ts.len() == n && ts.iter().all(Task::running) {
            Ok(())
        } else {
            Err(describe(&ts))
        }
    });
    tasks(&s.wait_running(id, n))
}

/// The live processes of tasks with these ids (any agent).
pub fn processes_of(s: &Site, ids: &BTreeSet<String>) -> BTreeMap<String, TaskProcess> {
    let mut out = BTreeMap::new();
    for id in ids {
        match s.task_process(id) {
            Some(p) if p.is_alive() => {
                out.insert(id.clone(), p);
            }
            _ => s.fail(&format!("task {id} has no live process")),
        }
    }
    out
}

/// `GET /v1/cluster/health` → the check named `name`.
pub fn health_check(s: &mut Site, name: &str) -> Option<Check> {
    let r = s.get("/v1/cluster/health").filter(|r| r.status == 200)?;
    r.typed::<ClusterHealth>()
        .checks
        .into_iter()
        .find(|c| c.name == name)
}

/// `GET /v2/deployments` → the deployments (ids) of app `id`.
pub fn deployments_of(s: &mut Site, id: &str) -> Option<Vec<String>> {
    let r = s.get("/v2/deployments").filter(|r| r.status == 200)?;
    Some(
        r.typed::<Vec<Deployment>>()
            .into_iter()
            .filter(|d| d.affected_apps.iter().any(|x| x == id))
            .map(|d| d.id)
            .collect(),
    )
}

/// Sends SIGKILL to one process.
pub fn sigkill(p: TaskProcess) {
    if let Ok(pid) = i32::try_from(p.pid)
        && p.is_alive()
    {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// A request through the first live master that answers without a 5xx.
pub fn send(s: &mut Site, method: &str, path: &str, body: Option<&Value>) -> http::Response {
    let what = format!("{method} {path} gets a non-5xx answer");
    s.wait_for(SETTLE, &what, |s| {
        for id in s.masters.live_ids() {
            let addr = s.masters.addr(id);
            if let Ok(r) = http::request(&addr, method, path, body, Duration::from_secs(30))
                && r.status < 500
            {
                return Some(r);
            }
        }
        None
    })
}

/// A site with three zones of `per_zone` agents and an app of `n` instances spread over them
/// by `["@zone","GROUP_BY"]`, running; the masters are started with `flags`.
pub struct Spread {
    pub s: Site,
    pub agents: Vec<(usize, String)>,
    pub log: LaunchLog,
    pub app_id: &'static str,
    pub before: Vec<Task>,
}

/// The zones of a [`Spread`] site.
pub const ZONES: [&str; 3] = ["local-a", "local-b", "local-c"];

/// Starts a [`Spread`] site named `name`.
pub fn spread_app(name: &str, flags: Vec<String>, per_zone_agents: usize, n: u32) -> Spread {
    let mut s = site(name, 1, flags);
    let agents = add_agents(&mut s, "local", &ZONES, per_zone_agents);
    start_agents(&mut s, &agents);
    let log = LaunchLog::new(s.dir(), name);
    let app_id = "/spread/sleepers";
    let mut app = sleeper(app_id, n, &log);
    app["constraints"] = json!([["@zone", "GROUP_BY"]]);
    s.create_app(&app);
    let before = wait_app_running(&mut s, app_id, n as usize);
    let zones = per_zone(&before, &ZONES);
    if spread(zones.values()) > 0 {
        s.fail(&format!("{n} instances over 3 zones: {zones:?}"));
    }
    Spread {
        s,
        agents,
        log,
        app_id,
        before,
    }
}

impl Spread {
    /// Agents of zone `zone`.
    pub fn zone(&self, zone: &str) -> Vec<usize> {
        self.agents
            .iter()
            .filter(|(_, z)| z == zone)
            .map(|(i, _)| *i)
            .collect()
    }
}

/// Flags with an eviction interval long enough that a protected zone's second agent is never
/// released during a test.
pub fn slow_eviction_flags() -> Vec<String> {
    let mut flags = fast_master_flags();
    set_flag(&mut flags, "--eviction-interval-ms", "600000");
    flags
}

/// Pauses every agent (SIGSTOP): to the leader, every zone is unreachable at once.
pub fn pause_every_agent(s: &mut Site, agents: &[(usize, String)]) {
    for (i, _) in agents {
        s.pause_agent(*i);
    }
}

/// Creates app `id` of `n` instances behind `gate` (upgrades keep half healthy and add
/// nothing), opens its first version's gate, and waits until it is healthy and deployed.
pub fn create_gated_app(
    s: &mut Site,
    log: &LaunchLog,
    gate: &HealthGate,
    id: &str,
    n: usize,
) -> Vec<Task> {
    s.create_app(&json!({
        "id": id, "cmd": log.cmd("exec sleep 100000"), "instances": n,
        "cpus": 0.05, "mem": 8, "portDefinitions": [],
        "healthChecks": [gate.check()],
        "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0},
    }));
    let first_version = s
        .app(id)
        .map(|a| a.version)
        .unwrap_or_else(|| s.fail(&format!("{id} has no version")));
    gate.open(&first_version);
    wait_app_running(s, id, n);
    let what = format!("all {n} instances are healthy and the start deployment is done");
    wait_showing(s, SETTLE, &what, |s| {
        let a = s.app(id);
        let ts = a.as_ref().map(tasks).unwrap_or_default();
        let healthy = a.map(|a| a.counts().tasks_healthy as usize);
        let deployments = deployments_of(s, id);
        if healthy == Some(n) && deployments.as_ref().is_some_and(Vec::is_empty) {
            Ok(ts)
        } else {
            Err(format!("deployments {deployments:?}; {}", describe(&ts)))
        }
    })
}

/// Waits until app `id` has no deployment and runs `n` healthy instances of `version`.
#[track_caller]
pub fn wait_deployed(s: &mut Site, id: &str, n: usize, version: &str, what: &str) -> Vec<Task> {
    wait_showing(s, CONVERGE, what, |s| {
        let a = s.app(id);
        let ts = a.as_ref().map(tasks).unwrap_or_default();
        let healthy = a.map(|a| a.counts().tasks_healthy as usize);
        let deployments = deployments_of(s, id);
        if deployments.as_ref().is_some_and(Vec::is_empty)
            && healthy == Some(n)
            && ts.len() == n
            && ts.iter().all(|t| t.version == version && t.running())
        {
            Ok(ts)
        } else {
            Err(format!(
                "deployments {deployments:?}, tasksHealthy {healthy:?}; {}",
                describe(&ts)
            ))
        }
    })
}

/// `POST /v2/apps{id}/restart` to `addr`; returns (version, deployment id).
pub fn restart(s: &Site, addr: &str, id: &str) -> (String, String) {
    let path = format!("/v2/apps{id}/restart");
    let r = http::request(addr, "POST", &path, None, Duration::from_secs(30))
        .unwrap_or_else(|e| s.fail(&format!("POST {path} to {addr}: {e}")));
    if r.status != 200 {
        s.fail(&format!("POST {path}: {r}"));
    }
    let change = r.typed::<Change>();
    (change.version, change.deployment_id.unwrap_or_default())
}
