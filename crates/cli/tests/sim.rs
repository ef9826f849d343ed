//! The deterministic simulation of the whole cluster: for each seed, masters with their real
//! Raft and state machine, agents on fake executors and API writers run on turmoil's
//! simulated network and clock, under the seed's schedule of crashes, partitions, delays and
//! task failures; then every fault heals and the invariants are checked (see
//! `docs/testing.md`).
//!
//! - `cargo nextest run -p drover --test sim` runs the CI seed set.
//! - `DROVER_SIM_SEED=N` replays one seed (a failure prints its seed and schedule).
//! - `DROVER_SIM_SEEDS=N` runs seeds `0..N` (a soak), printing runs per second.

mod common;
mod sim_support;

use std::time::Instant;

/// Seeds CI runs when neither variable is set.
const CI_SEEDS: u64 = 20;

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.parse() {
        Ok(n) => Some(n),
        Err(_) => {
            panic!("{name}={value:?} is not a number: give a seed (or a seed count) as digits")
        }
    }
}

#[test]
fn every_seed_keeps_the_invariants_through_faults_and_settles_after_healing() {
    let seeds: Vec<u64> = match (env_u64("DROVER_SIM_SEED"), env_u64("DROVER_SIM_SEEDS")) {
        (Some(seed), _) => vec![seed],
        (None, Some(n)) => (0..n).collect(),
        (None, None) => (0..CI_SEEDS).collect(),
    };
    let started = Instant::now();
    let mut simulated = std::time::Duration::ZERO;
    for (done, &seed) in seeds.iter().enumerate() {
        match sim_support::run(seed) {
            Ok(f) => {
                simulated += f.simulated;
                if seeds.len() == 1 {
                    println!(
                        "seed {seed}: {} writes acknowledged, settled at {:?}, trace {:016x}",
                        f.acknowledged, f.simulated, f.trace_hash
                    );
                }
            }
            Err(failure) => panic!(
                "seed {seed} broke an invariant (replay: DROVER_SIM_SEED={seed} cargo nextest run -p drover --test sim -E 'test(every_seed)')\n{failure}"
            ),
        }
        if (done + 1) % 50 == 0 {
            eprintln!("{} seeds in {:?}", done + 1, started.elapsed());
        }
    }
    let took = started.elapsed();
    println!(
        "{} seeds in {:.1} s ({:.2} seeds/s), {:.0} s simulated",
        seeds.len(),
        took.as_secs_f64(),
        seeds.len() as f64 / took.as_secs_f64(),
        simulated.as_secs_f64()
    );
}

#[test]
fn one_seed_run_twice_gives_the_same_trace() {
    let seed = env_u64("DROVER_SIM_SEED").unwrap_or(7);
    let first = sim_support::run(seed).unwrap_or_else(|f| panic!("seed {seed}: {f}"));
    let second = sim_support::run(seed).unwrap_or_else(|f| panic!("seed {seed}: {f}"));
    assert_eq!(
        (first.trace_hash, first.trace_lines, first.simulated),
        (second.trace_hash, second.trace_lines, second.simulated),
        "seed {seed} ran twice differently: the simulation is not deterministic"
    );
}
