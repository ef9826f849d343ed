//! Group changes planned against states built by applying commands.

use serde_json::json;
use state::{ActionKind, ClusterState, Command};

use super::*;

fn gid(s: &str) -> GroupId {
    GroupId::parse(s).expect("group id")
}

fn app(id: &str, instances: u32) -> AppDefinition {
    AppDefinition::from_json(&json!({"id": id, "cmd": "sleep 1000", "instances": instances}))
        .expect("app")
}

/// A three-level group file: /shop/db, /shop/backend/api (needs ../db), /shop/front/web
/// (its group needs ../backend).
fn shop() -> Value {
    json!({
        "id": "/shop",
        "groups": [
            {"id": "db", "apps": [{"id": "pg", "cmd": "sleep 1000", "instances": 1}]},
            {"id": "backend", "apps": [
                {"id": "api", "cmd": "sleep 1000", "instances": 2, "dependencies": ["../db"]}
            ]},
            {"id": "front", "dependencies": ["../backend"], "apps": [
                {"id": "web", "cmd": "sleep 1000", "instances": 1}
            ]}
        ]
    })
}

fn apply_all(state: &mut ClusterState, change: &Change) {
    let answer = state.apply(Command::Batch {
        commands: change.commands.clone(),
    });
    let state::Response::Batch { responses } = answer else {
        panic!("a batch answers a batch");
    };
    for r in responses {
        assert!(
            matches!(r, state::Response::Ok | state::Response::AppVersion { .. }),
            "{r:?}"
        );
    }
}

fn steps_of(change: &Change) -> Vec<Vec<(String, ActionKind)>> {
    change
        .deployment
        .as_ref()
        .expect("a deployment")
        .steps
        .iter()
        .map(|s| {
            s.actions
                .iter()
                .map(|a| (a.app.to_string(), a.action))
                .collect()
        })
        .collect()
}

fn created(state: &mut ClusterState) -> Change {
    let change = plan(
        state,
        &gid("/shop"),
        Request::Create(shop()),
        "2026-01-01T00:00:01.000Z",
        false,
        0,
    )
    .expect("the shop plans");
    apply_all(state, &change);
    change
}

#[test]
fn a_group_file_deploys_in_dependency_order_with_relative_paths_resolved() {
    let mut state = ClusterState::default();
    let change = created(&mut state);
    use ActionKind::StartApplication as Start;
    assert_eq!(
        steps_of(&change),
        vec![
            vec![("/shop/db/pg".to_string(), Start)],
            vec![("/shop/backend/api".to_string(), Start)],
            vec![("/shop/front/web".to_string(), Start)],
        ]
    );
    let api = state
        .app(&AppId::parse("/shop/backend/api").unwrap())
        .unwrap();
    assert_eq!(
        api.current().app.unknown.get("dependencies"),
        Some(&json!(["/shop/db"])),
        "dependencies are stored absolute"
    );
    assert_eq!(
        state.groups()[&gid("/shop/front")].dependencies,
        vec![AppId::parse("/shop/backend").unwrap()]
    );
    assert!(exists(&state, &gid("/shop/db")));
    assert_eq!(
        children(&state, &gid("/shop")),
        vec![gid("/shop/backend"), gid("/shop/db"), gid("/shop/front")]
    );
}

#[test]
fn scaling_multiplies_every_count_under_the_group_and_rollback_restores_it() {
    let mut state = ClusterState::default();
    created(&mut state);
    let v2 = "2026-01-01T00:00:02.000Z";
    let scaled = plan(&state, &gid("/shop"), Request::ScaleBy(2.0), v2, true, 0).unwrap();
    assert!(
        steps_of(&scaled)
            .iter()
            .flatten()
            .all(|(_, a)| *a == ActionKind::ScaleApplication)
    );
    apply_all(&mut state, &scaled);
    let count = |s: &ClusterState, id: &str| {
        s.app(&AppId::parse(id).unwrap())
            .unwrap()
            .current()
            .app
            .instances
    };
    assert_eq!(count(&state, "/shop/backend/api"), 4);
    assert_eq!(count(&state, "/shop/db/pg"), 2);
    let back = plan(
        &state,
        &gid("/shop"),
        Request::Rollback("2026-01-01T00:00:01.000Z".into()),
        "2026-01-01T00:00:03.000Z",
        true,
        0,
    )
    .unwrap();
    apply_all(&mut state, &back);
    assert_eq!(count(&state, "/shop/backend/api"), 2);
    assert_eq!(count(&state, "/shop/front/web"), 1);
    assert!(matches!(
        plan(
            &state,
            &gid("/shop"),
            Request::Rollback("nope".into()),
            "v",
            true,
            0
        ),
        Err(Refusal::NotFound(_))
    ));
}

#[test]
fn deleting_a_group_stops_everything_under_it_and_forgets_its_groups() {
    let mut state = ClusterState::default();
    created(&mut state);
    let other = app("/other", 1);
    state.apply(Command::PutApp {
        app: other,
        version: "v0".into(),
    });
    let gone = plan(&state, &gid("/shop"), Request::Delete, "v9", true, 0).unwrap();
    assert!(
        steps_of(&gone)
            .iter()
            .flatten()
            .all(|(_, a)| *a == ActionKind::StopApplication)
    );
    apply_all(&mut state, &gone);
    assert_eq!(state.apps().len(), 1, "only /other is left");
    assert!(state.groups().is_empty());
    assert!(!exists(&state, &gid("/shop")));
}

fn refused(state: &ClusterState, id: &str, body: Value) -> Refusal {
    plan(state, &gid(id), Request::Update(body), "v", false, 0).expect_err("refused")
}

fn messages(r: &Refusal) -> String {
    match r {
        Refusal::Invalid(e) => format!("{:?}", e.details()),
        other => format!("{other:?}"),
    }
}

#[test]
fn bad_groups_are_refused_with_what_is_wrong() {
    let mut state = ClusterState::default();
    let unknown = refused(
        &state,
        "/g",
        json!({"apps": [{"id": "a", "cmd": "x", "dependencies": ["/nowhere"]}]}),
    );
    assert!(
        messages(&unknown).contains("/g/a depends on /nowhere"),
        "{unknown:?}"
    );
    let cycle = refused(
        &state,
        "/g",
        json!({"apps": [
            {"id": "a", "cmd": "x", "dependencies": ["b"]},
            {"id": "b", "cmd": "x", "dependencies": ["a"]}
        ]}),
    );
    assert!(
        messages(&cycle).contains("cyclic dependencies: /g/a -> /g/b -> /g/a"),
        "{cycle:?}"
    );
    let outside = refused(
        &state,
        "/g",
        json!({"apps": [{"id": "/elsewhere/a", "cmd": "x"}]}),
    );
    assert!(
        messages(&outside).contains("app /elsewhere/a is not in group /g"),
        "{outside:?}"
    );
    let bad_app = refused(&state, "/g", json!({"apps": [{"id": "a", "cpus": -1}]}));
    assert!(messages(&bad_app).contains("/apps(0)"), "{bad_app:?}");
    let other_id = refused(&state, "/g", json!({"id": "/h"}));
    assert!(messages(&other_id).contains("differs"), "{other_id:?}");

    // An app and a group with the same id.
    state.apply(Command::PutApp {
        app: app("/g/x", 1),
        version: "v0".into(),
    });
    let clash = refused(
        &state,
        "/g",
        json!({"groups": [{"id": "x", "apps": [{"id": "y", "cmd": "x"}]}]}),
    );
    assert!(
        messages(&clash).contains("/g/x is both an app and a group"),
        "{clash:?}"
    );
    // Creating a group that exists (implicitly, by /g/x).
    assert!(matches!(
        plan(
            &state,
            &gid("/g"),
            Request::Create(json!({"id": "/g"})),
            "v",
            false,
            0
        ),
        Err(Refusal::Conflict(_))
    ));
}

#[test]
fn an_update_keeps_what_it_does_not_name_and_replaces_what_it_names() {
    let mut state = ClusterState::default();
    created(&mut state);
    // Only the front group's apps are given: the others stay, web is replaced by two.
    let change = plan(
        &state,
        &gid("/shop/front"),
        Request::Update(json!({"apps": [
            {"id": "web2", "cmd": "sleep 1000", "instances": 1}
        ]})),
        "2026-01-01T00:00:05.000Z",
        true,
        0,
    )
    .unwrap();
    use ActionKind::{StartApplication as Start, StopApplication as Stop};
    assert_eq!(
        steps_of(&change),
        vec![
            vec![("/shop/front/web".to_string(), Stop)],
            vec![("/shop/front/web2".to_string(), Start)]
        ]
    );
    apply_all(&mut state, &change);
    assert_eq!(state.apps().len(), 3);
    // The group's dependency was kept.
    assert_eq!(
        state.groups()[&gid("/shop/front")].dependencies,
        vec![AppId::parse("/shop/backend").unwrap()]
    );
}

#[test]
fn a_change_of_an_app_another_deployment_holds_is_refused_unless_forced() {
    let mut state = ClusterState::default();
    let first = created(&mut state);
    let d = first.deployment.expect("deployment");
    assert_eq!(state.deployments().len(), 1, "{:?}", d.id);
    let scaled = plan(&state, &gid("/shop"), Request::ScaleBy(2.0), "v2", false, 0);
    assert!(
        matches!(&scaled, Err(Refusal::Conflict(m)) if m.contains(&d.id)),
        "{scaled:?}"
    );
    assert!(plan(&state, &gid("/shop"), Request::ScaleBy(2.0), "v2", true, 0).is_ok());
}

#[test]
fn scaling_a_group_scales_the_pods_under_it_as_a_scale_not_a_restart() {
    let mut state = ClusterState::default();
    created(&mut state);
    let pod = AppDefinition::pod_from_json(&json!({
        "id": "/shop/front/pair",
        "scaling": {"kind": "fixed", "instances": 2},
        "containers": [{"name": "web", "exec": {"command": {"shell": "sleep 1000"}},
                        "resources": {"cpus": 0.1, "mem": 16}}]
    }))
    .expect("pod");
    state.apply(Command::PutApp {
        app: pod,
        version: "2026-01-01T00:00:01.500Z".into(),
    });
    let v2 = "2026-01-01T00:00:02.000Z";
    let scaled = plan(&state, &gid("/shop"), Request::ScaleBy(1.5), v2, true, 0).unwrap();
    let steps = steps_of(&scaled);
    assert!(
        steps
            .iter()
            .flatten()
            .any(|(a, k)| a == "/shop/front/pair" && *k == ActionKind::ScaleApplication),
        "the pod scales with the group: {steps:?}"
    );
    apply_all(&mut state, &scaled);
    let pair = state
        .app(&AppId::parse("/shop/front/pair").unwrap())
        .unwrap()
        .current()
        .app
        .clone();
    assert_eq!(pair.instances, 3, "2 × 1.5, rounded up");
    let shown = pair.pod.as_ref().expect("still a pod").to_json(None);
    assert_eq!(
        shown["scaling"]["instances"], 3,
        "the pod's JSON says so: {shown}"
    );
    // What the log and snapshots hold reads back at the scaled count.
    let back = AppDefinition::from_stored_json(&pair.to_json()).expect("reads back");
    assert_eq!(back.instances, 3, "the stored form keeps the count");
}
