//! `/v2/groups`: Marathon's application groups, as a tree of groups with their apps.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::apps::App;

/// A group as `GET /v2/groups[/{id}]` shows it: Marathon's `GroupInfo`, exactly the fields a
/// strict client (marathon-python's `MarathonGroup`) takes. `apps`, `groups` and `pods` are
/// present when embedded (`group.apps`, `group.groups`, `group.pods`; all three by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Its path id (`/` for the root group).
    pub id: String,
    /// The apps directly in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apps: Option<Vec<App>>,
    /// The groups directly under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Group>>,
    /// Its pods, as `GET /v2/pods/{id}` shows them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<Vec<Value>>,
    /// What it depends on (absolute ids).
    pub dependencies: Vec<String>,
    /// Its version.
    pub version: String,
}

impl Group {
    /// Every app in the group and the groups under it, depth first.
    pub fn all_apps(&self) -> Vec<&App> {
        let mut out: Vec<&App> = self.apps.iter().flatten().collect();
        for g in self.groups.iter().flatten() {
            out.extend(g.all_apps());
        }
        out
    }
}
