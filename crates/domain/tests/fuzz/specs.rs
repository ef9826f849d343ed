//! Targets `resources` and `attributes`: the agent's `--resources` and `--attributes` texts.
//! Accepted values stay in bounds and survive the JSON an agent registers with.

use std::sync::LazyLock;

use domain::attributes::{self, Attributes, MAX_NAME_LEN, MAX_VALUE_LEN};
use domain::ranges::MAX_PORT;
use domain::resources::{MAX_SCALAR, Resources};
use proptest::prelude::*;
use serde::Deserialize;

use crate::engine::{self, Seed, Verdict};

static RESOURCES: LazyLock<Vec<Seed>> = LazyLock::new(|| engine::corpus("resources"));
static ATTRIBUTES: LazyLock<Vec<Seed>> = LazyLock::new(|| engine::corpus("attributes"));

fn resources(input: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(input);
    let r = match Resources::parse(&text) {
        Ok(r) => r,
        Err(e) => return Verdict::Refused(e.to_string()),
    };
    for (name, v) in [("cpus", r.cpus), ("mem", r.mem), ("disk", r.disk)] {
        assert!(
            v.is_finite() && (0.0..=MAX_SCALAR).contains(&v),
            "{name} {v} accepted from {text:?}"
        );
    }
    assert!(
        r.ports.as_slice().iter().all(|p| p.end <= MAX_PORT),
        "ports {} accepted",
        r.ports
    );
    assert_eq!(
        Resources::parse(&r.to_string()).as_ref(),
        Ok(&r),
        "the text form does not parse back"
    );
    let json = serde_json::to_string(&r).expect("resources serialise");
    let back: Resources = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("accepted resources' JSON is refused ({e}): {json}"));
    assert_eq!(back, r, "resources changed on a round trip through {json}");
    Verdict::Accepted
}

/// Attributes as an agent's JSON carries them.
#[derive(Debug, Deserialize)]
struct Carried {
    #[serde(deserialize_with = "attributes::deserialize_attributes")]
    attributes: Attributes,
}

fn attributes_target(input: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(input);
    let a = match attributes::parse_attributes(&text) {
        Ok(a) => a,
        Err(e) => return Verdict::Refused(e.to_string()),
    };
    for (name, v) in &a {
        assert!(
            !name.is_empty() && name.len() <= MAX_NAME_LEN && !name.contains(char::is_control),
            "attribute name {name:?} accepted"
        );
        let shown = v.to_string();
        assert!(
            shown.len() <= MAX_VALUE_LEN && !shown.contains(char::is_control),
            "attribute value {shown:?} accepted"
        );
    }
    let json = serde_json::json!({ "attributes": a }).to_string();
    let back: Carried = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("accepted attributes' JSON is refused ({e}): {json}"));
    assert_eq!(
        back.attributes, a,
        "attributes changed on a round trip through {json}"
    );
    Verdict::Accepted
}

fn arb_number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|f| f.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        (0..100_000u32).prop_map(|n| n.to_string()),
        "[0-9.eE+-]{0,12}",
    ]
}

fn arb_ranges_text() -> impl Strategy<Value = String> {
    let bound = prop_oneof![0..70_000u64, any::<u64>(), Just(65535), Just(65536)];
    proptest::collection::vec((bound.clone(), proptest::option::of(bound)), 0..4).prop_map(
        |parts| {
            let inner: Vec<String> = parts
                .into_iter()
                .map(|(b, e)| match e {
                    Some(e) => format!("{b}-{e}"),
                    None => b.to_string(),
                })
                .collect();
            format!("[{}]", inner.join(","))
        },
    )
}

fn arb_resources_text() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("cpus".to_string()),
        Just("mem".to_string()),
        Just("disk".to_string()),
        Just("ports".to_string()),
        Just("gpus".to_string()),
        "\\PC{0,6}",
    ];
    let value = prop_oneof![arb_number_text(), arb_ranges_text(), "\\PC{0,10}"];
    proptest::collection::vec((name, value), 0..6).prop_map(|entries| {
        let parts: Vec<String> = entries.iter().map(|(n, v)| format!("{n}:{v}")).collect();
        parts.join(";")
    })
}

fn arb_attributes_text() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("rack".to_string()),
        Just("ssd".to_string()),
        "[a-z]{1,8}",
        "\\PC{0,10}",
        "[a-z]{127,130}",
    ];
    let value = prop_oneof![
        arb_number_text(),
        arb_ranges_text(),
        "\\{[a-z ,{}]{0,12}\\}",
        "[ -~]{0,16}",
        "\\PC{0,10}",
        "[a-z]{1020,1030}",
    ];
    proptest::collection::vec((name, value), 0..6).prop_map(|entries| {
        let parts: Vec<String> = entries.iter().map(|(n, v)| format!("{n}:{v}")).collect();
        parts.join(";")
    })
}

#[test]
fn resources_corpus_replays() {
    engine::replay("resources", resources);
}

#[test]
fn attributes_corpus_replays() {
    engine::replay("attributes", attributes_target);
}

proptest! {
    #![proptest_config(engine::config())]

    #[test]
    fn byte_mutations_of_resources_never_break_the_parser(
        seed in any::<usize>(),
        ops in engine::mutations(),
    ) {
        let input = engine::mutate(&RESOURCES[seed % RESOURCES.len()].bytes, &RESOURCES, &ops);
        engine::run(resources, &input);
    }

    #[test]
    fn generated_resources_never_break_the_parser(text in arb_resources_text()) {
        engine::run(resources, text.as_bytes());
    }

    #[test]
    fn byte_mutations_of_attributes_never_break_the_parser(
        seed in any::<usize>(),
        ops in engine::mutations(),
    ) {
        let input = engine::mutate(&ATTRIBUTES[seed % ATTRIBUTES.len()].bytes, &ATTRIBUTES, &ops);
        engine::run(attributes_target, &input);
    }

    #[test]
    fn generated_attributes_never_break_the_parser(text in arb_attributes_text()) {
        engine::run(attributes_target, text.as_bytes());
    }
}
