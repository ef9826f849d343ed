use serde_json::{Value, json};

use super::*;

fn two_containers() -> Value {
    json!({
        "id": "/prod/pair",
        "labels": {"team": "blue"},
        "environment": {"SHARED": "1"},
        "scaling": {"kind": "fixed", "instances": 2},
        "scheduling": {"placement": {"constraints": [
            {"fieldName": "hostname", "operator": "UNIQUE"}
        ]}},
        "containers": [
            {
                "name": "web",
                "exec": {"command": {"shell": "sleep 100"}},
                "resources": {"cpus": 0.25, "mem": 32},
                "endpoints": [{"name": "http", "hostPort": 0}],
                "healthCheck": {"http": {"endpoint": "http", "path": "/ping"}},
                "environment": {"ROLE": "web"}
            },
            {
                "name": "sidecar",
                "exec": {"command": {"shell": "sleep 100"}},
                "resources": {"cpus": 0.5, "mem": 64, "disk": 10},
                "endpoints": [{"name": "admin", "hostPort": 0, "protocol": ["tcp"]}]
            }
        ]
    })
}

fn errors_of(v: Value) -> Vec<(String, Vec<String>)> {
    AppDefinition::pod_from_json(&v)
        .expect_err("the pod should be refused")
        .details()
        .to_vec()
}

fn has_error_at(v: Value, path: &str) -> bool {
    errors_of(v).iter().any(|(p, _)| p == path)
}

#[test]
fn a_pod_is_one_instance_with_the_sum_of_its_containers() {
    let app = AppDefinition::pod_from_json(&two_containers()).expect("valid pod");
    assert_eq!(app.id.as_str(), "/prod/pair");
    assert_eq!(app.instances, 2);
    assert!((app.cpus - 0.75).abs() < 1e-9);
    assert!((app.mem - 96.0).abs() < 1e-9);
    assert!((app.disk - 10.0).abs() < 1e-9);
    let names: Vec<_> = app
        .port_definitions
        .iter()
        .map(|p| p.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, ["http", "admin"]);
    assert!(app.require_ports, "endpoint host ports are exact; 0 is any");
    assert_eq!(app.constraints.len(), 1);
    assert_eq!(app.env.get("SHARED").map(String::as_str), Some("1"));
    assert_eq!(app.health_checks.len(), 1);
    assert_eq!(app.health_checks[0].port_index, Some(0));
    assert_eq!(app.health_checks[0].path, "/ping");
    let pod = app.pod.as_ref().expect("a pod");
    assert_eq!(pod.containers.len(), 2);
    assert_eq!(pod.containers[0].health_check, Some(0));
    assert_eq!(pod.containers[1].endpoints, ["admin"]);
    assert!(app.cmd.is_none());
}

#[test]
fn a_stored_pod_reads_back_the_same() {
    let app = AppDefinition::pod_from_json(&two_containers()).expect("valid pod");
    let stored = serde_json::to_value(&app).expect("serialise");
    let back: AppDefinition = serde_json::from_value(stored).expect("read back");
    assert_eq!(back, app);
}

#[test]
fn scaling_a_pod_changes_its_stored_scaling_and_nothing_else() {
    let app = AppDefinition::pod_from_json(&two_containers()).expect("valid pod");
    let mut scaled = app.clone();
    scaled.set_instances(5);
    assert_eq!(scaled.instances, 5);
    let pod = scaled.pod.as_ref().expect("a pod");
    assert_eq!(
        pod.to_json(None)["scaling"],
        json!({"kind": "fixed", "instances": 5}),
        "the pod's JSON says the new count"
    );
    let stored = serde_json::to_value(&scaled).expect("serialise");
    let back: AppDefinition = serde_json::from_value(stored).expect("read back");
    assert_eq!(
        back.instances, 5,
        "the count survives a reload from the log"
    );
    assert!(scaled.same_but_instances(&app), "a scale, not a restart");
    let mut changed = scaled.clone();
    changed.labels.insert("team".into(), "red".into());
    assert!(
        !changed.same_but_instances(&app),
        "a label change is a change"
    );
}

#[test]
fn an_app_cannot_carry_the_pod_field() {
    let v = json!({"id": "/a", "cmd": "true", "pod": two_containers()});
    let errors = AppDefinition::from_json(&v).expect_err("refused");
    assert_eq!(errors.at("/pod"), [super::super::POD_FIELD_MESSAGE]);
}

#[test]
fn missing_containers_are_refused() {
    assert!(has_error_at(json!({"id": "/p"}), "/containers"));
    assert!(has_error_at(
        json!({"id": "/p", "containers": []}),
        "/containers"
    ));
}

#[test]
fn duplicate_container_and_endpoint_names_are_refused() {
    let mut v = two_containers();
    v["containers"][1]["name"] = json!("web");
    assert!(has_error_at(v, "/containers(1)/name"));
    let mut v = two_containers();
    v["containers"][1]["endpoints"][0]["name"] = json!("http");
    assert!(has_error_at(v, "/containers(1)/endpoints(0)/name"));
}

#[test]
fn bad_resources_are_refused() {
    let mut v = two_containers();
    v["containers"][0]["resources"]["cpus"] = json!(-1);
    assert!(has_error_at(v, "/containers(0)/resources/cpus"));
    let mut v = two_containers();
    v["containers"][0]["resources"]["mem"] = json!("lots");
    assert!(has_error_at(v, "/containers(0)/resources/mem"));
    let mut v = two_containers();
    v["containers"][0]
        .as_object_mut()
        .expect("object")
        .remove("resources");
    assert!(has_error_at(v, "/containers(0)/resources"));
}

#[test]
fn images_are_refused_as_pods_run_processes_only() {
    let mut v = two_containers();
    v["containers"][0]["image"] = json!({"kind": "DOCKER", "id": "nginx"});
    let errors = errors_of(v);
    let found = errors.iter().find(|(p, _)| p == "/containers(0)/image");
    assert_eq!(
        found.map(|(_, e)| e.clone()),
        Some(vec![PROCESSES_ONLY.to_string()])
    );
}

#[test]
fn a_health_check_must_name_an_endpoint_of_its_container() {
    let mut v = two_containers();
    v["containers"][0]["healthCheck"] = json!({"tcp": {"endpoint": "admin"}});
    assert!(has_error_at(v, "/containers(0)/healthCheck/tcp/endpoint"));
}

#[test]
fn bad_constraints_and_names_are_refused_with_their_paths() {
    let mut v = two_containers();
    v["scheduling"]["placement"]["constraints"] =
        json!([{"fieldName": "hostname", "operator": "NOPE"}]);
    assert!(has_error_at(v, "/scheduling/placement/constraints(0)"));
    let mut v = two_containers();
    v["containers"][0]["name"] = json!("Web_1");
    assert!(has_error_at(v, "/containers(0)/name"));
}

#[test]
fn unknown_fields_are_kept_in_the_definition() {
    let mut v = two_containers();
    v["volumes"] = json!([{"name": "v"}]);
    let app = AppDefinition::pod_from_json(&v).expect("valid");
    let shown = app
        .pod
        .expect("pod")
        .to_json(Some("2024-01-01T00:00:00.000Z"));
    assert_eq!(shown["volumes"], json!([{"name": "v"}]));
    assert_eq!(shown["version"], json!("2024-01-01T00:00:00.000Z"));
    assert_eq!(shown["scaling"], json!({"kind": "fixed", "instances": 2}));
}
