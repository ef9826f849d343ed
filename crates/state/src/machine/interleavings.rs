//! The races between agents, the scheduler and the API that whole-record writes allowed, each
//! driven through the state machine in the order that used to go wrong.

use domain::AgentId;

use super::tests::{app_id, get, instance, place, put_app, register, report, with_app_and_agent};
use super::*;

fn decided(s: &ClusterState, id: &str) -> Decided {
    let i = get(s, id);
    Decided {
        instance_id: i.id,
        revision: i.revision,
    }
}

fn goal_change(s: &ClusterState, id: &str, goal: Goal) -> GoalChange {
    let i = get(s, id);
    GoalChange {
        instance_id: i.id,
        revision: i.revision,
        goal,
    }
}

fn set_agent(s: &mut ClusterState, id: &str, state: AgentState, at_ms: u64) {
    s.apply(Command::SetAgentState {
        agent_id: AgentId::from(id),
        state,
        at_ms,
    });
}

fn refused(r: &Response) -> Vec<String> {
    match r {
        Response::Decided { refused, .. } => refused.iter().map(|(_, w)| w.clone()).collect(),
        other => panic!("not a decision: {other:?}"),
    }
}

#[test]
fn a_placement_decided_before_the_app_was_deleted_is_refused() {
    let mut s = with_app_and_agent();
    let new = instance("web.1", "/web", "a1"); // decided while /web existed
    s.apply(Command::DeleteApp { id: app_id("/web") });
    let r = s.apply(Command::PlaceInstances {
        instances: vec![new],
    });
    assert_eq!(refused(&r), vec!["app /web is gone".to_string()]);
    assert!(s.instances().is_empty());
}

#[test]
fn a_placement_decided_from_an_old_app_version_is_refused() {
    let mut s = with_app_and_agent();
    let new = instance("web.1", "/web", "a1"); // decided from v1
    put_app(&mut s, "/web", "v2");
    let r = s.apply(Command::PlaceInstances {
        instances: vec![new],
    });
    assert_eq!(
        refused(&r),
        vec!["app /web is now at version v2, not v1".to_string()]
    );
}

#[test]
fn a_mark_unreachable_decided_before_the_agent_came_back_is_refused() {
    let mut s = with_app_and_agent();
    place(&mut s, vec![instance("i1", "/web", "a1")]);
    report(&mut s, "a1", "i1", Condition::Running, 1_000);
    set_agent(&mut s, "a1", AgentState::Unreachable, 2_000);
    let mark = decided(&s, "i1");
    // The agent heartbeats again before the scheduler's mark commits.
    set_agent(&mut s, "a1", AgentState::Active, 2_100);
    let r = s.apply(Command::MarkUnreachable {
        instances: vec![mark],
        at_ms: 2_050,
    });
    assert_eq!(refused(&r), vec!["agent a1 is not unreachable".to_string()]);
    assert_eq!(get(&s, "i1").condition, Condition::Running);
}

#[test]
fn an_expunge_decided_before_the_agent_came_back_is_refused() {
    let mut s = with_app_and_agent();
    place(&mut s, vec![instance("i1", "/web", "a1")]);
    report(&mut s, "a1", "i1", Condition::Running, 1_000);
    set_agent(&mut s, "a1", AgentState::Unreachable, 2_000);
    let m = decided(&s, "i1");
    s.apply(Command::MarkUnreachable {
        instances: vec![m],
        at_ms: 2_100,
    });
    let expunge = decided(&s, "i1");
    // Back: its instance runs again (a new revision), so the expunge is stale.
    set_agent(&mut s, "a1", AgentState::Active, 3_000);
    let r = s.apply(Command::ForgetInstances {
        instances: vec![expunge],
    });
    assert!(refused(&r)[0].starts_with("changed since the decision"));
    assert_eq!(get(&s, "i1").condition, Condition::Running);
    // And a live instance of an active agent is never forgotten, however fresh the decision.
    let now = decided(&s, "i1");
    let r = s.apply(Command::ForgetInstances {
        instances: vec![now],
    });
    assert_eq!(
        refused(&r),
        vec!["it has not ended and agent a1 is active".to_string()]
    );
}

#[test]
fn a_kill_decided_before_a_report_is_refused_and_the_report_stands() {
    // The scheduler picks i1 (starting) as surplus; the agent reports it running; the kill,
    // decided from the older revision, is refused and the next pass decides again from the
    // truth.
    let mut s = with_app_and_agent();
    place(&mut s, vec![instance("i1", "/web", "a1")]);
    report(&mut s, "a1", "i1", Condition::Starting, 1_000);
    let kill = goal_change(&s, "i1", Goal::Decommissioned);
    report(&mut s, "a1", "i1", Condition::Running, 1_100);
    let r = s.apply(Command::SetGoals {
        changes: vec![kill],
        at_ms: 1_050,
    });
    assert!(refused(&r)[0].starts_with("changed since the decision"));
    let i1 = get(&s, "i1");
    assert_eq!((i1.condition, i1.goal), (Condition::Running, Goal::Running));
}

#[test]
fn a_goal_change_on_an_ended_instance_is_refused() {
    let mut s = with_app_and_agent();
    place(&mut s, vec![instance("i1", "/web", "a1")]);
    report(&mut s, "a1", "i1", Condition::Failed, 1_000);
    let r = s.apply(Command::SetGoals {
        changes: vec![goal_change(&s, "i1", Goal::Stopped)],
        at_ms: 1_100,
    });
    assert_eq!(refused(&r), vec!["it has ended (Failed)".to_string()]);
}

#[test]
fn deleting_an_app_decommissions_its_instances_and_nothing_revives_them() {
    let mut s = with_app_and_agent();
    register(&mut s, "a2", "10.0.0.2");
    place(
        &mut s,
        vec![instance("i1", "/web", "a1"), instance("i2", "/web", "a2")],
    );
    report(&mut s, "a1", "i1", Condition::Running, 1_000);
    let revive = goal_change(&s, "i1", Goal::Running);
    let stop = goal_change(&s, "i2", Goal::Stopped);
    s.apply(Command::DeleteApp { id: app_id("/web") });
    // Decisions made before the deletion land after it: refused, both.
    let r = s.apply(Command::SetGoals {
        changes: vec![revive, stop],
        at_ms: 1_100,
    });
    assert_eq!(refused(&r).len(), 2);
    assert!(
        s.instances()
            .values()
            .all(|i| i.goal == Goal::Decommissioned),
        "every instance of a deleted app is decommissioned"
    );
    // A new app of the same id starts from nothing; the old instances stay decommissioned.
    put_app(&mut s, "/web", "v9");
    let r = s.apply(Command::SetGoals {
        changes: vec![goal_change(&s, "i1", Goal::Running)],
        at_ms: 1_200,
    });
    assert_eq!(
        refused(&r),
        vec!["it is being decommissioned, which is final".to_string()]
    );
    // Their agents' reports end them, and then the scheduler may forget them.
    report(&mut s, "a1", "i1", Condition::Killed, 1_300);
    report(&mut s, "a2", "i2", Condition::Killed, 1_300);
    let forget = vec![decided(&s, "i1"), decided(&s, "i2")];
    let r = s.apply(Command::ForgetInstances { instances: forget });
    assert!(refused(&r).is_empty());
    assert!(s.instances().is_empty());
}

#[test]
fn one_pass_is_one_batch_and_each_part_is_judged_on_its_own() {
    let mut s = with_app_and_agent();
    place(
        &mut s,
        vec![instance("i1", "/web", "a1"), instance("i2", "/web", "a1")],
    );
    report(&mut s, "a1", "i2", Condition::Failed, 1_000);
    let pass = Command::Batch {
        commands: vec![
            Command::ForgetInstances {
                instances: vec![decided(&s, "i2")],
            },
            Command::SetGoals {
                changes: vec![goal_change(&s, "i1", Goal::Decommissioned)],
                at_ms: 1_100,
            },
            Command::PlaceInstances {
                instances: vec![instance("i3", "/web", "a1"), instance("x", "/gone", "a1")],
            },
            Command::Batch { commands: vec![] },
        ],
    };
    let Response::Batch { responses } = s.apply(pass) else {
        panic!("a batch is answered by a batch")
    };
    assert_eq!(responses.len(), 4);
    assert!(refused(&responses[0]).is_empty());
    assert!(refused(&responses[1]).is_empty());
    assert_eq!(
        refused(&responses[2]),
        vec!["app /gone is gone".to_string()]
    );
    assert!(matches!(responses[3], Response::Conflict { .. }));
    let ids: Vec<&str> = s.instances().keys().map(|i| i.0.as_str()).collect();
    assert_eq!(ids, ["i1", "i3"]);
    assert_eq!(get(&s, "i1").goal, Goal::Decommissioned);
}

#[test]
fn an_agents_assignment_revision_moves_only_when_its_assignments_change() {
    let mut s = with_app_and_agent();
    register(&mut s, "a2", "10.0.0.2");
    let a1 = AgentId::from("a1");
    let a2 = AgentId::from("a2");
    assert_eq!(s.assignment_revision(&a1), 0);
    place(&mut s, vec![instance("i1", "/web", "a1")]);
    let placed = s.assignment_revision(&a1);
    assert!(placed > 0);
    assert_eq!(s.assignment_revision(&a2), 0, "another agent's work");
    // The agent's own reports, and marks, change no assignment.
    report(&mut s, "a1", "i1", Condition::Running, 1_000);
    set_agent(&mut s, "a1", AgentState::Unreachable, 2_000);
    let m = decided(&s, "i1");
    s.apply(Command::MarkUnreachable {
        instances: vec![m],
        at_ms: 2_000,
    });
    set_agent(&mut s, "a1", AgentState::Active, 3_000);
    place(&mut s, vec![instance("i2", "/web", "a2")]);
    assert_eq!(s.assignment_revision(&a1), placed);
    // A goal change does.
    s.apply(Command::SetGoals {
        changes: vec![goal_change(&s, "i1", Goal::Decommissioned)],
        at_ms: 3_100,
    });
    let killed = s.assignment_revision(&a1);
    assert!(killed > placed);
    // Its report of the end does not (the agent knows), nor forgetting the ended record.
    report(&mut s, "a1", "i1", Condition::Killed, 3_200);
    let f = decided(&s, "i1");
    s.apply(Command::ForgetInstances { instances: vec![f] });
    assert_eq!(s.assignment_revision(&a1), killed);
    // Forgetting one that had not ended does (the agent must stop it).
    set_agent(&mut s, "a2", AgentState::Unreachable, 4_000);
    let f = decided(&s, "i2");
    let before = s.assignment_revision(&a2);
    s.apply(Command::ForgetInstances { instances: vec![f] });
    assert!(s.assignment_revision(&a2) > before);
}
