//! `GET /v2/queue`: apps with instances waiting, and why.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The answer of `GET /v2/queue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queue {
    /// One entry per app with unplaced instances.
    pub queue: Vec<QueueItem>,
}

/// One app waiting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueItem {
    /// The app's definition as Marathon JSON.
    pub app: Map<String, Value>,
    /// Instances not placed.
    pub count: u32,
    /// The backoff delay.
    pub delay: Delay,
    /// How many agents each reason ruled out.
    pub unplaced_reasons: BTreeMap<String, u32>,
    /// Why the scheduler could not decide about the app, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_error: Option<String>,
}

/// The backoff delay of a queue entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delay {
    /// Seconds until the next launch attempt.
    pub time_left_seconds: u64,
    /// Whether the delay is over.
    pub overdue: bool,
}

impl QueueItem {
    /// The app's id.
    pub fn app_id(&self) -> Option<&str> {
        self.app.get("id").and_then(Value::as_str)
    }
}
