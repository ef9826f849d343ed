//! Following the masters: a full read of `/v2/apps?embed=apps.tasks` at start, after every
//! event that may change a route, and at a steady interval; and the event stream
//! (`/v2/events`), whose events that take an instance out of service (failed, killed, being
//! killed, unhealthy) take it out of the view at once, before the read that follows.
//!
//! What is read depends on who follows ([`Source`]): `drover lb` reads the public Marathon
//! API with its ACL token; an agent serving VIPs reads the masters' projection of it for
//! agents (`/internal/agents/{id}/vips` and `…/vip-events`, the same JSON without the apps'
//! definitions), authenticated by its certificate. Either way the same code parses it.
//!
//! Any master answers (followers relay the stream and serve reads); on failure the next one
//! is tried. While no master answers, the last view stays: proxies keep serving what they
//! knew, which is what they should do through a control-plane outage.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use client::{App, AppList, Event, Stamped};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use state::transport::Connector;
use tokio::sync::{Notify, watch};

use crate::routes::View;

/// How the masters are followed.
#[derive(Debug, Clone)]
pub struct FollowConfig {
    /// `HOST:PORT` of every master.
    pub masters: Vec<String>,
    /// Full reads at least this often, events or not.
    pub resync: Duration,
    /// How long one read may take before the next master is tried.
    pub request_timeout: Duration,
    /// The ACL token's secret sent to the masters (`None` for masters with `--insecure`).
    pub token: Option<String>,
    /// Which API of the masters is read.
    pub source: Source,
    /// How connections to the masters are opened: plain TCP, or TLS trusting the cluster CA
    /// (`Connector::with_tls`). The URLs stay `http://`; the connector decides what goes
    /// over the connection, as for every drover client.
    pub connector: Connector,
}

impl FollowConfig {
    /// Following `masters` with the defaults: a full read every 2 s, 5 s per request,
    /// plain HTTP (masters with `--insecure`).
    pub fn new(masters: Vec<String>) -> Self {
        let request_timeout = Duration::from_secs(5);
        FollowConfig {
            masters,
            resync: Duration::from_secs(2),
            request_timeout,
            token: None,
            source: Source::Marathon,
            connector: Connector::tcp(Some(request_timeout)),
        }
    }
}

/// Which API of the masters a follower reads; both answer in the shapes of
/// `GET /v2/apps?embed=apps.tasks` and `GET /v2/events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The public Marathon API (`drover lb`, with an ACL token on secure masters).
    Marathon,
    /// The internal API of agent `id` (`drover agent --vip-addr`): only the fields routes
    /// are made of, for the agent's certificate.
    Agent(String),
}

impl Source {
    /// The path of the full read.
    pub fn apps_path(&self) -> String {
        match self {
            Source::Marathon => "/v2/apps?embed=apps.tasks".into(),
            Source::Agent(id) => format!("/internal/agents/{id}/vips"),
        }
    }

    /// The path of the event stream.
    pub fn events_path(&self) -> String {
        match self {
            Source::Marathon => "/v2/events".into(),
            Source::Agent(id) => format!("/internal/agents/{id}/vip-events"),
        }
    }
}

/// Removals kept for `/routes`, newest last.
pub const REMOVALS_KEPT: usize = 64;

/// An instance that left the view's ready backends: by an event of the masters, or a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The instance.
    pub instance_id: String,
    /// What the event said (`TASK_FAILED`, `unhealthy`, …), or `read` when a full read
    /// found it out of service before any event said so.
    pub cause: String,
    /// The event's `timestamp` (when the master published it, by its clock); none for a read.
    pub event_at: Option<String>,
    /// When the new view was published here, ms since the Unix epoch (this host's clock).
    pub removed_at_ms: u64,
}

/// What a proxy reads: the latest view, and the last instances events took out of it.
#[derive(Debug, Clone)]
pub struct Routes {
    view: watch::Receiver<Arc<View>>,
    removals: Arc<Mutex<VecDeque<Removal>>>,
}

impl Routes {
    /// Routes that never change (tests, and a proxy before its first read).
    pub fn fixed(view: View) -> (Routes, watch::Sender<Arc<View>>) {
        let (tx, rx) = watch::channel(Arc::new(view));
        let removals = Arc::new(Mutex::new(VecDeque::new()));
        (Routes { view: rx, removals }, tx)
    }

    /// The last [`REMOVALS_KEPT`] removals, oldest first.
    pub fn removals(&self) -> Vec<Removal> {
        let r = self.removals.lock().unwrap_or_else(|e| e.into_inner());
        r.iter().cloned().collect()
    }

    /// The latest view.
    pub fn current(&self) -> Arc<View> {
        self.view.borrow().clone()
    }

    /// Completes when the view changes (or never, when nothing can change it any more).
    pub async fn changed(&mut self) {
        if self.view.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

type HttpClient = Client<Connector, Empty<Bytes>>;

/// The follower's state, shared by its read and event tasks.
struct Follower {
    config: FollowConfig,
    http: HttpClient,
    view: watch::Sender<Arc<View>>,
    /// Where removals are recorded for `/routes`.
    removals: Arc<Mutex<VecDeque<Removal>>>,
    /// Instances an event took out for good (terminal or being killed): a read that started
    /// before the event must not bring them back.
    gone: Mutex<BTreeSet<String>>,
    /// Wakes the read loop.
    read_now: Notify,
    /// Problems last logged, so a steady misconfiguration is logged once.
    logged: Mutex<Vec<String>>,
}

/// Starts following the masters on the current tokio runtime; the routes start empty and
/// fill with the first read.
pub fn follow(config: FollowConfig) -> Routes {
    let (routes, tx) = Routes::fixed(View::default());
    let f = Arc::new(Follower {
        http: state::transport::client(config.connector.clone()),
        config,
        view: tx,
        removals: routes.removals.clone(),
        gone: Mutex::new(BTreeSet::new()),
        read_now: Notify::new(),
        logged: Mutex::new(Vec::new()),
    });
    tokio::spawn(read_loop(f.clone()));
    tokio::spawn(event_loop(f));
    routes
}

/// Reads every `resync`, and at once when an event asks.
async fn read_loop(f: Arc<Follower>) {
    let mut first = 0;
    let mut answered = true;
    loop {
        match read_apps(&f, first).await {
            Ok((apps, from)) => {
                if !answered {
                    tracing::info!("{} answers again; routes follow it", f.config.masters[from]);
                }
                (first, answered) = (from, true);
                publish(&f, &apps);
            }
            // Once per outage: the balancer goes on from its last view meanwhile.
            Err(e) if answered => {
                answered = false;
                tracing::warn!(
                    "no master answers GET {}; keeping the last routes: {e}",
                    f.config.source.apps_path()
                );
            }
            Err(e) => tracing::debug!("still no master answers: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(f.config.resync) => {}
            _ = f.read_now.notified() => {}
        }
    }
}

/// The apps with their tasks, from the first master that answers (starting with `first`),
/// and which master that was.
async fn read_apps(f: &Follower, first: usize) -> Result<(Vec<App>, usize), String> {
    let n = f.config.masters.len();
    let mut last = String::from("no masters given");
    let path = f.config.source.apps_path();
    for k in 0..n {
        let i = (first + k) % n;
        let m = &f.config.masters[i];
        match get_json::<AppList>(f, m, &path).await {
            Ok(list) => return Ok((list.apps, i)),
            Err(e) => last = format!("{m}: {e}"),
        }
    }
    Err(last)
}

/// The request with the follower's token, if it has one.
fn authorized(req: hyper::http::request::Builder, f: &Follower) -> hyper::http::request::Builder {
    match &f.config.token {
        Some(token) => req.header("authorization", format!("Bearer {token}")),
        None => req,
    }
}

/// `GET path` from master `m`, decoded.
async fn get_json<T: serde::de::DeserializeOwned>(
    f: &Follower,
    m: &str,
    path: &str,
) -> Result<T, String> {
    let uri = format!("http://{m}{path}");
    let req = authorized(hyper::Request::get(&uri), f)
        .body(Empty::new())
        .map_err(|e| format!("bad address: {e}"))?;
    let read = async {
        let resp = f.http.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            return Err(format!(
                "answered {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        serde_json::from_slice::<T>(&body).map_err(|e| format!("not an answer of {path}: {e}"))
    };
    match tokio::time::timeout(f.config.request_timeout, read).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {:?}", f.config.request_timeout)),
    }
}

/// Builds the view of `apps`, keeps out what events removed, and publishes it if it changed.
fn publish(f: &Follower, apps: &[App]) {
    let (mut view, problems) = View::from_apps(apps);
    let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
    if let Ok(mut logged) = f.logged.lock()
        && *logged != problems
    {
        for p in &problems {
            tracing::warn!("{p}");
        }
        *logged = problems;
    }
    let gone: Vec<String> = match f.gone.lock() {
        Ok(mut gone) => {
            let listed = view.instance_ids();
            gone.retain(|id| listed.contains(id));
            gone.iter().cloned().collect()
        }
        Err(_) => Vec::new(),
    };
    let mut left = Vec::new();
    f.view.send_if_modified(|current| {
        view.keep_ready_while_health_unknown(current);
        for id in &gone {
            view.mark_not_ready(id);
        }
        if **current == view {
            false
        } else {
            let still = view.ready_ids();
            left = current
                .ready_ids()
                .into_iter()
                .filter(|id| !still.contains(id))
                .collect();
            *current = Arc::new(view);
            true
        }
    });
    for id in left {
        record_removal(f, id, "read".into(), None);
    }
}

/// Notes for `/routes` that `id` left the ready backends.
fn record_removal(f: &Follower, id: String, cause: String, event_at: Option<String>) {
    let removed_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut r = f.removals.lock().unwrap_or_else(|e| e.into_inner());
    if r.len() == REMOVALS_KEPT {
        r.pop_front();
    }
    r.push_back(Removal {
        instance_id: id,
        cause,
        event_at,
        removed_at_ms,
    });
}

/// Takes instance `id` out of service now; `for_good` keeps it out of later reads too.
/// `cause` and `event_at` say which event did it, for `/routes`.
fn take_out(f: &Follower, id: &str, for_good: bool, cause: String, event_at: &str) {
    if for_good && let Ok(mut gone) = f.gone.lock() {
        gone.insert(id.to_string());
    }
    let removed = f.view.send_if_modified(|current| {
        let mut view = (**current).clone();
        if view.mark_not_ready(id) {
            *current = Arc::new(view);
            true
        } else {
            false
        }
    });
    if removed {
        record_removal(f, id.to_string(), cause, Some(event_at.to_string()));
    }
}

/// How `/routes` names the reason an event takes an instance out.
fn cause(event: &Event) -> String {
    match event {
        Event::StatusUpdateEvent { task_status, .. } => task_status.clone(),
        Event::InstanceChangedEvent { condition, .. } => condition.clone(),
        Event::HealthStatusChangedEvent { .. } => "unhealthy".into(),
        Event::UnhealthyInstanceKillEvent { .. } => "killed as unhealthy".into(),
        _ => "event".into(),
    }
}

/// What an event means for the routes.
#[derive(Debug, PartialEq, Eq)]
enum Effect {
    /// Take the instance out now; for good when it can never serve again.
    TakeOut { instance_id: String, for_good: bool },
    /// Read the apps again.
    Read,
    /// Nothing.
    Nothing,
}

/// The effect of one event.
fn effect(event: &Event) -> Effect {
    match event {
        Event::StatusUpdateEvent {
            instance_id,
            task_status,
            ..
        } => match task_status.as_str() {
            "TASK_RUNNING" | "TASK_STAGING" | "TASK_STARTING" => Effect::Read,
            "TASK_UNREACHABLE" => Effect::TakeOut {
                instance_id: instance_id.clone(),
                for_good: false,
            },
            _ => Effect::TakeOut {
                instance_id: instance_id.clone(),
                for_good: true,
            },
        },
        Event::InstanceChangedEvent {
            instance_id,
            condition,
            ..
        } => match condition.as_str() {
            "Running" | "Scheduled" | "Staging" | "Starting" => Effect::Read,
            "Unreachable" => Effect::TakeOut {
                instance_id: instance_id.clone(),
                for_good: false,
            },
            _ => Effect::TakeOut {
                instance_id: instance_id.clone(),
                for_good: true,
            },
        },
        Event::HealthStatusChangedEvent {
            instance_id, alive, ..
        } => {
            if *alive {
                Effect::Read
            } else {
                Effect::TakeOut {
                    instance_id: instance_id.clone(),
                    for_good: false,
                }
            }
        }
        Event::UnhealthyInstanceKillEvent { instance_id, .. } => Effect::TakeOut {
            instance_id: instance_id.clone(),
            for_good: true,
        },
        Event::FailedHealthCheckEvent { .. }
        // health_status_changed_event, published beside it, says the same.
        | Event::InstanceHealthChangedEvent { .. }
        | Event::SubscribeEvent { .. }
        | Event::UnsubscribeEvent { .. }
        | Event::EvictionProtectionEvent { .. }
        | Event::EventStreamAttached { .. }
        | Event::EventStreamDetached { .. } => Effect::Nothing,
        Event::ApiPostEvent { .. }
        | Event::AppTerminatedEvent { .. }
        | Event::DeploymentInfo { .. }
        | Event::DeploymentSuccess { .. }
        | Event::DeploymentFailed { .. }
        | Event::DeploymentStepSuccess { .. }
        | Event::DeploymentStepFailure { .. }
        | Event::GroupChangeSuccess { .. }
        | Event::GroupChangeFailed { .. } => Effect::Read,
    }
}

/// Holds the event stream of one master after another, for as long as the process runs.
async fn event_loop(f: Arc<Follower>) {
    let mut i = 0;
    loop {
        let n = f.config.masters.len().max(1);
        let Some(m) = f.config.masters.get(i % n).cloned() else {
            return;
        };
        if let Err(e) = stream_events(&f, &m).await {
            tracing::debug!("event stream of {m}: {e}");
        }
        i += 1;
        // A short pause between masters: a stream that ends at once must not spin.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Follows `m`'s event stream until it ends; a read follows the attach (events may have
/// been missed while no stream was held).
async fn stream_events(f: &Follower, m: &str) -> Result<(), String> {
    let path = f.config.source.events_path();
    let req = authorized(hyper::Request::get(format!("http://{m}{path}")), f)
        .header("accept", "text/event-stream")
        .body(Empty::new())
        .map_err(|e| format!("bad address: {e}"))?;
    let resp = tokio::time::timeout(f.config.request_timeout, f.http.request(req))
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("answered {}", resp.status()));
    }
    f.read_now.notify_one();
    let mut body = resp.into_body();
    let mut buffer = String::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        buffer.push_str(&String::from_utf8_lossy(data));
        while let Some(end) = buffer.find("\n\n") {
            let message: String = buffer.drain(..end + 2).collect();
            let data: String = message
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            if data.is_empty() {
                continue;
            }
            match serde_json::from_str::<Stamped>(&data) {
                Ok(stamped) => match effect(&stamped.event) {
                    Effect::TakeOut {
                        instance_id,
                        for_good,
                    } => {
                        let why = cause(&stamped.event);
                        take_out(f, &instance_id, for_good, why, &stamped.timestamp);
                        f.read_now.notify_one();
                    }
                    Effect::Read => f.read_now.notify_one(),
                    Effect::Nothing => {}
                },
                // An event this build does not know: read, to be safe.
                Err(_) => f.read_now.notify_one(),
            }
        }
    }
    Err("the stream ended".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: &str) -> Event {
        Event::StatusUpdateEvent {
            app_id: "/a".into(),
            task_id: "i".into(),
            instance_id: "i".into(),
            task_status: state.into(),
            message: None,
            host: "h".into(),
            agent_id: "a".into(),
            slave_id: "a".into(),
            ports: vec![],
            version: "v".into(),
            region: None,
            zone: None,
        }
    }

    #[test]
    fn events_that_end_an_instance_take_it_out_for_good_and_unreachable_ones_for_now() {
        let out = |for_good| Effect::TakeOut {
            instance_id: "i".into(),
            for_good,
        };
        for s in [
            "TASK_FAILED",
            "TASK_KILLED",
            "TASK_KILLING",
            "TASK_FINISHED",
            "TASK_GONE",
        ] {
            assert_eq!(effect(&status(s)), out(true), "{s}");
        }
        assert_eq!(effect(&status("TASK_UNREACHABLE")), out(false));
        assert_eq!(effect(&status("TASK_RUNNING")), Effect::Read);
        let sick = Event::HealthStatusChangedEvent {
            app_id: "/a".into(),
            instance_id: "i".into(),
            version: "v".into(),
            alive: false,
        };
        assert_eq!(effect(&sick), out(false));
        assert_eq!(
            effect(&Event::AppTerminatedEvent {
                app_id: "/a".into()
            }),
            Effect::Read
        );
    }
}
