//! `POST /v1/plan` (and `drover plan --json`): where an app's instances would go, and why not.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A placement plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The masters' region.
    pub local_region: String,
    /// Live instances the app has already (the live cluster only; `drover plan` leaves it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<usize>,
    /// Where new instances would go, in order.
    pub placements: Vec<PlannedInstance>,
    /// New instances that find no agent.
    pub unplaced: u32,
    /// For those: how many agents each reason ruled out.
    pub reasons: BTreeMap<String, u32>,
}

/// One instance's place in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedInstance {
    /// The agent's id.
    pub agent_id: String,
    /// Its hostname.
    pub hostname: String,
    /// Its region.
    pub region: String,
    /// Its zone, when it has one.
    pub zone: Option<String>,
    /// The host ports the instance would get.
    pub ports: Vec<u64>,
}
