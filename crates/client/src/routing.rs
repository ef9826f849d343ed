//! What load balancing reads of an app's definition: its labels, its ports and whether it is
//! health checked. `drover lb` reads these fields from `GET /v2/apps`; an agent serving VIPs
//! reads `GET /internal/agents/{id}/vips`, whose apps carry these fields and nothing else of
//! their definitions (no `cmd`, no `env`), so one parser reads both.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::apps::App;

/// The fields of a definition that routes are made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Routing {
    /// The app's id.
    pub id: String,
    /// The app's labels (`HAPROXY_*`, `DROVER_LB_*`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Its port definitions (one port 0 when none is given, as Marathon does).
    #[serde(default = "one_port")]
    pub port_definitions: Vec<RoutingPort>,
    /// Its health checks, by protocol only: whether there are any decides whether an
    /// instance must pass them before it gets traffic.
    #[serde(default)]
    pub health_checks: Vec<RoutingCheck>,
}

/// A port definition as routes read it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RoutingPort {
    /// The port (`0`: none fixed).
    #[serde(default)]
    pub port: u32,
    /// Its labels (`VIP_<k>`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A health check as routes read it: that it exists, and its protocol (for people).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingCheck {
    /// `HTTP`, `TCP`, `COMMAND`, … (absent: Marathon's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

fn one_port() -> Vec<RoutingPort> {
    vec![RoutingPort::default()]
}

impl App {
    /// The routing fields of the definition; an error says which field does not read.
    pub fn routing(&self) -> Result<Routing, serde_json::Error> {
        serde_json::from_value(serde_json::Value::Object(self.definition.clone()))
    }
}
