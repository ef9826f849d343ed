use serde_json::json;

use super::*;

fn invalid(v: Value) -> ValidationErrors {
    AppDefinition::from_json(&v).unwrap_err()
}

#[test]
fn fills_in_marathons_defaults() {
    let app = AppDefinition::from_json(&json!({"id": "web", "cmd": "sleep 100"})).unwrap();
    assert_eq!(app.id.as_str(), "/web");
    assert_eq!(app.instances, 1);
    assert_eq!((app.cpus, app.mem, app.disk), (1.0, 128.0, 0.0));
    assert_eq!(app.port_definitions.len(), 1);
    assert_eq!(app.port_definitions[0].port, 0);
    assert_eq!(app.upgrade_strategy, UpgradeStrategy::default());
    assert_eq!(app.backoff_seconds, 1.0);
    assert_eq!(app.backoff_factor, 1.15);
    assert_eq!(app.max_launch_delay_seconds, 300.0);
    assert_eq!(app.kill_selection, KillSelection::YoungestFirst);
    assert_eq!(app.unreachable_strategy, UnreachableStrategy::default());
    let out = app.to_json();
    assert_eq!(
        out["unreachableStrategy"],
        json!({"inactiveAfterSeconds": 0.0, "expungeAfterSeconds": 0.0})
    );
    assert_eq!(out["portDefinitions"][0]["name"], "default");
}

#[test]
fn unknown_fields_round_trip() {
    let input = json!({
        "id": "/prod/web", "cmd": "x", "fetch": [{"uri": "http://x"}], "user": "nobody",
        "container": {"type": "DOCKER", "docker": {"image": "busybox", "forcePullImage": true}, "volumes": []}
    });
    let app = AppDefinition::from_json(&input).unwrap();
    let out = app.to_json();
    assert_eq!(out["fetch"], input["fetch"]);
    assert_eq!(out["user"], "nobody");
    assert_eq!(out["container"], input["container"]);
    assert_eq!(
        app.container.as_ref().unwrap().docker_image.as_deref(),
        Some("busybox")
    );
    let again = AppDefinition::from_json(&out).unwrap();
    assert_eq!(again, app);
}

#[test]
fn reports_every_problem_at_once_in_marathons_body() {
    let errors = invalid(json!({
        "id": "Bad_ID",
        "instances": -1,
        "cpus": "two",
        "mem": -5,
        "constraints": [["hostname", "UNIQUE", "x"], ["@zone", "GROUP_BY", "four"]],
        "upgradeStrategy": {"minimumHealthCapacity": 1.5}
    }));
    let body = errors.to_json();
    assert_eq!(body["message"], "Object is not valid");
    assert_eq!(errors.at("/id"), [ID_SEGMENT_MESSAGE]);
    assert_eq!(errors.at("/instances"), ["got -1, expected 0 or more"]);
    assert_eq!(errors.at("/cpus"), ["error.expected.jsnumber"]);
    assert_eq!(errors.at("/mem"), ["got -5, expected 0.0 or more"]);
    assert_eq!(
        errors.at("/constraints(0)"),
        ["UNIQUE does not accept a value"]
    );
    assert_eq!(
        errors.at("/constraints(1)"),
        ["GROUP BY must define an integer value or else no value at all"]
    );
    assert_eq!(
        errors.at("/upgradeStrategy/minimumHealthCapacity"),
        ["got 1.5, expected between 0.0 and 1.0"]
    );
    assert_eq!(errors.at("/"), [MSG_CMD_ARGS]);
    assert_eq!(body["details"].as_array().unwrap().len(), 8);
}

#[test]
fn a_service_runs_in_one_region() {
    let errors = invalid(json!({
        "id": "x", "cmd": "x",
        "constraints": [["@region", "IS", "a"], ["@region", "IS", "b"], ["@region", "GROUP_BY"]]
    }));
    assert!(errors.at("/constraints(1)")[0].contains("exactly one region"));
    assert_eq!(
        errors.at("/constraints(2)"),
        [crate::constraint::MSG_REGION_OPERATOR]
    );
    let ok = AppDefinition::from_json(&json!({
        "id": "x", "cmd": "x", "constraints": [["@region", "IS", "a"], ["@region", "CLUSTER", "a"]]
    }))
    .unwrap();
    assert_eq!(ok.region(), Some("a"));
}

#[test]
fn missing_id_and_bad_types_are_named() {
    let errors = invalid(json!({"cmd": 5, "env": {"A": 1, "1B": "x"}, "requirePorts": "yes"}));
    assert_eq!(errors.at("/id"), ["error.path.missing"]);
    assert_eq!(errors.at("/cmd"), ["error.expected.jsstring"]);
    assert_eq!(errors.at("/env/A"), ["error.expected.jsstring"]);
    assert!(errors.at("/env/1B")[0].contains("alphanumeric"));
    assert_eq!(errors.at("/requirePorts"), ["error.expected.jsboolean"]);
    assert_eq!(invalid(json!([1])).at("/"), ["error.expected.jsobject"]);
    let e = AppDefinition::from_json_str("{not json").unwrap_err();
    assert!(e.at("/")[0].starts_with("Invalid JSON"));
}

#[test]
fn ports_health_checks_and_strategies_are_checked() {
    let errors = invalid(json!({
        "id": "x", "cmd": "x",
        "portDefinitions": [{"port": 80, "name": "http"}, {"port": 80, "name": "http"}, {"port": 70000}],
        "healthChecks": [{"protocol": "HTTP", "portIndex": 5}, {"protocol": "COMMAND"}, {"protocol": "GRPC"}],
        "killSelection": "RANDOM",
        "unreachableStrategy": {"inactiveAfterSeconds": 10, "expungeAfterSeconds": 5},
        "backoffFactor": 0.5,
        "container": {"type": "DOCKER", "docker": {}}
    }));
    assert!(
        errors
            .at("/portDefinitions")
            .contains(&"Ports must be unique.".to_string())
    );
    assert!(
        errors
            .at("/portDefinitions")
            .contains(&"Port names must be unique.".to_string())
    );
    assert_eq!(
        errors.at("/portDefinitions(2)/port"),
        ["got 70000, expected between 0 and 65535"]
    );
    assert!(errors.at("/healthChecks(0)")[0].contains("port indices"));
    assert!(errors.at("/healthChecks(1)/command")[0].contains("COMMAND"));
    assert!(errors.at("/healthChecks(2)/protocol")[0].contains("GRPC"));
    assert!(errors.at("/killSelection")[0].contains("OLDEST_FIRST"));
    assert!(
        errors.at("/unreachableStrategy/expungeAfterSeconds")[0].contains("inactiveAfterSeconds")
    );
    assert_eq!(
        errors.at("/backoffFactor"),
        ["got 0.5, expected 1.0 or more"]
    );
    assert!(errors.at("/container/docker/image")[0].contains("image"));
}

#[test]
fn health_check_defaults_follow_marathon() {
    let app = AppDefinition::from_json(&json!({
        "id": "x", "cmd": "x",
        "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/health"}, {"protocol": "COMMAND", "command": {"value": "true"}}],
        "ports": [0, 0]
    }))
    .unwrap();
    let h = &app.health_checks[0];
    assert_eq!(h.protocol, HealthProtocol::Http);
    assert_eq!(h.protocol_name, "MESOS_HTTP");
    assert_eq!(
        (
            h.grace_period_seconds,
            h.interval_seconds,
            h.timeout_seconds
        ),
        (300.0, 60.0, 20.0)
    );
    assert_eq!(h.max_consecutive_failures, 3);
    assert_eq!(h.port_index, Some(0));
    assert!(!h.ignore_http1xx);
    assert_eq!(app.health_checks[1].port_index, None);
    assert_eq!(app.port_definitions.len(), 2);
    let both = invalid(json!({"id": "x", "cmd": "x", "ports": [0], "portDefinitions": []}));
    assert_eq!(
        both.at("/"),
        ["You cannot specify both ports and port definitions"]
    );
}

#[test]
fn ids_are_normalised() {
    assert_eq!(AppId::parse("a/b/").unwrap().as_str(), "/a/b");
    assert_eq!(AppId::parse("/a.b-c").unwrap().as_str(), "/a.b-c");
    assert!(AppId::parse("/").is_err());
    assert!(AppId::parse("/-a").is_err());
    assert!(AppId::parse("/A").is_err());
}
