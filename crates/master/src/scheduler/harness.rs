//! A test harness for the scheduler, in the manner of Nomad's (`scheduler/testing.go`): a
//! cluster state built by applying commands, observations set by hand, a clock that moves
//! only when told, counted instance ids; [`Harness::decide`] runs [`reconcile`] and
//! [`Harness::commit`] applies its batch to the state as the Raft log would. No processes,
//! no sleeps.

use std::collections::HashMap;

use domain::{Agent, AgentId, AppDefinition, AppId, FaultDomain};
use serde_json::{Value, json};
use state::protocol::{HealthReport, ReadinessReport};
use state::{
    AgentState, ClusterState, Command, Condition, Deployment, Goal, Instance, InstanceId,
    InstanceReport, Response,
};

use super::{CountedIds, Decision, Observations, Policy, reconcile};

/// The local region of every harness cluster.
pub const REGION: &str = "r";

/// A cluster, the leader's observations, its policy and its clock.
pub struct Harness {
    /// The replicated state.
    pub state: ClusterState,
    /// Health and the eviction memory.
    pub obs: Observations,
    /// How the leader decides.
    pub policy: Policy,
    /// Now, ms since the epoch.
    pub now: u64,
    /// Where new instance ids come from.
    pub ids: CountedIds,
    /// What agents reported of their instances' readiness (the leader's memory);
    /// [`Harness::decide`] derives `obs.readiness` from it, as the driver does.
    pub readiness: HashMap<InstanceId, ReadinessReport>,
    agents: u32,
    versions: u64,
}

impl Harness {
    /// An empty cluster with one master in region [`REGION`].
    pub fn new() -> Self {
        let mut state = ClusterState::default();
        state.apply(Command::PutMaster {
            id: 1,
            addr: "127.0.0.1:1".into(),
            domain: Some(FaultDomain::new(REGION, "a")),
            protocol: 2,
        });
        Harness {
            state,
            obs: Observations::default(),
            policy: Policy {
                eviction_threshold: 0.55,
                eviction_interval_ms: 30_000,
                settle_ms: 1_000,
                region: REGION.into(),
                launch_budget: 1_000,
                term: 7,
            },
            now: 1_000_000,
            ids: CountedIds::default(),
            readiness: HashMap::new(),
            agents: 0,
            versions: 0,
        }
    }

    /// Applies a command as the log would.
    pub fn apply(&mut self, command: Command) -> Response {
        self.state.apply(command)
    }

    /// Registers an agent with 8 cpus, 8 GiB, ports 31000–31999, in `zone`.
    pub fn agent(&mut self, id: &str, zone: &str) -> AgentId {
        self.agents += 1;
        let agent = Agent {
            id: AgentId::from(id),
            hostname: format!("{id}.example"),
            ip: format!("10.0.{}.{}", self.agents / 250, self.agents % 250 + 1),
            domain: Some(FaultDomain::new(REGION, zone)),
            resources: domain::Resources {
                cpus: 8.0,
                mem: 8192.0,
                disk: 100_000.0,
                ports: domain::Ranges::single(31000, 31999),
            },
            attributes: Default::default(),
        };
        self.apply(Command::RegisterAgent {
            agent,
            remote: false,
            at_ms: self.now,
        });
        AgentId::from(id)
    }

    /// Registers `n` agents `<zone>-1` … `<zone>-n` in `zone`.
    pub fn zone(&mut self, zone: &str, n: usize) -> Vec<AgentId> {
        (1..=n)
            .map(|i| self.agent(&format!("{zone}-{i}"), zone))
            .collect()
    }

    /// Creates or updates an app from Marathon JSON (`cpus` 1, `mem` 128 unless given);
    /// returns its new version.
    pub fn app(&mut self, definition: Value) -> String {
        let mut definition = definition;
        for (key, default) in [
            ("cmd", json!("sleep 1000")),
            ("cpus", json!(1)),
            ("mem", json!(128)),
        ] {
            if definition.get(key).is_none() {
                definition[key] = default;
            }
        }
        let app = AppDefinition::from_json(&definition).expect("a valid app definition");
        self.versions += 1;
        let version = crate::clock::iso(self.now + self.versions);
        self.apply(Command::PutApp {
            app,
            version: version.clone(),
        });
        version
    }

    /// A deployment of `app` at its current version (`RestartApplication` replaces every
    /// older instance).
    pub fn deploy(&mut self, app: &str, action: &str) -> String {
        let version = self.current(app);
        let id = format!("deployment-{}", self.versions);
        let deployment = Deployment {
            id: id.clone(),
            version,
            affected_apps: vec![app_id(app)],
            steps: vec![state::DeploymentStep {
                actions: vec![state::DeploymentAction {
                    action: serde_json::from_value(json!(action))
                        .unwrap_or_else(|e| panic!("{action} is not an action: {e}")),
                    app: app_id(app),
                }],
            }],
            current_step: 1,
            created_at_ms: self.now,
            group: None,
        };
        self.apply(Command::PutDeployment {
            deployment,
            force: true,
        });
        id
    }

    /// An app's current version.
    pub fn current(&self, app: &str) -> String {
        self.state
            .app(&app_id(app))
            .map(|r| r.current().version.clone())
            .expect("the app exists")
    }

    /// Runs the scheduler once on the current state.
    pub fn decide(&mut self) -> Decision {
        self.obs.readiness = super::health::readiness_observations(&self.state, &self.readiness);
        reconcile(
            &self.state,
            &self.obs,
            &self.policy,
            self.now,
            &mut self.ids,
        )
    }

    /// Commits a decision as the driver does: its batch through the log, then its eviction
    /// memory. Returns the batch's answer.
    pub fn commit(&mut self, decision: &Decision) -> Option<Response> {
        let answer = decision.command.clone().map(|c| self.apply(c));
        self.obs.eviction = decision.eviction.clone();
        answer
    }

    /// Decides and commits once.
    pub fn pass(&mut self) -> Decision {
        let d = self.decide();
        self.commit(&d);
        d
    }

    /// Passes until one has nothing to commit (at most ten).
    pub fn settle(&mut self) {
        for _ in 0..10 {
            if self.pass().command.is_none() {
                return;
            }
        }
        panic!("the scheduler did not settle in ten passes");
    }

    /// The agent of `id` reports it in `condition` now.
    pub fn report(&mut self, id: &InstanceId, condition: Condition) {
        let agent_id = self.state.instances()[id].agent_id.clone();
        self.apply(Command::ReportInstances {
            agent_id,
            reports: vec![InstanceReport {
                instance_id: id.clone(),
                condition,
                at_ms: self.now,
            }],
        });
    }

    /// Every scheduled or starting instance reports running (healthy, and ready if its app
    /// has readiness checks, when `healthy`).
    pub fn start_all(&mut self, healthy: bool) {
        let starting: Vec<InstanceId> = self
            .state
            .instances()
            .values()
            .filter(|i| {
                matches!(
                    i.condition,
                    Condition::Scheduled | Condition::Staging | Condition::Starting
                )
            })
            .filter(|i| {
                self.state
                    .agent(&i.agent_id)
                    .is_some_and(|r| r.state == AgentState::Active)
            })
            .map(|i| i.id.clone())
            .collect();
        for id in starting {
            self.report(&id, Condition::Running);
            if healthy {
                self.health(&id, true, false);
                self.ready(&id, true);
            }
        }
    }

    /// Deploys `n` instances of a fresh app and has them run: passes, starts, settles.
    pub fn running(&mut self, definition: Value) -> Vec<Instance> {
        let id = definition["id"].as_str().expect("an app id").to_string();
        self.app(definition);
        self.pass();
        self.start_all(true);
        self.settle();
        self.live(&id)
    }

    /// Records a health verdict for an instance.
    pub fn health(&mut self, id: &InstanceId, healthy: bool, should_kill: bool) {
        self.obs.health.insert(
            id.clone(),
            HealthReport {
                healthy,
                consecutive_failures: u32::from(!healthy),
                last_failure_cause: None,
                checked_at_ms: self.now,
                should_kill,
            },
        );
    }

    /// Records an instance's readiness as its agent reports it.
    pub fn ready(&mut self, id: &InstanceId, ready: bool) {
        self.readiness.insert(
            id.clone(),
            ReadinessReport {
                ready,
                checks: Vec::new(),
            },
        );
    }

    /// The leader marks the agent unreachable now.
    pub fn lose(&mut self, agent: &AgentId) {
        self.set_agent(agent, AgentState::Unreachable);
    }

    /// The agent is back.
    pub fn back(&mut self, agent: &AgentId) {
        self.set_agent(agent, AgentState::Active);
    }

    fn set_agent(&mut self, agent: &AgentId, state: AgentState) {
        self.apply(Command::SetAgentState {
            agent_id: agent.clone(),
            state,
            at_ms: self.now,
        });
    }

    /// Moves the clock.
    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
    }

    /// An app's instances that have not ended and should run.
    pub fn live(&self, app: &str) -> Vec<Instance> {
        self.state
            .instances_of(&app_id(app))
            .filter(|i| i.goal == Goal::Running && !i.condition.is_terminal())
            .cloned()
            .collect()
    }

    /// How many of an app's live instances are in each zone.
    pub fn per_zone(&self, app: &str) -> std::collections::BTreeMap<String, usize> {
        let mut per = std::collections::BTreeMap::new();
        for i in self.live(app) {
            let zone = self
                .state
                .agent(&i.agent_id)
                .and_then(|r| r.agent.zone().map(str::to_string))
                .unwrap_or_default();
            *per.entry(zone).or_default() += 1;
        }
        per
    }
}

/// An app id from a literal.
pub fn app_id(id: &str) -> AppId {
    AppId::parse(id).expect("a valid app id")
}

/// The commands of a decision's batch (none without one).
pub fn commands(d: &Decision) -> &[Command] {
    match &d.command {
        Some(Command::Batch { commands }) => commands,
        _ => &[],
    }
}

/// The kinds of command in a decision's batch, in order.
pub fn kinds(d: &Decision) -> Vec<&'static str> {
    commands(d)
        .iter()
        .map(|c| match c {
            Command::ForgetInstances { .. } => "forget",
            Command::SetBackoff { .. } => "backoff",
            Command::ClearBackoff { .. } => "clear-backoff",
            Command::MarkUnreachable { .. } => "mark",
            Command::SetGoals { .. } => "goals",
            Command::PlaceInstances { .. } => "place",
            Command::DeleteDeployment { .. } => "finish-deployment",
            Command::AdvanceDeployment { .. } => "advance-deployment",
            _ => "other",
        })
        .collect()
}

/// The instances a decision places.
pub fn placed(d: &Decision) -> Vec<&Instance> {
    commands(d)
        .iter()
        .flat_map(|c| match c {
            Command::PlaceInstances { instances } => instances.iter().collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// The instances a decision gives a goal, with it.
pub fn goals(d: &Decision) -> Vec<(InstanceId, Goal)> {
    commands(d)
        .iter()
        .flat_map(|c| match c {
            Command::SetGoals { changes, .. } => changes
                .iter()
                .map(|g| (g.instance_id.clone(), g.goal))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// The instances a decision marks unreachable.
pub fn marked(d: &Decision) -> Vec<InstanceId> {
    commands(d)
        .iter()
        .flat_map(|c| match c {
            Command::MarkUnreachable { instances, .. } => {
                instances.iter().map(|i| i.instance_id.clone()).collect()
            }
            _ => Vec::new(),
        })
        .collect()
}

/// The instances a decision forgets.
pub fn forgotten(d: &Decision) -> Vec<InstanceId> {
    commands(d)
        .iter()
        .flat_map(|c| match c {
            Command::ForgetInstances { instances } => {
                instances.iter().map(|i| i.instance_id.clone()).collect()
            }
            _ => Vec::new(),
        })
        .collect()
}

/// The types of a decision's events, in order.
pub fn event_types(d: &Decision) -> Vec<&'static str> {
    d.events.iter().map(|e| e.event_type()).collect()
}

/// The ids of instances.
pub fn ids_of<'a>(instances: impl IntoIterator<Item = &'a Instance>) -> Vec<InstanceId> {
    instances.into_iter().map(|i| i.id.clone()).collect()
}
