//! The scheduler (leader only): keeps every app at its desired instance count.
//!
//! Each pass diffs desired and actual instances over a copy of the state and commits what
//! to change in at most two batches: forget instances that stopped for good, mark those on
//! unreachable agents, decommission surplus and unhealthy ones, and place missing ones with
//! `domain::place` over the agents that are alive. Passes run when the state changes and
//! twice a second; a pass with nothing to do writes nothing.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::kill::{Condition as KillCondition, KillCandidate, select_to_kill};
use domain::placement::{ExistingInstance, Snapshot, place};
use domain::resources::to_millis;
use domain::{Agent, AgentId, AppDefinition, AppId};
use state::{
    AgentState, ClusterState, Command, Condition, Decided, Goal, GoalChange, Instance, InstanceId,
};

use crate::clock;
use crate::deployments;
use crate::events::Event;
use crate::eviction;
use crate::leadership::{LeaderService, ServiceFuture};
use crate::node::Master;

/// Why an app's instances are not all placed, as the last pass saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// Instances wanted but not placed.
    pub unplaced: u32,
    /// Agents ruled out, per reason.
    pub reasons: BTreeMap<String, u32>,
    /// Launches of the app are delayed until then (ms since the epoch), after failures.
    pub delayed_until_ms: Option<u64>,
    /// Deciding about the app failed in the last pass: why (a bug; nothing was changed).
    pub error: Option<String>,
}

/// The apps waiting for placement (leader's memory).
#[derive(Debug, Default)]
pub struct Queue {
    entries: Mutex<BTreeMap<AppId, QueueEntry>>,
}

impl Queue {
    /// The current entries.
    pub fn entries(&self) -> BTreeMap<AppId, QueueEntry> {
        self.entries.lock().map(|e| e.clone()).unwrap_or_default()
    }

    fn replace(&self, entries: BTreeMap<AppId, QueueEntry>) {
        if let Ok(mut e) = self.entries.lock() {
            *e = entries;
        }
    }
}

/// The scheduler as a leader-only service.
pub struct Scheduler;

impl LeaderService for Scheduler {
    fn name(&self) -> &'static str {
        "scheduler"
    }

    fn run(&self, master: Arc<Master>, term: u64) -> ServiceFuture {
        Box::pin(async move {
            // A new leader has every committed entry in its log, but maybe not yet applied:
            // plan only from a state that includes everything committed before this term.
            while master.linearizable().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut metrics = master.raft.metrics();
            loop {
                // API changes made of several writes (an app and its deployment, tasks and
                // their app's count) hold the same lock: a pass never sees half of one.
                let failed = {
                    let _serial = master.write_lock.lock().await;
                    // A bug outside any one app's part (those are contained in `plan`)
                    // costs this pass, never the scheduler or the process.
                    let plan = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        master.state.read(|a| plan(&master, &a.state, term))
                    }));
                    match plan {
                        Ok(plan) => {
                            master.queue.replace(plan.queue.clone());
                            commit(&master, plan)
                                .await
                                .err()
                                .map(|e| format!("{:?}", e.body))
                        }
                        Err(panic) => Some(format!(
                            "the pass failed: {}",
                            panic_message(panic.as_ref())
                        )),
                    }
                };
                if let Some(e) = failed {
                    tracing::warn!(error = %e, "scheduler could not commit its changes");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                let _ = tokio::time::timeout(Duration::from_millis(500), metrics.changed()).await;
            }
        })
    }
}

/// At most this many instances are placed in one pass (the rest in the next ones), so a
/// pass's work and its log entries stay bounded whatever the apps ask for.
pub const MAX_LAUNCHES_PER_PASS: usize = 1000;

/// The queue's reason for instances left for the next pass by [`MAX_LAUNCHES_PER_PASS`].
pub const REASON_NEXT_PASS: &str =
    "waiting for the next scheduler pass (at most 1000 launches per pass)";

/// At most this many instances are changed by each kind of intent in one pass (the rest in
/// the next ones), so that one pass's commit stays far below the log's entry size limit.
pub const MAX_CHANGES_PER_PASS: usize = 10_000;

/// What one pass decided.
#[derive(Debug, Default)]
struct Plan {
    place: Vec<Instance>,
    goals: Vec<GoalChange>,
    unreachable: Vec<Decided>,
    forget: Vec<Decided>,
    backoff: Vec<(AppId, u64, u64)>,
    clear_backoff: Vec<AppId>,
    queue: BTreeMap<AppId, QueueEntry>,
    finished: Vec<state::Deployment>,
    /// When the pass decided, ms since the Unix epoch.
    now: u64,
}

impl Plan {
    /// Adds what one app's part of the pass decided.
    fn absorb(&mut self, part: Plan) {
        self.place.extend(part.place);
        self.goals.extend(part.goals);
        self.unreachable.extend(part.unreachable);
        self.forget.extend(part.forget);
        self.backoff.extend(part.backoff);
        self.clear_backoff.extend(part.clear_backoff);
        self.queue.extend(part.queue);
        self.finished.extend(part.finished);
    }
}

/// Debug builds: the scheduler panics while deciding about the app this names (a test's
/// stand-in for a bug, to show that it stays contained to that app).
pub const FAILPOINT_PANIC_APP: &str = "DROVER_FAILPOINT_PANIC_APP";

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
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
    for d in &plan.finished {
        commands.push(Command::DeleteDeployment { id: d.id.clone() });
    }
    (!commands.is_empty()).then_some(Command::Batch { commands })
}

/// Commits one pass as one log entry, then publishes what it finished.
async fn commit(master: &Master, mut plan: Plan) -> Result<(), crate::error::ApiError> {
    let now = plan.now;
    let Some(batch) = batch(&mut plan, now) else {
        return Ok(());
    };
    let answer = master.write(batch).await?;
    if let state::Response::Batch { responses } = &answer {
        for r in responses {
            if let state::Response::Decided { refused, .. } = r
                && !refused.is_empty()
            {
                tracing::debug!(refused = ?refused, "decisions were stale; the next pass decides again");
            }
        }
    }
    for d in plan.finished {
        let json = deployments::to_json(&d);
        master.events.publish(Event::DeploymentStepSuccess {
            current_step: json["steps"][0].clone(),
            plan: json.clone(),
        });
        master.events.publish(Event::DeploymentSuccess {
            id: d.id.clone(),
            plan: json,
        });
    }
    Ok(())
}

/// The kill candidates for a set of instances.
fn kill_candidates(master: &Master, instances: &[&Instance]) -> Vec<KillCandidate> {
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
            healthy: master.agents.health(&i.id).map(|h| h.healthy),
            started_at: i.started_at_ms.unwrap_or(i.created_at_ms),
        })
        .collect()
}

/// One step of a rolling replacement, Marathon's arithmetic: keep at least
/// `ceil(n × minimumHealthCapacity)` ready instances and at most
/// `floor(n × (1 + maximumOverCapacity))` in all. Old instances that are not ready go
/// first (they cost no capacity); ready ones as far as the minimum allows. When neither a
/// kill nor a launch fits and nothing new is pending, one old instance goes, so the
/// deployment always progresses (Marathon does the same).
fn rolling<'a>(
    app: &AppDefinition,
    active: &[&'a Instance],
    old: &[&'a Instance],
    new_count: usize,
    ready: &dyn Fn(&Instance) -> bool,
    unknown: &dyn Fn(&Instance) -> bool,
) -> (Vec<&'a Instance>, usize, bool) {
    let wanted = app.instances as usize;
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
    let mut launches = wanted
        .saturating_sub(new_count)
        .min(max_total.saturating_sub(remaining));
    let new_pending = active.iter().any(|i| !deployments_old(old, i) && !ready(i));
    if kills.is_empty()
        && launches == 0
        && !new_pending
        && let Some(first) = ready_old.first()
    {
        kills.push(first);
        launches = 0;
    }
    (kills, launches, false)
}

fn deployments_old(old: &[&Instance], i: &Instance) -> bool {
    old.iter().any(|o| o.id == i.id)
}

/// Whether launching `result`'s one instance makes the app's first `GROUP_BY` more even:
/// the value it lands on holds at least two fewer than the fullest value.
fn improves_balance(
    app: &AppDefinition,
    state: &ClusterState,
    local_region: &str,
    staying: &[&Instance],
    agents: &[Agent],
    result: &domain::PlacementResult,
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
    let target = group_by
        .value_of(&agents[p.agent_index], local_region)
        .map(|v| counts.get(v.as_ref()).copied().unwrap_or(0));
    let fullest = counts.values().max().copied().unwrap_or(0);
    target.is_some_and(|t| t + 2 <= fullest)
}

/// An instance id in Marathon's style: `prod_web.instance-<uuid>`.
pub fn new_instance_id(app: &AppId) -> InstanceId {
    let base = app.as_str().trim_start_matches('/').replace('/', "_");
    InstanceId(format!("{base}.instance-{}", uuid::Uuid::new_v4()))
}

/// The resources one instance of a definition takes.
fn footprint(app: &AppDefinition) -> (u64, u64, u64) {
    (to_millis(app.cpus), to_millis(app.mem), to_millis(app.disk))
}

/// The agents that may take work, with what they have free.
pub fn live_agents(state: &ClusterState) -> Vec<Agent> {
    let used = in_use(state);
    state
        .agents()
        .values()
        .filter(|r| r.state == AgentState::Active)
        .map(|r| {
            let mut agent = r.agent.clone();
            if let Some(u) = used.get(&agent.id) {
                let left = |total: f64, taken: u64| {
                    (to_millis(total).saturating_sub(taken)) as f64 / 1000.0
                };
                agent.resources.cpus = left(agent.resources.cpus, u.cpus);
                agent.resources.mem = left(agent.resources.mem, u.mem);
                agent.resources.disk = left(agent.resources.disk, u.disk);
                for p in &u.ports {
                    agent.resources.ports.remove(*p);
                }
            }
            agent
        })
        .collect()
}

/// What an agent's instances that have not ended take.
#[derive(Debug, Default)]
pub struct InUse {
    /// How many instances.
    pub tasks: usize,
    /// CPU shares, in thousandths.
    pub cpus: u64,
    /// Memory, MiB in thousandths.
    pub mem: u64,
    /// Disk, MiB in thousandths.
    pub disk: u64,
    /// Host ports.
    pub ports: Vec<u64>,
}

/// Resources in use per agent, from the instances that have not ended (an instance whose
/// app definition is gone counts its task and ports, its other resources being unknown).
pub fn in_use(state: &ClusterState) -> HashMap<AgentId, InUse> {
    let mut used: HashMap<AgentId, InUse> = HashMap::new();
    for inst in state
        .instances()
        .values()
        .filter(|i| !i.condition.is_terminal())
    {
        let u = used.entry(inst.agent_id.clone()).or_default();
        u.tasks += 1;
        // A stopping instance of a deleted app still holds its ports until its agent has
        // stopped it: never hand them to a new instance meanwhile.
        u.ports.extend(&inst.ports);
        let Some(record) = state.app(&inst.app_id) else {
            continue;
        };
        let app = &record
            .version(&inst.app_version)
            .unwrap_or_else(|| record.current())
            .app;
        let (c, m, d) = footprint(app);
        u.cpus += c;
        u.mem += m;
        u.disk += d;
    }
    used
}

/// One pass: what to change so that every app has its desired instances.
fn plan(master: &Master, state: &ClusterState, term: u64) -> Plan {
    let now = clock::now_ms();
    let mut plan = Plan {
        now,
        ..Plan::default()
    };
    let agent_state = |id: &AgentId| state.agent(id).map(|r| (r.state, r.state_since_ms));
    let protection = eviction::assess(state, master.config.eviction_threshold);
    master
        .eviction
        .observe(&protection, &master.events, master.config.eviction_interval);

    // Instances by app; forget those that stopped for good.
    let mut by_app: BTreeMap<&AppId, Vec<&Instance>> = BTreeMap::new();
    let mut failures: HashMap<&AppId, u32> = HashMap::new();
    for inst in state.instances().values() {
        let on_lost_agent = match agent_state(&inst.agent_id) {
            None | Some((AgentState::Gone, _)) => true,
            // Nobody will report an instance told to stop on an agent that does not answer.
            Some((AgentState::Unreachable, _)) => inst.goal != Goal::Running,
            Some((AgentState::Active, _)) => false,
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

    let agents = live_agents(state);
    let local_region = state
        .local_region()
        .unwrap_or(master.config.domain.region.as_str())
        .to_string();
    // Instances placed in this pass count as used when the next app is placed.
    let mut agents = agents;
    let all_agents: Vec<Agent> = state.agents().values().map(|r| r.agent.clone()).collect();
    let pass = Pass {
        master,
        state,
        term,
        now,
        protection: &protection,
        by_app: &by_app,
        failures: &failures,
        local_region: &local_region,
        all_agents: &all_agents,
    };

    let mut budget = MAX_LAUNCHES_PER_PASS;
    for (app_id, record) in state.apps() {
        // Whatever goes wrong deciding about one app stays with that app: its part of the
        // plan is dropped, the queue says why, and every other app is scheduled as usual.
        let mut part = Plan::default();
        let mut part_budget = budget;
        let decided = std::panic::catch_unwind(AssertUnwindSafe(|| {
            plan_app(
                &pass,
                app_id,
                record,
                &mut agents,
                &mut part,
                &mut part_budget,
            )
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
    // Deployments whose apps are gone are finished too.
    for d in state.deployments().values() {
        if d.affected_apps.iter().all(|a| state.app(a).is_none()) {
            plan.finished.push(d.clone());
        }
    }
    plan
}

/// What every app's part of one pass reads.
struct Pass<'a> {
    master: &'a Master,
    state: &'a ClusterState,
    term: u64,
    now: u64,
    protection: &'a eviction::Assessment,
    by_app: &'a BTreeMap<&'a AppId, Vec<&'a Instance>>,
    failures: &'a HashMap<&'a AppId, u32>,
    local_region: &'a str,
    all_agents: &'a [Agent],
}

/// One app's part of a pass. `agents` carry what earlier apps of the pass placed; at most
/// `budget` instances are placed, and the budget is reduced by what was.
fn plan_app(
    pass: &Pass<'_>,
    app_id: &AppId,
    record: &state::machine::AppRecord,
    agents: &mut [Agent],
    plan: &mut Plan,
    budget: &mut usize,
) {
    let Pass {
        master,
        state,
        term,
        now,
        protection,
        by_app,
        failures,
        local_region,
        all_agents,
    } = *pass;
    let agent_state = |id: &AgentId| state.agent(id).map(|r| (r.state, r.state_since_ms));
    // A fault-injection point for tests of the containment above (debug builds only).
    #[cfg(debug_assertions)]
    if std::env::var(FAILPOINT_PANIC_APP).is_ok_and(|v| v == app_id.as_str()) {
        panic!("failpoint {FAILPOINT_PANIC_APP} for {app_id}");
    }
    let app = &record.current().app;
    let version = &record.current().version;
    let mut active: Vec<&Instance> = Vec::new();
    for inst in by_app.get(app_id).map(Vec::as_slice).unwrap_or(&[]) {
        if inst.goal != Goal::Running {
            continue;
        }
        // On an unreachable agent: Marathon's unreachableStrategy decides when it is
        // replaced (inactive) and when it is forgotten (expunged; its agent kills it if
        // it ever returns, since it is no longer in its assignments).
        if let Some((AgentState::Unreachable, since)) = agent_state(&inst.agent_id) {
            let gone_for = now.saturating_sub(since) as f64 / 1000.0;
            let zone = state
                .agent(&inst.agent_id)
                .and_then(|r| r.agent.zone())
                .unwrap_or("");
            // Mass eviction protection: hold replacements back (see `eviction`). Agents
            // of one failing zone are not all found silent in the same instant: wait a
            // heartbeat interval after an agent is marked, so the scope is judged whole.
            let settling =
                now.saturating_sub(since) < master.config.agent_heartbeat.as_millis() as u64;
            let held = settling
                || protection.cut_off
                || (protection.limits(zone)
                    && !master
                        .eviction
                        .permit(&inst.agent_id, master.config.eviction_interval));
            let (expunge, inactive) = match app.unreachable_strategy {
                _ if held => (false, false),
                domain::app::UnreachableStrategy::Disabled => (false, false),
                domain::app::UnreachableStrategy::Enabled {
                    inactive_after_seconds,
                    expunge_after_seconds,
                } => (
                    gone_for >= expunge_after_seconds,
                    gone_for >= inactive_after_seconds,
                ),
            };
            if expunge {
                plan.forget.push(decided(inst));
                continue;
            }
            if inst.condition != Condition::Unreachable {
                plan.unreachable.push(decided(inst));
            }
            if !inactive {
                active.push(inst);
            }
            continue;
        }
        if master
            .agents
            .health(&inst.id)
            .is_some_and(|h| h.should_kill)
        {
            tracing::info!(instance = %inst.id, "killing unhealthy instance");
            master.events.publish(Event::UnhealthyInstanceKillEvent {
                app_id: app_id.to_string(),
                instance_id: inst.id.clone(),
                task_id: inst.id.clone(),
                version: inst.app_version.clone(),
                reason: "failed health checks".into(),
                host: state
                    .agent(&inst.agent_id)
                    .map(|r| r.agent.hostname.clone()),
            });
            plan.goals.push(decommission(inst));
            continue;
        }
        active.push(inst);
    }

    let wanted = app.instances as usize;
    let ready = |i: &Instance| {
        i.condition == Condition::Running
            && (app.health_checks.is_empty()
                || master.agents.health(&i.id).is_some_and(|h| h.healthy))
    };
    let unknown = |i: &Instance| {
        i.condition == Condition::Running
            && !app.health_checks.is_empty()
            && master.agents.health(&i.id).is_none()
    };
    let old: Vec<&Instance> = active
        .iter()
        .copied()
        .filter(|i| deployments::is_old(state, i))
        .collect();
    let new_count = active.len() - old.len();

    // Done deployments: the app runs its wanted count of current, ready instances.
    if let Some(d) = deployments::of_app(state, app_id)
        && old.is_empty()
        && active.len() == wanted
        && active.iter().all(|i| ready(i))
    {
        plan.finished.push(d.clone());
    }

    // Which instances to stop, and how many to launch, in this pass.
    let (kills, launches, rebalance): (Vec<&Instance>, usize, bool) = if !old.is_empty() {
        rolling(app, &active, &old, new_count, &ready, &unknown)
    } else if active.len() > wanted
        && deployments::of_app(state, app_id).is_none()
        && active.iter().any(|i| {
            matches!(
                i.condition,
                Condition::Scheduled | Condition::Staging | Condition::Starting
            )
        })
    {
        // A rebalancing launch is on its way: stop the surplus once it runs, so the
        // app never has fewer than its wanted instances running.
        (Vec::new(), 0, false)
    } else if active.len() > wanted {
        let victims = select_to_kill(
            app,
            all_agents,
            local_region,
            &kill_candidates(master, &active),
            active.len() - wanted,
        );
        (victims.into_iter().map(|k| active[k]).collect(), 0, false)
    } else if active.len() == wanted
        && wanted > 0
        && active.iter().all(|i| ready(i))
        && deployments::of_app(state, app_id).is_none()
    {
        // Settled: if a GROUP_BY is more than one apart over the values alive (a zone came
        // back), launch one extra where it is emptiest; the surplus is then killed where
        // it is fullest. One at a time, never below the wanted count.
        (Vec::new(), 1, true)
    } else {
        (Vec::new(), wanted - active.len(), false)
    };
    for victim in &kills {
        plan.goals.push(decommission(victim));
    }
    if launches == 0 {
        return;
    }

    // Launch backoff after failures (Marathon's backoffSeconds × backoffFactor^n, capped).
    let failed = failures.get(app_id).copied().unwrap_or(0);
    let backoff = state.backoffs().get(app_id).copied();
    if failed > 0 {
        let base = (app.backoff_seconds * 1000.0) as u64;
        let cap = (app.max_launch_delay_seconds * 1000.0) as u64;
        let delay = match backoff {
            Some(b) => ((b.delay_ms as f64 * app.backoff_factor) as u64).min(cap),
            None => base.min(cap),
        };
        plan.backoff
            .push((app_id.clone(), delay, now.saturating_add(delay)));
        plan.queue.insert(
            app_id.clone(),
            QueueEntry {
                unplaced: launches as u32,
                reasons: BTreeMap::new(),
                delayed_until_ms: Some(now.saturating_add(delay)),
                error: None,
            },
        );
        return;
    }
    if let Some(b) = backoff {
        if now < b.until_ms && !rebalance {
            plan.queue.insert(
                app_id.clone(),
                QueueEntry {
                    unplaced: launches as u32,
                    reasons: BTreeMap::new(),
                    delayed_until_ms: Some(b.until_ms),
                    error: None,
                },
            );
            return;
        }
        if active.len() == wanted && active.iter().all(|i| i.condition == Condition::Running) {
            plan.clear_backoff.push(app_id.clone());
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
    let waiting = launches.saturating_sub(*budget);
    let launches = launches.min(*budget);
    if launches == 0 {
        plan.queue.insert(
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
    let result = place(
        app,
        launches as u32,
        &Snapshot {
            local_region,
            agents,
            existing: &existing,
        },
    );
    if rebalance && !improves_balance(app, state, local_region, &staying, agents, &result) {
        return;
    }
    *budget -= result.placements.len();
    let (cpus, mem, disk) = footprint(app);
    for p in &result.placements {
        let agent = &mut agents[p.agent_index];
        let take = |total: f64, n: u64| (to_millis(total).saturating_sub(n)) as f64 / 1000.0;
        agent.resources.cpus = take(agent.resources.cpus, cpus);
        agent.resources.mem = take(agent.resources.mem, mem);
        agent.resources.disk = take(agent.resources.disk, disk);
        for port in &p.ports {
            agent.resources.ports.remove(*port);
        }
        plan.place.push(Instance {
            id: new_instance_id(app_id),
            app_id: app_id.clone(),
            app_version: version.clone(),
            agent_id: p.agent_id.clone(),
            ports: p.ports.clone(),
            goal: Goal::Running,
            condition: Condition::Scheduled,
            term,
            created_at_ms: now,
            updated_at_ms: now,
            started_at_ms: None,
            reserved: None,
            revision: 0,
        });
    }
    if (result.unplaced > 0 || waiting > 0) && !rebalance {
        let mut reasons = result.reasons;
        if waiting > 0 {
            reasons.insert(REASON_NEXT_PASS.to_string(), 0);
        }
        plan.queue.insert(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_pass_reason_names_the_budget() {
        assert!(REASON_NEXT_PASS.contains(&format!("at most {MAX_LAUNCHES_PER_PASS} launches")));
    }
}
