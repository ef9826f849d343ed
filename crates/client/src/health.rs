//! `GET /v1/cluster/health`: checks an operator reads before trusting the cluster.

use serde::{Deserialize, Serialize};

/// A check's verdict, and the overall one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Pass,
    /// Works, but look.
    Warn,
    /// Broken: act.
    Fail,
}

impl Status {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// The answer of `GET /v1/cluster/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterHealth {
    /// The worst status of the checks.
    pub status: Status,
    /// The checks, in a fixed order.
    pub checks: Vec<Check>,
    /// Each zone's state as the last scheduler pass assessed it.
    pub zones: Vec<ZoneHealth>,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Its name, `masters-count`, `eviction-protection`, …
    pub name: String,
    /// Its verdict.
    pub status: Status,
    /// Why, in words.
    pub reason: String,
    /// The zones' states (only on `eviction-protection`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<ZoneHealth>>,
}

impl Check {
    /// A check without zones.
    pub fn new(name: &str, status: Status, reason: String) -> Self {
        Check {
            name: name.to_string(),
            status,
            reason,
            zones: None,
        }
    }
}

/// A zone's state: `healthy`, `partly-unreachable`, `outage` or `cut-off`, with its counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneHealth {
    /// The zone's name.
    pub zone: String,
    /// Its state.
    pub state: String,
    /// Agents in it.
    pub agents: usize,
    /// Of those, unreachable.
    pub unreachable: usize,
}
