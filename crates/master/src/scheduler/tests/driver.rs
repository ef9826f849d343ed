//! The driver around `reconcile`: one commit per pass through the commit seam, events only
//! after it succeeded, the queue and the eviction memory recorded.

use serde_json::json;
use state::{ClusterState, Command, Condition, Response};

use crate::scheduler::harness::*;
use crate::scheduler::{Commit, EvictionGuard, Outcome, Queue, pass, record};

/// A commit seam that applies to a copy of the state and counts, or refuses everything.
struct Counting {
    state: ClusterState,
    commits: usize,
    fail: bool,
}

impl Commit for Counting {
    async fn commit(&mut self, command: Command) -> Result<Response, String> {
        self.commits += 1;
        if self.fail {
            return Err("no quorum".into());
        }
        Ok(self.state.apply(command))
    }
}

/// A cluster where the next pass must at once forget a failed instance (and set a backoff),
/// mark an instance of a lost agent (and replace it), kill an unhealthy instance (and replace
/// it), and finish a deployment.
fn busy() -> Harness {
    let mut h = Harness::new();
    h.zone("a", 3);
    h.zone("b", 3);
    let on_b1 = json!(["hostname", "CLUSTER", "b-1.example"]);
    let failing = h.running(json!({"id": "/failing", "instances": 1, "constraints": [on_b1]}));
    let lost = h.running(json!({"id": "/lost", "instances": 1, "constraints": [["@zone", "CLUSTER", "a"]],
                                "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 3600}}));
    let sick = h.running(json!({"id": "/sick", "instances": 1, "constraints": [on_b1],
                                "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}]}));
    h.running(json!({"id": "/done", "instances": 1, "constraints": [on_b1]}));
    h.deploy("/done", "ScaleApplication");
    h.report(&failing[0].id, Condition::Failed);
    h.lose(&lost[0].agent_id);
    h.health(&sick[0].id, false, true);
    h.advance(h.policy.settle_ms);
    h
}

#[tokio::test]
async fn a_pass_that_forgets_marks_kills_places_backs_off_and_finishes_is_one_commit() {
    let h = busy();
    let mut seam = Counting {
        state: h.state.clone(),
        commits: 0,
        fail: false,
    };
    let mut ids = h.ids.clone();
    let outcome = pass(&h.state, &h.obs, &h.policy, h.now, &mut ids, &mut seam)
        .await
        .expect("the pass decides");
    assert_eq!(seam.commits, 1, "one pass, one commit");
    let Ok(Some(Response::Batch { responses })) = &outcome.committed else {
        panic!("one batch was committed: {:?}", outcome.committed);
    };
    // Each part applied, none refused.
    for r in responses {
        match r {
            Response::Decided { refused, .. } => assert!(refused.is_empty(), "{refused:?}"),
            other => assert_eq!(*other, Response::Ok),
        }
    }
    let mut seen = h;
    let d = seen.decide();
    assert_eq!(
        kinds(&d),
        [
            "forget",
            "backoff",
            "mark",
            "goals",
            "place",
            "finish-deployment"
        ]
    );
    assert!(seam.state.deployments().is_empty());
    assert!(seam.state.backoffs().contains_key(&app_id("/failing")));
}

#[tokio::test]
async fn a_pass_with_nothing_to_do_commits_nothing() {
    let mut h = Harness::new();
    h.zone("a", 1);
    h.running(json!({"id": "/web", "instances": 1}));
    let mut seam = Counting {
        state: h.state.clone(),
        commits: 0,
        fail: false,
    };
    let outcome = pass(&h.state, &h.obs, &h.policy, h.now, &mut h.ids, &mut seam).await;
    assert_eq!(seam.commits, 0);
    assert!(matches!(
        outcome,
        Ok(Outcome {
            committed: Ok(None),
            ..
        })
    ));
}

#[tokio::test]
async fn events_and_the_eviction_memory_are_recorded_only_after_the_commit_succeeded() {
    for fail in [true, false] {
        let h = busy();
        let mut seam = Counting {
            state: h.state.clone(),
            commits: 0,
            fail,
        };
        let mut ids = h.ids.clone();
        let outcome = pass(&h.state, &h.obs, &h.policy, h.now, &mut ids, &mut seam).await;
        let (queue, guard) = (Queue::default(), EvictionGuard::default());
        let mut published: Vec<&'static str> = Vec::new();
        let mut killing = Vec::new();
        let (_, failed) = record(outcome, &queue, &guard, &mut |e| {
            published.push(e.event_type());
            if let crate::events::Event::StatusUpdateEvent { task_status, .. } = e {
                killing.push(task_status);
            }
        });
        assert_eq!(failed, fail);
        assert!(
            queue.entries().contains_key(&app_id("/failing")),
            "the queue is recorded either way"
        );
        let types: Vec<&str> = published.clone();
        if fail {
            assert!(
                types.is_empty(),
                "nothing committed, nothing published: {types:?}"
            );
            assert_eq!(guard.memory(), Default::default());
        } else {
            assert_eq!(
                types,
                [
                    "unhealthy_instance_kill_event",
                    // The killed instance leaves the balancers now, not at its TASK_KILLED.
                    "status_update_event",
                    "deployment_step_success",
                    "deployment_success"
                ]
            );
            assert_eq!(killing, ["TASK_KILLING"]);
        }
    }
}

#[tokio::test]
async fn an_event_about_a_part_refused_as_stale_is_not_published() {
    let h = busy();
    // Between the snapshot and the commit, the sick instance's agent reports it failed: the
    // health kill is stale (its revision moved) and is refused, so its event is not true.
    let mut seam = Counting {
        state: h.state.clone(),
        commits: 0,
        fail: false,
    };
    let sick = h.live("/sick").remove(0).id;
    seam.state.apply(Command::ReportInstances {
        agent_id: h.state.instances()[&sick].agent_id.clone(),
        reports: vec![state::InstanceReport {
            instance_id: sick.clone(),
            condition: Condition::Failed,
            at_ms: h.now,
        }],
    });
    let mut ids = h.ids.clone();
    let outcome = pass(&h.state, &h.obs, &h.policy, h.now, &mut ids, &mut seam).await;
    assert!(
        outcome
            .as_ref()
            .is_ok_and(|o| !o.applied.goals.contains(&sick)),
        "{outcome:?}"
    );
    let (queue, guard) = (Queue::default(), EvictionGuard::default());
    let mut published: Vec<&'static str> = Vec::new();
    record(outcome, &queue, &guard, &mut |e| {
        published.push(e.event_type())
    });
    assert_eq!(published, ["deployment_step_success", "deployment_success"]);
}

#[tokio::test]
async fn a_panic_in_a_pass_commits_nothing_and_says_why() {
    let mut h = Harness::new();
    h.zone("a", 1);
    // An id source that panics stands in for a bug while deciding about one app.
    struct Exploding;
    impl crate::scheduler::IdSource for Exploding {
        fn instance_id(&mut self, _: &domain::AppId) -> state::InstanceId {
            panic!("no ids today")
        }
    }
    h.app(json!({"id": "/web", "instances": 1}));
    let mut seam = Counting {
        state: h.state.clone(),
        commits: 0,
        fail: false,
    };
    let outcome = pass(
        &h.state,
        &h.obs,
        &h.policy,
        h.now,
        &mut Exploding,
        &mut seam,
    )
    .await
    .expect("a panic deciding about one app is contained to it");
    assert_eq!(seam.commits, 0);
    let entry = &outcome.decision.queue[&app_id("/web")];
    assert!(
        entry
            .error
            .as_deref()
            .is_some_and(|e| e.contains("no ids today")),
        "{entry:?}"
    );
}

/// A commit seam that applies and records how many placements each entry carried.
struct Entries {
    state: ClusterState,
    placements: Vec<usize>,
}

impl Commit for Entries {
    async fn commit(&mut self, command: Command) -> Result<Response, String> {
        let Command::Batch { commands } = &command else {
            return Err(format!("not a batch: {command:?}"));
        };
        let placed = commands
            .iter()
            .map(|c| match c {
                Command::PlaceInstances { instances } => instances.len(),
                _ => 0,
            })
            .sum();
        self.placements.push(placed);
        Ok(self.state.apply(command))
    }
}

#[tokio::test]
async fn a_pass_placing_more_than_an_entry_holds_commits_the_rest_in_entries_of_that_size() {
    let mut h = Harness::new();
    h.zone("a", 5);
    h.zone("b", 5);
    h.policy.launch_budget = 2 * crate::scheduler::PLACEMENTS_PER_ENTRY + 500;
    let wanted = h.policy.launch_budget;
    h.app(json!({"id": "/many", "instances": wanted, "cpus": 0.001, "mem": 1}));
    let mut seam = Entries {
        state: h.state.clone(),
        placements: Vec::new(),
    };
    let outcome = pass(&h.state, &h.obs, &h.policy, h.now, &mut h.ids, &mut seam)
        .await
        .expect("the pass decides");
    assert!(outcome.committed.is_ok(), "{:?}", outcome.committed);
    let per_entry = crate::scheduler::PLACEMENTS_PER_ENTRY;
    assert_eq!(seam.placements, [per_entry, per_entry, 500]);
    let placed = seam
        .state
        .instances()
        .values()
        .filter(|i| i.condition == Condition::Scheduled)
        .count();
    assert_eq!(placed, wanted, "every entry applied");
}

#[test]
fn splitting_keeps_the_batch_whole_when_its_placements_fit_one_entry() {
    let mut h = Harness::new();
    h.zone("a", 2);
    h.app(json!({"id": "/few", "instances": 3}));
    let d = h.decide();
    let command = d.command.expect("the pass places");
    let (first, rest) = crate::scheduler::split_placements(command.clone());
    assert_eq!(first, command);
    assert!(rest.is_empty());
}
