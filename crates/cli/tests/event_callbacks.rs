//! HTTP callback event subscriptions (issue 14, scope 7), across processes: three real
//! `drover master` processes and an agent on loopback, and three subscribers served by this
//! test on 127.0.0.1: two that record what they are POSTed and answer 200, and one that
//! accepts connections and never answers.
//!
//! The recording subscribers get every event, in the order `/v2/events` shows it, with no
//! gap, while the silent one's requests time out and its queue overflows; the API keeps
//! answering meanwhile. Unsubscribing stops delivery; the subscriptions survive the leader's
//! death, and the new leader delivers to the same URLs.

mod agent_support;
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use agent_support::events::EventStream;
use agent_support::{SETTLE, Site};
use client::EventSubscriptions;
use client::events::{Event, Stamped};
use common::http;
use serde_json::{Value, json};

/// The silent subscriber's queue bound and request timeout given to the masters: small, so
/// its queue overflows within the test.
const QUEUE: &str = "16";
const TIMEOUT_MS: &str = "1000";

/// One request a subscriber received.
#[derive(Debug, Clone)]
struct Received {
    /// Header lines, lower-cased names.
    headers: Vec<(String, String)>,
    /// The body, as JSON.
    body: Value,
}

/// A subscriber on 127.0.0.1: it answers 200 to every POST and records it, or never answers.
struct Subscriber {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    connections: Arc<AtomicUsize>,
}

impl Subscriber {
    /// One that records each request and answers `200 OK`.
    fn answering() -> Self {
        Self::serve(true)
    }

    /// One that accepts connections, reads what comes, and never answers.
    fn silent() -> Self {
        Self::serve(false)
    }

    fn serve(answers: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a subscriber");
        let addr = listener.local_addr().expect("its address");
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let connections: Arc<AtomicUsize> = Arc::default();
        let (rx, conns) = (received.clone(), connections.clone());
        // The threads end with the test process.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                conns.fetch_add(1, Ordering::SeqCst);
                let rx = rx.clone();
                std::thread::spawn(move || {
                    if answers {
                        answer_each(stream, &rx);
                    } else {
                        hold(stream);
                    }
                });
            }
        });
        Subscriber {
            url: format!("http://{addr}/drover/events?via=test"),
            received,
            connections,
        }
    }

    /// What it received so far.
    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// The events it received so far, decoded as the stream's are.
    fn events(&self) -> Vec<Event> {
        self.received()
            .into_iter()
            .map(|r| {
                client::decode::<Stamped>("a callback POST", r.body.clone())
                    .unwrap_or_else(|e| panic!("a callback body is not an event: {e}: {}", r.body))
                    .event
            })
            .collect()
    }
}

/// Reads requests off one connection (keep-alive), records each and answers 200.
fn answer_each(stream: TcpStream, received: &Mutex<Vec<Received>>) {
    let mut writer = stream.try_clone().expect("clone the connection");
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        assert!(line.starts_with("POST "), "a callback is a POST: {line}");
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .expect("a callback POST has a Content-Length");
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body = serde_json::from_slice(&body).expect("a callback body is JSON");
        // Recorded before the answer: the next event is sent only after it.
        received
            .lock()
            .expect("lock")
            .push(Received { headers, body });
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

/// Reads and throws away everything, never answering, until the master gives up.
fn hold(mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    while stream.read(&mut buf).is_ok_and(|n| n > 0) {}
}

/// `callbackUrl=…`, URL-encoded as clients send it.
fn query(url: &str) -> String {
    let mut out = String::from("?callbackUrl=");
    for b in url.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn subscribe(addr: &str, url: &str) {
    let r = http::request(
        addr,
        "POST",
        &format!("/v2/eventSubscriptions{}", query(url)),
        None,
        http::DEFAULT_TIMEOUT,
    )
    .expect("an answer");
    assert_eq!(r.status, 200, "subscribe {url}: {r}");
    assert_eq!(r.body_json["eventType"], "subscribe_event", "{r}");
    assert_eq!(r.body_json["callbackUrl"], url, "{r}");
}

/// A subscriber's counter in the leader's `/metrics` (each master answers that itself; the
/// leader delivers), once the series is there.
fn counter(leader: &str, name: &str, url: &str) -> Option<u64> {
    let text = http::get(leader, "/metrics").ok()?.body;
    let label = format!("callback_url=\"{url}\"}} ");
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find_map(|l| l.split_once(&label)?.1.trim().parse().ok())
}

fn terminated(app: &str) -> impl Fn(&Event) -> bool + '_ {
    move |e| matches!(e, Event::AppTerminatedEvent { app_id } if app_id == app)
}

/// `got` (a subscriber's events up to `app`'s `app_terminated_event`) must be a run of the
/// stream's events with nothing left out, starting with its own `subscribe_event`.
fn assert_same_run(seen: &[Event], got: &[Event], url: &str, app: &str) {
    let end = got
        .iter()
        .position(terminated(app))
        .unwrap_or_else(|| panic!("{url} got no app_terminated_event of {app}: {got:#?}"));
    let got = &got[..=end];
    assert!(
        matches!(&got[0], Event::SubscribeEvent { callback_url, .. } if callback_url == url),
        "{url}'s first event is its own subscribe_event: {:#?}",
        got[0]
    );
    let start = seen
        .iter()
        .position(|e| *e == got[0])
        .unwrap_or_else(|| panic!("{url}'s subscribe_event is not on the stream: {seen:#?}"));
    let stream_end = seen
        .iter()
        .position(terminated(app))
        .expect("the stream saw the app end");
    assert_eq!(
        got,
        &seen[start..=stream_end],
        "{url} got exactly the stream's events from its subscription on, in order"
    );
}

#[test]
fn subscribers_get_every_event_in_order_a_silent_one_slows_nobody_and_subscriptions_survive_failover()
 {
    let good = Subscriber::answering();
    let other = Subscriber::answering();
    let silent = Subscriber::silent();
    let mut s = Site::new("event-callbacks", 3);
    s.masters.extra_args = [
        "--event-callback-queue",
        QUEUE,
        "--event-callback-timeout-ms",
        TIMEOUT_MS,
    ]
    .map(String::from)
    .to_vec();
    s.start_masters();
    let a = s.add_agent("agent-a", "local", "local-a");
    s.start_agent_active(a);
    let leader = s.masters.wait_for_leader(SETTLE);

    // Bad URLs are refused saying why; nothing is subscribed.
    for (q, status, says) in [
        (String::new(), 400, "Missing the callbackUrl"),
        (query("ftp://127.0.0.1/x"), 422, "http only"),
        (query("127.0.0.1:9/x"), 422, "no scheme"),
        (query("http://user:pw@127.0.0.1:9/x"), 422, "credentials"),
        (
            query(&format!("http://h.example/{}", "a".repeat(2100))),
            422,
            "2 KiB",
        ),
    ] {
        for method in ["POST", "DELETE"] {
            let r = http::request(
                &leader,
                method,
                &format!("/v2/eventSubscriptions{q}"),
                None,
                http::DEFAULT_TIMEOUT,
            )
            .expect("an answer");
            assert_eq!(r.status, status, "{method} {q}: {r}");
            assert!(r.message().contains(says), "{method} {q}: {r}");
        }
    }

    let mut stream = EventStream::open(&leader, &[]).expect("the event stream opens");
    for sub in [&good, &other, &silent] {
        subscribe(&leader, &sub.url);
    }
    let listed: EventSubscriptions = http::get(&leader, "/v2/eventSubscriptions")
        .expect("an answer")
        .typed();
    let mut want = vec![good.url.clone(), other.url.clone(), silent.url.clone()];
    want.sort();
    assert_eq!(listed.callback_urls, want);

    // Create and scale an app until the silent subscriber's queue has overflowed.
    let app_id = "/subs/web";
    let app = |n: u32| json!({"id": app_id, "cmd": "exec sleep 100000", "instances": n, "cpus": 0.05, "mem": 16});
    s.create_app(&app(1));
    s.wait_running(app_id, 1);
    let silent_dropped =
        || counter(&leader, "drover_event_callback_dropped_total", &silent.url).unwrap_or(0);
    let mut instances = 1;
    for _ in 0..10 {
        if silent_dropped() > 0 {
            break;
        }
        instances = 3 - instances;
        s.put_app(&app(instances));
        s.wait_running(app_id, instances as usize);
    }
    assert!(
        silent_dropped() > 0,
        "the silent subscriber's queue never overflowed: {}",
        http::get(&leader, "/metrics")
            .map(|r| r.body)
            .unwrap_or_default()
    );
    // With its queue full, the API answers and the others get everything.
    s.put_app(&app(3 - instances));
    s.wait_running(app_id, (3 - instances) as usize);
    let r = http::delete(&leader, &format!("/v2/apps{app_id}")).expect("an answer");
    assert!(r.is_success(), "{r}");
    stream
        .wait_for(SETTLE, |e| terminated(app_id)(e).then_some(()))
        .unwrap_or_else(|| s.fail(&format!("the stream never showed {app_id} end")));
    for sub in [&good, &other] {
        s.wait_until(SETTLE, &format!("{} got {app_id}'s end", sub.url), |_| {
            sub.events().iter().any(terminated(app_id))
        });
        assert_same_run(stream.seen(), &sub.events(), &sub.url, app_id);
    }
    // Every recorded request was a JSON POST without credentials.
    for r in good.received() {
        assert!(
            r.headers
                .iter()
                .any(|(n, v)| n == "content-type" && v == "application/json"),
            "{r:?}"
        );
        assert!(
            !r.headers.iter().any(|(n, _)| n == "authorization"),
            "no credentials are sent to subscribers: {r:?}"
        );
    }
    // The counts say what happened: the silent one was tried, timed out and overflowed.
    assert!(silent.connections.load(Ordering::SeqCst) > 0);
    assert!(silent.received().is_empty());
    s.wait_until(
        SETTLE,
        "the silent subscriber's events count as failed",
        |_| {
            counter(&leader, "drover_event_callback_failed_total", &silent.url)
                .is_some_and(|n| n > 0)
        },
    );
    let delivered = good.received().len() as u64;
    s.wait_until(
        SETTLE,
        "the good subscriber's deliveries are counted",
        |_| {
            counter(&leader, "drover_event_callback_delivered_total", &good.url)
                .is_some_and(|n| n >= delivered)
        },
    );
    assert_eq!(
        counter(&leader, "drover_event_callback_dropped_total", &good.url),
        Some(0)
    );

    // Unsubscribing stops delivery.
    let r = http::request(
        &leader,
        "DELETE",
        &format!("/v2/eventSubscriptions{}", query(&good.url)),
        None,
        http::DEFAULT_TIMEOUT,
    )
    .expect("an answer");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.body_json["eventType"], "unsubscribe_event", "{r}");

    // Unsubscribed, it gets nothing more: an app made now reaches the other subscriber only.
    let posted = |app: &'static str| move |e: &Event| matches!(e, Event::ApiPostEvent { app_definition, .. } if app_definition["id"] == app);
    let idle = |id: &str| json!({"id": id, "cmd": "exec sleep 100000", "instances": 0, "cpus": 0.05, "mem": 16});
    let unsubscribed = "/subs/after-unsubscribe";
    s.create_app(&idle(unsubscribed));
    s.wait_until(SETTLE, "the other subscriber gets the next app", |_| {
        other.events().iter().any(posted(unsubscribed))
    });

    // The leader dies; the new one delivers to the subscriptions that remain.
    let leader_id = s.masters.id_of(&leader);
    s.masters.kill(leader_id);
    let new_leader = s.masters.wait_for_new_leader(&leader, SETTLE);
    let listed: EventSubscriptions = http::get(&new_leader, "/v2/eventSubscriptions")
        .expect("an answer")
        .typed();
    let mut want = vec![other.url.clone(), silent.url.clone()];
    want.sort();
    assert_eq!(listed.callback_urls, want, "subscriptions are replicated");
    let after = "/subs/after-failover";
    s.create_app(&idle(after));
    s.wait_until(
        SETTLE,
        "the new leader delivers to the remaining subscriber",
        |_| other.events().iter().any(posted(after)),
    );
    let good_events = good.events();
    assert!(
        !good_events
            .iter()
            .any(|e| posted(unsubscribed)(e) || posted(after)(e)),
        "an unsubscribed URL got an event: {good_events:#?}"
    );
    assert!(
        !good_events
            .iter()
            .any(|e| matches!(e, Event::UnsubscribeEvent { .. })),
        "an unsubscribed URL is not sent its own unsubscribe_event"
    );
}
