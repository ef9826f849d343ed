//! HTTP callback subscriptions (Marathon's `http_callback` event subscriber): the leader
//! POSTs every event it publishes to each subscribed URL.
//!
//! The subscribed URLs are replicated state (`Command::Subscribe`); delivering is leader-only
//! work ([`CallbackDelivery`], a [`LeaderService`]). One dispatch loop takes the events from
//! the [`EventBus`] in the order the bus publishes them (the order `/v2/events` shows) and
//! puts each into every subscriber's [`Outbox`] without waiting; one task per subscriber
//! POSTs them in that order, each with a timeout and retries with backoff. A subscriber that
//! is slow or never answers fills only its own outbox, whose oldest events are then dropped
//! (counted, logged at WARN): the leader, the event stream and the other subscribers go on.
//!
//! Delivery is at most once per leader: a new leader delivers the events it publishes from
//! its election on; what the old leader had queued or was retrying is lost with it.

pub mod outbox;
pub mod url;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Request, header};
use http_body_util::{BodyExt, Limited};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::events::{EventBus, Published};
use crate::leadership::{LeaderService, ServiceFuture};
use crate::node::RaftNode;
use crate::peer::PeerClient;
pub use outbox::Outbox;
pub use url::{CallbackUrl, UrlError};

/// How many times one event is POSTed before it counts as failed.
pub const ATTEMPTS: u32 = 3;

/// The pause before the first retry; it doubles before each further one.
pub const FIRST_RETRY: Duration = Duration::from_millis(200);

/// The most of a subscriber's answer that is read (and thrown away).
const ANSWER_LIMIT: usize = 64 * 1024;

/// How the leader delivers events to HTTP callback subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackConfig {
    /// Events held per subscriber before its oldest are dropped.
    pub queue: usize,
    /// How long one POST may take, connecting included.
    pub timeout: Duration,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        CallbackConfig {
            queue: 1024,
            timeout: Duration::from_secs(10),
        }
    }
}

/// What happened to one subscriber's events: each event given to it ends up counted once,
/// as delivered, failed or dropped (or is still queued or being sent).
#[derive(Debug, Default)]
pub struct Counts {
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

impl Counts {
    fn add(counter: &AtomicU64, n: u64) -> u64 {
        counter.fetch_add(n, Ordering::Relaxed) + n
    }

    /// Events the subscriber answered with a 2xx.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Events given up after [`ATTEMPTS`] POSTs that failed.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Events dropped unsent because the subscriber's outbox was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Every subscriber's [`Counts`], by URL, for `/metrics`; kept while the URL is subscribed.
#[derive(Debug, Default)]
pub struct CallbackMetrics {
    by_url: Mutex<BTreeMap<String, Arc<Counts>>>,
}

impl CallbackMetrics {
    /// The counts of `url`, made when first asked for.
    pub fn of(&self, url: &str) -> Arc<Counts> {
        self.lock().entry(url.to_string()).or_default().clone()
    }

    /// Forgets the counts of URLs no longer subscribed.
    fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.lock().retain(|url, _| keep(url));
    }

    /// The Prometheus series, labelled with this master's id and each URL.
    pub fn render(&self, master: u64, out: &mut String) {
        let by_url = self.lock();
        for (name, help, value) in [
            (
                "drover_event_callback_delivered_total",
                "Events POSTed to a callback URL and answered with a 2xx.",
                Counts::delivered as fn(&Counts) -> u64,
            ),
            (
                "drover_event_callback_failed_total",
                "Events given up after every POST to a callback URL failed (no answer in time, refused, or not 2xx).",
                Counts::failed,
            ),
            (
                "drover_event_callback_dropped_total",
                "Events dropped unsent because the callback URL's queue was full.",
                Counts::dropped,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (url, counts) in by_url.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{master=\"{master}\",callback_url=\"{}\"}} {}",
                    label_value(url),
                    value(counts)
                );
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Counts>>> {
        self.by_url
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// True for the counts worth a WARN: the first, and every hundredth after it (a subscriber
/// that is down must not flood the log).
fn worth_a_warning(count: u64) -> bool {
    count % 100 == 1
}

/// The leader's delivery of events to the subscribed callback URLs.
pub struct CallbackDelivery {
    node: Arc<RaftNode>,
    events: Arc<EventBus>,
    metrics: Arc<CallbackMetrics>,
    config: CallbackConfig,
}

impl CallbackDelivery {
    /// The service: subscriptions read from `node`'s state, events taken from `events`,
    /// POSTed with `node`'s HTTP client.
    pub fn new(
        node: Arc<RaftNode>,
        events: Arc<EventBus>,
        metrics: Arc<CallbackMetrics>,
        config: CallbackConfig,
    ) -> Self {
        CallbackDelivery {
            node,
            events,
            metrics,
            config,
        }
    }
}

impl LeaderService for CallbackDelivery {
    fn name(&self) -> &'static str {
        "event callbacks"
    }

    fn run(&self, _term: u64) -> ServiceFuture {
        let dispatch = Dispatch {
            node: self.node.clone(),
            metrics: self.metrics.clone(),
            config: self.config,
            subscribers: BTreeMap::new(),
            unusable: BTreeSet::new(),
        };
        // Subscribed before the first await: nothing published from now on is missed.
        let events = self.events.subscribe();
        Box::pin(dispatch.run(events))
    }
}

/// One subscriber while this master leads: its outbox and the task that empties it.
struct Subscriber {
    outbox: Arc<Outbox<Bytes>>,
    counts: Arc<Counts>,
    task: JoinHandle<()>,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        // Unsubscribed, or leadership lost (the dispatch loop was aborted): stop at once.
        self.task.abort();
    }
}

/// The dispatch loop's state: the subscribers it feeds.
struct Dispatch {
    node: Arc<RaftNode>,
    metrics: Arc<CallbackMetrics>,
    config: CallbackConfig,
    subscribers: BTreeMap<String, Subscriber>,
    /// Stored URLs that no longer parse, already reported.
    unusable: BTreeSet<String>,
}

impl Dispatch {
    async fn run(mut self, mut events: tokio::sync::broadcast::Receiver<Published>) {
        let mut applied = self.node.state().subscribe();
        self.follow_subscriptions();
        loop {
            tokio::select! {
                // Events first: a burst is queued before the state is looked at again.
                biased;
                received = events.recv() => match received {
                    Ok(event) => self.dispatch(&event),
                    Err(RecvError::Lagged(missed)) => self.missed(missed),
                    Err(RecvError::Closed) => return,
                },
                changed = applied.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.follow_subscriptions();
                }
            }
        }
    }

    /// Starts delivering to URLs newly subscribed and stops for those unsubscribed.
    fn follow_subscriptions(&mut self) {
        let urls = self
            .node
            .state()
            .read(|a| a.state.event_subscriptions().clone());
        self.subscribers.retain(|url, _| urls.contains(url));
        self.metrics.retain(|url| urls.contains(url));
        for url in urls {
            if self.subscribers.contains_key(&url) {
                continue;
            }
            // Stored URLs were checked when subscribed; one that no longer parses (a rule
            // tightened since) is skipped, said once per term.
            let target = match CallbackUrl::parse(&url) {
                Ok(target) => target,
                Err(e) => {
                    if self.unusable.insert(url.clone()) {
                        tracing::warn!(url, "not delivering events to a stored callback URL: {e}");
                    }
                    continue;
                }
            };
            let outbox = Arc::new(Outbox::new(self.config.queue));
            let counts = self.metrics.of(&url);
            let task = tokio::spawn(deliver(
                target,
                outbox.clone(),
                counts.clone(),
                self.node.peers().clone(),
                self.config.timeout,
            ));
            tracing::info!(url, "delivering events to a callback URL");
            self.subscribers.insert(
                url,
                Subscriber {
                    outbox,
                    counts,
                    task,
                },
            );
        }
    }

    /// Queues one event for every subscriber.
    fn dispatch(&mut self, event: &Published) {
        if matches!(event.event_type, "subscribe_event" | "unsubscribe_event") {
            // Committed before it was published: a new subscriber gets its own
            // subscribe_event first, a removed one no more events.
            self.follow_subscriptions();
        }
        // Marathon's http_callback carries Marathon's event types only: strict clients
        // refuse others (see `client::events::DROVER_EVENT_TYPES`).
        if self.subscribers.is_empty() || !client::events::shown_unasked(event.event_type) {
            return;
        }
        let body = Bytes::from(event.body.to_string());
        for (url, s) in &self.subscribers {
            if s.outbox.push(body.clone()).is_some() {
                let dropped = Counts::add(&s.counts.dropped, 1);
                if worth_a_warning(dropped) {
                    tracing::warn!(
                        url,
                        dropped,
                        queue = self.config.queue,
                        "a callback subscriber's queue is full: its oldest event was dropped ({dropped} so far); it answers too slowly or not at all"
                    );
                }
            }
        }
    }

    /// The dispatch loop fell behind the bus and missed events: every subscriber missed them.
    fn missed(&mut self, missed: u64) {
        tracing::warn!(
            missed,
            "the event callback dispatch fell behind the event bus: {missed} events were not queued for any subscriber"
        );
        for s in self.subscribers.values() {
            Counts::add(&s.counts.dropped, missed);
        }
    }
}

/// Empties one subscriber's outbox, oldest first: each event POSTed up to [`ATTEMPTS`]
/// times, with a doubling pause between attempts.
async fn deliver(
    url: CallbackUrl,
    outbox: Arc<Outbox<Bytes>>,
    counts: Arc<Counts>,
    client: PeerClient,
    timeout: Duration,
) {
    loop {
        let body = outbox.next().await;
        let mut pause = FIRST_RETRY;
        for attempt in 1..=ATTEMPTS {
            match post(&client, &url, body.clone(), timeout).await {
                Ok(()) => {
                    Counts::add(&counts.delivered, 1);
                    break;
                }
                Err(why) if attempt < ATTEMPTS => {
                    tracing::debug!(url = url.as_str(), attempt, "event POST failed: {why}");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(why) => {
                    let failed = Counts::add(&counts.failed, 1);
                    if worth_a_warning(failed) {
                        tracing::warn!(
                            url = url.as_str(),
                            failed,
                            "an event was not delivered to a callback URL after {ATTEMPTS} attempts ({failed} so far): {why}"
                        );
                    }
                }
            }
        }
    }
}

/// One POST of an event; `Ok` when the subscriber answered 2xx within `timeout`. No
/// credentials are sent: a subscriber URL pointing at the cluster's own API gets nothing a
/// token would allow.
async fn post(
    client: &PeerClient,
    url: &CallbackUrl,
    body: Bytes,
    timeout: Duration,
) -> Result<(), String> {
    let request = Request::post(url.uri().clone())
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::USER_AGENT,
            concat!("drover/", env!("CARGO_PKG_VERSION")),
        )
        .body(Body::from(body))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let exchange = async {
        let response = client
            .send(request)
            .await
            .map_err(|e| crate::peer::innermost(&e))?;
        let status = response.status();
        // Read (a bounded part of) the answer, so the connection can be reused.
        let _ = Limited::new(response.into_body(), ANSWER_LIMIT)
            .collect()
            .await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("answered {status}"))
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use axum::http::StatusCode;
    use axum::routing::post;
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    use state::transport::{Connector, Stream};

    use super::*;

    /// A client whose every connection reaches a subscriber that answers 500 to its first
    /// `failures` POSTs and 200 after, recording the bodies it accepted.
    fn subscriber(failures: u32) -> (PeerClient, Arc<AtomicU32>, Arc<Mutex<Vec<String>>>) {
        let calls = Arc::new(AtomicU32::new(0));
        let accepted: Arc<Mutex<Vec<String>>> = Arc::default();
        let (c, a) = (calls.clone(), accepted.clone());
        let app = axum::Router::new().route(
            "/cb",
            post(move |body: String| {
                let (c, a) = (c.clone(), a.clone());
                async move {
                    if c.fetch_add(1, Ordering::SeqCst) < failures {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    a.lock().unwrap().push(body);
                    StatusCode::OK
                }
            }),
        );
        let client = PeerClient::with_connector(Connector::new(move |_uri: hyper::Uri| {
            let (client, server) = tokio::io::duplex(64 * 1024);
            let service = TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(server), service)
                    .await;
            });
            async move { Ok(Stream::tokio(client)) }
        }));
        (client, calls, accepted)
    }

    /// Polls `done` until it holds (a liveness bound, not a timing assertion).
    async fn until(done: impl Fn() -> bool) {
        tokio::time::timeout(Duration::from_secs(60), async {
            while !done() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the deliveries ended");
    }

    /// A delivery task for `client`'s subscriber, with its outbox holding two events.
    fn delivering(client: PeerClient) -> (Arc<Counts>, JoinHandle<()>) {
        let outbox = Arc::new(Outbox::new(8));
        let counts = Arc::new(Counts::default());
        let url = CallbackUrl::parse("http://subscriber.test/cb").expect("a URL");
        outbox.push(Bytes::from_static(br#"{"n":1}"#));
        outbox.push(Bytes::from_static(br#"{"n":2}"#));
        let task = tokio::spawn(deliver(
            url,
            outbox,
            counts.clone(),
            client,
            Duration::from_secs(30),
        ));
        (counts, task)
    }

    #[tokio::test]
    async fn a_failed_post_is_retried_and_events_stay_in_order() {
        let (client, calls, accepted) = subscriber(ATTEMPTS - 1);
        let (counts, task) = delivering(client);
        until(|| counts.delivered() == 2).await;
        task.abort();
        assert_eq!(*accepted.lock().unwrap(), [r#"{"n":1}"#, r#"{"n":2}"#]);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            ATTEMPTS + 1,
            "retries of the first, then one POST of the second"
        );
        assert_eq!((counts.failed(), counts.dropped()), (0, 0));
    }

    #[tokio::test]
    async fn an_event_is_given_up_after_its_attempts_and_the_next_one_is_sent() {
        let (client, calls, accepted) = subscriber(ATTEMPTS);
        let (counts, task) = delivering(client);
        until(|| counts.delivered() == 1).await;
        task.abort();
        assert_eq!(
            counts.failed(),
            1,
            "the first event failed {ATTEMPTS} times"
        );
        assert_eq!(*accepted.lock().unwrap(), [r#"{"n":2}"#]);
        assert_eq!(calls.load(Ordering::SeqCst), ATTEMPTS + 1);
    }

    #[test]
    fn metrics_name_each_subscriber_and_escape_its_url() {
        let metrics = CallbackMetrics::default();
        let counts = metrics.of("http://h.example/a\"b");
        Counts::add(&counts.delivered, 3);
        Counts::add(&counts.dropped, 2);
        let mut out = String::new();
        metrics.render(7, &mut out);
        assert!(
            out.contains(
                "drover_event_callback_delivered_total{master=\"7\",callback_url=\"http://h.example/a\\\"b\"} 3"
            ),
            "{out}"
        );
        assert!(out.contains("drover_event_callback_failed_total{master=\"7\",callback_url=\"http://h.example/a\\\"b\"} 0"));
        assert!(out.contains("drover_event_callback_dropped_total{master=\"7\",callback_url=\"http://h.example/a\\\"b\"} 2"));
        metrics.retain(|_| false);
        let mut out = String::new();
        metrics.render(7, &mut out);
        assert!(!out.contains("callback_url"), "{out}");
    }

    #[test]
    fn warnings_are_the_first_and_every_hundredth() {
        let warned: Vec<u64> = (1..=250).filter(|n| worth_a_warning(*n)).collect();
        assert_eq!(warned, [1, 101, 201]);
    }
}
