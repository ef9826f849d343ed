//! Helpers of the scheduler tests (`tests/scheduler.rs`) on top of [`crate::agent_support`]:
//! reading Marathon's task JSON, a record of every task process ever started (a launch log
//! the tasks append to), health checks the test turns healthy, a background sampler of the
//! masters' API, and waits that show what they last saw. [`site`] holds the helpers that
//! drive a [`Site`] (agents in zones, apps, deployments).
#![allow(dead_code)]

pub mod site;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use client::{App, Event};
use serde_json::Value;

use crate::agent_support::Site;
use crate::agent_support::events::EventStream;
use crate::common::http;

/// Master flags for tests about behaviour rather than defaults: agents heartbeat four times a
/// second and are unreachable after 2.5 s of silence (a loaded 2-core machine still
/// heartbeats well within that), and protected zones release one more agent per second.
pub fn fast_master_flags() -> Vec<String> {
    [
        "--agent-heartbeat-ms",
        "250",
        "--agent-unreachable-ms",
        "2500",
        "--agent-reregistration-grace-ms",
        "2500",
        "--eviction-interval-ms",
        "1000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Replaces (or adds) `flag value` in a flag list.
pub fn set_flag(flags: &mut Vec<String>, flag: &str, value: &str) {
    if let Some(i) = flags.iter().position(|f| f == flag) {
        flags[i + 1] = value.to_string();
    } else {
        flags.push(flag.to_string());
        flags.push(value.to_string());
    }
}

/// One task of an app, as `GET /v2/apps/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Instance id (Marathon's task id).
    pub id: String,
    /// The agent's hostname.
    pub host: String,
    /// `TASK_RUNNING`, `TASK_UNREACHABLE`, …
    pub state: String,
    /// The app version it runs.
    pub version: String,
    /// The agent's region and zone.
    pub region: String,
    pub zone: String,
    /// Its health (`healthCheckResults[0].alive`), if known.
    pub alive: Option<bool>,
}

impl Task {
    /// True for `TASK_RUNNING`.
    pub fn running(&self) -> bool {
        self.state == "TASK_RUNNING"
    }
}

/// The tasks of an app (`app.tasks`, empty when the answer has none).
pub fn tasks(app: &App) -> Vec<Task> {
    app.tasks.iter().flatten().map(Task::from).collect()
}

/// The tasks of a `/v2/tasks` answer (None when it is not one).
pub fn listed_tasks(body: &Value) -> Option<Vec<Task>> {
    let listed: client::Tasks = client::decode("GET /v2/tasks", body.clone()).ok()?;
    Some(listed.tasks.iter().map(Task::from).collect())
}

impl From<&client::Task> for Task {
    fn from(t: &client::Task) -> Self {
        Task {
            id: t.id.clone(),
            host: t.host.clone().unwrap_or_default(),
            state: t.state.clone(),
            version: t.version.clone(),
            region: t.region.clone().unwrap_or_default(),
            zone: t.zone.clone().unwrap_or_default(),
            alive: t.health_check_results.first().map(|h| h.alive),
        }
    }
}

/// How many of `tasks` have each value of `key`.
pub fn count_by(tasks: &[Task], key: impl Fn(&Task) -> &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for t in tasks {
        *out.entry(key(t).to_string()).or_insert(0) += 1;
    }
    out
}

/// Instances per zone of the running tasks, with every zone in `zones` listed (0 if empty).
pub fn per_zone(tasks: &[Task], zones: &[&str]) -> BTreeMap<String, usize> {
    let mut out: BTreeMap<String, usize> = zones.iter().map(|z| (z.to_string(), 0)).collect();
    for t in tasks.iter().filter(|t| t.running()) {
        *out.entry(t.zone.clone()).or_insert(0) += 1;
    }
    out
}

/// Largest minus smallest of some counts (0 when empty).
pub fn spread<'a>(counts: impl IntoIterator<Item = &'a usize>) -> usize {
    let v: Vec<usize> = counts.into_iter().copied().collect();
    v.iter().max().copied().unwrap_or(0) - v.iter().min().copied().unwrap_or(0)
}

/// The ids of some tasks.
pub fn ids(tasks: &[Task]) -> BTreeSet<String> {
    tasks.iter().map(|t| t.id.clone()).collect()
}

/// A file every task process appends one line to when it starts (`MESOS_TASK_ID
/// MARATHON_APP_VERSION`): the record of every launch on every agent, whatever the masters
/// say. Lines are short single `write`s with `O_APPEND`, so concurrent tasks do not mix them.
pub struct LaunchLog {
    path: PathBuf,
}

impl LaunchLog {
    /// A launch log in `dir`.
    pub fn new(dir: &Path, name: &str) -> Self {
        LaunchLog {
            path: dir.join(format!("{name}.launches")),
        }
    }

    /// A shell command that records the launch, then runs `then` (which should `exec`).
    pub fn cmd(&self, then: &str) -> String {
        format!(
            "echo \"$MESOS_TASK_ID $MARATHON_APP_VERSION\" >> '{}'; {then}",
            self.path.display()
        )
    }

    /// Every launch so far: (instance id, app version), in order.
    pub fn launches(&self) -> Vec<(String, String)> {
        fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (id, v) = l.split_once(' ')?;
                Some((id.to_string(), v.to_string()))
            })
            .collect()
    }

    /// Instance ids launched more than once, with their counts.
    pub fn repeated(&self) -> BTreeMap<String, usize> {
        let mut n: BTreeMap<String, usize> = BTreeMap::new();
        for (id, _) in self.launches() {
            *n.entry(id).or_insert(0) += 1;
        }
        n.retain(|_, c| *c > 1);
        n
    }

    /// Distinct instance ids launched.
    pub fn ids(&self) -> BTreeSet<String> {
        self.launches().into_iter().map(|(id, _)| id).collect()
    }
}

/// `busybox httpd` serving an `index.html` on `$PORT0` from the task's sandbox: a real HTTP
/// health check target that starts in milliseconds.
pub const HTTP_SERVER: &str = "echo ok > index.html && exec busybox httpd -f -p \"$PORT0\"";

/// An HTTP health check on port index 0, checked every second, lenient enough that a loaded
/// machine does not fail it (10 s timeout), killing after three failures.
pub fn http_health_check() -> Value {
    serde_json::json!({
        "protocol": "HTTP", "path": "/", "portIndex": 0,
        "gracePeriodSeconds": 60, "intervalSeconds": 1, "delaySeconds": 0,
        "timeoutSeconds": 10, "maxConsecutiveFailures": 3,
    })
}

/// Polls `GET path` on whichever of `addrs` answers, in a background thread, until stopped;
/// keeps every 200 answer's JSON through `keep`. For invariants that must hold at every
/// moment of a change (healthy capacity during a rolling restart, instance ids ever seen).
pub struct Sampler<T: Send + 'static> {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<T>>>,
}

impl<T: Send + 'static> Sampler<T> {
    /// Starts sampling `path` every `every`.
    pub fn start(
        addrs: Vec<String>,
        path: &str,
        every: Duration,
        keep: impl Fn(&Value) -> Option<T> + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let path = path.to_string();
        let thread = std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut next = 0usize;
            while !flag.load(Ordering::Relaxed) {
                let addr = &addrs[next % addrs.len()];
                match http::request(addr, "GET", &path, None, Duration::from_secs(5)) {
                    Ok(r) if r.status == 200 => {
                        if let Some(t) = keep(&r.body_json) {
                            out.push(t);
                        }
                    }
                    // Another master may answer while this one is down or without a leader.
                    _ => next += 1,
                }
                std::thread::sleep(every);
            }
            out
        });
        Sampler {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling; returns the samples.
    pub fn finish(mut self) -> Vec<T> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl<T: Send + 'static> Drop for Sampler<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What `pick` picks from the first event it picks (`Some`), among those `events` has
/// already read or those it reads within `timeout`; fails the test with the events seen and
/// every log otherwise.
#[track_caller]
pub fn expect_event<T>(
    s: &Site,
    events: &mut EventStream,
    timeout: Duration,
    what: &str,
    pick: impl Fn(&Event) -> Option<T>,
) -> T {
    if let Some(picked) = events.seen().iter().find_map(&pick) {
        return picked;
    }
    match events.wait_for(timeout, &pick) {
        Some(picked) => picked,
        None => s.fail(&format!(
            "no event on /v2/events: {what}; event types seen: {:?}",
            event_types(events.seen())
        )),
    }
}

/// The `eventType` of each event, in order.
pub fn event_types(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::event_type).collect()
}

/// Reads whatever `events` has received for up to `timeout` (to collect what a step caused).
pub fn drain(events: &mut EventStream, timeout: Duration) {
    let _ = events.wait_for(timeout, |_| None::<()>);
}

/// Polls `f` until it returns `Ok`; on timeout fails with `what`, the last `Err` (what the
/// state was then) and every log.
#[track_caller]
pub fn wait_showing<T>(
    s: &mut Site,
    timeout: Duration,
    what: &str,
    mut f: impl FnMut(&mut Site) -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match f(s) {
            Ok(t) => return t,
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            s.fail(&format!(
                "timed out after {timeout:?} waiting until {what}; last seen: {last}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Tasks for people: `<id tail>@<host> <state> v<version>`, one per line.
pub fn describe(tasks: &[Task]) -> String {
    let lines: Vec<String> = tasks
        .iter()
        .map(|t| {
            let short = t.id.rsplit('-').next().unwrap_or(&t.id);
            format!(
                "\n  {short}@{} {} {} v{} alive {:?}",
                t.host, t.zone, t.state, t.version, t.alive
            )
        })
        .collect();
    format!("{} task(s):{}", tasks.len(), lines.concat())
}

/// Health gates: instances of an app version turn healthy once the test opens that version's
/// gate (a file), through a COMMAND health check. A deployment to a new version is then
/// certainly in progress until the test says otherwise.
pub struct HealthGate {
    dir: PathBuf,
}

impl HealthGate {
    /// Gates kept in `dir`.
    pub fn new(dir: &Path) -> Self {
        HealthGate {
            dir: dir.to_path_buf(),
        }
    }

    /// The health check: checked every second from the start, never failing within five
    /// minutes before the first success, so a closed gate is "not healthy yet".
    pub fn check(&self) -> Value {
        let prefix = self.dir.join("healthy-");
        serde_json::json!({
            "protocol": "COMMAND",
            "command": {"value": format!("test -e '{}'\"$MARATHON_APP_VERSION\"", prefix.display())},
            "gracePeriodSeconds": 300, "intervalSeconds": 1, "delaySeconds": 0,
            "timeoutSeconds": 10, "maxConsecutiveFailures": 3,
        })
    }

    /// Opens the gate of `version`: its instances turn healthy.
    pub fn open(&self, version: &str) {
        let path = self.dir.join(format!("healthy-{version}"));
        fs::write(&path, "").unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}
