//! Launch backoff after failures.

use serde_json::json;
use state::{Command, Condition};

use crate::scheduler::harness::*;

fn flaky() -> serde_json::Value {
    json!({"id": "/flaky", "instances": 1, "backoffSeconds": 2, "backoffFactor": 2, "maxLaunchDelaySeconds": 5})
}

#[test]
fn a_failure_sets_a_backoff_that_holds_launches_until_it_expires_and_wakes_the_scheduler_then() {
    let mut h = Harness::new();
    h.zone("a", 1);
    let first = h.running(flaky()).remove(0);
    h.report(&first.id, Condition::Failed);
    let d = h.pass();
    assert_eq!(kinds(&d), ["forget", "backoff"]);
    assert!(commands(&d).contains(&Command::SetBackoff {
        app_id: app_id("/flaky"),
        delay_ms: 2_000,
        until_ms: h.now + 2_000,
    }));
    assert!(placed(&d).is_empty());
    let entry = &d.queue[&app_id("/flaky")];
    assert_eq!(entry.delayed_until_ms, Some(h.now + 2_000));
    assert_eq!(d.next_wake_ms, Some(h.now + 2_000));

    // Still held a moment before it expires: nothing to commit, the wake-up unchanged.
    h.advance(1_999);
    let d = h.decide();
    assert!(d.command.is_none());
    assert_eq!(d.next_wake_ms, Some(h.now + 1));
    assert!(d.queue.contains_key(&app_id("/flaky")));

    h.advance(1);
    let d = h.decide();
    assert_eq!(placed(&d).len(), 1, "launched when the backoff expires");
    assert!(d.queue.is_empty());
}

#[test]
fn repeated_failures_grow_the_delay_up_to_the_cap_and_a_healthy_run_clears_it() {
    let mut h = Harness::new();
    h.zone("a", 1);
    h.running(flaky());
    let mut delays = Vec::new();
    for _ in 0..3 {
        let inst = h.live("/flaky").remove(0);
        h.report(&inst.id, Condition::Failed);
        h.pass();
        delays.push(h.state.backoffs()[&app_id("/flaky")].delay_ms);
        h.advance(10_000);
        h.pass();
    }
    assert_eq!(delays, [2_000, 4_000, 5_000]);
    h.start_all(true);
    let d = h.pass();
    assert_eq!(kinds(&d), ["clear-backoff"]);
    assert!(h.state.backoffs().is_empty());
}
