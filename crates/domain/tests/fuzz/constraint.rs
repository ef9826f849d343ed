//! Target `constraint`: `Constraint::from_json`, one element of an app's `constraints`.
//! An accepted constraint re-serialises to JSON that parses to the same constraint.

use std::sync::LazyLock;

use domain::{Constraint, Operator};
use proptest::prelude::*;
use regex::Regex;
use serde_json::Value;

use crate::engine::{self, Seed, Verdict};

const TARGET: &str = "constraint";

const FIELDS: &[&str] = &[
    "hostname",
    "@hostname",
    "@zone",
    "@region",
    "rack",
    "",
    " ",
    "\0",
    "é",
];
const OPERATORS: &[&str] = &[
    "UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS", "unique", "max_per", "IN",
    "", "GROUPBY",
];
const VALUES: &[&str] = &[
    "",
    "0",
    "-1",
    "1",
    "2",
    "+3",
    " 2",
    "1.5",
    "2147483647",
    "2147483648",
    "-2147483648",
    "4294967296",
    "1e9",
    "r1",
    "aws-us-east-1",
    "a b",
    "r[1-3]",
    "a)|(b",
    "(",
    ")",
    ".*",
    "(?i)R1",
    "\\",
    "[0-9]",
    "{a,b}",
];

static CORPUS: LazyLock<Vec<Seed>> = LazyLock::new(|| engine::corpus(TARGET));
static DOCS: LazyLock<Vec<Value>> = LazyLock::new(|| engine::json_seeds(&CORPUS));

fn target(input: &[u8]) -> Verdict {
    let value: Value = match serde_json::from_slice(input) {
        Ok(v) => v,
        Err(e) => return Verdict::Refused(format!("not JSON: {e}")),
    };
    let c = match Constraint::from_json(&value) {
        Ok(c) => c,
        Err(message) => return Verdict::Refused(message),
    };
    let out = c.to_json();
    let again = Constraint::from_json(&out)
        .unwrap_or_else(|e| panic!("an accepted constraint's own JSON is refused ({e}): {out}"));
    assert_eq!(again, c, "the constraint changed on a round trip");
    assert_eq!(
        serde_json::from_str::<Value>(&c.to_string()).ok(),
        Some(out),
        "Display is not the constraint's JSON"
    );
    match c.operator {
        Operator::MaxPer => assert!(c.count_value() >= 1, "MAX_PER {} accepted", c.count_value()),
        Operator::Like | Operator::Unlike => {
            let pattern = c.value.as_deref().unwrap_or_default();
            assert!(
                Regex::new(pattern).is_ok(),
                "{pattern:?} accepted but is not a regular expression"
            );
        }
        _ => {}
    }
    Verdict::Accepted
}

/// Arrays of zero to four parts drawn from plausible and hostile fields, operators, values.
fn arb_constraint() -> impl Strategy<Value = Value> {
    let part = prop_oneof![
        (0..FIELDS.len()).prop_map(|i| Value::from(FIELDS[i])),
        (0..OPERATORS.len()).prop_map(|i| Value::from(OPERATORS[i])),
        (0..VALUES.len()).prop_map(|i| Value::from(VALUES[i])),
        "[ -~]{0,16}".prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
        any::<i32>().prop_map(|n| Value::from(n.to_string())),
        any::<i64>().prop_map(Value::from),
        Just(Value::Null),
    ];
    prop_oneof![
        (
            (0..FIELDS.len()),
            (0..OPERATORS.len()),
            proptest::option::of(prop_oneof![
                (0..VALUES.len()).prop_map(|i| VALUES[i].to_string()),
                "[ -~]{0,16}",
                any::<i64>().prop_map(|n| n.to_string()),
            ])
        )
            .prop_map(|(f, o, v)| {
                let mut parts = vec![Value::from(FIELDS[f]), Value::from(OPERATORS[o])];
                parts.extend(v.map(Value::from));
                Value::Array(parts)
            }),
        proptest::collection::vec(part, 0..5).prop_map(Value::Array),
    ]
}

engine::corpus_tests!(TARGET, target, VALUES);

proptest! {
    #![proptest_config(engine::config())]

    #[test]
    fn generated_constraints_never_break_the_parser(doc in arb_constraint()) {
        engine::run(target, doc.to_string().as_bytes());
    }
}
