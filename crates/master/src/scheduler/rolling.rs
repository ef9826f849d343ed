//! Deployments' rolling replacement: which old instances to stop and how many new ones to
//! launch in one pass, within the app's `upgradeStrategy`.

use domain::AppDefinition;
use state::Instance;

/// One step of a rolling replacement, Marathon's arithmetic: keep at least
/// `ceil(n × minimumHealthCapacity)` ready instances and at most
/// `floor(n × (1 + maximumOverCapacity))` in all. Old instances that are not ready go
/// first (they cost no capacity); ready ones as far as the minimum allows. When neither a
/// kill nor a launch fits and nothing new is pending, one old instance goes, so the
/// deployment always progresses (Marathon does the same). Returns the instances to stop
/// and how many to launch.
pub fn step<'a>(
    app: &AppDefinition,
    active: &[&'a Instance],
    old: &[&'a Instance],
    ready: &dyn Fn(&Instance) -> bool,
    unknown: &dyn Fn(&Instance) -> bool,
) -> (Vec<&'a Instance>, usize) {
    let wanted = app.instances as usize;
    let new_count = active.len() - old.len();
    let strategy = app.upgrade_strategy;
    let min_healthy = (wanted as f64 * strategy.minimum_health_capacity).ceil() as usize;
    let max_total =
        ((wanted as f64 * (1.0 + strategy.maximum_over_capacity)).floor() as usize).max(wanted);
    let ready_count = active.iter().filter(|i| ready(i)).count();
    // Old instances known not to be ready go first; one whose health is not known yet (a
    // new leader has not heard from its agent) is neither counted ready nor killed.
    let mut kills: Vec<&Instance> = old
        .iter()
        .copied()
        .filter(|i| !ready(i) && !unknown(i))
        .collect();
    let mut ready_old: Vec<&Instance> = old.iter().copied().filter(|i| ready(i)).collect();
    // Oldest first among the ready old ones.
    ready_old.sort_by_key(|i| (i.started_at_ms.unwrap_or(i.created_at_ms), i.id.0.clone()));
    let spare = ready_count.saturating_sub(min_healthy);
    kills.extend(ready_old.iter().take(spare).copied());
    let remaining = active.len() - kills.len();
    let launches = wanted
        .saturating_sub(new_count)
        .min(max_total.saturating_sub(remaining));
    let new_pending = active
        .iter()
        .any(|i| !old.iter().any(|o| o.id == i.id) && !ready(i));
    if kills.is_empty()
        && launches == 0
        && !new_pending
        && let Some(first) = ready_old.first()
    {
        kills.push(first);
    }
    (kills, launches)
}
