//! What earlier versions of drover wrote to the log and to snapshots stays readable.
//!
//! `fixtures/stage1-*.json` were written by the stage-1 state machine (commit b0b358b^, the
//! last one with whole-record instance writes): a snapshot, and the log of commands that
//! built it. They are never regenerated; a change that fails this test breaks every cluster
//! that upgrades.

use domain::{AgentId, AppId};
use state::{ClusterState, Command, Condition, Goal, GoalChange, InstanceId, Response};

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn stage1_snapshot() -> ClusterState {
    serde_json::from_str(&fixture("stage1-snapshot.json")).expect("a stage-1 snapshot reads")
}

#[test]
fn a_stage_1_snapshot_reads_with_its_apps_instances_and_indexes() {
    let s = stage1_snapshot();
    assert_eq!(s.cluster_id(), Some("c-fixture"));
    let web = s
        .app(&AppId::parse("/prod/web").expect("id"))
        .expect("/prod/web is there");
    let app = &web.current().app;
    assert_eq!((app.instances, app.cpus, app.mem), (2, 0.5, 64.0));
    assert_eq!(app.constraints.len(), 2);
    assert_eq!(app.health_checks.len(), 1);
    assert_eq!(app.env.get("MODE").map(String::as_str), Some("prod"));
    assert!(s.app(&AppId::parse("/db").expect("id")).is_some());
    let ids: Vec<&str> = s.instances().keys().map(|i| i.0.as_str()).collect();
    assert_eq!(ids, ["prod_web.instance-1", "prod_web.instance-2"]);
    // The indexes are rebuilt; the shares of stage-1 records (which did not record them)
    // come from their definitions.
    assert_eq!(s.instances_on(&AgentId::from("a1")).count(), 1);
    let used = s.usage(&AgentId::from("a1"));
    assert_eq!((used.tasks, used.cpus, used.mem), (1, 500, 64_000));
    assert_eq!(s.backoffs().len(), 1);
    // Written before event subscriptions existed: none.
    assert!(s.event_subscriptions().is_empty());
}

#[test]
fn the_stage_1_log_replays_into_the_same_state() {
    let commands: Vec<Command> =
        serde_json::from_str(&fixture("stage1-commands.json")).expect("stage-1 commands read");
    assert!(commands.iter().any(Command::is_legacy));
    let mut replayed = ClusterState::default();
    for c in commands {
        replayed.apply(c);
    }
    let snapshot = stage1_snapshot();
    let view = |s: &ClusterState| {
        (
            s.apps().keys().cloned().collect::<Vec<_>>(),
            s.instances()
                .values()
                .map(|i| (i.id.clone(), i.condition, i.goal, i.agent_id.clone()))
                .collect::<Vec<_>>(),
            s.agents()
                .values()
                .map(|r| (r.agent.id.clone(), r.state))
                .collect::<Vec<_>>(),
            s.backoffs().clone(),
        )
    };
    assert_eq!(view(&replayed), view(&snapshot));
}

#[test]
fn todays_intents_apply_to_stage_1_records() {
    let mut s = stage1_snapshot();
    let inst = s.instances()[&InstanceId::from("prod_web.instance-1")].clone();
    assert_eq!(inst.revision, 0, "stage-1 records carry no revision");
    let r = s.apply(Command::SetGoals {
        changes: vec![GoalChange {
            instance_id: inst.id.clone(),
            revision: inst.revision,
            goal: Goal::Decommissioned,
        }],
        at_ms: 9_000,
    });
    assert!(
        matches!(&r, Response::Decided { refused, .. } if refused.is_empty()),
        "{r:?}"
    );
    let after = &s.instances()[&inst.id];
    assert_eq!(after.goal, Goal::Decommissioned);
    assert!(after.revision > 0);
    assert_eq!(after.condition, Condition::Running);
}

#[test]
fn an_app_stored_in_a_newer_format_is_refused_with_what_to_do() {
    let text = fixture("stage1-snapshot.json").replacen(
        "\"version\": \"2026-11-01T00:00:00.000Z\",",
        "\"version\": \"2026-11-01T00:00:00.000Z\", \"format\": 99,",
        1,
    );
    let err = serde_json::from_str::<ClusterState>(&text)
        .expect_err("a newer format is not guessed at")
        .to_string();
    assert!(
        err.contains("format 99") && err.contains("upgrade this master"),
        "{err}"
    );
}

#[test]
fn a_stage_1_snapshot_is_format_1_and_is_written_again_in_todays() {
    assert!(!fixture("stage1-snapshot.json").contains("format_version"));
    let s = stage1_snapshot();
    assert_eq!(s.format_version(), state::machine::FORMAT_VERSION);
    let written = serde_json::to_value(&s).expect("encodes");
    assert_eq!(written["format_version"], state::machine::FORMAT_VERSION);
    let again: ClusterState = serde_json::from_value(written).expect("reads again");
    assert_eq!(again, s);
}

#[test]
fn a_snapshot_in_a_newer_format_is_refused_with_what_to_do() {
    let newer = state::machine::FORMAT_VERSION + 1;
    let text = fixture("stage1-snapshot.json").replacen(
        '{',
        &format!("{{\"format_version\": {newer},"),
        1,
    );
    let err = serde_json::from_str::<ClusterState>(&text)
        .expect_err("a newer format is not misread")
        .to_string();
    assert!(
        err.contains(&format!("format {newer}, written by a newer drover"))
            && err.contains("use that release or newer"),
        "{err}"
    );
}

#[test]
fn a_stored_definition_that_todays_rules_refuse_still_reads() {
    // A rule tightened after a definition was stored (here: a 600-character id, and a NUL
    // in the environment, both refused by today's API) must not make the log unreadable.
    let long = format!("/{}", "a".repeat(600));
    let text = fixture("stage1-snapshot.json")
        .replace("\"/db\"", &format!("\"{long}\""))
        .replace("\"MODE\": \"prod\"", "\"MODE\": \"pr\\u0000od\"");
    let s: ClusterState = serde_json::from_str(&text).expect("still reads");
    assert!(s.app(&AppId::parse(&long).expect("id")).is_some());
    let web = &s
        .app(&AppId::parse("/prod/web").expect("id"))
        .expect("web")
        .current()
        .app;
    assert_eq!(web.env.get("MODE").map(String::as_str), Some("pr\0od"));
}

#[test]
fn a_stage_1_deployment_reads_into_typed_steps() {
    // Stage 1 wrote a deployment's steps as the JSON its deployments::new built:
    // `[{"actions": [{"action": <Marathon's action name>, "app": <id>}]}]`.
    let entry = serde_json::json!({
        "type": "put_deployment",
        "deployment": {
            "id": "d-1", "version": "2026-11-01T00:00:00.000Z", "affected_apps": ["/prod/web"],
            "steps": [{"actions": [{"action": "RestartApplication", "app": "/prod/web"}]}],
            "current_step": 1, "created_at_ms": 5,
        },
        "force": false,
    });
    let cmd: Command = serde_json::from_value(entry).expect("a stage-1 deployment reads");
    let Command::PutDeployment { deployment, .. } = cmd else {
        panic!("not a deployment: {cmd:?}")
    };
    assert_eq!(
        deployment.steps,
        vec![state::DeploymentStep {
            actions: vec![state::DeploymentAction {
                action: state::ActionKind::RestartApplication,
                app: AppId::parse("/prod/web").expect("id"),
            }]
        }]
    );
}
