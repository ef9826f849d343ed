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

#[test]
fn every_number_has_a_bound_that_names_what_was_sent() {
    let errors = invalid(json!({
        "id": "big", "cmd": "x",
        "instances": 1_000_000_000,
        "cpus": 1e9, "mem": 1e300, "disk": -1,
        "backoffSeconds": 1e12, "maxLaunchDelaySeconds": 1e12, "backoffFactor": 1e6,
        "taskKillGracePeriodSeconds": 1e30,
        "unreachableStrategy": {"inactiveAfterSeconds": 1e20, "expungeAfterSeconds": 1e21},
        "healthChecks": [{"protocol": "TCP", "intervalSeconds": 1e15, "maxConsecutiveFailures": 4294967296u64}]
    }));
    assert_eq!(
        errors.at("/instances"),
        ["got 1000000000, expected 100000 or less"]
    );
    assert_eq!(
        errors.at("/cpus"),
        ["got 1000000000, expected 10000.0 or less"]
    );
    assert!(errors.at("/mem")[0].ends_with("expected 16777216.0 or less"));
    assert_eq!(errors.at("/disk"), ["got -1, expected 0.0 or more"]);
    for path in [
        "/backoffSeconds",
        "/maxLaunchDelaySeconds",
        "/taskKillGracePeriodSeconds",
        "/unreachableStrategy/inactiveAfterSeconds",
        "/unreachableStrategy/expungeAfterSeconds",
        "/healthChecks(0)/intervalSeconds",
    ] {
        assert!(
            errors
                .at(path)
                .iter()
                .any(|e| e.ends_with("expected 604800.0 or less")),
            "{path}: {:?}",
            errors.at(path)
        );
    }
    assert_eq!(
        errors.at("/backoffFactor"),
        ["got 1000000, expected 1000.0 or less"]
    );
    assert_eq!(
        errors.at("/healthChecks(0)/maxConsecutiveFailures"),
        ["got 4294967296, expected 10000 or less"]
    );
}

#[test]
fn instances_beyond_u32_are_refused_not_truncated() {
    for n in [
        json!(4294967296u64),
        json!(18446744073709551615u64),
        json!(1e300),
    ] {
        let errors = invalid(json!({"id": "x", "cmd": "x", "instances": n}));
        assert_eq!(errors.at("/instances").len(), 1, "{n}");
        assert!(
            errors.at("/instances")[0].ends_with("expected 100000 or less"),
            "{n}"
        );
    }
}

#[test]
fn whole_numbers_written_as_floats_are_numbers() {
    let app = AppDefinition::from_json(&json!({"id": "x", "cmd": "x", "instances": 3e0})).unwrap();
    assert_eq!(app.instances, 3);
    let errors = invalid(json!({"id": "x", "cmd": "x", "instances": 1e9}));
    assert_eq!(
        errors.at("/instances"),
        ["got 1000000000, expected 100000 or less"]
    );
    let errors = invalid(json!({"id": "x", "cmd": "x", "instances": 1.5}));
    assert_eq!(
        errors.at("/instances"),
        ["got 1.5, expected a whole number"]
    );
}

#[test]
fn the_limits_themselves_are_accepted() {
    let app = AppDefinition::from_json(&json!({
        "id": "x", "cmd": "x", "instances": limits::MAX_INSTANCES,
        "cpus": limits::MAX_CPUS, "mem": limits::MAX_MEM_MIB, "disk": limits::MAX_DISK_MIB,
        "backoffSeconds": limits::MAX_SECONDS, "backoffFactor": limits::MAX_BACKOFF_FACTOR
    }))
    .unwrap();
    assert_eq!(i64::from(app.instances), limits::MAX_INSTANCES);
}

#[test]
fn too_many_ports_are_refused() {
    let ports: Vec<Value> = (0..=limits::MAX_PORTS)
        .map(|_| json!({"port": 0}))
        .collect();
    let errors = invalid(json!({"id": "x", "cmd": "x", "portDefinitions": ports}));
    assert_eq!(
        errors.at("/portDefinitions"),
        ["got 101 ports, expected 100 or fewer per app"]
    );
}

#[test]
fn ids_that_cannot_name_a_sandbox_are_refused() {
    let long = "a".repeat(limits::MAX_APP_ID_BYTES);
    let errors = invalid(json!({"id": long, "cmd": "x"}));
    assert_eq!(errors.at("/id"), [ID_LENGTH_MESSAGE]);
    assert!(ID_LENGTH_MESSAGE.contains(&limits::MAX_APP_ID_BYTES.to_string()));
    let fits = "a".repeat(limits::MAX_APP_ID_BYTES - 1);
    assert!(AppDefinition::from_json(&json!({"id": fits, "cmd": "x"})).is_ok());
}

#[test]
fn nul_bytes_are_refused_where_they_are() {
    let errors = invalid(json!({
        "id": "x", "cmd": "echo a\u{0}b", "env": {"A": "1\u{0}"},
        "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true\u{0}"}}],
        "labels": {"k\u{0}": "v"}
    }));
    for path in [
        "/cmd",
        "/env/A",
        "/healthChecks(0)/command/value",
        "/labels/k\u{0}",
    ] {
        assert_eq!(errors.at(path).len(), 1, "{path}: {errors}");
        assert!(errors.at(path)[0].contains("NUL byte"), "{path}");
    }
    let errors = invalid(json!({"id": "x", "args": ["a", "b\u{0}"]}));
    assert!(errors.at("/args(1)")[0].contains("NUL byte"));
}

#[test]
fn definitions_over_the_size_limit_are_refused_and_under_it_accepted() {
    let big = "x".repeat(limits::MAX_APP_BYTES);
    let errors = invalid(json!({"id": "x", "cmd": "x", "labels": {"big": big}}));
    assert!(
        errors.at("/")[0].contains("at most 524288 bytes"),
        "{errors}"
    );
    let fits = "x".repeat(limits::MAX_APP_BYTES - 2048);
    let app =
        AppDefinition::from_json(&json!({"id": "x", "cmd": "x", "labels": {"big": fits}})).unwrap();
    assert!(app.to_json().to_string().len() <= limits::MAX_APP_BYTES);
}

#[test]
fn stored_definitions_beyond_a_limit_are_read_clamped_not_refused() {
    let stored = json!({"id": "old", "cmd": "x", "instances": 1_000_000_000, "cpus": 1e9});
    assert!(AppDefinition::from_json(&stored).is_err());
    let app: AppDefinition = serde_json::from_value(stored).unwrap();
    assert_eq!(i64::from(app.instances), limits::MAX_INSTANCES);
    assert_eq!(app.cpus, limits::MAX_CPUS);
    // Nor are the rules added for new input: a NUL byte, a definition over the size limit.
    let nul = json!({"id": "old", "cmd": "echo a\u{0}b", "labels": {"big": "x".repeat(limits::MAX_APP_BYTES)}});
    assert!(AppDefinition::from_json(&nul).is_err());
    assert!(serde_json::from_value::<AppDefinition>(nul).is_ok());
    // Nor is any rule tightened after a definition was stored: what the current rules refuse
    // reads clamped into range or at its default, so an old log or snapshot never becomes
    // unreadable.
    let tightened = json!({"id": "old", "cmd": "x", "instances": -1, "mem": 64});
    assert!(AppDefinition::from_json(&tightened).is_err());
    let app: AppDefinition = serde_json::from_value(tightened).unwrap();
    assert_eq!((app.instances, app.mem), (0, 64.0));
    // Only a definition without a readable id, which no version accepted, is refused.
    let no_id = json!({"cmd": "x"});
    assert!(serde_json::from_value::<AppDefinition>(no_id).is_err());
}

#[test]
fn readiness_check_defaults_follow_marathon_and_round_trip() {
    let app = AppDefinition::from_json(&json!({
        "id": "x", "cmd": "x",
        "portDefinitions": [{"port": 0, "name": "http-api"}],
        "readinessChecks": [{}]
    }))
    .unwrap();
    let rc = &app.readiness_checks[0];
    assert_eq!(rc.name, "readinessCheck");
    assert_eq!(rc.protocol, ReadinessProtocol::Http);
    assert_eq!(rc.path, "/");
    assert_eq!(rc.port_name, "http-api");
    assert_eq!((rc.interval_seconds, rc.timeout_seconds), (30, 10));
    assert_eq!(rc.http_status_codes_for_ready, [200]);
    assert!(!rc.preserve_last_response);
    assert_eq!(rc.port_index(&app.port_definitions), Some(0));
    let out = app.to_json();
    assert_eq!(
        out["readinessChecks"],
        json!([{"name": "readinessCheck", "protocol": "HTTP", "path": "/", "portName": "http-api",
                "intervalSeconds": 30, "timeoutSeconds": 10, "httpStatusCodesForReady": [200],
                "preserveLastResponse": false}])
    );
    assert_eq!(AppDefinition::from_json(&out).unwrap(), app);
    let plain = AppDefinition::from_json(&json!({"id": "y", "cmd": "y"})).unwrap();
    assert_eq!(plain.to_json()["readinessChecks"], json!([]));
}

#[test]
fn readiness_checks_are_validated_with_marathons_rules() {
    let ports = json!([{"port": 0, "name": "admin"}, {"port": 0, "name": "web"}]);
    let cases = [
        (
            json!({"portName": "web", "protocol": "TCP"}),
            "/readinessChecks(0)/protocol",
            "is not a readiness check protocol",
        ),
        (
            json!({"portName": "nope"}),
            "/readinessChecks(0)/portName",
            "expected one of: admin, web",
        ),
        (
            json!({"portName": ""}),
            "/readinessChecks(0)/portName",
            "must not be empty",
        ),
        (
            json!({"portName": "web", "name": ""}),
            "/readinessChecks(0)/name",
            "must not be empty",
        ),
        (
            json!({"portName": "web", "path": ""}),
            "/readinessChecks(0)/path",
            "must not be empty",
        ),
        (
            json!({"portName": "web", "intervalSeconds": 5, "timeoutSeconds": 5}),
            "/readinessChecks(0)/timeoutSeconds",
            "expected less than intervalSeconds (5)",
        ),
        (
            json!({"portName": "web", "timeoutSeconds": 0}),
            "/readinessChecks(0)/timeoutSeconds",
            "expected more than 0",
        ),
        (
            json!({"portName": "web", "intervalSeconds": 1.5}),
            "/readinessChecks(0)/intervalSeconds",
            "",
        ),
        (
            json!({"portName": "web", "httpStatusCodesForReady": []}),
            "/readinessChecks(0)/httpStatusCodesForReady",
            "must not be empty",
        ),
        (
            json!({"portName": "web", "httpStatusCodesForReady": [200, 42]}),
            "/readinessChecks(0)/httpStatusCodesForReady(1)",
            "got 42, expected an HTTP status code",
        ),
        (
            json!({"portName": "web", "preserveLastResponse": "yes"}),
            "/readinessChecks(0)/preserveLastResponse",
            "error.expected.jsboolean",
        ),
    ];
    for (check, path, message) in cases {
        let errors = invalid(json!({
            "id": "x", "cmd": "x", "portDefinitions": ports, "readinessChecks": [check]
        }));
        let at = errors.at(path);
        assert!(
            at.iter().any(|m| m.contains(message)),
            "{check}: wanted {message:?} at {path}, got {:?}",
            errors.details()
        );
    }
    let unnamed = invalid(json!({"id": "x", "cmd": "x", "readinessChecks": [{}]}));
    assert!(
        unnamed.at("/readinessChecks(0)/portName")[0]
            .contains("'http-api' names no port definition"),
        "{:?}",
        unnamed.details()
    );
    let two = invalid(json!({
        "id": "x", "cmd": "x", "portDefinitions": ports,
        "readinessChecks": [{"portName": "web"}, {"portName": "admin"}]
    }));
    assert_eq!(two.at("/readinessChecks"), [readiness::AT_MOST_ONE]);
    let https = AppDefinition::from_json(&json!({
        "id": "x", "cmd": "x", "portDefinitions": ports,
        "readinessChecks": [{"portName": "web", "protocol": "HTTPS", "httpStatusCodesForReady": [200, 204, 200]}]
    }))
    .unwrap();
    let rc = &https.readiness_checks[0];
    assert_eq!(rc.protocol, ReadinessProtocol::Https);
    assert_eq!(
        rc.http_status_codes_for_ready,
        [200, 204],
        "duplicates are dropped"
    );
    assert_eq!(rc.port_index(&https.port_definitions), Some(1));
    assert!(rc.is_ready_status(204) && !rc.is_ready_status(503));
}
