//! Glue between the scheduler and `domain::place`: the agents that may take work with what
//! they have left (from [`ClusterState::usage`], the state machine's own account), and
//! charging each placement to its agent so that the next app of the pass sees it.

use domain::placement::Placement;
use domain::resources::to_millis;
use domain::{Agent, AppDefinition};
use state::{AgentState, ClusterState};

/// The active agents, each with the resources and ports it has free.
pub fn live_agents(state: &ClusterState) -> Vec<Agent> {
    let usage = state.usage_by_agent();
    let idle = state::Usage::default();
    state
        .agents()
        .values()
        .filter(|r| r.state == AgentState::Active)
        .map(|r| {
            let mut agent = r.agent.clone();
            let used = usage.get(&agent.id).unwrap_or(&idle);
            let left =
                |total: f64, taken: u64| (to_millis(total).saturating_sub(taken)) as f64 / 1000.0;
            agent.resources.cpus = left(agent.resources.cpus, used.cpus);
            agent.resources.mem = left(agent.resources.mem, used.mem);
            agent.resources.disk = left(agent.resources.disk, used.disk);
            for p in &used.ports {
                agent.resources.ports.remove(*p);
            }
            agent
        })
        .collect()
}

/// Takes what one instance of `app` placed by `p` holds from its agent in `agents`.
pub fn charge(agents: &mut [Agent], app: &AppDefinition, p: &Placement) {
    let share = state::reserved(app);
    let Some(agent) = agents.get_mut(p.agent_index) else {
        return;
    };
    let take = |total: f64, n: u64| (to_millis(total).saturating_sub(n)) as f64 / 1000.0;
    agent.resources.cpus = take(agent.resources.cpus, share.cpus);
    agent.resources.mem = take(agent.resources.mem, share.mem);
    agent.resources.disk = take(agent.resources.disk, share.disk);
    for port in &p.ports {
        agent.resources.ports.remove(*port);
    }
}
