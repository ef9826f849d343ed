//! The event bus behind `GET /v2/events` (Marathon's SSE stream). Events are published on
//! the leader, where every request and agent report lands; followers relay the stream. The
//! events are `client::events`' types: the master sends what the CLI and the tests read.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
pub use client::events::Event;
use client::events::Stamped;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::auth::Caller;
use crate::clock::{self, Clock, SystemClock};

/// The `status_update_event` of an instance in `task_status` (Mesos's name, e.g.
/// `TASK_RUNNING`), with its agent's host and fault domain as `state` knows them.
pub fn status_update(
    state: &state::ClusterState,
    inst: &state::Instance,
    task_status: &str,
    message: Option<String>,
) -> Event {
    let agent = state.agent(&inst.agent_id).map(|r| &r.agent);
    Event::StatusUpdateEvent {
        app_id: inst.app_id.to_string(),
        task_id: inst.id.to_string(),
        instance_id: inst.id.to_string(),
        task_status: task_status.to_string(),
        message,
        host: agent.map(|a| a.hostname.clone()).unwrap_or_default(),
        agent_id: inst.agent_id.to_string(),
        slave_id: inst.agent_id.to_string(),
        ports: inst.ports.clone(),
        version: inst.app_version.clone(),
        region: agent.and_then(|a| a.region()).map(str::to_string),
        zone: agent.and_then(|a| a.zone()).map(str::to_string),
    }
}

/// How many events a slow subscriber may fall behind before it misses some.
const BACKLOG: usize = 4096;

/// One published event: its type and its JSON, with `eventType` and `timestamp`.
#[derive(Debug, Clone)]
pub struct Published {
    /// Marathon's event type, e.g. `status_update_event`.
    pub event_type: &'static str,
    /// The event's JSON.
    pub body: Value,
    /// The apps it is about ([`Event::apps`]), for streams that show only some apps'.
    pub apps: Arc<[String]>,
    /// The event as agents serving VIPs read it, made by the first of them to read it.
    for_vips: Arc<ForVips>,
}

impl Published {
    /// Its JSON as agents serving VIPs read it ([`crate::vips::event`]), if they read it:
    /// projected and encoded once, when the first VIP stream reads it, so that a cluster
    /// without VIPs never pays for it.
    fn for_vips(&self) -> Option<&Value> {
        let f = &self.for_vips;
        f.json
            .get_or_init(|| {
                crate::vips::event(&f.stamped.event).map(|event| {
                    encode(&Stamped {
                        event,
                        timestamp: f.stamped.timestamp.clone(),
                    })
                })
            })
            .as_ref()
    }
}

/// What [`Published::for_vips`] is made from, and what it made.
#[derive(Debug)]
struct ForVips {
    stamped: Stamped,
    json: std::sync::OnceLock<Option<Value>>,
}

/// An event's JSON. An event is strings, numbers and JSON values: it always encodes.
fn encode(stamped: &Stamped) -> Value {
    serde_json::to_value(stamped).unwrap_or_else(|_| json!({}))
}

/// Publishes events to every subscriber.
#[derive(Debug)]
pub struct EventBus {
    sender: broadcast::Sender<Published>,
    /// What stamps each event's `timestamp`.
    clock: Arc<dyn Clock>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }
}

impl EventBus {
    /// A bus whose events are stamped by `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        EventBus {
            sender: broadcast::channel(BACKLOG).0,
            clock,
        }
    }

    /// Publishes an event, stamped with the time of the bus's clock.
    pub fn publish(&self, event: Event) {
        // No subscriber is not an error.
        let _ = self.sender.send(self.stamp(event));
    }

    /// Publishes an event and returns its JSON, for the endpoints that answer with the event
    /// they caused (Marathon's `POST /v2/eventSubscriptions`).
    pub fn publish_and_show(&self, event: Event) -> Value {
        let published = self.stamp(event);
        let body = published.body.clone();
        let _ = self.sender.send(published);
        body
    }

    fn stamp(&self, event: Event) -> Published {
        let event_type = event.event_type();
        let apps = event.apps().into_iter().map(str::to_string).collect();
        let stamped = Stamped {
            event,
            timestamp: clock::iso(self.clock.now_ms()),
        };
        Published {
            event_type,
            body: encode(&stamped),
            apps,
            for_vips: Arc::new(ForVips {
                stamped,
                json: std::sync::OnceLock::new(),
            }),
        }
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.sender.subscribe()
    }
}

/// Which events a caller sees: all, or (a token that may write only under prefixes) those
/// whose apps are all under its prefixes, plus those about no app (see `docs/security.md`).
#[derive(Clone)]
enum Visible {
    All,
    Under(Arc<[String]>),
}

impl Visible {
    fn of(caller: Option<&Caller>) -> Self {
        match caller {
            Some(Caller(token)) if !token.reads_every_event() => {
                Visible::Under(token.app_prefixes().map(str::to_string).collect())
            }
            _ => Visible::All,
        }
    }

    fn shows(&self, event: &Published) -> bool {
        match self {
            Visible::All => true,
            Visible::Under(prefixes) => event
                .apps
                .iter()
                .all(|app| prefixes.iter().any(|p| app.starts_with(p.as_str()))),
        }
    }
}

/// `GET /v2/events[?event_type=T&event_type=U]`: the SSE stream, of the events the caller
/// may read.
pub async fn stream(
    State(events): State<Arc<EventBus>>,
    RawQuery(query): RawQuery,
    caller: Option<Extension<Caller>>,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    let visible = Visible::of(caller.as_ref().map(|Extension(c)| c));
    let wanted: Vec<String> = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.strip_prefix("event_type="))
        .map(str::to_string)
        .collect();
    let receiver = events.subscribe();
    events.publish(Event::EventStreamAttached {
        remote_address: "client".into(),
    });
    let detach = Detach(events);
    sse(receiver, move |event| {
        // Held by the stream: its end publishes `event_stream_detached`.
        let _held: &Detach = &detach;
        (asked_for(&wanted, event.event_type) && visible.shows(event)).then_some(&event.body)
    })
}

/// `GET /internal/agents/{id}/vip-events`: the SSE stream an agent serving VIPs follows, of
/// the events that change routes, without definitions (see [`crate::vips`]). Agents are
/// not announced as subscribers: every agent holds one.
pub async fn vip_stream(
    State(events): State<Arc<EventBus>>,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    sse(events.subscribe(), Published::for_vips)
}

/// The SSE stream of the events `show` gives a body for, kept alive every 15 s; a
/// subscriber that falls behind by more than the backlog misses events (a reader of routes
/// reads again on its own).
fn sse(
    receiver: broadcast::Receiver<Published>,
    show: impl Fn(&Published) -> Option<&Value> + Send + 'static,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    let stream =
        futures_util::stream::unfold((receiver, show), |(mut receiver, show)| async move {
            loop {
                match receiver.recv().await {
                    Ok(event) => {
                        let Some(body) = show(&event) else { continue };
                        let sse = SseEvent::default()
                            .event(event.event_type)
                            .data(body.to_string());
                        return Some((Ok(sse), (receiver, show)));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Whether a reader that asked for the types `wanted` (none: every type Marathon has) gets
/// an event of `event_type`.
fn asked_for(wanted: &[String], event_type: &str) -> bool {
    if wanted.is_empty() {
        client::events::shown_unasked(event_type)
    } else {
        wanted.iter().any(|w| w == event_type)
    }
}

/// Publishes `event_stream_detached` when a subscriber goes away.
struct Detach(Arc<EventBus>);

impl Drop for Detach {
    fn drop(&mut self) {
        self.0.publish(Event::EventStreamDetached {
            remote_address: "client".into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drovers_own_events_go_only_to_readers_that_ask_for_them() {
        let none: Vec<String> = Vec::new();
        assert!(asked_for(&none, "status_update_event"));
        assert!(!asked_for(&none, "eviction_protection_event"));
        let named = vec!["eviction_protection_event".to_string()];
        assert!(asked_for(&named, "eviction_protection_event"));
        assert!(!asked_for(&named, "status_update_event"));
    }

    #[test]
    fn events_carry_marathons_field_names_type_and_time() {
        let bus = EventBus::default();
        let mut rx = bus.subscribe();
        bus.publish(Event::StatusUpdateEvent {
            app_id: "/web".into(),
            task_id: "web.instance-1".into(),
            instance_id: "web.instance-1".into(),
            task_status: "TASK_RUNNING".into(),
            message: None,
            host: "h1".into(),
            agent_id: "a1".into(),
            slave_id: "a1".into(),
            ports: vec![31000],
            version: "v1".into(),
            region: Some("r".into()),
            zone: None,
        });
        let got = rx.try_recv().expect("published");
        assert_eq!(got.event_type, "status_update_event");
        let keys: Vec<&str> = got
            .body
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(
            (keys.first(), keys.last()),
            (Some(&"eventType"), Some(&"timestamp")),
            "Marathon's order: the type first, the time last"
        );
        let read: Stamped = client::decode("/v2/events", got.body.clone()).expect("decodes");
        assert_eq!(read.event.event_type(), "status_update_event");
        let mut body = got.body;
        let stamp = body
            .as_object_mut()
            .and_then(|b| b.remove("timestamp"))
            .expect("a timestamp");
        assert!(stamp.as_str().is_some_and(|t| t.ends_with('Z')), "{stamp}");
        assert_eq!(
            body,
            json!({
                "eventType": "status_update_event", "appId": "/web", "taskId": "web.instance-1",
                "instanceId": "web.instance-1", "taskStatus": "TASK_RUNNING", "message": null,
                "host": "h1", "agentId": "a1", "slaveId": "a1", "ports": [31000],
                "version": "v1", "region": "r", "zone": null,
            })
        );
        for e in [
            Event::AppTerminatedEvent {
                app_id: "/x".into(),
            },
            Event::EventStreamAttached {
                remote_address: "c".into(),
            },
        ] {
            let name = e.event_type();
            assert_eq!(
                serde_json::to_value(&e).expect("encodes")["eventType"],
                name
            );
        }
    }

    #[test]
    fn a_prefix_token_sees_its_apps_events_and_those_about_no_app_only() {
        let token = |policies: &[&str]| {
            Caller(Arc::new(state::acl::AclToken {
                accessor_id: "a".into(),
                secret_hash: "h".into(),
                name: "t".into(),
                policies: policies
                    .iter()
                    .map(|p| p.parse().expect("policy"))
                    .collect(),
                created_at_ms: 0,
                expires_at_ms: None,
            }))
        };
        let bus = EventBus::default();
        let mut rx = bus.subscribe();
        for app in ["/team-a/web", "/team-b/web"] {
            bus.publish(Event::AppTerminatedEvent { app_id: app.into() });
        }
        bus.publish(Event::EventStreamAttached {
            remote_address: "c".into(),
        });
        let events: Vec<Published> = (0..3).map(|_| rx.try_recv().expect("an event")).collect();
        let shown = |caller: Option<&Caller>| -> Vec<bool> {
            let visible = Visible::of(caller);
            events.iter().map(|e| visible.shows(e)).collect()
        };
        let team_a = token(&["apps-write:/team-a/"]);
        assert_eq!(shown(Some(&team_a)), [true, false, true]);
        let reader = token(&["read"]);
        assert_eq!(shown(Some(&reader)), [true, true, true]);
        assert_eq!(
            shown(None),
            [true, true, true],
            "--insecure shows everything"
        );
    }

    #[test]
    fn events_are_stamped_by_the_bus_s_clock() {
        let clock = Arc::new(crate::clock::ManualClock::at(1_795_290_901_123));
        let bus = EventBus::with_clock(clock.clone());
        let mut events = bus.subscribe();
        let terminated = || Event::AppTerminatedEvent {
            app_id: "/x".into(),
        };
        bus.publish(terminated());
        clock.advance(Duration::from_secs(2));
        bus.publish(terminated());
        let stamps: Vec<Value> = (0..2)
            .map(|_| events.try_recv().expect("an event").body["timestamp"].clone())
            .collect();
        assert_eq!(
            stamps,
            [
                json!("2026-11-21T19:55:01.123Z"),
                json!("2026-11-21T19:55:03.123Z")
            ]
        );
    }
}
