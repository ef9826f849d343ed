//! Status updates waiting for the master: collected, deduplicated, sent in batches and kept
//! until a master acknowledges them (across master outages and leader changes).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use state::protocol::{HealthReport, ReadinessReport, TaskStatus};
use state::{Condition, InstanceId};
use tokio::sync::Notify;

/// The queue of unsent status updates.
#[derive(Debug, Default)]
pub struct Outbox {
    state: Mutex<OutboxState>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct OutboxState {
    pending: Vec<TaskStatus>,
    /// The last condition queued for each instance, to drop repeats. Ordered, so that a
    /// replay queues the same updates in the same order every time.
    last: BTreeMap<InstanceId, Condition>,
    /// The last health queued for each instance, to tell a new leader.
    health: HashMap<InstanceId, HealthReport>,
    /// The last readiness queued for each instance, to tell a new leader.
    readiness: HashMap<InstanceId, ReadinessReport>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Outbox::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OutboxState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues an update. A condition equal to the last one queued for the instance is dropped
    /// (unless it carries health or readiness); health and readiness after a terminal
    /// condition are dropped too.
    pub fn push(&self, update: TaskStatus) {
        {
            let mut s = self.lock();
            let last = s.last.get(&update.instance_id).copied();
            let news = update.health.is_some() || update.readiness.is_some();
            let repeat = last == Some(update.condition) && !news;
            let late_news = news && last.is_some_and(Condition::is_terminal);
            if repeat || late_news {
                return;
            }
            s.last.insert(update.instance_id.clone(), update.condition);
            if let Some(h) = &update.health {
                s.health.insert(update.instance_id.clone(), h.clone());
            }
            if let Some(r) = &update.readiness {
                s.readiness.insert(update.instance_id.clone(), r.clone());
            }
            s.pending.push(update);
        }
        self.notify.notify_one();
    }

    /// Records an instance's condition as known to the master without sending it (a task
    /// found again after a restart is announced by the registration instead).
    pub fn seed(&self, id: InstanceId, condition: Condition) {
        self.lock().last.insert(id, condition);
    }

    /// The updates to send next, oldest first (they stay queued until acknowledged).
    pub fn peek(&self, max: usize) -> Vec<TaskStatus> {
        self.lock().pending.iter().take(max).cloned().collect()
    }

    /// Removes the `n` oldest updates, which a master has acknowledged.
    pub fn acknowledge(&self, n: usize) {
        let mut s = self.lock();
        let n = n.min(s.pending.len());
        s.pending.drain(..n);
    }

    /// Number of unsent updates.
    pub fn len(&self) -> usize {
        self.lock().pending.len()
    }

    /// True when nothing waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True while an update about `id` waits to be sent.
    pub fn has_pending(&self, id: &InstanceId) -> bool {
        self.lock().pending.iter().any(|u| &u.instance_id == id)
    }

    /// Forgets an instance the agent no longer tracks.
    pub fn forget(&self, id: &InstanceId) {
        let mut s = self.lock();
        s.last.remove(id);
        s.health.remove(id);
        s.readiness.remove(id);
    }

    /// Queues again the last condition (with health and readiness) of every instance that has not ended,
    /// for a leader that may not know them (a new leader, or one that lost track of this
    /// agent), unless an update about it is already waiting.
    pub fn replay(&self, at_ms: u64) {
        {
            let mut s = self.lock();
            let again: Vec<TaskStatus> = s
                .last
                .iter()
                .filter(|(id, c)| {
                    !c.is_terminal() && !s.pending.iter().any(|u| &u.instance_id == *id)
                })
                .map(|(id, c)| TaskStatus {
                    instance_id: id.clone(),
                    condition: *c,
                    message: None,
                    exit_code: None,
                    health: s.health.get(id).cloned(),
                    readiness: s.readiness.get(id).cloned(),
                    containers: Vec::new(),
                    at_ms,
                })
                .collect();
            if again.is_empty() {
                return;
            }
            s.pending.extend(again);
        }
        self.notify.notify_one();
    }

    /// Waits until something was pushed since the last wait.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::protocol::HealthReport;

    fn status(id: &str, condition: Condition) -> TaskStatus {
        TaskStatus {
            instance_id: id.into(),
            condition,
            message: None,
            exit_code: None,
            health: None,
            readiness: None,
            containers: Vec::new(),
            at_ms: 1,
        }
    }

    #[test]
    fn repeats_are_dropped_and_acknowledged_updates_leave() {
        let o = Outbox::new();
        o.push(status("a", Condition::Staging));
        o.push(status("a", Condition::Running));
        o.push(status("a", Condition::Running));
        o.push(status("b", Condition::Running));
        assert_eq!(o.len(), 3);
        let batch = o.peek(10);
        o.push(status("a", Condition::Failed));
        o.acknowledge(batch.len());
        let left = o.peek(10);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].condition, Condition::Failed);
        assert!(o.has_pending(&"a".into()));
        assert!(!o.has_pending(&"b".into()));
    }

    #[test]
    fn health_changes_pass_but_not_after_the_end() {
        let o = Outbox::new();
        o.seed("a".into(), Condition::Running);
        o.push(status("a", Condition::Running));
        assert!(o.is_empty());
        let health = HealthReport {
            healthy: false,
            consecutive_failures: 1,
            last_failure_cause: None,
            checked_at_ms: 1,
            should_kill: false,
        };
        let mut h = status("a", Condition::Running);
        h.health = Some(health);
        o.push(h.clone());
        assert_eq!(o.len(), 1);
        o.push(status("a", Condition::Killed));
        o.push(h);
        assert_eq!(o.len(), 2);
    }
}
