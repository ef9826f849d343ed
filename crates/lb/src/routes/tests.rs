use serde_json::{Value, json};

use super::*;

fn task(id: &str, ip: &str, ports: &[u64], zone: &str, state: &str, alive: Option<bool>) -> Value {
    let health: Vec<Value> = alive
        .map(|a| {
            json!({"instanceId": id, "alive": a, "consecutiveFailures": 0,
                         "lastFailureCause": null, "lastSuccess": null, "lastFailure": null})
        })
        .into_iter()
        .collect();
    json!({
        "id": id, "appId": "/x", "host": "h", "ipAddresses": [{"ipAddress": ip, "protocol": "IPv4"}],
        "ports": ports, "servicePorts": [], "slaveId": "a", "agentId": "a", "state": state,
        "stagedAt": "2026-01-01T00:00:00.000Z", "startedAt": null, "version": "v",
        "healthCheckResults": health, "region": "r", "zone": zone,
    })
}

fn app(mut def: Value, tasks: Vec<Value>) -> App {
    def["version"] = json!("2026-01-01T00:00:00.000Z");
    def["versionInfo"] = json!({"lastConfigChangeAt": "v", "lastScalingAt": "v"});
    def["tasks"] = Value::Array(tasks);
    def.as_object_mut()
        .expect("object")
        .entry("cmd")
        .or_insert(json!("x"));
    serde_json::from_value(def).expect("an app")
}

#[test]
fn vip_labels_take_both_dcos_forms_and_name_what_is_wrong() {
    assert_eq!(
        Vip::parse("/web:80"),
        Ok(Vip {
            name: VipName::Named("web".into()),
            port: 80
        })
    );
    assert_eq!(
        Vip::parse("10.0.0.1:5000"),
        Ok(Vip {
            name: VipName::Address("10.0.0.1".parse().expect("ip")),
            port: 5000
        })
    );
    let team = Vip::parse("/Team/Web:80").expect("nested");
    assert_eq!(
        team.hostname().as_deref(),
        Some("web.team.marathon.l4lb.drover.directory")
    );
    for bad in ["web:80", "/web", "/web:0", "/web:99999", "/:80", "/we b:80"] {
        let e = Vip::parse(bad).expect_err(bad);
        assert!(e.contains(bad) && e.contains("/NAME:PORT"), "{bad}: {e}");
    }
}

#[test]
fn marathon_lb_labels_make_a_vhost_and_a_tcp_service_port() {
    let web = app(
        json!({"id": "/web", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "Web.Example.com, www.example.com"},
               "portDefinitions": [{"port": 0}]}),
        vec![task(
            "web.1",
            "127.0.1.1",
            &[31001],
            "a",
            "TASK_RUNNING",
            None,
        )],
    );
    let db = app(
        json!({"id": "/db", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_PORT": "15432", "HAPROXY_0_MODE": "tcp"},
               "portDefinitions": [{"port": 0}]}),
        vec![task(
            "db.1",
            "127.0.1.2",
            &[31002],
            "b",
            "TASK_RUNNING",
            None,
        )],
    );
    let (view, problems) = View::from_apps(&[web, db]);
    assert_eq!(problems, vec![]);
    let s = view
        .vhost("external", "www.example.com:8080")
        .expect("vhost");
    assert_eq!(s.app_id, "/web");
    assert_eq!(s.backends[0].addr, "127.0.1.1:31001".parse().expect("addr"));
    assert!(view.vhost("external", "web.example.com").is_some());
    assert!(view.vhost("internal", "web.example.com").is_none());
    assert!(view.vhost("*", "web.example.com").is_some());
    let (db, mode) = view.service_port("external", 15432).expect("service port");
    assert_eq!((db.app_id.as_str(), mode), ("/db", Mode::Tcp));
}

#[test]
fn drover_labels_win_over_marathon_lb_ones_and_apps_without_a_group_get_no_edge_route() {
    let a = app(
        json!({"id": "/a", "labels": {"HAPROXY_GROUP": "external", "DROVER_LB_GROUP": "edge",
                                        "HAPROXY_0_PORT": "1000", "DROVER_LB_0_PORT": "2000", "DROVER_LB_MAX_CONN": "7"},
               "portDefinitions": [{"port": 0}]}),
        vec![],
    );
    let b = app(
        json!({"id": "/b", "labels": {"HAPROXY_0_PORT": "3000"}, "portDefinitions": [{"port": 0}]}),
        vec![],
    );
    let (view, problems) = View::from_apps(&[a, b]);
    assert_eq!(problems, vec![]);
    let (s, _) = view.service_port("edge", 2000).expect("drover's port");
    assert_eq!(s.max_connections, Some(7));
    assert!(view.service_port("external", 1000).is_none());
    assert!(view.service_port("*", 3000).is_none());
    assert_eq!(view.services.len(), 1);
}

#[test]
fn only_running_healthy_tasks_are_ready_when_the_app_has_health_checks() {
    let checks = json!([{"protocol": "TCP", "portIndex": 0}]);
    let a = app(
        json!({"id": "/a", "healthChecks": checks, "portDefinitions": [{"port": 0, "labels": {"VIP_0": "/a:80"}}]}),
        vec![
            task("ok", "127.0.1.1", &[1], "a", "TASK_RUNNING", Some(true)),
            task("sick", "127.0.1.1", &[2], "a", "TASK_RUNNING", Some(false)),
            task("new", "127.0.1.1", &[3], "a", "TASK_RUNNING", None),
            task("dying", "127.0.1.1", &[4], "a", "TASK_KILLING", Some(true)),
        ],
    );
    let (mut view, _) = View::from_apps(&[a]);
    let ready = |v: &View| -> Vec<String> {
        v.services[0]
            .backends
            .iter()
            .filter(|b| b.ready)
            .map(|b| b.instance_id.clone())
            .collect()
    };
    assert_eq!(ready(&view), vec!["ok"]);
    // The masters restart and know no health yet: what was ready stays ready, what was
    // never ready still waits for its first result.
    let before = view.clone();
    let mut new = (*view.services[0].backends).clone();
    for b in new
        .iter_mut()
        .filter(|b| b.instance_id == "ok" || b.instance_id == "new")
    {
        b.ready = false;
        b.health_unknown = true;
    }
    view.services[0].backends = Arc::new(new);
    view.keep_ready_while_health_unknown(&before);
    assert_eq!(ready(&view), vec!["ok"]);
    assert!(view.mark_not_ready("ok"));
    assert!(ready(&view).is_empty());
    assert!(!view.mark_not_ready("ok"));
}

#[test]
fn a_second_claim_on_a_vip_port_vhost_or_service_port_is_reported_and_dropped() {
    let mk = |id: &str| {
        app(
            json!({"id": id, "labels": {"HAPROXY_GROUP": "g", "HAPROXY_0_PORT": "9000", "HAPROXY_0_VHOST": "h.example"},
                   "portDefinitions": [{"port": 0, "labels": {"VIP_0": format!("{id}:80")}}]}),
            vec![],
        )
    };
    let (view, problems) = View::from_apps(&[mk("/b"), mk("/a")]);
    assert_eq!(
        view.service_port("g", 9000).map(|(s, _)| s.app_id.as_str()),
        Some("/a")
    );
    assert_eq!(
        view.vhost("g", "h.example").map(|s| s.app_id.as_str()),
        Some("/a")
    );
    assert_eq!(
        view.vip_ports()
            .get(&80)
            .map(ToString::to_string)
            .as_deref(),
        Some("/a:80")
    );
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems
            .iter()
            .all(|p| p.app_id == "/b" && p.message.contains("/a:0")),
        "{problems:?}"
    );
}

#[test]
fn bad_labels_are_problems_not_failures() {
    let a = app(
        json!({"id": "/a", "labels": {"HAPROXY_GROUP": "g", "HAPROXY_0_PORT": "http", "HAPROXY_0_MODE": "udp",
                                        "DROVER_LB_MAX_CONN": "0"},
               "portDefinitions": [{"port": 0, "labels": {"VIP_0": "web"}}]}),
        vec![],
    );
    let (view, problems) = View::from_apps(&[a]);
    assert!(view.services.is_empty());
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 4, "{text:?}");
    assert!(
        text.iter().any(|t| t.contains("HAPROXY_0_PORT is `http`")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|t| t.contains("expected tcp or http")),
        "{text:?}"
    );
    assert!(text.iter().any(|t| t.contains("VIP_0")), "{text:?}");
}

#[test]
fn a_definition_cut_down_to_its_routing_fields_gives_the_same_view() {
    let tasks = vec![task(
        "i1",
        "10.0.0.1",
        &[31000],
        "a",
        "TASK_RUNNING",
        Some(true),
    )];
    let fields = json!({
        "id": "/a",
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_PORT": "9000"},
        "portDefinitions": [{"port": 0, "labels": {"VIP_0": "/a:80"}}],
    });
    let mut full = fields.clone();
    full["env"] = json!({"SECRET": "s"});
    full["healthChecks"] = json!([{"protocol": "TCP", "portIndex": 0, "intervalSeconds": 5}]);
    let full = app(full, tasks.clone());
    // As agents read it: no command, health checks by protocol only.
    let mut cut = fields;
    cut["healthChecks"] = json!([{"protocol": "TCP"}]);
    cut["version"] = json!("2026-01-01T00:00:00.000Z");
    cut["versionInfo"] = json!({"lastConfigChangeAt": "v", "lastScalingAt": "v"});
    cut["tasks"] = Value::Array(tasks);
    let cut: App = serde_json::from_value(cut).expect("an app");
    let (from_full, problems) = View::from_apps(&[full]);
    assert!(problems.is_empty(), "{problems:?}");
    let (from_cut, problems) = View::from_apps(&[cut]);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(from_cut, from_full);
    assert_eq!(from_cut.services.len(), 1);
    assert!(from_cut.services[0].backends[0].ready);
}
