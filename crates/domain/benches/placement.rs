//! Placement benchmark: 1,000,000 instances over 10,000 agents in 2 regions x 4 zones.
//!
//! Run: `cargo bench -p drover-domain --bench placement` (results in docs/benchmarks.md).
//! Single-threaded: the decision runs on one core.

use std::time::{Duration, Instant};

use domain::{Agent, AppDefinition, FaultDomain, Ranges, Resources, Snapshot, place};
use serde_json::json;

const AGENTS: usize = 10_000;
const INSTANCES: u32 = 1_000_000;
const RUNS: usize = 5;

fn cluster() -> Vec<Agent> {
    (0..AGENTS)
        .map(|i| {
            let region = if i % 2 == 0 { "us-east" } else { "us-west" };
            let zone = format!("{region}-{}", ["a", "b", "c", "d"][(i / 2) % 4]);
            Agent {
                id: format!("agent-{i:05}").as_str().into(),
                hostname: format!("host-{i:05}.example"),
                ip: format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256),
                domain: Some(FaultDomain::new(region, zone)),
                resources: Resources {
                    cpus: 64.0,
                    mem: 256.0 * 1024.0,
                    disk: 0.0,
                    ports: Ranges::default(),
                },
                attributes: Default::default(),
            }
        })
        .collect()
}

fn main() {
    let agents = cluster();
    let app = AppDefinition::from_json(&json!({
        "id": "/bench", "cmd": "x", "instances": INSTANCES, "cpus": 0.01, "mem": 16,
        "portDefinitions": [],
        "constraints": [["@region", "IS", "us-east"], ["@zone", "GROUP_BY", "4"], ["hostname", "MAX_PER", "250"]]
    }))
    .expect("benchmark app is valid");
    let snapshot = Snapshot {
        local_region: "us-east",
        agents: &agents,
        existing: &[],
    };

    let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
    for run in 0..RUNS {
        let start = Instant::now();
        let result = place(&app, INSTANCES, &snapshot);
        let elapsed = start.elapsed();
        assert_eq!(
            result.placements.len(),
            INSTANCES as usize,
            "every instance is placed"
        );
        assert!(
            result
                .placements
                .iter()
                .all(|p| agents[p.agent_index].region() == Some("us-east")),
            "every instance lands in us-east"
        );
        if run == 0 {
            let mut per_zone = std::collections::BTreeMap::new();
            for p in &result.placements {
                *per_zone
                    .entry(agents[p.agent_index].zone().unwrap_or(""))
                    .or_insert(0u32) += 1;
            }
            println!("instances per zone: {per_zone:?}");
        }
        times.push(elapsed);
    }
    times.sort();
    let median = times[RUNS / 2];
    println!(
        "placement: {INSTANCES} instances over {AGENTS} agents: min {:.3} s, median {:.3} s, max {:.3} s ({:.1} M instances/s at the median)",
        times[0].as_secs_f64(),
        median.as_secs_f64(),
        times[RUNS - 1].as_secs_f64(),
        f64::from(INSTANCES) / median.as_secs_f64() / 1e6
    );
}
