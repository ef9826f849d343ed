//! Fuzzing of the agent protocol bodies a master accepts from agents: `Registration`
//! (`POST /internal/agents/register`), `Heartbeat` (`…/heartbeat`) and `StatusReport`
//! (`…/status`), read as the master reads them (serde_json from the body's bytes).
//! Accepted bodies survive a JSON round trip, and a registering agent holds the same bounds
//! as the agent's flags. The engine is the domain crate's (see docs/fuzzing.md).

#[path = "../../domain/tests/fuzz/engine/mod.rs"]
mod engine;

use std::sync::LazyLock;

use domain::Agent;
use domain::ranges::MAX_PORT;
use domain::resources::MAX_SCALAR;
use engine::{Seed, Verdict};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use state::protocol::{Heartbeat, Registration, StatusReport};

#[global_allocator]
static ALLOCATOR: engine::MeasuringAllocator = engine::MeasuringAllocator;

const KEYS: &[&str] = &[
    "agent",
    "version",
    "running",
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
    "rtt_ms",
    "term",
    "updates",
    "instance_id",
    "condition",
    "message",
    "exit_code",
    "health",
    "healthy",
    "consecutive_failures",
    "last_failure_cause",
    "checked_at_ms",
    "should_kill",
    "at_ms",
];

static REGISTRATION: LazyLock<Vec<Seed>> = LazyLock::new(|| engine::corpus("registration"));
static HEARTBEAT: LazyLock<Vec<Seed>> = LazyLock::new(|| engine::corpus("heartbeat"));
static STATUS: LazyLock<Vec<Seed>> = LazyLock::new(|| engine::corpus("status_report"));
static REGISTRATION_DOCS: LazyLock<Vec<Value>> =
    LazyLock::new(|| engine::json_seeds(&REGISTRATION));
static HEARTBEAT_DOCS: LazyLock<Vec<Value>> = LazyLock::new(|| engine::json_seeds(&HEARTBEAT));
static STATUS_DOCS: LazyLock<Vec<Value>> = LazyLock::new(|| engine::json_seeds(&STATUS));

/// Reads a body as the master does, and checks that what it accepts re-serialises to
/// the same value.
fn round_trip<T>(input: &[u8]) -> Result<T, String>
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let body: T = serde_json::from_slice(input).map_err(|e| e.to_string())?;
    let out = serde_json::to_vec(&body).expect("a protocol body serialises");
    let again: T = serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "an accepted body's own JSON is refused ({e}): {}",
            engine::preview(&out)
        )
    });
    assert_eq!(again, body, "the body changed on a round trip");
    Ok(body)
}

fn check_agent(a: &Agent) {
    let r = &a.resources;
    for v in [r.cpus, r.mem, r.disk] {
        assert!((0.0..=MAX_SCALAR).contains(&v), "agent offers {v}");
    }
    assert!(
        r.ports.as_slice().iter().all(|p| p.end <= MAX_PORT),
        "agent offers ports {}",
        r.ports
    );
    for name in a.domain.iter().flat_map(|d| [&d.region, &d.zone]) {
        assert!(
            !name.trim().is_empty() && !name.contains(char::is_control),
            "fault-domain name {name:?} accepted"
        );
    }
}

fn registration(input: &[u8]) -> Verdict {
    match round_trip::<Registration>(input) {
        Ok(reg) => {
            check_agent(&reg.agent);
            Verdict::Accepted
        }
        Err(e) => Verdict::Refused(e),
    }
}

fn heartbeat(input: &[u8]) -> Verdict {
    round_trip::<Heartbeat>(input).map(drop).into()
}

fn status_report(input: &[u8]) -> Verdict {
    round_trip::<StatusReport>(input).map(drop).into()
}

/// A valid registration with some fields, at any depth, set to arbitrary values.
fn arb_registration() -> impl Strategy<Value = Value> {
    let base = json!({
        "agent": {"id": "a1", "hostname": "h1", "ip": "127.0.0.2",
                  "domain": {"fault_domain": {"region": {"name": "r1"}, "zone": {"name": "r1-a"}}},
                  "resources": {"cpus": 2, "mem": 1024, "disk": 10, "ports": "[31000-31010]"},
                  "attributes": {"rack": "r1"}},
        "version": "0.1.0", "running": ["web.instance-1"]
    });
    proptest::collection::vec((0..KEYS.len(), engine::arb_json(KEYS), any::<u8>()), 0..5).prop_map(
        move |fields| {
            let mut doc = base.clone();
            for (k, v, depth) in fields {
                let key = KEYS[k];
                let target = match depth % 3 {
                    0 => doc.as_object_mut(),
                    1 => doc.get_mut("agent").and_then(Value::as_object_mut),
                    _ => doc
                        .pointer_mut("/agent/resources")
                        .and_then(Value::as_object_mut),
                };
                if let Some(map) = target {
                    map.insert(key.to_string(), v);
                }
            }
            doc
        },
    )
}

/// A status report with arbitrary updates, each built from protocol fields.
fn arb_status_report() -> impl Strategy<Value = Value> {
    let update = proptest::collection::vec((0..KEYS.len(), engine::arb_json(KEYS)), 0..5).prop_map(
        |fields| {
            let mut u =
                json!({"instance_id": "web.instance-1", "condition": "running", "at_ms": 1});
            for (k, v) in fields {
                u[KEYS[k]] = v;
            }
            u
        },
    );
    (any::<u64>(), proptest::collection::vec(update, 0..4))
        .prop_map(|(term, updates)| json!({"term": term, "updates": updates}))
}

#[test]
fn registration_corpus_replays() {
    engine::replay("registration", registration);
}

#[test]
fn heartbeat_corpus_replays() {
    engine::replay("heartbeat", heartbeat);
}

#[test]
fn status_report_corpus_replays() {
    engine::replay("status_report", status_report);
}

proptest! {
    #![proptest_config(engine::config())]

    #[test]
    fn byte_mutations_of_registrations_never_break_the_master(
        seed in any::<usize>(),
        ops in engine::mutations(),
    ) {
        let input = engine::mutate(&REGISTRATION[seed % REGISTRATION.len()].bytes, &REGISTRATION, &ops);
        engine::run(registration, &input);
    }

    #[test]
    fn structural_mutations_of_registrations_never_break_the_master(
        seed in any::<usize>(),
        ops in engine::json_mutations(),
    ) {
        let doc = engine::mutate_json(&REGISTRATION_DOCS[seed % REGISTRATION_DOCS.len()], KEYS, &ops);
        engine::run(registration, doc.to_string().as_bytes());
    }

    #[test]
    fn generated_registrations_never_break_the_master(doc in arb_registration()) {
        engine::run(registration, doc.to_string().as_bytes());
    }

    #[test]
    fn mutated_heartbeats_never_break_the_master(
        seed in any::<usize>(),
        ops in engine::mutations(),
        json_ops in engine::json_mutations(),
    ) {
        let input = engine::mutate(&HEARTBEAT[seed % HEARTBEAT.len()].bytes, &HEARTBEAT, &ops);
        engine::run(heartbeat, &input);
        let doc = engine::mutate_json(&HEARTBEAT_DOCS[seed % HEARTBEAT_DOCS.len()], KEYS, &json_ops);
        engine::run(heartbeat, doc.to_string().as_bytes());
    }

    #[test]
    fn mutated_status_reports_never_break_the_master(
        seed in any::<usize>(),
        ops in engine::mutations(),
        json_ops in engine::json_mutations(),
    ) {
        let input = engine::mutate(&STATUS[seed % STATUS.len()].bytes, &STATUS, &ops);
        engine::run(status_report, &input);
        let doc = engine::mutate_json(&STATUS_DOCS[seed % STATUS_DOCS.len()], KEYS, &json_ops);
        engine::run(status_report, doc.to_string().as_bytes());
    }

    #[test]
    fn generated_status_reports_never_break_the_master(doc in arb_status_report()) {
        engine::run(status_report, doc.to_string().as_bytes());
    }
}
