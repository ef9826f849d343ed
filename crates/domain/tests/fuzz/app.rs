//! Target `app`: `AppDefinition::from_json_str`, the body of `POST /v2/apps` and `drover
//! plan`'s app file. An accepted app must round-trip through its JSON unchanged.

use std::sync::LazyLock;

use domain::AppDefinition;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::engine::{self, Seed, Verdict};

const TARGET: &str = "app";

/// Field names the structural mutator and the generator set, top level and nested.
const KEYS: &[&str] = &[
    "id",
    "cmd",
    "args",
    "instances",
    "cpus",
    "mem",
    "disk",
    "ports",
    "portDefinitions",
    "requirePorts",
    "env",
    "labels",
    "constraints",
    "healthChecks",
    "upgradeStrategy",
    "backoffSeconds",
    "backoffFactor",
    "maxLaunchDelaySeconds",
    "killSelection",
    "unreachableStrategy",
    "taskKillGracePeriodSeconds",
    "container",
    "port",
    "protocol",
    "name",
    "path",
    "portIndex",
    "command",
    "value",
    "gracePeriodSeconds",
    "intervalSeconds",
    "timeoutSeconds",
    "maxConsecutiveFailures",
    "delaySeconds",
    "ignoreHttp1xx",
    "minimumHealthCapacity",
    "maximumOverCapacity",
    "inactiveAfterSeconds",
    "expungeAfterSeconds",
    "type",
    "docker",
    "image",
];

static CORPUS: LazyLock<Vec<Seed>> = LazyLock::new(|| engine::corpus(TARGET));
static DOCS: LazyLock<Vec<Value>> = LazyLock::new(|| engine::json_seeds(&CORPUS));

fn target(input: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(input);
    let app = match AppDefinition::from_json_str(&text) {
        Ok(app) => app,
        Err(errors) => {
            assert!(!errors.is_empty(), "refused with no error: {text}");
            return Verdict::Refused(errors.to_string());
        }
    };
    let out = app.to_json();
    let again = AppDefinition::from_json(&out)
        .unwrap_or_else(|e| panic!("an accepted app's own JSON is refused ({e}): {out}"));
    assert_eq!(again, app, "the app changed on a round trip through {out}");
    let text_again = serde_json::to_string(&out).expect("an app's JSON serialises");
    assert_eq!(
        AppDefinition::from_json_str(&text_again).as_ref(),
        Ok(&app),
        "the app changed on a round trip through its text"
    );
    for p in &app.port_definitions {
        assert!(p.port <= 65535, "port {} accepted", p.port);
    }
    Verdict::Accepted
}

/// A valid app with some fields set to arbitrary (often hostile) values.
fn arb_app() -> impl Strategy<Value = Value> {
    let base = json!({"id": "/fuzz", "cmd": "sleep 1", "instances": 1, "cpus": 0.1, "mem": 32});
    proptest::collection::vec((0..KEYS.len(), engine::arb_json(KEYS)), 0..6).prop_map(
        move |fields| {
            let mut doc = base.clone();
            for (k, v) in fields {
                doc[KEYS[k]] = v;
            }
            doc
        },
    )
}

engine::corpus_tests!(TARGET, target, KEYS);

proptest! {
    #![proptest_config(engine::config())]

    #[test]
    fn generated_apps_never_break_the_parser(doc in arb_app()) {
        engine::run(target, doc.to_string().as_bytes());
    }
}
