//! Rebalancing after a zone returns: when an app is settled (its wanted count, all ready, no
//! deployment) but its first `GROUP_BY` is more than one apart over the values alive, one
//! extra instance is launched where it is emptiest; the surplus is then stopped where it is
//! fullest (kill selection keeps `GROUP_BY` balanced). One at a time, so the app never runs
//! fewer than its wanted instances.

use std::collections::{HashMap, HashSet};

use domain::{Agent, AppDefinition, PlacementResult};
use state::{ClusterState, Instance};

/// Whether an app is settled enough to try one rebalancing launch.
pub fn settled(
    app: &AppDefinition,
    active: &[&Instance],
    ready: &dyn Fn(&Instance) -> bool,
    deploying: bool,
) -> bool {
    let wanted = app.instances as usize;
    active.len() == wanted && wanted > 0 && active.iter().all(|i| ready(i)) && !deploying
}

/// The values of `field` over `agents` (the agents that may take work), for
/// [`may_improve_balance`]; one per pass and field, as every app with a `GROUP_BY` on that
/// field asks the same.
pub fn values_alive(
    constraint: &domain::Constraint,
    agents: &[Agent],
    local_region: &str,
) -> HashSet<String> {
    agents
        .iter()
        .filter_map(|a| constraint.value_of(a, local_region).map(|v| v.into_owned()))
        .collect()
}

/// The app's first `GROUP_BY` constraint, which rebalancing evens out.
pub fn group_by(app: &AppDefinition) -> Option<&domain::Constraint> {
    app.constraints
        .iter()
        .find(|c| c.operator == domain::Operator::GroupBy)
}

/// Whether one launch could pass [`improves_balance`] at all: some value alive holds at
/// least two fewer of the app's instances than the fullest. Cheap (the app's instances and
/// the pass's `alive` values), so a settled app that is balanced costs no trial placement.
pub fn may_improve_balance(
    group_by: &domain::Constraint,
    state: &ClusterState,
    local_region: &str,
    staying: &[&Instance],
    alive: &HashSet<String>,
) -> bool {
    let counts = group_counts(group_by, state, local_region, staying);
    let fullest = counts.values().max().copied().unwrap_or(0);
    let emptiest = alive
        .iter()
        .map(|v| counts.get(v).copied().unwrap_or(0))
        .min();
    emptiest.is_some_and(|e| e + 2 <= fullest)
}

/// How many of `staying` run on each value of `group_by`.
fn group_counts(
    group_by: &domain::Constraint,
    state: &ClusterState,
    local_region: &str,
    staying: &[&Instance],
) -> HashMap<String, usize> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for i in staying {
        if let Some(v) = state
            .agent(&i.agent_id)
            .and_then(|r| group_by.value_of(&r.agent, local_region))
        {
            *counts.entry(v.into_owned()).or_default() += 1;
        }
    }
    counts
}

/// Whether launching `result`'s one instance makes the app's first `GROUP_BY` more even:
/// the value it lands on holds at least two fewer than the fullest value.
pub fn improves_balance(
    app: &AppDefinition,
    state: &ClusterState,
    local_region: &str,
    staying: &[&Instance],
    agents: &[Agent],
    result: &PlacementResult,
) -> bool {
    let Some(group_by) = group_by(app) else {
        return false;
    };
    let Some(p) = result.placements.first() else {
        return false;
    };
    let counts = group_counts(group_by, state, local_region, staying);
    let target = agents
        .get(p.agent_index)
        .and_then(|a| group_by.value_of(a, local_region))
        .map(|v| counts.get(v.as_ref()).copied().unwrap_or(0));
    let fullest = counts.values().max().copied().unwrap_or(0);
    target.is_some_and(|t| t + 2 <= fullest)
}
