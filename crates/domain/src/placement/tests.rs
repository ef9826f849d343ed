use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::fault_domain::FaultDomain;
use crate::resources::Resources;

fn agent(id: &str, region: &str, zone: &str, cpus: f64, mem: f64) -> Agent {
    Agent {
        id: id.into(),
        hostname: format!("{id}.example"),
        ip: format!("10.0.0.{}", id.len()),
        domain: Some(FaultDomain::new(region, zone)),
        resources: Resources {
            cpus,
            mem,
            disk: 1000.0,
            ports: crate::ranges::Ranges::single(31000, 31009),
        },
        attributes: Default::default(),
    }
}

/// Three regions of four zones each, one agent per zone, as in `examples/nodes`.
fn seed_cluster() -> Vec<Agent> {
    let mut agents = Vec::new();
    for region in ["local", "aws-us-east1", "aws-us-east2"] {
        for z in ["a", "b", "c", "d"] {
            agents.push(agent(
                &format!("{region}-{z}-1"),
                region,
                &format!("{region}-{z}"),
                4.0,
                8192.0,
            ));
        }
    }
    agents
}

fn app(v: serde_json::Value) -> AppDefinition {
    AppDefinition::from_json(&v).unwrap()
}

fn zones(agents: &[Agent], r: &PlacementResult) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for p in &r.placements {
        *out.entry(agents[p.agent_index].zone().unwrap().to_string())
            .or_default() += 1;
    }
    out
}

fn run(agents: &[Agent], app: &AppDefinition, n: u32) -> PlacementResult {
    place(
        app,
        n,
        &Snapshot {
            local_region: "local",
            agents,
            existing: &[],
        },
    )
}

#[test]
fn region_is_puts_every_instance_in_that_region() {
    let agents = seed_cluster();
    let a = app(
        json!({"id":"r","cmd":"x","cpus":0.1,"mem":32,"instances":5,"constraints":[["@region","IS","aws-us-east1"]]}),
    );
    let r = run(&agents, &a, 5);
    assert_eq!(r.placements.len(), 5);
    assert!(
        r.placements
            .iter()
            .all(|p| agents[p.agent_index].region() == Some("aws-us-east1"))
    );
}

#[test]
fn balanced_zones_spread_two_two_one_one() {
    let agents = seed_cluster();
    let a = app(json!({"id":"b","cmd":"x","cpus":0.1,"mem":32,"instances":6,
        "constraints":[["@region","IS","aws-us-east1"],["@zone","GROUP_BY","4"]]}));
    let r = run(&agents, &a, 6);
    let mut sizes: Vec<usize> = zones(&agents, &r).into_values().collect();
    sizes.sort();
    assert_eq!(sizes, [1, 1, 2, 2]);
    assert!(
        r.placements
            .iter()
            .all(|p| agents[p.agent_index].region() == Some("aws-us-east1"))
    );
}

#[test]
fn without_a_region_constraint_instances_stay_local_even_with_zone_group_by() {
    let agents = seed_cluster();
    let a =
        app(json!({"id":"l","cmd":"x","cpus":0.1,"mem":32,"constraints":[["@zone","GROUP_BY"]]}));
    let r = run(&agents, &a, 8);
    assert_eq!(r.placements.len(), 8);
    assert!(
        r.placements
            .iter()
            .all(|p| agents[p.agent_index].region() == Some("local"))
    );
    assert_eq!(
        zones(&agents, &r).values().copied().collect::<Vec<_>>(),
        [2, 2, 2, 2]
    );
}

#[test]
fn unplaced_instances_are_counted_per_reason() {
    let mut agents = seed_cluster();
    agents[0].resources.mem = 10.0; // local-a cannot fit 64 MiB
    let a = app(
        json!({"id":"u","cmd":"x","cpus":0.1,"mem":64,"constraints":[["@zone","GROUP_BY","2"],["hostname","UNIQUE"]]}),
    );
    let r = run(&agents, &a, 5);
    assert_eq!(r.placements.len(), 2);
    assert_eq!(r.unplaced, 3);
    let expected: BTreeMap<String, u32> = [
        ("insufficient mem".to_string(), 1),
        ("remote region".to_string(), 8),
        (r#"constraint ["hostname","UNIQUE"]"#.to_string(), 2),
        (r#"constraint ["@zone","GROUP_BY","2"]"#.to_string(), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(r.reasons, expected);
}

#[test]
fn ports_are_assigned_without_collisions_and_required_ports_are_exact() {
    let agents = vec![agent("a", "local", "local-a", 8.0, 8192.0)];
    let a = app(
        json!({"id":"p","cmd":"x","cpus":0.1,"mem":1,"portDefinitions":[{"port":0},{"port":0}]}),
    );
    let r = run(&agents, &a, 6);
    assert_eq!(r.placements.len(), 5, "10 ports make 5 instances of 2");
    let mut all: Vec<u64> = r.placements.iter().flat_map(|p| p.ports.clone()).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 10);
    assert_eq!(r.reasons.get("insufficient ports"), Some(&1));

    let fixed = app(
        json!({"id":"f","cmd":"x","cpus":0.1,"mem":1,"requirePorts":true,"portDefinitions":[{"port":31005}]}),
    );
    let r = run(&agents, &fixed, 2);
    assert_eq!(r.placements.len(), 1);
    assert_eq!(r.placements[0].ports, vec![31005]);
    let outside = app(
        json!({"id":"o","cmd":"x","cpus":0.1,"mem":1,"requirePorts":true,"portDefinitions":[{"port":80}]}),
    );
    assert_eq!(
        run(&agents, &outside, 1).reasons.get("insufficient ports"),
        Some(&1)
    );
}

#[test]
fn max_per_cluster_like_unlike_and_is_on_attributes() {
    let mut agents = Vec::new();
    for (i, rack) in ["r1", "r1", "r2", "r3"].iter().enumerate() {
        let mut a = agent(&format!("a{i}"), "local", "local-a", 8.0, 8192.0);
        a.attributes =
            crate::attributes::parse_attributes(&format!("rack:{rack};cores:{}", i * 2)).unwrap();
        agents.push(a);
    }
    let count_on = |r: &PlacementResult| {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for p in &r.placements {
            *m.entry(agents[p.agent_index].attributes["rack"].to_string())
                .or_default() += 1;
        }
        m
    };
    let max_per =
        app(json!({"id":"m","cmd":"x","cpus":0.1,"mem":1,"constraints":[["rack","MAX_PER","2"]]}));
    let r = run(&agents, &max_per, 10);
    assert_eq!(r.placements.len(), 6);
    assert!(count_on(&r).values().all(|n| *n == 2));

    let cluster =
        app(json!({"id":"c","cmd":"x","cpus":0.1,"mem":1,"constraints":[["rack","CLUSTER"]]}));
    let r = run(&agents, &cluster, 5);
    assert_eq!(count_on(&r).len(), 1);

    let like =
        app(json!({"id":"l","cmd":"x","cpus":0.1,"mem":1,"constraints":[["rack","LIKE","r[23]"]]}));
    assert_eq!(count_on(&run(&agents, &like, 4)).get("r1"), None);

    let unlike =
        app(json!({"id":"u","cmd":"x","cpus":0.1,"mem":1,"constraints":[["rack","UNLIKE","r1"]]}));
    assert_eq!(count_on(&run(&agents, &unlike, 4)).get("r1"), None);

    let is = app(json!({"id":"i","cmd":"x","cpus":0.1,"mem":1,"constraints":[["cores","IS","4"]]}));
    let r = run(&agents, &is, 3);
    assert!(
        r.placements
            .iter()
            .all(|p| agents[p.agent_index].id.0 == "a2")
    );

    let missing =
        app(json!({"id":"n","cmd":"x","cpus":0.1,"mem":1,"constraints":[["gpu","GROUP_BY"]]}));
    let r = run(&agents, &missing, 1);
    assert_eq!(r.reasons.get(r#"constraint ["gpu","GROUP_BY"]"#), Some(&4));
}

#[test]
fn existing_instances_count_for_constraints() {
    let agents = seed_cluster();
    let a =
        app(json!({"id":"e","cmd":"x","cpus":0.1,"mem":1,"constraints":[["@zone","GROUP_BY"]]}));
    let existing = vec![
        ExistingInstance {
            agent_id: "local-a-1".into(),
        },
        ExistingInstance {
            agent_id: "local-a-1".into(),
        },
        ExistingInstance {
            agent_id: "local-b-1".into(),
        },
    ];
    let r = place(
        &a,
        5,
        &Snapshot {
            local_region: "local",
            agents: &agents,
            existing: &existing,
        },
    );
    let z = zones(&agents, &r);
    assert_eq!(z.get("local-a"), None, "zone a already holds the most");
    assert_eq!(z.get("local-b"), Some(&1));
    assert_eq!((z["local-c"], z["local-d"]), (2, 2));
}

#[test]
fn zone_outage_spreads_over_the_zones_still_alive() {
    let agents: Vec<Agent> = seed_cluster()
        .into_iter()
        .filter(|a| a.zone() != Some("local-d"))
        .collect();
    let a = app(
        json!({"id":"z","cmd":"x","cpus":0.1,"mem":1,"constraints":[["@zone","GROUP_BY","4"]]}),
    );
    let r = run(&agents, &a, 6);
    assert_eq!(
        zones(&agents, &r).values().copied().collect::<Vec<_>>(),
        [2, 2, 2]
    );
}

#[test]
fn agents_without_a_domain_count_as_local() {
    let mut agents = seed_cluster();
    agents[0].domain = None;
    let a =
        app(json!({"id":"d","cmd":"x","cpus":0.1,"mem":1,"constraints":[["hostname","UNIQUE"]]}));
    let r = run(&agents, &a, 5);
    assert_eq!(r.placements.len(), 4);
    assert!(r.placements.iter().any(|p| p.agent_index == 0));
}

#[test]
fn a_count_far_beyond_capacity_costs_what_can_be_placed_not_what_was_asked() {
    // Before: the result was allocated for every requested instance (u32::MAX × 56 bytes),
    // which aborts the process. Now the work and memory follow what fits.
    let agents = seed_cluster();
    let snapshot = Snapshot {
        local_region: "local",
        agents: &agents,
        existing: &[],
    };
    let r = place(
        &app(json!({"id": "x", "cmd": "x", "cpus": 1, "mem": 1})),
        u32::MAX,
        &snapshot,
    );
    // Four local agents with four cpus each.
    assert_eq!(r.placements.len(), 16);
    assert_eq!(r.unplaced, u32::MAX - 16);
    assert_eq!(r.reasons.get("insufficient cpus"), Some(&4));
    assert!(r.placements.capacity() <= agents.len().max(16) * 2);
}
