//! The event bus behind `GET /v2/events` (Marathon's SSE stream). Events are published on
//! the leader, where every request and agent report lands; followers relay the stream.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::clock;
use crate::node::Master;

/// How many events a slow subscriber may fall behind before it misses some.
const BACKLOG: usize = 4096;

/// One event: its Marathon type and its JSON (which includes `eventType` and `timestamp`).
#[derive(Debug, Clone)]
pub struct Event {
    /// Marathon's event type, e.g. `status_update_event`.
    pub event_type: &'static str,
    /// The event's JSON.
    pub body: Value,
}

/// Publishes events to every subscriber.
#[derive(Debug)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            sender: broadcast::channel(BACKLOG).0,
        }
    }
}

impl EventBus {
    /// Publishes an event; `fields` are merged with `eventType` and `timestamp`.
    pub fn publish(&self, event_type: &'static str, fields: Value) {
        let mut body = json!({"eventType": event_type, "timestamp": clock::iso(clock::now_ms())});
        if let (Some(b), Value::Object(f)) = (body.as_object_mut(), fields) {
            b.extend(f);
        }
        // No subscriber is not an error.
        let _ = self.sender.send(Event { event_type, body });
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}

/// `GET /v2/events[?event_type=T&event_type=U]`: the SSE stream.
pub async fn stream(
    State(m): State<Arc<Master>>,
    RawQuery(query): RawQuery,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    let wanted: Vec<String> = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.strip_prefix("event_type="))
        .map(str::to_string)
        .collect();
    let receiver = m.events.subscribe();
    m.events
        .publish("event_stream_attached", json!({"remoteAddress": "client"}));
    let detach = Detach(m.clone());
    let stream = futures_util::stream::unfold(
        (receiver, wanted, detach),
        |(mut receiver, wanted, detach)| async move {
            loop {
                match receiver.recv().await {
                    Ok(event)
                        if wanted.is_empty() || wanted.iter().any(|w| w == event.event_type) =>
                    {
                        let sse = SseEvent::default()
                            .event(event.event_type)
                            .data(event.body.to_string());
                        return Some((Ok(sse), (receiver, wanted, detach)));
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Publishes `event_stream_detached` when a subscriber goes away.
struct Detach(Arc<Master>);

impl Drop for Detach {
    fn drop(&mut self) {
        self.0
            .events
            .publish("event_stream_detached", json!({"remoteAddress": "client"}));
    }
}
