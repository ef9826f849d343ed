use domain::{Agent, AgentId, AppDefinition, AppId, FaultDomain};
use serde_json::json;

use super::*;
use crate::command::{Condition, Goal, Instance, InstanceId};

pub(super) fn app(id: &str, instances: u32) -> AppDefinition {
    AppDefinition::from_json(&json!({"id": id, "cmd": "sleep 1000", "instances": instances}))
        .expect("valid app")
}

pub(super) fn app_id(id: &str) -> AppId {
    AppId::parse(id).expect("valid id")
}

pub(super) fn agent(id: &str, ip: &str) -> Agent {
    Agent {
        id: AgentId::from(id),
        hostname: format!("{id}.example"),
        ip: ip.to_string(),
        domain: Some(FaultDomain::new("eu-west", "eu-west-a")),
        resources: domain::Resources {
            cpus: 4.0,
            mem: 4096.0,
            disk: 10_000.0,
            ports: domain::ranges::Ranges::single(31000, 32000),
        },
        attributes: Default::default(),
    }
}

pub(super) fn instance(id: &str, app: &str, agent: &str) -> Instance {
    Instance {
        id: InstanceId::from(id),
        app_id: app_id(app),
        app_version: "v1".into(),
        agent_id: AgentId::from(agent),
        ports: vec![],
        goal: Goal::Running,
        condition: Condition::Scheduled,
        term: 3,
        created_at_ms: 1_000,
        updated_at_ms: 1_000,
        started_at_ms: None,
        reserved: None,
        revision: 0,
    }
}

/// Places instances through the scheduler's intent; panics unless all were placed.
pub(super) fn place(s: &mut ClusterState, instances: Vec<Instance>) {
    let ids: Vec<InstanceId> = instances.iter().map(|i| i.id.clone()).collect();
    assert_eq!(
        s.apply(Command::PlaceInstances { instances }),
        Response::Decided {
            applied: ids,
            refused: vec![]
        }
    );
}

/// The instance as the state holds it now.
pub(super) fn get(s: &ClusterState, id: &str) -> Instance {
    s.instances()[&InstanceId::from(id)].clone()
}

pub(super) fn register(s: &mut ClusterState, id: &str, ip: &str) -> Response {
    s.apply(Command::RegisterAgent {
        agent: agent(id, ip),
        remote: false,
        at_ms: 10,
    })
}

pub(super) fn put_app(s: &mut ClusterState, id: &str, version: &str) -> Response {
    s.apply(Command::PutApp {
        app: app(id, 1),
        version: version.into(),
    })
}

/// A state with one agent `a1` and one app `/web`.
pub(super) fn with_app_and_agent() -> ClusterState {
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
        protocol: 2,
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
    place(
        &mut s,
        vec![
            instance("web.1", "/web", "a1"),
            instance("db.1", "/db", "a1"),
        ],
    );
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
    assert_eq!(get(&s, "web.1").goal, Goal::Decommissioned);
    assert_eq!(get(&s, "db.1").goal, Goal::Running);
    assert_eq!(
        s.apply(Command::DeleteApp { id: app_id("/web") }),
        Response::NotFound {
            kind: Subject::App,
            id: "/web".into()
        }
    );
}

#[test]
fn a_placement_is_refused_per_instance_for_a_missing_app_agent_or_version() {
    let mut s = with_app_and_agent();
    register(&mut s, "a2", "10.0.0.2");
    s.apply(Command::SetAgentState {
        agent_id: AgentId::from("a2"),
        state: AgentState::Unreachable,
        at_ms: 20,
    });
    let mut old_version = instance("web.3", "/web", "a1");
    old_version.app_version = "v0".into();
    let r = s.apply(Command::PlaceInstances {
        instances: vec![
            instance("web.1", "/web", "a1"),
            instance("x.1", "/gone", "a1"),
            instance("web.2", "/web", "a9"),
            old_version,
            instance("web.4", "/web", "a2"),
            instance("web.1", "/web", "a1"),
        ],
    });
    let Response::Decided { applied, refused } = r else {
        panic!("not a decision: {r:?}")
    };
    assert_eq!(applied, vec![InstanceId::from("web.1")]);
    let why: Vec<(&str, &str)> = refused
        .iter()
        .map(|(id, why)| (id.0.as_str(), why.as_str()))
        .collect();
    assert_eq!(
        why,
        vec![
            ("x.1", "app /gone is gone"),
            ("web.2", "agent a9 is not registered"),
            ("web.3", "app /web is now at version v1, not v0"),
            ("web.4", "agent a2 is not active"),
            ("web.1", "an instance with this id exists"),
        ]
    );
    assert_eq!(s.instances_of(&app_id("/web")).count(), 1);
    assert_eq!(s.instances_on(&AgentId::from("a1")).count(), 1);
}

#[test]
fn a_placement_never_over_commits_an_agent() {
    // Two decisions made from the same free capacity (two passes, or a pass and a stale
    // copy): the second finds the agent full and is refused.
    let mut s = with_app_and_agent(); // a1: 4 cpus; /web takes 1 (Marathon's default)
    place(
        &mut s,
        (1..=4)
            .map(|n| instance(&format!("web.{n}"), "/web", "a1"))
            .collect(),
    );
    let r = s.apply(Command::PlaceInstances {
        instances: vec![instance("web.5", "/web", "a1")],
    });
    assert!(
        matches!(&r, Response::Decided { applied, refused } if applied.is_empty()
            && refused[0].1.contains("has not cpus left")),
        "{r:?}"
    );
    // A port held by a live instance, or asked twice, is refused too.
    let mut s = with_app_and_agent();
    let mut p = instance("web.1", "/web", "a1");
    p.ports = vec![31005];
    place(&mut s, vec![p.clone()]);
    p.id = InstanceId::from("web.2");
    let mut twice = instance("web.3", "/web", "a1");
    twice.ports = vec![31006, 31006];
    let r = s.apply(Command::PlaceInstances {
        instances: vec![p, twice],
    });
    let Response::Decided { refused, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(refused.len(), 2);
    assert!(refused.iter().all(|(_, why)| why.contains("is taken")));
    // Once the holder ended, its port and resources are free again.
    report(&mut s, "a1", "web.1", Condition::Killed, 2_000);
    let mut again = instance("web.4", "/web", "a1");
    again.ports = vec![31005];
    place(&mut s, vec![again]);
}

#[test]
fn a_goal_change_decided_from_an_old_revision_is_refused() {
    let mut s = with_app_and_agent();
    place(&mut s, vec![instance("i1", "/web", "a1")]);
    let seen = get(&s, "i1");
    report(&mut s, "a1", "i1", Condition::Running, 2_000);
    let r = s.apply(Command::SetGoals {
        changes: vec![GoalChange {
            instance_id: seen.id.clone(),
            revision: seen.revision,
            goal: Goal::Stopped,
        }],
        at_ms: 2_100,
    });
    assert!(
        matches!(&r, Response::Decided { applied, refused } if applied.is_empty()
            && refused[0].1.starts_with("changed since the decision")),
        "{r:?}"
    );
    assert_eq!(get(&s, "i1").goal, Goal::Running);
    // Decided from the current revision, it applies, and the revision moves on.
    let now = get(&s, "i1");
    s.apply(Command::SetGoals {
        changes: vec![GoalChange {
            instance_id: now.id.clone(),
            revision: now.revision,
            goal: Goal::Stopped,
        }],
        at_ms: 2_200,
    });
    let after = get(&s, "i1");
    assert_eq!((after.goal, after.updated_at_ms), (Goal::Stopped, 2_200));
    assert!(after.revision > now.revision);
}

#[test]
fn decommissioned_is_final_and_running_needs_the_app() {
    let mut s = with_app_and_agent();
    place(&mut s, vec![instance("i1", "/web", "a1")]);
    let goal = |s: &mut ClusterState, goal: Goal| {
        let i = get(s, "i1");
        s.apply(Command::SetGoals {
            changes: vec![GoalChange {
                instance_id: i.id,
                revision: i.revision,
                goal,
            }],
            at_ms: 3_000,
        })
    };
    goal(&mut s, Goal::Decommissioned);
    let r = goal(&mut s, Goal::Running);
    assert!(
        matches!(&r, Response::Decided { refused, .. } if refused[0].1.contains("final")),
        "{r:?}"
    );
    assert_eq!(get(&s, "i1").goal, Goal::Decommissioned);

    let mut s = with_app_and_agent();
    place(&mut s, vec![instance("i1", "/web", "a1")]);
    goal(&mut s, Goal::Stopped);
    s.apply(Command::DeleteApp { id: app_id("/web") });
    put_app(&mut s, "/web", "v2");
    // The app's deletion decommissioned it; a new app of the same id does not revive it.
    let r = goal(&mut s, Goal::Running);
    assert!(
        matches!(&r, Response::Decided { applied, .. } if applied.is_empty()),
        "{r:?}"
    );
}

#[test]
fn stage_1_whole_record_entries_still_replay() {
    let mut s = with_app_and_agent();
    let legacy = Command::PutInstances {
        instances: vec![instance("web.1", "/web", "a1")],
    };
    assert!(legacy.is_legacy());
    assert_eq!(s.apply(legacy), Response::Ok);
    assert_eq!(s.instances_on(&AgentId::from("a1")).count(), 1);
    assert!(s.assignment_revision(&AgentId::from("a1")) > 0);
    let remove = Command::RemoveInstances {
        ids: vec![InstanceId::from("web.1"), InstanceId::from("unknown")],
    };
    assert!(remove.is_legacy());
    assert_eq!(s.apply(remove), Response::Ok);
    assert!(s.instances().is_empty());
    assert_eq!(s.instances_on(&AgentId::from("a1")).count(), 0);
    assert!(
        !Command::Batch {
            commands: vec![Command::ClearBackoff {
                app_id: app_id("/web")
            }]
        }
        .is_legacy()
    );
}

#[test]
fn an_app_is_locked_by_one_deployment_unless_forced() {
    let mut s = with_app_and_agent();
    let deployment = |id: &str| Deployment {
        id: id.into(),
        version: "v1".into(),
        affected_apps: vec![app_id("/web")],
        steps: vec![crate::command::DeploymentStep {
            actions: vec![crate::command::DeploymentAction {
                action: crate::command::ActionKind::StartApplication,
                app: app_id("/web"),
            }],
        }],
        current_step: 0,
        created_at_ms: 5,
        group: None,
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
    place(
        &mut s,
        vec![
            instance("web.1", "/web", "a1"),
            instance("web.2", "/web", "a1"),
        ],
    );
    let text = serde_json::to_string(&s).expect("encodes");
    let back: ClusterState = serde_json::from_str(&text).expect("decodes");
    // The indexes by agent and app are rebuilt from the records.
    assert_eq!(back, s);
    assert_eq!(back.instances_on(&AgentId::from("a1")).count(), 2);
    assert_eq!(back.instances_of(&app_id("/web")).count(), 2);
    assert_eq!(
        back.assignment_revision(&AgentId::from("a1")),
        s.assignment_revision(&AgentId::from("a1"))
    );

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
        Command::PlaceInstances {
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

pub(super) fn report(
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
    place(&mut s, vec![instance("i1", "/web", "a1")]);
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
    place(&mut s, vec![instance("i1", "/web", "a1")]);
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
fn a_scheduler_decision_made_before_a_failure_cannot_undo_it() {
    // The race whole-record writes allowed: the scheduler decides from i1 (running) to
    // decommission it, the agent's Failed commits, then the decision lands. The failure must
    // stand, or i1 stays "running, decommissioned" forever, holding its resources.
    let mut s = with_app_and_agent();
    place(&mut s, vec![instance("i1", "/web", "a1")]);
    report(&mut s, "a1", "i1", Condition::Running, 2_000);
    let seen = get(&s, "i1");
    report(&mut s, "a1", "i1", Condition::Failed, 2_200);
    let r = s.apply(Command::SetGoals {
        changes: vec![GoalChange {
            instance_id: seen.id.clone(),
            revision: seen.revision,
            goal: Goal::Decommissioned,
        }],
        at_ms: 2_100,
    });
    assert!(
        matches!(&r, Response::Decided { applied, .. } if applied.is_empty()),
        "{r:?}"
    );
    let inst = get(&s, "i1");
    assert_eq!(inst.condition, Condition::Failed);
    assert_eq!(inst.updated_at_ms, 2_200);
    // It holds nothing: the agent's resources are free.
    assert_eq!(s.usage(&AgentId::from("a1")), Usage::default());
}

#[test]
fn a_report_racing_an_app_deletion_cannot_bring_its_instance_back() {
    let mut s = with_app_and_agent();
    place(&mut s, vec![instance("i1", "/web", "a1")]);
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
    place(
        &mut s,
        vec![instance("i1", "/web", "a1"), instance("i2", "/web", "a1")],
    );
    report(&mut s, "a1", "i1", Condition::Running, 1_500);
    report(&mut s, "a1", "i2", Condition::Failed, 1_600);
    s.apply(Command::SetAgentState {
        agent_id: AgentId::from("a1"),
        state: AgentState::Unreachable,
        at_ms: 2_000,
    });
    let seen = get(&s, "i1");
    s.apply(Command::MarkUnreachable {
        instances: vec![Decided {
            instance_id: seen.id.clone(),
            revision: seen.revision,
        }],
        at_ms: 2_100,
    });
    assert_eq!(get(&s, "i1").condition, Condition::Unreachable);
    s.apply(Command::SetAgentState {
        agent_id: AgentId::from("a1"),
        state: AgentState::Active,
        at_ms: 3_000,
    });
    let i1 = get(&s, "i1");
    assert_eq!(
        (i1.condition, i1.updated_at_ms),
        (Condition::Running, 3_000)
    );
    // A terminal instance stays terminal.
    assert_eq!(get(&s, "i2").condition, Condition::Failed);
}

#[test]
fn event_subscriptions_are_added_once_removed_by_url_limited_and_kept_in_snapshots() {
    let mut s = ClusterState::default();
    let url = |i: usize| format!("http://hooks.example:9090/drover/{i}");
    let subscribe = |u: String| Command::Subscribe { callback_url: u };
    assert_eq!(s.apply(subscribe(url(0))), Response::Ok);
    assert_eq!(s.apply(subscribe(url(0))), Response::Ok, "idempotent");
    assert_eq!(s.event_subscriptions().len(), 1);
    for i in 1..MAX_EVENT_SUBSCRIPTIONS {
        assert_eq!(s.apply(subscribe(url(i))), Response::Ok);
    }
    let full = s.apply(subscribe(url(MAX_EVENT_SUBSCRIPTIONS)));
    assert!(
        matches!(&full, Response::Conflict { message } if message.contains("unsubscribe one")),
        "{full:?}"
    );
    assert_eq!(
        s.apply(subscribe(url(3))),
        Response::Ok,
        "one already there is no new subscription, even when full"
    );
    assert_eq!(s.event_subscriptions().len(), MAX_EVENT_SUBSCRIPTIONS);
    let back: ClusterState =
        serde_json::from_str(&serde_json::to_string(&s).expect("encodes")).expect("decodes");
    assert_eq!(back.event_subscriptions(), s.event_subscriptions());
    assert_eq!(
        s.apply(Command::Unsubscribe {
            callback_url: url(0)
        }),
        Response::Ok
    );
    assert_eq!(
        s.apply(Command::Unsubscribe {
            callback_url: url(0)
        }),
        Response::NotFound {
            kind: Subject::EventSubscription,
            id: url(0)
        }
    );
    assert!(!s.event_subscriptions().contains(&url(0)));
}

#[test]
fn a_deployment_advances_one_step_at_a_time_from_the_step_decided_from() {
    let mut s = with_app_and_agent();
    let step = |app: &str| crate::command::DeploymentStep {
        actions: vec![crate::command::DeploymentAction {
            action: crate::command::ActionKind::StartApplication,
            app: app_id(app),
        }],
    };
    let deployment = Deployment {
        id: "d1".into(),
        version: "v1".into(),
        affected_apps: vec![app_id("/web")],
        steps: vec![step("/web"), step("/web")],
        current_step: 1,
        created_at_ms: 5,
        group: Some(domain::GroupId::parse("/g").expect("group")),
    };
    s.apply(Command::PutDeployment {
        deployment,
        force: false,
    });
    let advance = |from_step| Command::AdvanceDeployment {
        id: "d1".into(),
        from_step,
    };
    assert_eq!(s.apply(advance(1)), Response::Ok);
    assert_eq!(s.deployments()["d1"].current_step, 2);
    // Stale (decided at step 1 again), and past the last step: refused, nothing changes.
    assert!(matches!(s.apply(advance(1)), Response::Conflict { .. }));
    assert!(matches!(s.apply(advance(2)), Response::Conflict { .. }));
    assert_eq!(s.deployments()["d1"].current_step, 2);
    assert!(matches!(
        s.apply(Command::AdvanceDeployment {
            id: "nope".into(),
            from_step: 1
        }),
        Response::NotFound { .. }
    ));
}

#[test]
fn groups_are_stored_with_their_versions_and_forgotten_with_those_under_them() {
    let mut s = ClusterState::default();
    let g = |id: &str| domain::GroupId::parse(id).expect("group");
    let put = |id: &str, version: &str, definition: Option<serde_json::Value>| Command::PutGroup {
        id: g(id),
        dependencies: vec![app_id("/db")],
        version: version.into(),
        definition,
    };
    assert_eq!(
        s.apply(put("/p", "v1", Some(json!({"id": "/p"})))),
        Response::Ok
    );
    assert_eq!(s.apply(put("/p/a", "v1", None)), Response::Ok);
    assert_eq!(
        s.apply(put("/p", "v2", Some(json!({"id": "/p", "apps": []})))),
        Response::Ok
    );
    assert_eq!(s.apply(put("/pq", "v1", None)), Response::Ok);
    let p = &s.groups()[&g("/p")];
    assert_eq!(p.version, "v2");
    let versions: Vec<&str> = p.versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(versions, ["v1", "v2"]);
    assert!(s.groups()[&g("/p/a")].versions.is_empty());
    // Snapshots carry them.
    let again: ClusterState =
        serde_json::from_value(serde_json::to_value(&s).expect("serializes")).expect("reads");
    assert_eq!(again, s);
    assert_eq!(s.apply(Command::DeleteGroup { id: g("/p") }), Response::Ok);
    let left: Vec<&str> = s.groups().keys().map(|g| g.as_str()).collect();
    assert_eq!(left, ["/pq"], "/p/a went with /p; /pq is not under /p");
    assert!(matches!(
        s.apply(Command::DeleteGroup { id: g("/p") }),
        Response::NotFound {
            kind: Subject::Group,
            ..
        }
    ));
}

#[test]
fn masters_registered_before_protocol_versions_speak_protocol_1_and_the_lowest_counts() {
    let mut s = ClusterState::default();
    // A PutMaster written by a master of the release before protocol versions.
    let old: Command = serde_json::from_value(serde_json::json!({
        "type": "put_master", "id": 1, "addr": "10.0.0.1:8080", "domain": null,
    }))
    .expect("an old PutMaster reads");
    assert_eq!(s.masters_protocol(), None);
    assert_eq!(s.apply(old), Response::Ok);
    assert_eq!(s.masters()[&1].protocol, 1);
    let new = Command::PutMaster {
        id: 2,
        addr: "10.0.0.2:8080".into(),
        domain: None,
        protocol: 2,
    };
    assert_eq!(s.apply(new), Response::Ok);
    assert_eq!(
        s.masters_protocol(),
        Some(1),
        "one master still speaks 1 only"
    );
    // The old master is upgraded and registers again.
    let upgraded = Command::PutMaster {
        id: 1,
        addr: "10.0.0.1:8080".into(),
        domain: None,
        protocol: 2,
    };
    assert_eq!(s.apply(upgraded), Response::Ok);
    assert_eq!(s.masters_protocol(), Some(2));
}
