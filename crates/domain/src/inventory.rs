//! Node inventories: the cluster snapshot `drover plan` reads from a file.
//!
//! ```json
//! {"local_region": "local",
//!  "agents": [{"id": "a1", "hostname": "a1", "ip": "10.0.0.1",
//!              "domain": {"fault_domain": {"region": {"name": "local"}, "zone": {"name": "local-a"}}},
//!              "resources": {"cpus": 4, "mem": 8192, "disk": 0, "ports": "[31000-32000]"},
//!              "attributes": {"rack": "r1"}}],
//!  "instances": [{"app_id": "/web", "agent_id": "a1"}]}
//! ```
//!
//! `resources` are what each agent has free; `instances` are running instances that count
//! for constraints (their resources are already taken out of `resources`).

use std::collections::HashMap;

use serde::Deserialize;

use crate::agent::{Agent, AgentId};
use crate::app::AppId;
use crate::placement::ExistingInstance;

/// A parsed inventory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// The masters' region, if the file says.
    #[serde(default)]
    pub local_region: Option<String>,
    /// The agents.
    pub agents: Vec<Agent>,
    /// Instances already running.
    #[serde(default)]
    pub instances: Vec<InventoryInstance>,
}

/// An instance already running somewhere.
#[derive(Debug, Clone, Deserialize)]
pub struct InventoryInstance {
    /// Its app.
    pub app_id: AppId,
    /// Its agent.
    pub agent_id: AgentId,
}

/// Why an inventory was refused: where in the document, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at `{path}`: {problem}")]
pub struct InventoryError {
    /// Path inside the document, e.g. `agents[3].resources.ports`.
    pub path: String,
    /// What is wrong there.
    pub problem: String,
}

impl Inventory {
    /// Parses and checks an inventory document.
    pub fn parse(text: &str) -> Result<Self, InventoryError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let inv: Inventory = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            InventoryError {
                path: if path == "." {
                    "(top level)".into()
                } else {
                    path
                },
                problem: inner.to_string(),
            }
        })?;
        // The types ignore unknown fields (agents on the wire may be newer than this
        // build); in a file an operator wrote, one is a typo, and is refused.
        if let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) {
            only_known_fields(&doc)?;
        }
        inv.check()?;
        Ok(inv)
    }

    fn check(&self) -> Result<(), InventoryError> {
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut ips: HashMap<&str, usize> = HashMap::new();
        for (i, a) in self.agents.iter().enumerate() {
            for (field, value) in [("id", &a.id.0), ("hostname", &a.hostname)] {
                if value.trim().is_empty() {
                    return Err(InventoryError {
                        path: format!("agents[{i}].{field}"),
                        problem: format!("the agent's {field} is empty; give it a name"),
                    });
                }
            }
            if let Some(j) = ids.insert(a.id.0.as_str(), i) {
                return Err(InventoryError {
                    path: format!("agents[{i}].id"),
                    problem: format!(
                        "`{}` is also the id of agents[{j}]; agent ids must be unique",
                        a.id
                    ),
                });
            }
            if let Some(j) = ips.insert(a.ip.as_str(), i) {
                return Err(InventoryError {
                    path: format!("agents[{i}].ip"),
                    problem: format!(
                        "`{}` is also the ip of agents[{j}]; agent addresses must be unique",
                        a.ip
                    ),
                });
            }
        }
        for (i, inst) in self.instances.iter().enumerate() {
            if !ids.contains_key(inst.agent_id.0.as_str()) {
                return Err(InventoryError {
                    path: format!("instances[{i}].agent_id"),
                    problem: format!("no agent has id `{}`", inst.agent_id),
                });
            }
        }
        Ok(())
    }

    /// The instances of one app, as placement counts them.
    pub fn existing(&self, app: &AppId) -> Vec<ExistingInstance> {
        self.instances
            .iter()
            .filter(|i| &i.app_id == app)
            .map(|i| ExistingInstance {
                agent_id: i.agent_id.clone(),
            })
            .collect()
    }
}

/// The fields of an agent in an inventory, and of its resources.
const AGENT_FIELDS: &[&str] = &["id", "hostname", "ip", "domain", "resources", "attributes"];
const RESOURCE_FIELDS: &[&str] = &["cpus", "mem", "disk", "ports"];

/// Refuses a field of an agent, or of its resources, that [`Agent`] does not have.
fn only_known_fields(doc: &serde_json::Value) -> Result<(), InventoryError> {
    let agents = doc.get("agents").and_then(serde_json::Value::as_array);
    for (i, agent) in agents.into_iter().flatten().enumerate() {
        let Some(fields) = agent.as_object() else {
            continue;
        };
        unknown_field(fields, AGENT_FIELDS, &format!("agents[{i}]"))?;
        if let Some(resources) = fields.get("resources").and_then(|r| r.as_object()) {
            unknown_field(
                resources,
                RESOURCE_FIELDS,
                &format!("agents[{i}].resources"),
            )?;
        }
    }
    Ok(())
}

fn unknown_field(
    fields: &serde_json::Map<String, serde_json::Value>,
    known: &[&str],
    path: &str,
) -> Result<(), InventoryError> {
    match fields.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(InventoryError {
            path: format!("{path}.{k}"),
            problem: format!(
                "unknown field `{k}`, expected one of {}",
                known
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_path_inside_the_document() {
        let bad_ports =
            r#"{"agents":[{"id":"a","hostname":"a","ip":"1","resources":{"ports":"31000"}}]}"#;
        let e = Inventory::parse(bad_ports).unwrap_err();
        assert_eq!(e.path, "agents[0].resources.ports");
        assert!(e.problem.contains("brackets"), "{e}");

        let bad_domain = r#"{"agents":[{"id":"a","hostname":"a","ip":"1","domain":{"fault_domain":{"region":{"name":"r"}}}}]}"#;
        let e = Inventory::parse(bad_domain).unwrap_err();
        assert_eq!(e.path, "agents[0].domain");
        assert!(e.problem.contains("fault_domain.zone"), "{e}");

        let e = Inventory::parse(r#"{"agents":[{"id":"a","ip":"1"}]}"#).unwrap_err();
        assert!(e.problem.contains("hostname"), "{e}");

        let dup =
            r#"{"agents":[{"id":"a","hostname":"a","ip":"1"},{"id":"b","hostname":"b","ip":"1"}]}"#;
        let e = Inventory::parse(dup).unwrap_err();
        assert_eq!(e.path, "agents[1].ip");

        let unnamed = r#"{"agents":[{"id":" ","hostname":"a","ip":"1"}]}"#;
        let e = Inventory::parse(unnamed).unwrap_err();
        assert_eq!(e.path, "agents[0].id");
        assert!(e.problem.contains("id is empty"), "{e}");

        let wide_ports =
            r#"{"agents":[{"id":"a","hostname":"a","ip":"1","resources":{"ports":"[1-70000]"}}]}"#;
        let e = Inventory::parse(wide_ports).unwrap_err();
        assert_eq!(e.path, "agents[0].resources.ports");
        assert!(e.problem.contains("port 70000"), "{e}");

        let typo = r#"{"agents":[{"id":"a","hostname":"a","ip":"1","resources":{"cpu":4}}]}"#;
        let e = Inventory::parse(typo).unwrap_err();
        assert_eq!(e.path, "agents[0].resources.cpu");
        assert!(e.problem.contains("unknown field `cpu`"), "{e}");

        let extra = r#"{"agents":[{"id":"a","hostname":"a","ip":"1","gpus":1}]}"#;
        let e = Inventory::parse(extra).unwrap_err();
        assert_eq!(e.path, "agents[0].gpus");

        let orphan = r#"{"agents":[],"instances":[{"app_id":"/x","agent_id":"nope"}]}"#;
        assert_eq!(
            Inventory::parse(orphan).unwrap_err().path,
            "instances[0].agent_id"
        );
    }
}
