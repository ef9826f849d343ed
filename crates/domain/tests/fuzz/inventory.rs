//! Target `inventory`: `Inventory::parse`, the node file `drover plan` reads, followed by
//! what `drover plan` does with it (placing a small app). Accepted agents hold the same
//! bounds as the agent flags, and survive a JSON round trip.

use std::sync::LazyLock;

use domain::inventory::Inventory;
use domain::ranges::MAX_PORT;
use domain::resources::MAX_SCALAR;
use domain::{Agent, AppDefinition, Snapshot, place};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::engine::{self, Seed, Verdict};

const TARGET: &str = "inventory";
const KEYS: &[&str] = &[
    "local_region",
    "agents",
    "instances",
    "id",
    "hostname",
    "ip",
    "domain",
    "resources",
    "attributes",
    "cpus",
    "mem",
    "disk",
    "ports",
    "app_id",
    "agent_id",
    "fault_domain",
    "region",
    "zone",
    "name",
    "rack",
];

static CORPUS: LazyLock<Vec<Seed>> = LazyLock::new(|| engine::corpus(TARGET));
static DOCS: LazyLock<Vec<Value>> = LazyLock::new(|| engine::json_seeds(&CORPUS));

/// The apps `drover plan` is asked about: a port, constraints that intern values.
static APPS: LazyLock<Vec<AppDefinition>> = LazyLock::new(|| {
    [
        json!({"id": "/plan", "cmd": "x", "instances": 3, "cpus": 0.5, "mem": 64,
               "constraints": [["hostname", "UNIQUE"], ["@zone", "GROUP_BY"]]}),
        json!({"id": "/rack", "cmd": "x", "instances": 2, "cpus": 0.1, "mem": 1,
               "requirePorts": true, "portDefinitions": [{"port": 31000}],
               "constraints": [["rack", "MAX_PER", "1"], ["rack", "LIKE", "r.*"]]}),
    ]
    .iter()
    .map(|v| AppDefinition::from_json(v).expect("the fuzz apps are valid"))
    .collect()
});

fn check_agent(a: &Agent) {
    let r = &a.resources;
    for v in [r.cpus, r.mem, r.disk] {
        assert!((0.0..=MAX_SCALAR).contains(&v), "agent {} has {v}", a.id);
    }
    assert!(
        r.ports.as_slice().iter().all(|p| p.end <= MAX_PORT),
        "agent {} has ports {}",
        a.id,
        r.ports
    );
}

fn target(input: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(input);
    let inv = match Inventory::parse(&text) {
        Ok(inv) => inv,
        Err(e) => return Verdict::Refused(e.to_string()),
    };
    inv.agents.iter().for_each(check_agent);
    let instances: Vec<Value> = inv
        .instances
        .iter()
        .map(|i| json!({"app_id": i.app_id.as_str(), "agent_id": i.agent_id.0}))
        .collect();
    let out =
        json!({"local_region": inv.local_region, "agents": inv.agents, "instances": instances})
            .to_string();
    let again = Inventory::parse(&out)
        .unwrap_or_else(|e| panic!("an accepted inventory's own JSON is refused ({e}): {out}"));
    assert_eq!(
        again.agents, inv.agents,
        "agents changed on a round trip through {out}"
    );
    let local = inv.local_region.as_deref().unwrap_or("local");
    for app in APPS.iter() {
        let existing = inv.existing(&app.id);
        let snapshot = Snapshot {
            local_region: local,
            agents: &inv.agents,
            existing: &existing,
        };
        // However many instances are asked for, placement's work and memory follow what
        // fits: `/plan` is hostname-UNIQUE, so the limit's worth places at most one per agent
        // (the fuzz allocator fails any allocation in proportion to the count).
        if app.id.as_str() == "/plan" {
            let asked = domain::limits::MAX_INSTANCES as u32;
            let wide = place(app, asked, &snapshot);
            assert!(wide.placements.len() <= inv.agents.len());
            assert_eq!(
                wide.placements.len() as u64 + u64::from(wide.unplaced),
                u64::from(asked)
            );
        }
        let result = place(app, app.instances, &snapshot);
        assert_eq!(
            result.placements.len() as u64 + u64::from(result.unplaced),
            u64::from(app.instances),
            "placement lost instances"
        );
        for p in &result.placements {
            assert_eq!(
                inv.agents.get(p.agent_index).map(|a| &a.id),
                Some(&p.agent_id),
                "placed on an agent that is not there"
            );
        }
    }
    Verdict::Accepted
}

fn arb_agent(i: usize) -> impl Strategy<Value = Value> {
    proptest::collection::vec((0..KEYS.len(), engine::arb_json(KEYS)), 0..3).prop_map(
        move |fields| {
            let mut a = json!({
                "id": format!("a{i}"), "hostname": format!("h{i}"), "ip": format!("127.0.0.{i}"),
                "domain": {"fault_domain": {"region": {"name": "local"}, "zone": {"name": format!("z{}", i % 2)}}},
                "resources": {"cpus": 2, "mem": 1024, "ports": "[31000-31005]"},
                "attributes": {"rack": format!("r{}", i % 3)}
            });
            for (k, v) in fields {
                let key = KEYS[k];
                let parent = match key {
                    "cpus" | "mem" | "disk" | "ports" => "resources",
                    "rack" => "attributes",
                    _ => "",
                };
                // An earlier field may have replaced the parent with a non-object.
                match a.get_mut(parent).and_then(Value::as_object_mut) {
                    Some(map) => {
                        map.insert(key.to_string(), v);
                    }
                    None => a[key] = v,
                }
            }
            a
        },
    )
}

fn arb_inventory() -> impl Strategy<Value = Value> {
    (0..6usize)
        .prop_flat_map(|n| (0..n).map(arb_agent).collect::<Vec<_>>())
        .prop_map(|agents| {
            let instances: Vec<Value> = agents
                .iter()
                .take(2)
                .map(|a| json!({"app_id": "/plan", "agent_id": a["id"]}))
                .collect();
            json!({"local_region": "local", "agents": agents, "instances": instances})
        })
}

engine::corpus_tests!(TARGET, target, KEYS);

proptest! {
    #![proptest_config(engine::config())]

    #[test]
    fn generated_inventories_never_break_the_parser(doc in arb_inventory()) {
        engine::run(target, doc.to_string().as_bytes());
    }
}
