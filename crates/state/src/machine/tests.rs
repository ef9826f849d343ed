use domain::{Agent, AgentId, AppDefinition, AppId, FaultDomain};
use serde_json::json;

use super::*;
use crate::command::{Condition, Goal, Instance, InstanceId};

fn app(id: &str, instances: u32) -> AppDefinition {
    AppDefinition::from_json(&json!({"id": id, "cmd": "sleep 1000", "instances": instances}))
        .expect("valid app")
}

fn app_id(id: &str) -> AppId {
    AppId::parse(id).expect("valid id")
}

fn agent(id: &str, ip: &str) -> Agent {
    Agent {
        id: AgentId::from(id),
        hostname: format!("{id}.example"),
        ip: ip.to_string(),
        domain: Some(FaultDomain::new("eu-west", "eu-west-a")),
        resources: Default::default(),
        attributes: Default::default(),
    }
}

fn instance(id: &str, app: &str, agent: &str) -> Instance {
    Instance {
        id: InstanceId::from(id),
        app_id: app_id(app),
        app_version: "v1".into(),
        agent_id: AgentId::from(agent),
        ports: vec![31000],
        goal: Goal::Running,
        condition: Condition::Scheduled,
        term: 3,
        created_at_ms: 1_000,
        updated_at_ms: 1_000,
        started_at_ms: None,
    }
}

fn register(s: &mut ClusterState, id: &str, ip: &str) -> Response {
    s.apply(Command::RegisterAgent {
        agent: agent(id, ip),
        remote: false,
        at_ms: 10,
    })
}

fn put_app(s: &mut ClusterState, id: &str, version: &str) -> Response {
    s.apply(Command::PutApp {
        app: app(id, 1),
        version: version.into(),
    })
}

/// A state with one agent `a1` and one app `/web`.
fn with_app_and_agent() -> ClusterState {
    let mut s = ClusterState::default();
    assert_eq!(register(&mut s, "a1", "10.0.0.1"), Response::Ok);
    put_app(&mut s, "/web", "v1");
    s
}

#[test]
fn the_first_cluster_id_wins() {
    let mut s = ClusterState::default();
    let first = s.apply(Command::InitCluster {
        cluster_id: "c1".into(),
    });
    assert_eq!(
        first,
        Response::ClusterId {
            cluster_id: "c1".into()
        }
    );
    let again = s.apply(Command::InitCluster {
        cluster_id: "c1".into(),
    });
    assert_eq!(again, first);
    let other = s.apply(Command::InitCluster {
        cluster_id: "c2".into(),
    });
    assert!(
        matches!(other, Response::Conflict { message } if message.contains("c1") && message.contains("c2"))
    );
    assert_eq!(s.cluster_id(), Some("c1"));
}

#[test]
fn a_master_from_another_region_is_refused_naming_both_regions() {
    let mut s = ClusterState::default();
    let put = |id, region: &str| Command::PutMaster {
        id,
        addr: format!("10.0.0.{id}:8080"),
        domain: Some(FaultDomain::new(region, format!("{region}-a"))),
    };
    assert_eq!(s.apply(put(1, "eu-west")), Response::Ok);
    assert_eq!(s.apply(put(2, "eu-west")), Response::Ok);
    let r = s.apply(put(3, "us-east"));
    assert!(
        matches!(&r, Response::Conflict { message } if message.contains("us-east") && message.contains("eu-west")),
        "{r:?}"
    );
    assert_eq!(s.masters().len(), 2);
    assert_eq!(s.local_region(), Some("eu-west"));
    // The only master may move region (e.g. a re-bootstrapped single-node cluster).
    let mut single = ClusterState::default();
    single.apply(put(1, "eu-west"));
    assert_eq!(single.apply(put(1, "us-east")), Response::Ok);
    assert_eq!(s.apply(Command::RemoveMaster { id: 2 }), Response::Ok);
    assert_eq!(
        s.apply(Command::RemoveMaster { id: 2 }),
        Response::NotFound {
            kind: Subject::Master,
            id: "2".into()
        }
    );
}

#[test]
fn agent_addresses_are_unique_among_live_agents() {
    let mut s = ClusterState::default();
    assert_eq!(register(&mut s, "a1", "10.0.0.1"), Response::Ok);
    let clash = register(&mut s, "a2", "10.0.0.1");
    assert!(
        matches!(&clash, Response::Conflict { message } if message.contains("a1") && message.contains("10.0.0.1")),
        "{clash:?}"
    );
    assert!(s.agent(&AgentId::from("a2")).is_none());
    // Re-registering the same agent with its own address is fine.
    assert_eq!(register(&mut s, "a1", "10.0.0.1"), Response::Ok);
    // Once a1 is gone its address may be reused.
    s.apply(Command::SetAgentState {
        agent_id: AgentId::from("a1"),
        state: AgentState::Gone,
        at_ms: 20,
    });
    assert_eq!(register(&mut s, "a2", "10.0.0.1"), Response::Ok);
}

#[test]
fn agent_state_changes_keep_their_time_and_re_registration_revives() {
    let mut s = ClusterState::default();
    register(&mut s, "a1", "10.0.0.1");
    let set = |state, at_ms| Command::SetAgentState {
        agent_id: AgentId::from("a1"),
        state,
        at_ms,
    };
    s.apply(set(AgentState::Unreachable, 50));
    s.apply(set(AgentState::Unreachable, 60));
    let rec = s.agent(&AgentId::from("a1")).expect("registered");
    assert_eq!(
        (rec.state, rec.state_since_ms),
        (AgentState::Unreachable, 50)
    );

    s.apply(Command::RegisterAgent {
        agent: agent("a1", "10.0.0.1"),
        remote: false,
        at_ms: 70,
    });
    let rec = s.agent(&AgentId::from("a1")).expect("registered");
    assert_eq!((rec.state, rec.state_since_ms), (AgentState::Active, 70));
    assert_eq!((rec.registered_at_ms, rec.last_registered_at_ms), (10, 70));

    assert_eq!(
        s.apply(Command::SetAgentState {
            agent_id: AgentId::from("nope"),
            state: AgentState::Gone,
            at_ms: 1
        }),
        Response::NotFound {
            kind: Subject::Agent,
            id: "nope".into()
        }
    );
}

#[test]
fn put_app_keeps_the_version_history() {
    let mut s = ClusterState::default();
    assert_eq!(
        put_app(&mut s, "/web", "v1"),
        Response::AppVersion {
            id: app_id("/web"),
            version: "v1".into(),
            created: true
        }
    );
    let scaled = Command::PutApp {
        app: app("/web", 3),
        version: "v2".into(),
    };
    assert_eq!(
        s.apply(scaled),
        Response::AppVersion {
            id: app_id("/web"),
            version: "v2".into(),
            created: false
        }
    );
    let rec = s.app(&app_id("/web")).expect("stored");
    assert_eq!(rec.current().version, "v2");
    assert_eq!(rec.current().app.instances, 3);
    let versions: Vec<&str> = rec.versions().map(|v| v.version.as_str()).collect();
    assert_eq!(versions, ["v1", "v2"]);
    assert_eq!(rec.version("v1").map(|v| v.app.instances), Some(1));
}

#[test]
fn put_app_is_idempotent_per_version_and_refuses_a_different_definition() {
    let mut s = ClusterState::default();
    put_app(&mut s, "/web", "v1");
    assert!(matches!(
        put_app(&mut s, "/web", "v1"),
        Response::AppVersion { created: false, .. }
    ));
    assert_eq!(
        s.app(&app_id("/web")).map(|r| r.versions().count()),
        Some(1)
    );
    let different = s.apply(Command::PutApp {
        app: app("/web", 5),
        version: "v1".into(),
    });
    assert!(
        matches!(different, Response::Conflict { .. }),
        "{different:?}"
    );
    assert_eq!(
        s.app(&app_id("/web")).map(|r| r.current().app.instances),
        Some(1)
    );
}

#[test]
fn the_version_history_is_bounded() {
    let mut s = ClusterState::default();
    for v in 0..MAX_APP_VERSIONS + 5 {
        put_app(&mut s, "/web", &format!("v{v:03}"));
    }
    let rec = s.app(&app_id("/web")).expect("stored");
    assert_eq!(rec.versions().count(), MAX_APP_VERSIONS);
    assert_eq!(
        rec.versions().next().map(|v| v.version.as_str()),
        Some("v005")
    );
    assert_eq!(
        rec.current().version,
        format!("v{:03}", MAX_APP_VERSIONS + 4)
    );
}

#[test]
fn delete_app_decommissions_its_instances_and_clears_its_backoff() {
    let mut s = with_app_and_agent();
    put_app(&mut s, "/db", "v1");
    s.apply(Command::PutInstances {
        instances: vec![
            instance("web.1", "/web", "a1"),
            instance("db.1", "/db", "a1"),
        ],
    });
    s.apply(Command::SetBackoff {
        app_id: app_id("/web"),
        delay_ms: 1000,
        until_ms: 5000,
    });
    assert_eq!(
        s.apply(Command::DeleteApp { id: app_id("/web") }),
        Response::Ok
    );
    assert!(s.app(&app_id("/web")).is_none());
    assert!(s.backoffs().is_empty());
    let goal = |id: &str| s.instances()[&InstanceId::from(id)].goal;
    assert_eq!(goal("web.1"), Goal::Decommissioned);
    assert_eq!(goal("db.1"), Goal::Running);
    assert_eq!(
        s.apply(Command::DeleteApp { id: app_id("/web") }),
        Response::NotFound {
            kind: Subject::App,
            id: "/web".into()
        }
    );
}

#[test]
fn new_instances_need_an_existing_app_and_agent_and_are_stored_all_or_none() {
    let mut s = with_app_and_agent();
    let r = s.apply(Command::PutInstances {
        instances: vec![
            instance("web.1", "/web", "a1"),
            instance("x.1", "/gone", "a1"),
        ],
    });
    assert_eq!(
        r,
        Response::NotFound {
            kind: Subject::App,
            id: "/gone".into()
        }
    );
    assert!(s.instances().is_empty());
    let r = s.apply(Command::PutInstances {
        instances: vec![instance("web.1", "/web", "a9")],
    });
    assert!(matches!(
        r,
        Response::NotFound {
            kind: Subject::Agent,
            ..
        }
    ));

    assert_eq!(
        s.apply(Command::PutInstances {
            instances: vec![
                instance("web.1", "/web", "a1"),
                instance("web.2", "/web", "a1")
            ],
        }),
        Response::Ok
    );
    assert_eq!(s.instances_of(&app_id("/web")).count(), 2);
    assert_eq!(s.instances_on(&AgentId::from("a1")).count(), 2);
}

#[test]
fn instance_updates_apply_even_after_the_app_is_gone() {
    let mut s = with_app_and_agent();
    s.apply(Command::PutInstances {
        instances: vec![instance("web.1", "/web", "a1")],
    });
    s.apply(Command::DeleteApp { id: app_id("/web") });
    let mut killed = s.instances()[&InstanceId::from("web.1")].clone();
    killed.condition = Condition::Killed;
    killed.updated_at_ms = 2_000;
    assert_eq!(
        s.apply(Command::PutInstances {
            instances: vec![killed.clone()]
        }),
        Response::Ok
    );
    assert_eq!(s.instances()[&killed.id], killed);
    assert!(killed.condition.is_terminal());
    assert_eq!(
        s.apply(Command::RemoveInstances {
            ids: vec![killed.id.clone(), InstanceId::from("unknown")]
        }),
        Response::Ok
    );
    assert!(s.instances().is_empty());
}

#[test]
fn an_app_is_locked_by_one_deployment_unless_forced() {
    let mut s = with_app_and_agent();
    let deployment = |id: &str| Deployment {
        id: id.into(),
        version: "v1".into(),
        affected_apps: vec![app_id("/web")],
        steps: json!([[{"action": "StartApplication", "app": "/web"}]]),
        current_step: 0,
        created_at_ms: 5,
    };
    let put = |id: &str, force| Command::PutDeployment {
        deployment: deployment(id),
        force,
    };
    assert_eq!(s.apply(put("d1", false)), Response::Ok);
    // Updating the same deployment (e.g. advancing a step) is not a conflict.
    assert_eq!(s.apply(put("d1", false)), Response::Ok);
    let r = s.apply(put("d2", false));
    assert!(
        matches!(&r, Response::Conflict { message } if message.contains("d1")),
        "{r:?}"
    );
    assert_eq!(s.apply(put("d2", true)), Response::Ok);
    let ids: Vec<&str> = s.deployments().keys().map(String::as_str).collect();
    assert_eq!(ids, ["d2"]);
    assert_eq!(
        s.apply(Command::DeleteDeployment { id: "d2".into() }),
        Response::Ok
    );
    assert!(matches!(
        s.apply(Command::DeleteDeployment { id: "d2".into() }),
        Response::NotFound {
            kind: Subject::Deployment,
            ..
        }
    ));
}

#[test]
fn backoff_needs_the_app_and_can_be_cleared() {
    let mut s = with_app_and_agent();
    let set = |app: &str| Command::SetBackoff {
        app_id: app_id(app),
        delay_ms: 2000,
        until_ms: 9000,
    };
    assert!(matches!(s.apply(set("/other")), Response::NotFound { .. }));
    assert_eq!(s.apply(set("/web")), Response::Ok);
    assert_eq!(
        s.backoffs().get(&app_id("/web")),
        Some(&Backoff {
            delay_ms: 2000,
            until_ms: 9000
        })
    );
    s.apply(Command::ClearBackoff {
        app_id: app_id("/web"),
    });
    assert!(s.backoffs().is_empty());
}

#[test]
fn the_state_and_commands_survive_a_json_round_trip() {
    let mut s = with_app_and_agent();
    s.apply(Command::InitCluster {
        cluster_id: "c1".into(),
    });
    s.apply(Command::PutInstances {
        instances: vec![instance("web.1", "/web", "a1")],
    });
    let text = serde_json::to_string(&s).expect("encodes");
    let back: ClusterState = serde_json::from_str(&text).expect("decodes");
    assert_eq!(back, s);

    let cmd = Command::RegisterAgent {
        agent: agent("a1", "10.0.0.1"),
        remote: true,
        at_ms: 7,
    };
    let back: Command =
        serde_json::from_str(&serde_json::to_string(&cmd).expect("encodes")).expect("decodes");
    assert_eq!(back, cmd);
}

#[test]
fn applying_the_same_commands_gives_the_same_state() {
    let commands = [
        Command::InitCluster {
            cluster_id: "c".into(),
        },
        Command::RegisterAgent {
            agent: agent("a1", "10.0.0.1"),
            remote: false,
            at_ms: 1,
        },
        Command::PutApp {
            app: app("/web", 2),
            version: "v1".into(),
        },
        Command::PutInstances {
            instances: vec![instance("web.1", "/web", "a1")],
        },
        Command::SetAgentState {
            agent_id: AgentId::from("a1"),
            state: AgentState::Unreachable,
            at_ms: 9,
        },
    ];
    let run = || {
        let mut s = ClusterState::default();
        let responses: Vec<Response> = commands.iter().cloned().map(|c| s.apply(c)).collect();
        (s, responses)
    };
    assert_eq!(run(), run());
}

fn report(
    s: &mut ClusterState,
    agent: &str,
    id: &str,
    condition: Condition,
    at_ms: u64,
) -> Response {
    s.apply(Command::ReportInstances {
        agent_id: AgentId::from(agent),
        reports: vec![InstanceReport {
            instance_id: InstanceId::from(id),
            condition,
            at_ms,
        }],
    })
}

#[test]
fn an_agent_report_changes_only_its_own_instances_condition_and_times() {
    let mut s = with_app_and_agent();
    register(&mut s, "a2", "10.0.0.2");
    s.apply(Command::PutInstances {
        instances: vec![instance("i1", "/web", "a1")],
    });
    // Another agent cannot speak for i1.
    assert_eq!(
        report(&mut s, "a2", "i1", Condition::Failed, 2_000),
        Response::Reported { changed: vec![] }
    );
    assert_eq!(
        s.instances()[&InstanceId::from("i1")].condition,
        Condition::Scheduled
    );
    // Its own agent can: condition and timestamps change, nothing else.
    let before = s.instances()[&InstanceId::from("i1")].clone();
    assert_eq!(
        report(&mut s, "a1", "i1", Condition::Running, 3_000),
        Response::Reported {
            changed: vec![(InstanceId::from("i1"), Condition::Running)]
        }
    );
    let after = &s.instances()[&InstanceId::from("i1")];
    assert_eq!(after.condition, Condition::Running);
    assert_eq!(
        (after.updated_at_ms, after.started_at_ms),
        (3_000, Some(3_000))
    );
    assert_eq!(
        (&after.goal, &after.ports, &after.agent_id),
        (&before.goal, &before.ports, &before.agent_id)
    );
    // Unknown instances are ignored.
    assert_eq!(
        report(&mut s, "a1", "nope", Condition::Running, 3_000),
        Response::Reported { changed: vec![] }
    );
}

#[test]
fn a_terminal_condition_is_final_against_later_reports() {
    let mut s = with_app_and_agent();
    s.apply(Command::PutInstances {
        instances: vec![instance("i1", "/web", "a1")],
    });
    report(&mut s, "a1", "i1", Condition::Failed, 2_000);
    // A late, reordered "running" from the same agent does not revive it.
    assert_eq!(
        report(&mut s, "a1", "i1", Condition::Running, 2_500),
        Response::Reported { changed: vec![] }
    );
    let inst = &s.instances()[&InstanceId::from("i1")];
    assert_eq!(
        (inst.condition, inst.updated_at_ms),
        (Condition::Failed, 2_000)
    );
}

#[test]
fn a_scheduler_copy_decided_before_a_failure_cannot_undo_it() {
    // The race the whole-record writes allowed: the scheduler copies i1 (running) to set its
    // goal, the agent's Failed commits, then the stale copy lands. The failure must stand, or
    // i1 stays "running, decommissioned" forever, holding its resources.
    let mut s = with_app_and_agent();
    s.apply(Command::PutInstances {
        instances: vec![instance("i1", "/web", "a1")],
    });
    report(&mut s, "a1", "i1", Condition::Running, 2_000);
    let mut stale = s.instances()[&InstanceId::from("i1")].clone();
    stale.goal = Goal::Decommissioned;
    stale.updated_at_ms = 2_100;
    report(&mut s, "a1", "i1", Condition::Failed, 2_200);
    s.apply(Command::PutInstances {
        instances: vec![stale],
    });
    let inst = &s.instances()[&InstanceId::from("i1")];
    assert_eq!(inst.condition, Condition::Failed);
    assert_eq!(inst.updated_at_ms, 2_200);
    assert_eq!(inst.goal, Goal::Decommissioned);
}

#[test]
fn a_report_racing_an_app_deletion_cannot_bring_its_instance_back() {
    let mut s = with_app_and_agent();
    s.apply(Command::PutInstances {
        instances: vec![instance("i1", "/web", "a1")],
    });
    s.apply(Command::DeleteApp { id: app_id("/web") });
    report(&mut s, "a1", "i1", Condition::Running, 2_000);
    let inst = &s.instances()[&InstanceId::from("i1")];
    // The report lands (the agent still runs it), but the goal stays decommissioned: the
    // agent is told to stop it, and its terminal report ends it.
    assert_eq!(
        (inst.condition, inst.goal),
        (Condition::Running, Goal::Decommissioned)
    );
    report(&mut s, "a1", "i1", Condition::Killed, 2_500);
    report(&mut s, "a1", "i1", Condition::Running, 2_600);
    assert_eq!(
        s.instances()[&InstanceId::from("i1")].condition,
        Condition::Killed
    );
}

#[test]
fn an_agent_back_from_unreachable_runs_its_unreplaced_instances_again_in_the_same_apply() {
    let mut s = with_app_and_agent();
    let mut running = instance("i1", "/web", "a1");
    running.condition = Condition::Unreachable;
    let mut ended = instance("i2", "/web", "a1");
    ended.condition = Condition::Failed;
    s.apply(Command::PutInstances {
        instances: vec![running, ended],
    });
    s.apply(Command::SetAgentState {
        agent_id: AgentId::from("a1"),
        state: AgentState::Unreachable,
        at_ms: 2_000,
    });
    s.apply(Command::SetAgentState {
        agent_id: AgentId::from("a1"),
        state: AgentState::Active,
        at_ms: 3_000,
    });
    let i1 = &s.instances()[&InstanceId::from("i1")];
    assert_eq!(
        (i1.condition, i1.updated_at_ms),
        (Condition::Running, 3_000)
    );
    // A terminal instance stays terminal.
    assert_eq!(
        s.instances()[&InstanceId::from("i2")].condition,
        Condition::Failed
    );
}
