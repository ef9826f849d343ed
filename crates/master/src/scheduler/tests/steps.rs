//! Multi-step deployments (groups): an app of a later step is left alone until every app of
//! the step in progress is done; each step done is one `AdvanceDeployment` with its
//! `deployment_step_success`, the last one finishes the deployment.

use domain::GroupId;
use serde_json::json;
use state::Command;

use crate::deployments::{self, Action};
use crate::scheduler::harness::{Harness, app_id, event_types, kinds, placed};

fn two_steps(h: &mut Harness) -> String {
    h.zone("a", 2);
    h.app(json!({"id": "/g/db", "instances": 1, "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}]}));
    h.app(json!({"id": "/g/web", "instances": 1}));
    let d = deployments::of_group(
        &GroupId::parse("/g").expect("group"),
        &h.current("/g/web"),
        vec![
            vec![(app_id("/g/db"), Action::StartApplication)],
            vec![(app_id("/g/web"), Action::StartApplication)],
        ],
        h.now,
    );
    let id = d.id.clone();
    h.apply(Command::PutDeployment {
        deployment: d,
        force: true,
    });
    id
}

#[test]
fn an_app_of_a_later_step_waits_until_the_step_before_is_done() {
    let mut h = Harness::new();
    let id = two_steps(&mut h);
    let d = h.pass();
    let apps: Vec<&str> = placed(&d).iter().map(|i| i.app_id.as_str()).collect();
    assert_eq!(apps, ["/g/db"], "only the first step's app is placed");
    // Running but not healthy yet: the step is not done.
    h.start_all(false);
    let d = h.pass();
    assert!(placed(&d).is_empty(), "{:?}", kinds(&d));
    assert_eq!(h.state.deployments()[&id].current_step, 1);
    // Healthy: the step is done and the deployment moves on, then web is placed.
    let db = h.live("/g/db")[0].id.clone();
    h.health(&db, true, false);
    let d = h.pass();
    assert!(kinds(&d).contains(&"advance-deployment"), "{:?}", kinds(&d));
    assert_eq!(event_types(&d), ["deployment_step_success"]);
    assert_eq!(h.state.deployments()[&id].current_step, 2);
    let d = h.pass();
    let apps: Vec<&str> = placed(&d).iter().map(|i| i.app_id.as_str()).collect();
    assert_eq!(apps, ["/g/web"]);
    h.start_all(true);
    let d = h.pass();
    assert_eq!(
        event_types(&d),
        [
            "deployment_step_success",
            "deployment_success",
            "group_change_success"
        ]
    );
    assert!(h.state.deployments().is_empty());
}
