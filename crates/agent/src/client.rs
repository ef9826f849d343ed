//! The agent's side of the master protocol (`state::protocol`): JSON over HTTP/1.1 to
//! whichever master answers. Masters are tried in turn; a master that does not answer, or
//! answers 5xx (no leader, forwarding failed), hands the call to the next one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use domain::AgentId;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, USER_AGENT};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;
use state::protocol::{
    Assignments, DEFINITIONS_ONCE, Heartbeat, HeartbeatAck, Registered, Registration,
    SharedAssignments, StatusReport,
};
use state::transport::Connector;
use tokio::sync::Notify;

/// Why a call to a master failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// No usable answer: connection refused, timeout, or a 5xx. Try another master.
    #[error("master {master} is unavailable: {reason}")]
    Unavailable {
        /// The master's address.
        master: String,
        /// What happened.
        reason: String,
    },
    /// The master answered with a 4xx status.
    #[error("master {master} answered {status}: {message}")]
    Refused {
        /// The master's address.
        master: String,
        /// The HTTP status.
        status: u16,
        /// The answer's `message`, or its body.
        message: String,
        /// The answer's `reason`, when it gives one (e.g. `state::protocol::AGENT_ID_IN_USE`).
        reason: Option<String>,
    },
    /// A 2xx answer whose body is not what the protocol says.
    #[error("master {master} sent an unreadable answer: {reason}")]
    Unreadable {
        /// The master's address.
        master: String,
        /// What was wrong.
        reason: String,
    },
}

impl CallError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The master's own words for a refusal (its `message`), else the whole error.
    pub fn message(&self) -> String {
        match self {
            CallError::Refused { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// The `reason` a refusal gives, if any.
    pub fn reason(&self) -> Option<&str> {
        match self {
            CallError::Refused { reason, .. } => reason.as_deref(),
            _ => None,
        }
    }
}

/// HTTP connections to the masters, shareable between the agents of one process (hollow
/// agents): clones share one pool, so a thousand agents do not open a thousand pools.
#[derive(Debug, Clone)]
pub struct MasterPool {
    http: Client<Connector, Full<Bytes>>,
}

impl MasterPool {
    /// A pool opening its connections with `connector`.
    pub fn new(connector: Connector) -> Self {
        // tokio's timer, not the system's clock, measures idle time (the same in
        // production; in the simulation it is the simulated clock).
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        MasterPool { http }
    }
}

/// A client for the masters' internal agent API.
#[derive(Debug)]
pub struct MasterClient {
    masters: Vec<String>,
    current: AtomicUsize,
    http: Client<Connector, Full<Bytes>>,
    timeout: Duration,
    user_agent: String,
    rotated: Notify,
}

impl MasterClient {
    /// A client for `masters` (`HOST:PORT` each, at least one); calls other than the
    /// long poll give up after `timeout`.
    pub fn new(masters: Vec<String>, timeout: Duration) -> Self {
        Self::with_connector(masters, timeout, Connector::tcp(Some(timeout)))
    }

    /// As [`MasterClient::new`], opening connections with `connector` (a test's or a
    /// simulation's transport).
    pub fn with_connector(masters: Vec<String>, timeout: Duration, connector: Connector) -> Self {
        Self::with_pool(masters, timeout, MasterPool::new(connector))
    }

    /// As [`MasterClient::new`], over connections from `pool` (shared with other clients).
    pub fn with_pool(masters: Vec<String>, timeout: Duration, pool: MasterPool) -> Self {
        let http = pool.http;
        let masters = masters
            .into_iter()
            .map(|m| {
                m.trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_string()
            })
            .collect();
        MasterClient {
            masters,
            current: AtomicUsize::new(0),
            http,
            timeout,
            rotated: Notify::new(),
            user_agent: format!("drover-agent/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// The master calls go to now.
    pub fn current(&self) -> &str {
        let i = self.current.load(Ordering::Relaxed) % self.masters.len().max(1);
        self.masters.get(i).map_or("", String::as_str)
    }

    /// The number of masters.
    pub fn len(&self) -> usize {
        self.masters.len()
    }

    /// True when no master is configured.
    pub fn is_empty(&self) -> bool {
        self.masters.is_empty()
    }

    /// Moves on to the next master (away from one that answers uselessly).
    pub fn rotate(&self) {
        let index = self.current.load(Ordering::Relaxed);
        self.rotate_from(index);
    }

    /// Moves on to the next master, unless another caller already did since `from`.
    fn rotate_from(&self, from: usize) {
        let next = (from + 1) % self.masters.len().max(1);
        if next != from
            && self
                .current
                .compare_exchange(from, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.rotated.notify_waiters();
        }
    }

    /// Completes when calls move on to another master (a long poll held open at the old
    /// one may never answer: a paused or cut-off master).
    pub async fn rotated(&self) {
        self.rotated.notified().await;
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<T, CallError> {
        self.call_then(method, path, body, timeout, Ok).await
    }

    /// [`Self::call`], with `then` checking the answer further (an `Err` is an unreadable
    /// answer from the master that sent it).
    async fn call_then<B: Serialize, T: DeserializeOwned, U>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        timeout: Duration,
        then: impl FnOnce(T) -> Result<U, String>,
    ) -> Result<U, CallError> {
        let index = self.current.load(Ordering::Relaxed) % self.masters.len().max(1);
        let master = self.masters.get(index).cloned().unwrap_or_default();
        let result = self.call_one(&master, method, path, body, timeout).await;
        if matches!(result, Err(CallError::Unavailable { .. })) {
            self.rotate_from(index);
        }
        then(result?).map_err(|reason| CallError::Unreadable { master, reason })
    }

    async fn call_one<B: Serialize, T: DeserializeOwned>(
        &self,
        master: &str,
        method: Method,
        path: &str,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<T, CallError> {
        let unavailable = |reason: String| CallError::Unavailable {
            master: master.to_string(),
            reason,
        };
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| unavailable(e.to_string()))?,
            None => Vec::new(),
        };
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{master}{path}"))
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, &self.user_agent)
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| unavailable(format!("bad master address: {e}")))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| unavailable(state::error::chain(&e)))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| unavailable(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, CallError>((status, body))
        };
        let (status, body) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| unavailable(format!("no answer within {}s", timeout.as_secs_f64())))??;
        if status.is_server_error() {
            return Err(unavailable(format!("{status}: {}", message_of(&body))));
        }
        if !status.is_success() {
            return Err(CallError::Refused {
                master: master.to_string(),
                status: status.as_u16(),
                message: message_of(&body),
                reason: serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("reason")?.as_str().map(str::to_string)),
            });
        }
        let body: &[u8] = if body.is_empty() { b"null" } else { &body };
        serde_json::from_slice(body).map_err(|e| CallError::Unreadable {
            master: master.to_string(),
            reason: e.to_string(),
        })
    }

    /// `POST /internal/agents/register`.
    pub async fn register(&self, registration: &Registration) -> Result<Registered, CallError> {
        self.call(
            Method::POST,
            "/internal/agents/register",
            Some(registration),
            self.timeout,
        )
        .await
    }

    /// `POST /internal/agents/{id}/heartbeat`, giving up after `timeout` (short: a slow
    /// master should not cost the agent its liveness at the leader).
    pub async fn heartbeat(
        &self,
        id: &AgentId,
        heartbeat: &Heartbeat,
        timeout: Duration,
    ) -> Result<HeartbeatAck, CallError> {
        let path = format!("/internal/agents/{id}/heartbeat");
        self.call(Method::POST, &path, Some(heartbeat), timeout)
            .await
    }

    /// The time limit of calls other than the long poll.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `GET /internal/agents/{id}/assignments?after=REV&wait_ms=MS` (a long poll).
    pub async fn assignments(
        &self,
        id: &AgentId,
        after: u64,
        wait: Duration,
    ) -> Result<Assignments, CallError> {
        let wait_ms = wait.as_millis();
        // Each app version's definition once (a master that does not know the parameter
        // answers each task with its own, which `SharedAssignments` reads as well).
        let path = format!(
            "/internal/agents/{id}/assignments?after={after}&wait_ms={wait_ms}&definitions={DEFINITIONS_ONCE}"
        );
        self.call_then::<(), _, _>(
            Method::GET,
            &path,
            None,
            wait + self.timeout,
            SharedAssignments::expand,
        )
        .await
    }

    /// `POST /internal/agents/{id}/status`.
    pub async fn report(&self, id: &AgentId, report: &StatusReport) -> Result<(), CallError> {
        let path = format!("/internal/agents/{id}/status");
        self.call::<_, serde_json::Value>(Method::POST, &path, Some(report), self.timeout)
            .await
            .map(|_| ())
    }
}

/// The `message` of a JSON error body, or the body's start as text.
fn message_of(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(m) = v.get("message").and_then(|m| m.as_str())
    {
        return m.to_string();
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(empty answer)".to_string()
    } else {
        text.chars().take(300).collect()
    }
}
