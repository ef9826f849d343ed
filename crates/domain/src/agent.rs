//! Agents: the nodes that run tasks, with their fault domain, resources and attributes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::attributes::Attributes;
use crate::fault_domain::FaultDomain;
use crate::resources::Resources;

/// An agent's stable identity, kept in its work dir across restarts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentId(pub String);

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for AgentId {
    fn from(s: &str) -> Self {
        AgentId(s.to_string())
    }
}

/// An agent as the registry knows it.
///
/// Unknown fields are ignored: an agent is read from the wire and from the replicated state,
/// where a newer agent or master may have added one during a rolling upgrade. Files that
/// operators write are checked for unknown fields (typos) where they are read
/// ([`crate::inventory::Inventory::parse`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    /// Stable id.
    pub id: AgentId,
    /// Hostname, matched by `hostname` constraints.
    pub hostname: String,
    /// Address other nodes reach it at; unique among live agents.
    pub ip: String,
    /// Region and zone; an agent without one counts as local.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<FaultDomain>,
    /// Resources the agent offers.
    #[serde(default)]
    pub resources: Resources,
    /// Attributes, matched by attribute constraints (names and values checked as
    /// `--attributes` checks them).
    #[serde(
        default,
        deserialize_with = "crate::attributes::deserialize_attributes"
    )]
    pub attributes: Attributes,
}

impl Agent {
    /// The agent's region, if it has a fault domain.
    pub fn region(&self) -> Option<&str> {
        self.domain.as_ref().map(|d| d.region.as_str())
    }

    /// The agent's zone, if it has a fault domain.
    pub fn zone(&self) -> Option<&str> {
        self.domain.as_ref().map(|d| d.zone.as_str())
    }

    /// True when the agent is outside `local_region` (agents without a domain are local).
    pub fn is_remote(&self, local_region: &str) -> bool {
        self.region().is_some_and(|r| r != local_region)
    }
}
