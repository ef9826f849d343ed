//! Target `fault_domain`: `FaultDomain::parse`, what a detect script prints or `--domain`
//! holds. Accepted names are bounded, and the JSON form parses back to the same domain.

use std::sync::LazyLock;

use domain::FaultDomain;
use domain::fault_domain::MAX_NAME_LEN;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::engine::{self, Seed, Verdict};

const TARGET: &str = "fault_domain";
const KEYS: &[&str] = &["fault_domain", "region", "zone", "name"];

static CORPUS: LazyLock<Vec<Seed>> = LazyLock::new(|| engine::corpus(TARGET));
static DOCS: LazyLock<Vec<Value>> = LazyLock::new(|| engine::json_seeds(&CORPUS));

fn target(input: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(input);
    let fd = match FaultDomain::parse(&text) {
        Ok(fd) => fd,
        Err(e) => return Verdict::Refused(e.to_string()),
    };
    for name in [&fd.region, &fd.zone] {
        assert!(
            !name.trim().is_empty()
                && name.len() <= MAX_NAME_LEN
                && !name.contains(char::is_control)
                && name.trim() == name.as_str(),
            "fault-domain name {name:?} accepted"
        );
    }
    let out = fd.to_json().to_string();
    assert_eq!(
        FaultDomain::parse(&out).as_ref(),
        Ok(&fd),
        "the domain changed on a round trip through {out}"
    );
    Verdict::Accepted
}

fn arb_name() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-z0-9-]{1,12}".prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
        "[a-z]{126,130}".prop_map(Value::from),
        engine::arb_json(KEYS),
    ]
}

fn arb_document() -> impl Strategy<Value = Value> {
    (arb_name(), arb_name()).prop_map(|(region, zone)| {
        json!({"fault_domain": {"region": {"name": region}, "zone": {"name": zone}}})
    })
}

engine::corpus_tests!(TARGET, target, KEYS);

proptest! {
    #![proptest_config(engine::config())]

    #[test]
    fn generated_documents_never_break_the_parser(doc in arb_document()) {
        engine::run(target, doc.to_string().as_bytes());
    }
}
