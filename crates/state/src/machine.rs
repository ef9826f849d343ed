//! The cluster state every master holds, and the one function that changes it: [`ClusterState::apply`].
//!
//! Pure: no I/O, no clock, no randomness, so every master that applies the same log reaches the
//! same state. Business-rule refusals come back as [`Response`] values; apply never fails.

use std::collections::BTreeMap;

use domain::{Agent, AgentId, AppDefinition, AppId, FaultDomain};
use serde::{Deserialize, Serialize};

use crate::command::{
    AgentState, Command, Condition, Deployment, Goal, Instance, InstanceId, InstanceReport,
    Response, Subject,
};

/// How many versions of an app are kept, current one included (Marathon's `max_versions`).
pub const MAX_APP_VERSIONS: usize = 50;

/// A master as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Master {
    /// Raft node id.
    pub id: u64,
    /// Address of its HTTP API, `host:port`.
    pub addr: String,
    /// Its fault domain, if it has one.
    pub domain: Option<FaultDomain>,
}

/// An agent in the registry, with the state the leader decided for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// The agent as it registered.
    pub agent: Agent,
    /// True when it is outside the local region.
    pub remote: bool,
    /// Its liveness state.
    pub state: AgentState,
    /// When it first registered, ms since the Unix epoch.
    pub registered_at_ms: u64,
    /// When it last (re-)registered, ms since the Unix epoch.
    pub last_registered_at_ms: u64,
    /// When `state` last changed, ms since the Unix epoch.
    pub state_since_ms: u64,
}

/// One stored version of an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppVersion {
    /// The version string.
    pub version: String,
    /// The definition at that version.
    pub app: AppDefinition,
}

/// An app: its current version and the versions before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppRecord {
    current: AppVersion,
    /// Older versions, oldest first; at most `MAX_APP_VERSIONS - 1`.
    previous: Vec<AppVersion>,
}

impl AppRecord {
    /// The current version.
    pub fn current(&self) -> &AppVersion {
        &self.current
    }

    /// Every stored version, oldest first, the current one last.
    pub fn versions(&self) -> impl DoubleEndedIterator<Item = &AppVersion> {
        self.previous.iter().chain(std::iter::once(&self.current))
    }

    /// The definition at `version`, if it is still stored.
    pub fn version(&self, version: &str) -> Option<&AppVersion> {
        self.versions().find(|v| v.version == version)
    }

    fn push(&mut self, v: AppVersion) {
        if v.version == self.current.version {
            self.current = v;
            return;
        }
        self.previous.retain(|old| old.version != v.version);
        let old = std::mem::replace(&mut self.current, v);
        self.previous.push(old);
        let excess = self.previous.len().saturating_sub(MAX_APP_VERSIONS - 1);
        self.previous.drain(..excess);
    }
}

/// An app's launch backoff after failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    /// The current delay, ms.
    pub delay_ms: u64,
    /// No launch before this time, ms since the Unix epoch.
    pub until_ms: u64,
}

/// Everything the masters replicate through Raft.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    cluster_id: Option<String>,
    masters: BTreeMap<u64, Master>,
    agents: BTreeMap<AgentId, AgentRecord>,
    apps: BTreeMap<AppId, AppRecord>,
    deployments: BTreeMap<String, Deployment>,
    instances: BTreeMap<InstanceId, Instance>,
    backoffs: BTreeMap<AppId, Backoff>,
}

impl ClusterState {
    /// The cluster id, once `InitCluster` has been applied.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// Masters by Raft node id.
    pub fn masters(&self) -> &BTreeMap<u64, Master> {
        &self.masters
    }

    /// The region of the masters, i.e. the local region, if any master has a domain.
    pub fn local_region(&self) -> Option<&str> {
        self.masters
            .values()
            .find_map(|m| m.domain.as_ref().map(|d| d.region.as_str()))
    }

    /// Agents by id.
    pub fn agents(&self) -> &BTreeMap<AgentId, AgentRecord> {
        &self.agents
    }

    /// One agent.
    pub fn agent(&self, id: &AgentId) -> Option<&AgentRecord> {
        self.agents.get(id)
    }

    /// Apps by id.
    pub fn apps(&self) -> &BTreeMap<AppId, AppRecord> {
        &self.apps
    }

    /// One app with its versions.
    pub fn app(&self, id: &AppId) -> Option<&AppRecord> {
        self.apps.get(id)
    }

    /// Deployments by id.
    pub fn deployments(&self) -> &BTreeMap<String, Deployment> {
        &self.deployments
    }

    /// Instances by id.
    pub fn instances(&self) -> &BTreeMap<InstanceId, Instance> {
        &self.instances
    }

    /// The instances of one app, in id order.
    pub fn instances_of<'a>(&'a self, app: &'a AppId) -> impl Iterator<Item = &'a Instance> + 'a {
        self.instances.values().filter(move |i| &i.app_id == app)
    }

    /// The instances assigned to one agent, in id order.
    pub fn instances_on<'a>(
        &'a self,
        agent: &'a AgentId,
    ) -> impl Iterator<Item = &'a Instance> + 'a {
        self.instances
            .values()
            .filter(move |i| &i.agent_id == agent)
    }

    /// Launch backoffs by app.
    pub fn backoffs(&self) -> &BTreeMap<AppId, Backoff> {
        &self.backoffs
    }

    /// Applies one command. Deterministic; refusals are returned, and leave the state unchanged.
    pub fn apply(&mut self, cmd: Command) -> Response {
        match cmd {
            Command::InitCluster { cluster_id } => self.init_cluster(cluster_id),
            Command::PutMaster { id, addr, domain } => self.put_master(Master { id, addr, domain }),
            Command::RemoveMaster { id } => match self.masters.remove(&id) {
                Some(_) => Response::Ok,
                None => not_found(Subject::Master, id),
            },
            Command::RegisterAgent {
                agent,
                remote,
                at_ms,
            } => self.register_agent(agent, remote, at_ms),
            Command::SetAgentState {
                agent_id,
                state,
                at_ms,
            } => self.set_agent_state(agent_id, state, at_ms),
            Command::PutApp { app, version } => self.put_app(app, version),
            Command::DeleteApp { id } => self.delete_app(id),
            Command::PutDeployment { deployment, force } => self.put_deployment(deployment, force),
            Command::DeleteDeployment { id } => match self.deployments.remove(&id) {
                Some(_) => Response::Ok,
                None => not_found(Subject::Deployment, id),
            },
            Command::PutInstances { instances } => self.put_instances(instances),
            Command::ReportInstances { agent_id, reports } => {
                self.report_instances(&agent_id, reports)
            }
            Command::RemoveInstances { ids } => {
                for id in &ids {
                    self.instances.remove(id);
                }
                Response::Ok
            }
            Command::SetBackoff {
                app_id,
                delay_ms,
                until_ms,
            } => {
                if !self.apps.contains_key(&app_id) {
                    return not_found(Subject::App, app_id);
                }
                self.backoffs.insert(app_id, Backoff { delay_ms, until_ms });
                Response::Ok
            }
            Command::ClearBackoff { app_id } => {
                self.backoffs.remove(&app_id);
                Response::Ok
            }
        }
    }

    fn init_cluster(&mut self, cluster_id: String) -> Response {
        match &self.cluster_id {
            Some(existing) if *existing != cluster_id => Response::Conflict {
                message: format!(
                    "the cluster id is already {existing}; refusing to change it to {cluster_id}"
                ),
            },
            Some(existing) => Response::ClusterId {
                cluster_id: existing.clone(),
            },
            None => {
                self.cluster_id = Some(cluster_id.clone());
                Response::ClusterId { cluster_id }
            }
        }
    }

    fn put_master(&mut self, master: Master) -> Response {
        // All masters must share one region (DESIGN.md, fault domains); the check is made here
        // too so that two masters racing to join cannot both get in.
        if let Some(domain) = &master.domain {
            let other = self
                .masters
                .values()
                .filter(|m| m.id != master.id)
                .find_map(|m| m.domain.as_ref().filter(|d| d.region != domain.region));
            if let Some(other) = other {
                return Response::Conflict {
                    message: format!(
                        "master {} is in region {}, but the cluster's masters are in region {}; \
                         all masters must be in one region",
                        master.id, domain.region, other.region
                    ),
                };
            }
        }
        self.masters.insert(master.id, master);
        Response::Ok
    }

    fn register_agent(&mut self, agent: Agent, remote: bool, at_ms: u64) -> Response {
        let clash = self.agents.values().find(|r| {
            r.agent.id != agent.id && r.state != AgentState::Gone && r.agent.ip == agent.ip
        });
        if let Some(other) = clash {
            return Response::Conflict {
                message: format!(
                    "agent {} cannot register with address {}: live agent {} already has it",
                    agent.id, agent.ip, other.agent.id
                ),
            };
        }
        match self.agents.get_mut(&agent.id) {
            Some(rec) => {
                rec.agent = agent;
                rec.remote = remote;
                rec.last_registered_at_ms = at_ms;
                if rec.state != AgentState::Active {
                    rec.state = AgentState::Active;
                    rec.state_since_ms = at_ms;
                }
            }
            None => {
                self.agents.insert(
                    agent.id.clone(),
                    AgentRecord {
                        agent,
                        remote,
                        state: AgentState::Active,
                        registered_at_ms: at_ms,
                        last_registered_at_ms: at_ms,
                        state_since_ms: at_ms,
                    },
                );
            }
        }
        Response::Ok
    }

    fn set_agent_state(&mut self, agent_id: AgentId, state: AgentState, at_ms: u64) -> Response {
        let Some(rec) = self.agents.get_mut(&agent_id) else {
            return not_found(Subject::Agent, agent_id);
        };
        let was = rec.state;
        if was != state {
            rec.state = state;
            rec.state_since_ms = at_ms;
        }
        // An agent heard from again after being unreachable: its instances that were not
        // replaced ran on unseen, so they are running again, in the same apply. (A task that
        // ended meanwhile is reported by the agent, whose outbox kept the news.)
        if was == AgentState::Unreachable && state == AgentState::Active {
            for inst in self
                .instances
                .values_mut()
                .filter(|i| i.agent_id == agent_id && i.condition == Condition::Unreachable)
            {
                inst.condition = Condition::Running;
                inst.updated_at_ms = at_ms;
            }
        }
        Response::Ok
    }

    fn put_app(&mut self, app: AppDefinition, version: String) -> Response {
        let id = app.id.clone();
        let entry = AppVersion {
            version: version.clone(),
            app,
        };
        let created = match self.apps.get_mut(&id) {
            Some(rec) => {
                if let Some(stored) = rec.version(&version)
                    && stored.app != entry.app
                {
                    return Response::Conflict {
                        message: format!(
                            "app {id} already has a different definition at version {version}"
                        ),
                    };
                }
                rec.push(entry);
                false
            }
            None => {
                self.apps.insert(
                    id.clone(),
                    AppRecord {
                        current: entry,
                        previous: Vec::new(),
                    },
                );
                true
            }
        };
        Response::AppVersion {
            id,
            version,
            created,
        }
    }

    fn delete_app(&mut self, id: AppId) -> Response {
        if self.apps.remove(&id).is_none() {
            return not_found(Subject::App, id);
        }
        self.backoffs.remove(&id);
        // The instances outlive the app until their agents report them stopped; the scheduler
        // then removes them.
        for inst in self.instances.values_mut().filter(|i| i.app_id == id) {
            inst.goal = Goal::Decommissioned;
        }
        Response::Ok
    }

    fn put_deployment(&mut self, deployment: Deployment, force: bool) -> Response {
        let locking: Vec<String> = self
            .deployments
            .values()
            .filter(|d| d.id != deployment.id)
            .filter(|d| {
                d.affected_apps
                    .iter()
                    .any(|a| deployment.affected_apps.contains(a))
            })
            .map(|d| d.id.clone())
            .collect();
        if !locking.is_empty() {
            if !force {
                return Response::Conflict {
                    message: format!(
                        "App is locked by one or more deployments: {}",
                        locking.join(", ")
                    ),
                };
            }
            for id in &locking {
                self.deployments.remove(id);
            }
        }
        self.deployments.insert(deployment.id.clone(), deployment);
        Response::Ok
    }

    fn put_instances(&mut self, instances: Vec<Instance>) -> Response {
        // A new instance must name an app and an agent that exist: the app may have been deleted
        // between the scheduler's decision and this commit. Checked for all before any is stored.
        for inst in &instances {
            if self.instances.contains_key(&inst.id) {
                continue;
            }
            if !self.apps.contains_key(&inst.app_id) {
                return not_found(Subject::App, &inst.app_id);
            }
            if !self.agents.contains_key(&inst.agent_id) {
                return not_found(Subject::Agent, &inst.agent_id);
            }
        }
        for mut inst in instances {
            // The agent is the authority on an instance's condition: a terminal one it
            // reported is final, even against a copy decided before that report committed.
            if let Some(stored) = self.instances.get(&inst.id)
                && stored.condition.is_terminal()
            {
                inst.condition = stored.condition;
                inst.updated_at_ms = stored.updated_at_ms;
                inst.started_at_ms = stored.started_at_ms;
            }
            self.instances.insert(inst.id.clone(), inst);
        }
        Response::Ok
    }

    fn report_instances(&mut self, agent: &AgentId, reports: Vec<InstanceReport>) -> Response {
        let mut changed = Vec::new();
        for report in reports {
            let Some(inst) = self.instances.get_mut(&report.instance_id) else {
                continue;
            };
            // Only the agent an instance is assigned to speaks for it; a terminal condition
            // is final; a report that changes nothing changes no timestamp either.
            if inst.agent_id != *agent
                || inst.condition.is_terminal()
                || inst.condition == report.condition
            {
                continue;
            }
            inst.condition = report.condition;
            inst.updated_at_ms = report.at_ms;
            if report.condition == Condition::Running && inst.started_at_ms.is_none() {
                inst.started_at_ms = Some(report.at_ms);
            }
            changed.push((inst.id.clone(), report.condition));
        }
        Response::Reported { changed }
    }
}

fn not_found(kind: Subject, id: impl ToString) -> Response {
    Response::NotFound {
        kind,
        id: id.to_string(),
    }
}

#[cfg(test)]
mod tests;
