//! Scheduler pass benchmark (issue 13): what one pass costs the leader over a large state,
//! without processes or Raft.
//!
//! Run: `cargo bench -p drover-master --bench pass` (results in docs/benchmarks.md).
//! `DROVER_BENCH_AGENTS` (default 10,000) agents in four zones, `DROVER_BENCH_INSTANCES`
//! (default 100,000) instances in apps of `DROVER_BENCH_APP_SIZE` (default 1,000), each
//! `GROUP_BY` zone, as the scale benchmark deploys them. Single-threaded.
//!
//! 1. **deploy**: passes from no instance to all of them, each pass's batch applied to the
//!    state as the log would, and every placed instance then reported running by its agent
//!    (one report per agent per pass); the number of passes and the time spent deciding.
//! 2. **copy**: the driver's copy of the whole state (`ClusterState::clone`), as each pass
//!    takes one.
//! 3. **idle pass**: a pass over the deployed state that has nothing to do.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use domain::{Agent, AgentId, AppDefinition, FaultDomain, Ranges, Resources};
use master::scheduler::{CountedIds, MAX_LAUNCHES_PER_PASS, Observations, Policy, reconcile};
use serde_json::json;
use state::{ClusterState, Command, Condition, InstanceReport};

const REGION: &str = "local";
const ZONES: [&str; 4] = ["local-a", "local-b", "local-c", "local-d"];

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn cluster(agents: usize, instances: usize, app_size: usize) -> ClusterState {
    let mut state = ClusterState::default();
    state.apply(Command::PutMaster {
        id: 1,
        addr: "127.0.0.1:1".into(),
        domain: Some(FaultDomain::new(REGION, ZONES[0])),
        protocol: 2,
    });
    for i in 0..agents {
        state.apply(Command::RegisterAgent {
            agent: Agent {
                id: AgentId(format!("agent-{i:05}")),
                hostname: format!("scale-{i:05}"),
                ip: format!("127.2.{}.{}", i / 250, i % 250 + 1),
                domain: Some(FaultDomain::new(REGION, ZONES[i % ZONES.len()])),
                resources: Resources {
                    cpus: 64.0,
                    mem: 65536.0,
                    disk: 10_000.0,
                    ports: Ranges::single(31000, 31009),
                },
                attributes: Default::default(),
            },
            remote: false,
            at_ms: 1,
        });
    }
    for a in 0..instances.div_ceil(app_size) {
        let count = app_size.min(instances - a * app_size);
        let app = AppDefinition::from_json(&json!({
            "id": format!("/scale/app-{a:03}"), "cmd": "sleep 100000", "instances": count,
            "cpus": 0.01, "mem": 1, "portDefinitions": [], "constraints": [["@zone", "GROUP_BY"]],
        }))
        .unwrap_or_else(|e| panic!("the bench's app is invalid: {e}"));
        let answer = state.apply(Command::PutApp {
            app,
            version: format!("2026-12-05T00:00:{:02}.{a:03}Z", a % 60),
        });
        assert!(
            matches!(answer, state::Response::AppVersion { .. }),
            "the bench's app was refused: {answer:?}"
        );
    }
    state
}

fn policy() -> Policy {
    Policy {
        eviction_threshold: 0.55,
        eviction_interval_ms: 30_000,
        settle_ms: 1_100,
        region: REGION.into(),
        launch_budget: MAX_LAUNCHES_PER_PASS,
        term: 2,
    }
}

/// Every instance not yet running is reported running by its agent, one report per agent.
fn run_all(state: &mut ClusterState, now: u64) {
    let mut by_agent: BTreeMap<AgentId, Vec<InstanceReport>> = BTreeMap::new();
    for inst in state.instances().values() {
        if inst.condition != Condition::Running {
            by_agent
                .entry(inst.agent_id.clone())
                .or_default()
                .push(InstanceReport {
                    instance_id: inst.id.clone(),
                    condition: Condition::Running,
                    at_ms: now,
                });
        }
    }
    for (agent_id, reports) in by_agent {
        state.apply(Command::ReportInstances { agent_id, reports });
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let agents = env("DROVER_BENCH_AGENTS", 10_000);
    let instances = env("DROVER_BENCH_INSTANCES", 100_000);
    let app_size = env("DROVER_BENCH_APP_SIZE", 1_000);
    let mut state = cluster(agents, instances, app_size);
    let policy = policy();
    let obs = Observations::default();
    let mut ids = CountedIds::default();
    let mut now = 10_000u64;

    let mut passes = 0;
    let mut deciding = Duration::ZERO;
    let mut slowest = Duration::ZERO;
    loop {
        let started = Instant::now();
        let decision = reconcile(&state, &obs, &policy, now, &mut ids);
        let took = started.elapsed();
        deciding += took;
        slowest = slowest.max(took);
        let Some(command) = decision.command else {
            assert!(decision.queue.is_empty(), "unplaced: {:?}", decision.queue);
            break;
        };
        passes += 1;
        state.apply(command);
        now += 100;
        run_all(&mut state, now);
        assert!(passes <= 10_000, "the deploy does not converge");
    }
    let running = state
        .instances()
        .values()
        .filter(|i| i.condition == Condition::Running)
        .count();
    assert_eq!(running, instances, "every instance runs after the deploy");

    let started = Instant::now();
    let copy = state.clone();
    let copying = started.elapsed();
    drop(copy);

    let mut idle = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let decision = reconcile(&state, &obs, &policy, now, &mut ids);
        idle.push(started.elapsed());
        assert!(
            decision.command.is_none(),
            "a deployed state has nothing to do"
        );
    }
    idle.sort();

    println!(
        "| agents | instances | launches per pass | deploy: passes, deciding in all (slowest pass) | state copy | idle pass (median of 5) |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {agents} | {instances} | {MAX_LAUNCHES_PER_PASS} | {passes}, {:.0} ms ({:.0} ms) | {:.1} ms | {:.1} ms |",
        ms(deciding),
        ms(slowest),
        ms(copying),
        ms(idle[idle.len() / 2]),
    );
}
