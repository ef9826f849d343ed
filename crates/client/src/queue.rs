//! `GET /v2/queue`: apps with instances waiting, and why; `GET /v2/queue/{app}/delay`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The answer of `GET /v2/queue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queue {
    /// One entry per app with unplaced instances.
    pub queue: Vec<QueueItem>,
}

/// One app waiting, with Marathon's fields (`queue.raml`); drover's counted reasons are in
/// `processedOffersSummary`, which Marathon fills with its offer statistics and strict
/// clients (marathon-python) keep as it comes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueItem {
    /// The app's definition as Marathon JSON.
    pub app: Map<String, Value>,
    /// Instances not placed.
    pub count: u32,
    /// The backoff delay.
    pub delay: Delay,
    /// Why the instances are not placed: each agent counts as one offer.
    pub processed_offers_summary: OffersSummary,
}

/// `processedOffersSummary` of a queue entry: the agents of the last placement attempt, as
/// Marathon counts offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OffersSummary {
    /// Agents ruled out in the last attempt.
    pub processed_offers_count: u32,
    /// The same agents: none of them took an instance.
    pub unused_offers_count: u32,
    /// Per reason, how many agents it ruled out (`declined`) of those checked (`processed`).
    pub reject_summary_last_offer: Vec<RejectReason>,
    /// drover's: why the scheduler could not decide about the app, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_error: Option<String>,
}

/// One reason agents were ruled out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectReason {
    /// drover's reason (`insufficient cpus`, `remote region`, …).
    pub reason: String,
    /// Agents it ruled out.
    pub declined: u32,
    /// Agents checked.
    pub processed: u32,
}

impl OffersSummary {
    /// The summary of agents ruled out per reason.
    pub fn from_reasons(reasons: &BTreeMap<String, u32>, scheduling_error: Option<String>) -> Self {
        let total: u32 = reasons.values().sum();
        OffersSummary {
            processed_offers_count: total,
            unused_offers_count: total,
            reject_summary_last_offer: reasons
                .iter()
                .map(|(reason, n)| RejectReason {
                    reason: reason.clone(),
                    declined: *n,
                    processed: total,
                })
                .collect(),
            scheduling_error,
        }
    }
}

/// The backoff delay of a queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delay {
    /// Seconds until the next launch attempt.
    pub time_left_seconds: u64,
    /// Whether the delay is over.
    pub overdue: bool,
}

/// The answer of `GET /v2/queue/{app}/delay` (Marathon's `DelayResult`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DelayResult {
    /// While the app waits in the launch queue: the time left and whether it is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_delay: Option<Delay>,
    /// The backoff delay after the app's latest failures, seconds (0 without one).
    pub current_delay_seconds: u64,
    /// The app's `maxLaunchDelaySeconds`.
    pub max_launch_delay_seconds: u64,
}

impl QueueItem {
    /// The app's id.
    pub fn app_id(&self) -> Option<&str> {
        self.app.get("id").and_then(Value::as_str)
    }

    /// How many agents each reason ruled out.
    pub fn unplaced_reasons(&self) -> BTreeMap<&str, u32> {
        self.processed_offers_summary
            .reject_summary_last_offer
            .iter()
            .map(|r| (r.reason.as_str(), r.declined))
            .collect()
    }

    /// Why the scheduler could not decide about the app, when it could not.
    pub fn scheduling_error(&self) -> Option<&str> {
        self.processed_offers_summary.scheduling_error.as_deref()
    }
}
