//! One scheduler pass as a pure function: [`reconcile`] reads a snapshot of the state and
//! explicit observations and returns a [`Decision`]: the commands to commit (one batch), the
//! events to publish once they have, the queue with its reasons, what the eviction memory
//! records, and when time alone would change the answer. No clock, no locks, no ids made
//! here, no event bus: the driver in [`super`] does those, so every policy can be unit-tested
//! on a state built by applying commands.
//!
//! The order of a pass: forget what ended (counting failures for the backoff), assess the
//! zones ([`super::eviction`]), then app by app: instances on unreachable agents
//! ([`super::unreachable`]), health kills ([`super::health`]), rolling replacement
//! ([`super::rolling`]), scale-down, rebalancing ([`super::rebalance`]), the backoff gate
//! ([`super::backoff`]) and placement ([`super::placement`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::panic::AssertUnwindSafe;

use domain::kill::{Condition as KillCondition, KillCandidate, select_to_kill};
use domain::placement::{ExistingInstance, Snapshot, place};
use domain::{Agent, AgentId, AppId};
use serde_json::Value;
use state::protocol::HealthReport;
use state::{
    AgentState, ClusterState, Command, Condition, Decided, Deployment, DeploymentAction, Goal,
    GoalChange, Instance, InstanceId,
};

use super::eviction::{self, Assessment, EvictionMemory};
use super::ids::IdSource;
use super::unreachable::{self, Lost};
use super::{
    MAX_CHANGES_PER_PASS, QueueEntry, REASON_NEXT_PASS, backoff, health, placement, rebalance,
    rolling,
};
use crate::deployments::{self, Action, Progress};
use crate::events::Event;

/// What the leader observed outside the replicated state, as the pass reads it.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    /// Each instance's last health report (instances not in it have not been heard of).
    pub health: HashMap<InstanceId, HealthReport>,
    /// The instances that must prove their readiness, with their agents' last readiness
    /// report (`None`: not heard of yet); see [`super::health::readiness_observations`].
    pub readiness: HashMap<InstanceId, Option<state::protocol::ReadinessReport>>,
    /// The eviction memory after the last pass that committed.
    pub eviction: EvictionMemory,
}

/// How the leader decides: settings that do not change during a term.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The fraction of a zone's agents unreachable beyond which it is not a few lost machines.
    pub eviction_threshold: f64,
    /// In a paced zone, one more agent's instances are replaced per this many ms.
    pub eviction_interval_ms: u64,
    /// After any agent changed state, wait this long (the agents' heartbeat interval and a
    /// liveness tick) before judging the zones and replacing anything on unreachable agents.
    pub settle_ms: u64,
    /// The master's own region: the local region while no master in the state has one.
    pub region: String,
    /// At most this many instances are placed in one pass.
    pub launch_budget: usize,
    /// The Raft term the decisions are made in (new instances carry it).
    pub term: u64,
}

/// An event to publish once the pass's commit succeeded, and what the commit must have
/// applied for it to be true.
#[derive(Debug, Clone, PartialEq)]
pub struct Announcement {
    /// The event.
    pub event: Event,
    /// Published only if the commit applied this (`None`: whenever the commit succeeded).
    pub requires: Option<Requires>,
}

/// A part of a pass's batch an event describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requires {
    /// The goal change of this instance applied (it was not stale).
    Goal(InstanceId),
    /// This deployment was deleted (finished).
    DeploymentDeleted(String),
    /// This deployment moved on to its next step.
    DeploymentAdvanced(String),
}

impl Announcement {
    /// An event true once the pass committed.
    pub fn new(event: Event) -> Self {
        Announcement {
            event,
            requires: None,
        }
    }

    /// The same event, published only if `requires` applied.
    pub fn requiring(self, requires: Requires) -> Self {
        Announcement {
            requires: Some(requires),
            ..self
        }
    }

    /// Marathon's name for the event.
    pub fn event_type(&self) -> &'static str {
        self.event.event_type()
    }

    /// The event's fields as published (without the time stamp).
    pub fn fields(&self) -> Value {
        serde_json::to_value(&self.event).unwrap_or_default()
    }
}

/// What one pass decided.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    /// The changes, as one `Command::Batch`; `None` when there is nothing to change.
    pub command: Option<Command>,
    /// Events to publish after the commit, in order.
    pub events: Vec<Announcement>,
    /// The apps with instances left unplaced, and why.
    pub queue: BTreeMap<AppId, QueueEntry>,
    /// What the eviction memory holds after this pass.
    pub eviction: EvictionMemory,
    /// The earliest time (ms since the epoch) at which a time-based rule changes its
    /// answer: the next pass is due then at the latest.
    pub next_wake_ms: Option<u64>,
}

/// The earliest of the times a pass learns about.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wake(Option<u64>);

impl Wake {
    /// Notes that an answer changes at `ms`.
    pub fn at(&mut self, ms: u64) {
        self.0 = Some(self.0.map_or(ms, |t| t.min(ms)));
    }
}

/// The intents of one pass, gathered app by app before they become one batch.
#[derive(Debug, Default)]
struct Plan {
    place: Vec<Instance>,
    goals: Vec<GoalChange>,
    unreachable: Vec<Decided>,
    forget: Vec<Decided>,
    backoff: Vec<(AppId, u64, u64)>,
    clear_backoff: Vec<AppId>,
    queue: BTreeMap<AppId, QueueEntry>,
    /// Apps that run their wanted count of current, ready instances.
    converged: BTreeSet<AppId>,
    /// Deployments whose step in progress is done, with that step (from 1).
    advanced: Vec<(Deployment, u32)>,
    finished: Vec<Deployment>,
    events: Vec<Announcement>,
}

impl Plan {
    /// Stops an instance for good: its goal change and, if its task may be serving, the
    /// `status_update_event` `TASK_KILLING`, published once the change applied. Mesos
    /// reports TASK_KILLING when the executor begins a kill; the master knows at this
    /// commit, before the agent hears of it, and the balancers take the instance out then
    /// while the agent's kill grace period lets its open connections finish.
    fn stop(&mut self, state: &ClusterState, inst: &Instance) {
        self.goals.push(decommission(inst));
        if inst.condition.is_live() {
            self.events.push(
                Announcement::new(crate::events::status_update(
                    state,
                    inst,
                    "TASK_KILLING",
                    Some("the scheduler stops it".into()),
                ))
                .requiring(Requires::Goal(inst.id.clone())),
            );
        }
    }

    /// Adds what one app's part of the pass decided.
    fn absorb(&mut self, part: Plan) {
        self.place.extend(part.place);
        self.goals.extend(part.goals);
        self.unreachable.extend(part.unreachable);
        self.forget.extend(part.forget);
        self.backoff.extend(part.backoff);
        self.clear_backoff.extend(part.clear_backoff);
        self.queue.extend(part.queue);
        self.converged.extend(part.converged);
        self.advanced.extend(part.advanced);
        self.finished.extend(part.finished);
        self.events.extend(part.events);
    }
}

/// An instance as this pass saw it.
fn decided(inst: &Instance) -> Decided {
    Decided {
        instance_id: inst.id.clone(),
        revision: inst.revision,
    }
}

/// A decision to stop an instance for good.
fn decommission(inst: &Instance) -> GoalChange {
    GoalChange {
        instance_id: inst.id.clone(),
        revision: inst.revision,
        goal: Goal::Decommissioned,
    }
}

/// The text of a caught panic.
pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// The pass's decisions as one batch, in the order they must apply (forget before place, so
/// that freed ports and resources are free again); `None` when there is nothing to change.
fn batch(plan: &mut Plan, now: u64) -> Option<Command> {
    let mut commands = Vec::new();
    plan.forget.truncate(MAX_CHANGES_PER_PASS);
    plan.unreachable.truncate(MAX_CHANGES_PER_PASS);
    plan.goals.truncate(MAX_CHANGES_PER_PASS);
    if !plan.forget.is_empty() {
        commands.push(Command::ForgetInstances {
            instances: std::mem::take(&mut plan.forget),
        });
    }
    for (app_id, delay_ms, until_ms) in plan.backoff.drain(..) {
        commands.push(Command::SetBackoff {
            app_id,
            delay_ms,
            until_ms,
        });
    }
    for app_id in plan.clear_backoff.drain(..) {
        commands.push(Command::ClearBackoff { app_id });
    }
    if !plan.unreachable.is_empty() {
        commands.push(Command::MarkUnreachable {
            instances: std::mem::take(&mut plan.unreachable),
            at_ms: now,
        });
    }
    if !plan.goals.is_empty() {
        commands.push(Command::SetGoals {
            changes: std::mem::take(&mut plan.goals),
            at_ms: now,
        });
    }
    if !plan.place.is_empty() {
        commands.push(Command::PlaceInstances {
            instances: std::mem::take(&mut plan.place),
        });
    }
    for (d, from_step) in &plan.advanced {
        commands.push(Command::AdvanceDeployment {
            id: d.id.clone(),
            from_step: *from_step,
        });
    }
    for d in &plan.finished {
        commands.push(Command::DeleteDeployment { id: d.id.clone() });
    }
    (!commands.is_empty()).then_some(Command::Batch { commands })
}

/// The events announcing steps done and deployments finished (a finished group change is a
/// `group_change_success` too).
fn progress_events(advanced: &[(Deployment, u32)], finished: &[Deployment]) -> Vec<Announcement> {
    let mut events = Vec::new();
    for (d, from_step) in advanced {
        let plan = deployments::wire(d);
        let step = d.steps.get((*from_step as usize).saturating_sub(1));
        events.push(
            Announcement::new(Event::DeploymentStepSuccess {
                current_step: step.map(deployments::wire_step),
                plan: (&plan).into(),
            })
            .requiring(Requires::DeploymentAdvanced(d.id.clone())),
        );
    }
    for d in finished {
        let plan = deployments::wire(d);
        let done = Requires::DeploymentDeleted(d.id.clone());
        if !d.steps.is_empty() {
            events.push(
                Announcement::new(Event::DeploymentStepSuccess {
                    current_step: deployments::current(d).map(deployments::wire_step),
                    plan: (&plan).into(),
                })
                .requiring(done.clone()),
            );
        }
        events.push(
            Announcement::new(Event::DeploymentSuccess {
                id: d.id.clone(),
                plan: (&plan).into(),
            })
            .requiring(done.clone()),
        );
        if let Some(group) = &d.group {
            events.push(
                Announcement::new(Event::GroupChangeSuccess {
                    group_id: group.to_string(),
                    version: d.version.clone(),
                })
                .requiring(done),
            );
        }
    }
    events
}

/// Whether a deployment's action is done: an app stopped once it is gone, any other once it
/// has converged (or is gone: nothing is left to wait for).
fn action_done(state: &ClusterState, converged: &BTreeSet<AppId>, a: &DeploymentAction) -> bool {
    state.app(&a.app).is_none()
        || (a.action != Action::StopApplication && converged.contains(&a.app))
}

/// One pass: what to change so that every app has its desired instances, decided from
/// `state` and `obs` at `now_ms`, with new instance ids from `ids`.
pub fn reconcile(
    state: &ClusterState,
    obs: &Observations,
    policy: &Policy,
    now_ms: u64,
    ids: &mut impl IdSource,
) -> Decision {
    let mut plan = Plan::default();
    let mut wake = Wake::default();
    let zones = eviction::assess(state, policy.eviction_threshold);
    let mut memory = obs.eviction.clone();
    if let Some(event) = memory.observe(&zones, policy.eviction_interval_ms) {
        plan.events.push(Announcement::new(event));
    }

    // Instances by app; forget those that stopped for good.
    let agent_state = |id: &AgentId| state.agent(id).map(|r| r.state);
    let mut by_app: BTreeMap<&AppId, Vec<&Instance>> = BTreeMap::new();
    let mut failures: HashMap<&AppId, u32> = HashMap::new();
    for inst in state.instances().values() {
        let on_lost_agent = match agent_state(&inst.agent_id) {
            None | Some(AgentState::Gone) => true,
            // Nobody will report an instance told to stop on an agent that does not answer.
            Some(AgentState::Unreachable) => inst.goal != Goal::Running,
            Some(AgentState::Active) => false,
        };
        if inst.condition.is_terminal() || on_lost_agent {
            plan.forget.push(decided(inst));
            if inst.goal == Goal::Running
                && matches!(inst.condition, Condition::Failed | Condition::Error)
            {
                *failures.entry(&inst.app_id).or_default() += 1;
            }
            continue;
        }
        by_app.entry(&inst.app_id).or_default().push(inst);
    }

    let local_region = state.local_region().unwrap_or(policy.region.as_str());
    // Instances placed in this pass count as used when the next app is placed.
    let mut agents = placement::live_agents(state);
    let all_agents: Vec<Agent> = state.agents().values().map(|r| r.agent.clone()).collect();
    let pass = Pass {
        state,
        obs,
        policy,
        now: now_ms,
        zones: &zones,
        by_app: &by_app,
        failures: &failures,
        local_region,
        all_agents: &all_agents,
        alive: Default::default(),
    };

    let mut budget = policy.launch_budget;
    for (app_id, record) in state.apps() {
        // Whatever goes wrong deciding about one app stays with that app: its part of the
        // plan is dropped, the queue says why, and every other app is scheduled as usual.
        let mut part = Plan::default();
        let mut part_budget = budget;
        let decided = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut app = AppPass {
                agents: &mut agents,
                plan: &mut part,
                budget: &mut part_budget,
                memory: &mut memory,
                wake: &mut wake,
                ids: &mut *ids,
            };
            plan_app(&pass, app_id, record, &mut app)
        }));
        match decided {
            Ok(()) => {
                plan.absorb(part);
                budget = part_budget;
            }
            Err(panic) => {
                let why = panic_message(panic.as_ref());
                tracing::error!(app = %app_id, error = %why, "scheduling this app failed; other apps are not affected");
                plan.queue.insert(
                    app_id.clone(),
                    QueueEntry {
                        unplaced: record.current().app.instances,
                        reasons: BTreeMap::new(),
                        delayed_until_ms: None,
                        error: Some(format!("drover could not schedule this app: {why}")),
                    },
                );
            }
        }
    }
    // Deployments move on step by step (see `deployments::progress`).
    for d in state.deployments().values() {
        match deployments::progress(d, |a| action_done(state, &plan.converged, a)) {
            Progress::Working => {}
            Progress::Advance { from_step } => plan.advanced.push((d.clone(), from_step)),
            Progress::Finished => plan.finished.push(d.clone()),
        }
    }
    let command = batch(&mut plan, now_ms);
    let mut events = plan.events;
    events.extend(progress_events(&plan.advanced, &plan.finished));
    Decision {
        command,
        events,
        queue: plan.queue,
        eviction: memory,
        next_wake_ms: wake.0,
    }
}

/// What every app's part of one pass reads.
struct Pass<'a> {
    state: &'a ClusterState,
    obs: &'a Observations,
    policy: &'a Policy,
    now: u64,
    zones: &'a Assessment,
    by_app: &'a BTreeMap<&'a AppId, Vec<&'a Instance>>,
    failures: &'a HashMap<&'a AppId, u32>,
    local_region: &'a str,
    all_agents: &'a [Agent],
    /// Per constraint field, its values over the agents that may take work (filled as
    /// rebalancing asks; see [`rebalance::values_alive`]).
    alive: std::cell::RefCell<HashMap<domain::Field, HashSet<String>>>,
}

impl Pass<'_> {
    /// Whether a settled app's `GROUP_BY` is uneven enough that a rebalancing launch could
    /// help, over `agents` (this pass's agents that may take work).
    fn may_rebalance(
        &self,
        app: &domain::AppDefinition,
        staying: &[&Instance],
        agents: &[Agent],
    ) -> bool {
        let Some(group_by) = rebalance::group_by(app) else {
            return false;
        };
        let mut cache = self.alive.borrow_mut();
        let alive = cache
            .entry(group_by.field.clone())
            .or_insert_with(|| rebalance::values_alive(group_by, agents, self.local_region));
        rebalance::may_improve_balance(group_by, self.state, self.local_region, staying, alive)
    }
}

/// What one app's part of a pass changes: the agents' free resources (earlier apps'
/// placements included), its part of the plan, the launch budget left, the eviction memory,
/// the wake-up time and the id source.
struct AppPass<'a, I: IdSource> {
    agents: &'a mut Vec<Agent>,
    plan: &'a mut Plan,
    budget: &'a mut usize,
    memory: &'a mut EvictionMemory,
    wake: &'a mut Wake,
    ids: &'a mut I,
}

/// One app's part of a pass.
fn plan_app<I: IdSource>(
    pass: &Pass<'_>,
    app_id: &AppId,
    record: &state::machine::AppRecord,
    out: &mut AppPass<'_, I>,
) {
    let Pass {
        state,
        obs,
        policy,
        now,
        zones,
        by_app,
        failures,
        local_region,
        all_agents,
        ..
    } = *pass;
    // A fault-injection point for tests of the containment above (debug builds only).
    #[cfg(debug_assertions)]
    if std::env::var(super::FAILPOINT_PANIC_APP).is_ok_and(|v| v == app_id.as_str()) {
        panic!("failpoint {} for {app_id}", super::FAILPOINT_PANIC_APP);
    }
    let app = &record.current().app;
    let version = &record.current().version;
    let mut active: Vec<&Instance> = Vec::new();
    for inst in by_app.get(app_id).map(Vec::as_slice).unwrap_or(&[]) {
        if inst.goal != Goal::Running {
            continue;
        }
        if let Some(r) = state.agent(&inst.agent_id)
            && r.state == AgentState::Unreachable
        {
            let lost = Lost {
                agent: &inst.agent_id,
                zone: r.agent.zone().unwrap_or(""),
                since_ms: r.state_since_ms,
            };
            let verdict = unreachable::judge(
                inst,
                app.unreachable_strategy,
                lost,
                zones,
                out.memory,
                policy,
                now,
                out.wake,
            );
            if verdict.forget {
                out.plan.forget.push(decided(inst));
                continue;
            }
            if verdict.mark {
                out.plan.unreachable.push(decided(inst));
            }
            if verdict.counts {
                active.push(inst);
            }
            continue;
        }
        if health::should_kill(obs, inst) {
            tracing::info!(instance = %inst.id, "killing unhealthy instance");
            out.plan
                .events
                .push(health::kill_event(state, app_id, inst));
            out.plan.stop(state, inst);
            continue;
        }
        active.push(inst);
    }

    let wanted = app.instances as usize;
    // Each instance is judged by its own version's checks: the agent runs the checks of
    // the version it launched, so an old instance never reports on checks added since.
    let own = |i: &Instance| record.version(&i.app_version).map_or(app, |v| &v.app);
    let ready = |i: &Instance| health::ready(own(i), obs, i);
    let unknown = |i: &Instance| health::unknown(own(i), obs, i);
    let old: Vec<&Instance> = active
        .iter()
        .copied()
        .filter(|i| deployments::is_old(state, i))
        .collect();
    let deployment = deployments::of_app(state, app_id);

    // Converged: the app runs its wanted count of current, ready instances (what a
    // deployment's step waits for).
    if old.is_empty() && active.len() == wanted && active.iter().all(|i| ready(i)) {
        out.plan.converged.insert(app_id.clone());
    }
    // An app of a later step of its deployment is left as it is until its step comes.
    if deployment.is_some_and(|d| deployments::waits(d, app_id)) {
        return;
    }

    // Which instances to stop, and how many to launch, in this pass.
    let starting = |i: &&Instance| {
        matches!(
            i.condition,
            Condition::Scheduled | Condition::Staging | Condition::Starting
        )
    };
    let (kills, launches, rebalancing): (Vec<&Instance>, usize, bool) = if !old.is_empty() {
        let (kills, launches) = rolling::step(app, &active, &old, &ready, &unknown);
        (kills, launches, false)
    } else if active.len() > wanted && deployment.is_none() && active.iter().any(starting) {
        // A rebalancing launch is on its way: stop the surplus once it runs, so the
        // app never has fewer than its wanted instances running.
        (Vec::new(), 0, false)
    } else if active.len() > wanted {
        let victims = select_to_kill(
            app,
            all_agents,
            local_region,
            &kill_candidates(obs, &active),
            active.len() - wanted,
        );
        let victims = victims.into_iter().filter_map(|k| active.get(k).copied());
        (victims.collect(), 0, false)
    } else if rebalance::settled(app, &active, &ready, deployment.is_some()) {
        // Settled: if a GROUP_BY is more than one apart over the values alive (a zone came
        // back), launch one extra where it is emptiest (see `rebalance`).
        (Vec::new(), 1, true)
    } else {
        (Vec::new(), wanted - active.len(), false)
    };
    for victim in &kills {
        out.plan.stop(state, victim);
    }
    if launches == 0 {
        return;
    }

    let failed = failures.get(app_id).copied().unwrap_or(0);
    let stored = state.backoffs().get(app_id).copied();
    let all_running =
        active.len() == wanted && active.iter().all(|i| i.condition == Condition::Running);
    let delayed = |until: u64| QueueEntry {
        unplaced: launches as u32,
        reasons: BTreeMap::new(),
        delayed_until_ms: Some(until),
        error: None,
    };
    match backoff::gate(app, failed, stored, now, rebalancing, all_running) {
        backoff::Gate::Set { delay_ms, until_ms } => {
            out.plan.backoff.push((app_id.clone(), delay_ms, until_ms));
            out.plan.queue.insert(app_id.clone(), delayed(until_ms));
            out.wake.at(until_ms);
            return;
        }
        backoff::Gate::Wait(until_ms) => {
            out.plan.queue.insert(app_id.clone(), delayed(until_ms));
            out.wake.at(until_ms);
            return;
        }
        backoff::Gate::Open { clear } => {
            if clear {
                out.plan.clear_backoff.push(app_id.clone());
            }
        }
    }

    let staying: Vec<&Instance> = active
        .iter()
        .copied()
        .filter(|i| !kills.iter().any(|k| k.id == i.id))
        .collect();
    let existing: Vec<ExistingInstance> = staying
        .iter()
        .map(|i| ExistingInstance {
            agent_id: i.agent_id.clone(),
        })
        .collect();
    // The pass's launch budget: what does not fit waits for the next pass.
    let waiting = launches.saturating_sub(*out.budget);
    let launches = launches.min(*out.budget);
    if launches == 0 {
        out.plan.queue.insert(
            app_id.clone(),
            QueueEntry {
                unplaced: waiting as u32,
                reasons: BTreeMap::from([(REASON_NEXT_PASS.to_string(), 0)]),
                delayed_until_ms: None,
                error: None,
            },
        );
        return;
    }
    // A balanced app costs no trial placement (over 10,000 agents, a placement's setup is
    // the most of an idle pass).
    if rebalancing && !pass.may_rebalance(app, &staying, out.agents) {
        return;
    }
    let result = place(
        app,
        launches as u32,
        &Snapshot {
            local_region,
            agents: out.agents,
            existing: &existing,
        },
    );
    if rebalancing
        && !rebalance::improves_balance(app, state, local_region, &staying, out.agents, &result)
    {
        return;
    }
    *out.budget -= result.placements.len();
    for p in &result.placements {
        placement::charge(out.agents, app, p);
        out.plan.place.push(Instance {
            id: out.ids.instance_id(app_id),
            app_id: app_id.clone(),
            app_version: version.clone(),
            agent_id: p.agent_id.clone(),
            ports: p.ports.clone(),
            goal: Goal::Running,
            condition: Condition::Scheduled,
            term: policy.term,
            created_at_ms: now,
            updated_at_ms: now,
            started_at_ms: None,
            reserved: None,
            revision: 0,
        });
    }
    if (result.unplaced > 0 || waiting > 0) && !rebalancing {
        let mut reasons = result.reasons;
        if waiting > 0 {
            reasons.insert(REASON_NEXT_PASS.to_string(), 0);
        }
        out.plan.queue.insert(
            app_id.clone(),
            QueueEntry {
                unplaced: result.unplaced.saturating_add(waiting as u32),
                reasons,
                delayed_until_ms: None,
                error: None,
            },
        );
    }
}

/// The kill candidates for a set of instances.
fn kill_candidates(obs: &Observations, instances: &[&Instance]) -> Vec<KillCandidate> {
    instances
        .iter()
        .map(|i| KillCandidate {
            instance_id: i.id.0.clone(),
            agent_id: i.agent_id.clone(),
            condition: match i.condition {
                Condition::Running => KillCondition::Running,
                Condition::Unreachable => KillCondition::Unreachable,
                _ => KillCondition::Staging,
            },
            healthy: obs.health.get(&i.id).map(|h| h.healthy),
            started_at: i.started_at_ms.unwrap_or(i.created_at_ms),
        })
        .collect()
}
