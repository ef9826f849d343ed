//! Property tests of placement and kill selection over random clusters and apps.

use std::collections::{BTreeMap, HashMap, HashSet};

use domain::attributes::AttributeValue;
use domain::kill::{Condition, KillCandidate, select_to_kill};
use domain::resources::to_millis;
use domain::{Agent, AppDefinition, FaultDomain, Placement, Ranges, Resources, Snapshot, place};
use proptest::prelude::*;
use serde_json::{Value, json};

const LOCAL: &str = "r1";

fn arb_agent(i: usize) -> impl Strategy<Value = Agent> {
    (
        0..3usize,
        0..4usize,
        1..8u32,
        2..16u32,
        0..12u64,
        0..4usize,
        any::<bool>(),
    )
        .prop_map(move |(region, zone, cpus, mem, ports, rack, no_domain)| {
            let region = format!("r{}", region + 1);
            let zone = format!("{region}-{}", ["a", "b", "c", "d"][zone]);
            Agent {
                id: format!("agent-{i:03}").as_str().into(),
                hostname: format!("host-{i:03}"),
                ip: format!("127.0.1.{i}"),
                domain: (!no_domain || !i.is_multiple_of(5))
                    .then(|| FaultDomain::new(region, zone)),
                resources: Resources {
                    cpus: f64::from(cpus),
                    mem: f64::from(mem) * 256.0,
                    disk: 0.0,
                    ports: if ports == 0 {
                        Ranges::default()
                    } else {
                        Ranges::single(31000, 31000 + ports - 1)
                    },
                },
                attributes: [("rack".to_string(), AttributeValue::Text(format!("k{rack}")))]
                    .into_iter()
                    .collect(),
            }
        })
}

fn arb_cluster() -> impl Strategy<Value = Vec<Agent>> {
    (1..40usize).prop_flat_map(|n| (0..n).map(arb_agent).collect::<Vec<_>>())
}

fn arb_app() -> impl Strategy<Value = AppDefinition> {
    (
        0..60u32,
        1..20u32,
        1..8u32,
        0..3usize,
        proptest::option::of(0..3usize),
        proptest::option::of(0..5u32),
        any::<bool>(),
        proptest::option::of(1..4u32),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                instances,
                cpus,
                mem,
                ports,
                region,
                group_by,
                unique,
                max_per,
                rack_unique,
                oldest,
            )| {
                let mut constraints: Vec<Value> = Vec::new();
                if let Some(r) = region {
                    constraints.push(json!(["@region", "IS", format!("r{}", r + 1)]));
                }
                if let Some(n) = group_by {
                    if n == 0 {
                        constraints.push(json!(["@zone", "GROUP_BY"]));
                    } else {
                        constraints.push(json!(["@zone", "GROUP_BY", n.to_string()]));
                    }
                }
                if unique {
                    constraints.push(json!(["hostname", "UNIQUE"]));
                }
                if let Some(m) = max_per {
                    constraints.push(json!(["rack", "MAX_PER", m.to_string()]));
                }
                if rack_unique && max_per.is_none() {
                    constraints.push(json!(["rack", "UNIQUE"]));
                }
                let ports: Vec<Value> = (0..ports).map(|_| json!({"port": 0})).collect();
                AppDefinition::from_json(&json!({
                    "id": "/prop", "cmd": "x", "instances": instances,
                    "cpus": f64::from(cpus) / 10.0, "mem": f64::from(mem) * 64.0,
                    "portDefinitions": ports, "constraints": constraints,
                    "killSelection": if oldest { "OLDEST_FIRST" } else { "YOUNGEST_FIRST" },
                }))
                .expect("generated apps are valid")
            },
        )
}

fn region_of(a: &Agent) -> &str {
    a.region().unwrap_or(LOCAL)
}

fn value(a: &Agent, field: &str) -> Option<String> {
    match field {
        "hostname" => Some(a.hostname.clone()),
        "@zone" => a.zone().map(str::to_string),
        "rack" => a.attributes.get("rack").map(|v| v.to_string()),
        _ => None,
    }
}

fn constraint(app: &AppDefinition, field: &str, op: &str) -> Option<i64> {
    app.constraints
        .iter()
        .find(|c| c.field_name == field && c.operator.as_str() == op)
        .map(|c| c.count_value())
}

fn run(agents: &[Agent], app: &AppDefinition) -> domain::PlacementResult {
    place(
        app,
        app.instances,
        &Snapshot {
            local_region: LOCAL,
            agents,
            existing: &[],
        },
    )
}

fn per_value(agents: &[Agent], placements: &[Placement], field: &str) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for p in placements {
        if let Some(v) = value(&agents[p.agent_index], field) {
            *m.entry(v).or_default() += 1;
        }
    }
    m
}

/// Whether agent `a`, with `placed` instances already, could take one more (resources only).
fn has_room(agent: &Agent, app: &AppDefinition, placed: u64) -> bool {
    let need_ports = app.port_definitions.len() as u64;
    to_millis(agent.resources.cpus) >= (placed + 1) * to_millis(app.cpus)
        && to_millis(agent.resources.mem) >= (placed + 1) * to_millis(app.mem)
        && agent.resources.ports.count() >= (placed + 1) * need_ports
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn invariants_hold(agents in arb_cluster(), app in arb_app()) {
        let r = run(&agents, &app);
        prop_assert_eq!(r.placements.len() as u32 + r.unplaced, app.instances);
        if r.unplaced > 0 {
            prop_assert!(!r.reasons.is_empty() || agents.is_empty());
        }

        // Nothing lands outside its region.
        let region = app.region().unwrap_or(LOCAL);
        for p in &r.placements {
            prop_assert_eq!(region_of(&agents[p.agent_index]), region);
        }

        // UNIQUE values never repeat; MAX_PER is never exceeded.
        for field in ["hostname", "rack"] {
            if constraint(&app, field, "UNIQUE").is_some() {
                prop_assert!(per_value(&agents, &r.placements, field).values().all(|n| *n == 1));
            }
            if let Some(max) = constraint(&app, field, "MAX_PER") {
                prop_assert!(per_value(&agents, &r.placements, field).values().all(|n| *n as i64 <= max));
            }
        }

        // Resources and ports are never over-committed.
        let mut on_agent: HashMap<usize, Vec<&Placement>> = HashMap::new();
        for p in &r.placements {
            on_agent.entry(p.agent_index).or_default().push(p);
        }
        for (a, ps) in &on_agent {
            let agent = &agents[*a];
            let n = ps.len() as u64;
            prop_assert!(n * to_millis(app.cpus) <= to_millis(agent.resources.cpus));
            prop_assert!(n * to_millis(app.mem) <= to_millis(agent.resources.mem));
            let ports: Vec<u64> = ps.iter().flat_map(|p| p.ports.iter().copied()).collect();
            let distinct: HashSet<u64> = ports.iter().copied().collect();
            prop_assert_eq!(distinct.len(), ports.len());
            prop_assert!(ports.iter().all(|p| agent.resources.ports.contains(*p)));
            for p in ps {
                prop_assert_eq!(p.ports.len(), app.port_definitions.len());
            }
        }

        // The same input always gives the same output, whatever the order of the agents.
        prop_assert_eq!(&run(&agents, &app), &r);
        let mut reversed = agents.clone();
        reversed.reverse();
        let again = run(&reversed, &app);
        let by_id = |res: &domain::PlacementResult, list: &[Agent]| -> Vec<(String, Vec<u64>)> {
            res.placements.iter().map(|p| (list[p.agent_index].id.0.clone(), p.ports.clone())).collect()
        };
        prop_assert_eq!(by_id(&again, &reversed), by_id(&r, &agents));
        prop_assert_eq!(again.reasons, r.reasons);
    }

    #[test]
    fn group_by_stays_within_one_while_capacity_allows(agents in arb_cluster(), app in arb_app()) {
        let Some(n) = constraint(&app, "@zone", "GROUP_BY") else { return Ok(()) };
        // Only the rules GROUP_BY interacts with: region, resources. Drop the others.
        let mut plain = app.clone();
        plain.constraints.retain(|c| c.field_name == "@zone" || c.field_name == "@region");
        let r = run(&agents, &plain);
        let counts = per_value(&agents, &r.placements, "@zone");
        if n > 0 {
            prop_assert!(counts.len() as i64 <= n);
        }
        let region = plain.region().unwrap_or(LOCAL);
        let mut placed_on: HashMap<usize, u64> = HashMap::new();
        for p in &r.placements {
            *placed_on.entry(p.agent_index).or_default() += 1;
        }
        // A zone "has room" when one of its agents could take another instance.
        let room = |zone: &str| {
            agents.iter().enumerate().any(|(i, a)| {
                a.zone() == Some(zone) && region_of(a) == region
                    && has_room(a, &plain, placed_on.get(&i).copied().unwrap_or(0))
            })
        };
        let zones: HashSet<&str> = agents.iter().filter(|a| region_of(a) == region).filter_map(|a| a.zone()).collect();
        let used_all = n > 0 && counts.len() as i64 >= n;
        for z in &zones {
            let c = counts.get(*z).copied().unwrap_or(0);
            if used_all && c == 0 {
                continue; // the n-limit keeps further zones out
            }
            for (other, oc) in &counts {
                if *oc >= c + 2 {
                    prop_assert!(!room(z), "zone {} has {} and room, zone {} has {}", z, c, other, oc);
                }
            }
        }
    }

    #[test]
    fn scale_down_keeps_group_by_within_one(agents in arb_cluster(), app in arb_app(), kill in 0..60usize, seed in any::<u64>()) {
        let mut app = app;
        app.constraints.retain(|c| c.field_name == "@zone" || c.field_name == "@region");
        if constraint(&app, "@zone", "GROUP_BY").is_none() {
            return Ok(());
        }
        let r = run(&agents, &app);
        let candidates: Vec<KillCandidate> = r.placements.iter().enumerate().map(|(i, p)| KillCandidate {
            instance_id: format!("i{i:03}"),
            agent_id: p.agent_id.clone(),
            condition: if (seed >> (i % 64)) & 1 == 1 { Condition::Staging } else { Condition::Running },
            healthy: None,
            started_at: (seed.wrapping_mul(i as u64 + 1)) % 1000,
        }).collect();
        let before = per_value(&agents, &r.placements, "@zone");
        let spread_before = before.values().max().unwrap_or(&0) - before.values().min().unwrap_or(&0);
        let kill = kill.min(candidates.len());
        let chosen = select_to_kill(&app, &agents, LOCAL, &candidates, kill);
        prop_assert_eq!(chosen.len(), kill);
        let chosen: HashSet<usize> = chosen.into_iter().collect();
        prop_assert_eq!(chosen.len(), kill);
        let kept: Vec<Placement> = r.placements.iter().enumerate()
            .filter(|(i, _)| !chosen.contains(i)).map(|(_, p)| p.clone()).collect();
        let after = per_value(&agents, &kept, "@zone");
        let spread_after = after.values().max().unwrap_or(&0) - after.values().min().unwrap_or(&0);
        prop_assert!(spread_after <= spread_before.max(1), "{:?} -> {:?}", before, after);
    }
}
