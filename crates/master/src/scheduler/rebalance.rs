//! Rebalancing after a zone returns: when an app is settled (its wanted count, all ready, no
//! deployment) but its first `GROUP_BY` is more than one apart over the values alive, one
//! extra instance is launched where it is emptiest; the surplus is then stopped where it is
//! fullest (kill selection keeps `GROUP_BY` balanced). One at a time, so the app never runs
//! fewer than its wanted instances.

use std::collections::HashMap;

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
    let Some(group_by) = app
        .constraints
        .iter()
        .find(|c| c.operator == domain::Operator::GroupBy)
    else {
        return false;
    };
    let Some(p) = result.placements.first() else {
        return false;
    };
    let mut counts: HashMap<String, usize> = HashMap::new();
    for i in staying {
        if let Some(v) = state
            .agent(&i.agent_id)
            .and_then(|r| group_by.value_of(&r.agent, local_region))
        {
            *counts.entry(v.into_owned()).or_default() += 1;
        }
    }
    let target = agents
        .get(p.agent_index)
        .and_then(|a| group_by.value_of(a, local_region))
        .map(|v| counts.get(v.as_ref()).copied().unwrap_or(0));
    let fullest = counts.values().max().copied().unwrap_or(0);
    target.is_some_and(|t| t + 2 <= fullest)
}
