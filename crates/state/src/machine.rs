//! The cluster state every master holds, and the one function that changes it: [`ClusterState::apply`].
//!
//! Pure: no I/O, no clock, no randomness, so every master that applies the same log reaches the
//! same state. Business-rule refusals come back as [`Response`] values; apply never fails.
//!
//! # The instance life cycle
//!
//! An instance has a **goal** (what the scheduler wants: `running`, `stopped`,
//! `decommissioned`) and a **condition** (what its agent last saw: `scheduled` … `running` …
//! an ended condition). Each is changed only by the one party that is the authority on it, by
//! a command that says what it changes, under these rules:
//!
//! | Command (who)                     | Changes                       | Applied only when |
//! |-----------------------------------|-------------------------------|-------------------|
//! | `PlaceInstances` (scheduler)      | a new instance, `scheduled`   | the id is new, the app exists at the version decided from, the agent is active and has the resources and ports left |
//! | `SetGoals` (scheduler, API kills) | goal                          | the instance is at the revision decided from, has not ended, is not already decommissioned (final), and `running` only while its app exists |
//! | `MarkUnreachable` (scheduler)     | condition → `unreachable`     | at the revision decided from, not ended, its agent is unreachable |
//! | `ForgetInstances` (scheduler)     | removes the record            | at the revision decided from, and ended or its agent is not active |
//! | `ReportInstances` (agent)         | condition, timestamps         | the instance is assigned to that agent and has not ended (ended is final) |
//! | `SetAgentState` unreachable → active (leader) | `unreachable` → `running` | for that agent's instances that were marked unreachable |
//! | `DeleteApp` (API)                 | goal → `decommissioned` for all of the app's instances, in the same apply | the app exists |
//!
//! Ended conditions (`killed`, `failed`, `finished`, `error`, `gone`) are absorbing: no command
//! moves an instance out of one. Every change gives the record a new **revision** (the
//! state's change counter), so a decision made from a copy that has since changed is refused
//! rather than applied over the change, and the next scheduler pass decides again. An
//! agent's **assignment revision** moves only when what that agent must do changes (an
//! instance placed on it, a goal changed, an instance forgotten before it ended): its long
//! poll waits on that, not on every commit. `Batch` applies several commands in one log entry
//! (one scheduler pass is one commit), each under its own rules.
//!
//! `PutInstances` and `RemoveInstances` are stage-1 whole-record writes: they replay from old
//! logs, and nothing proposes them any more.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use domain::resources::to_millis;
use domain::{Agent, AgentId, AppDefinition, AppId, FaultDomain, GroupId};
use serde::{Deserialize, Serialize};

use crate::acl::{AclRefusal, AclState};
use crate::command::{
    AgentState, Command, Condition, Decided, Deployment, Goal, GoalChange, Instance, InstanceId,
    InstanceReport, Reserved, Response, Subject,
};

/// How many versions of an app are kept, current one included (Marathon's `max_versions`).
pub const MAX_APP_VERSIONS: usize = 50;

/// How many HTTP callback URLs may subscribe to events at once: each costs the leader a
/// delivery task and a queue.
pub const MAX_EVENT_SUBSCRIPTIONS: usize = 100;

/// A master as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Master {
    /// Raft node id.
    pub id: u64,
    /// Address of its HTTP API, `host:port`.
    pub addr: String,
    /// Its fault domain, if it has one.
    pub domain: Option<FaultDomain>,
    /// The newest master protocol it speaks, as it last registered (1 for masters released
    /// before protocol versions, whose records have none).
    #[serde(default = "first_master_protocol")]
    pub protocol: u32,
}

/// The master protocol of releases before protocol versions existed.
pub(crate) fn first_master_protocol() -> u32 {
    1
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

/// The format of app definitions in the log and in snapshots that this build writes, and
/// the newest it reads: 1 = Marathon's JSON, read by the stored-definition reader (which
/// applies none of the rules added for new input, so no later tightening of the API's
/// validation makes an old entry unreadable; see `AppDefinition::from_stored_json`).
pub const APP_FORMAT: u32 = 1;

/// The format of the replicated state (snapshots and log) this build writes, and the
/// newest it reads. 1: stage 1 up to the release before versions (snapshots without
/// `format_version`); 2: the same, with `format_version`. A change that older masters would
/// misread takes a new number, and is written only once every master speaks the master
/// protocol that introduced it (see docs/decisions.md, "Rolling upgrades").
pub const FORMAT_VERSION: u32 = 2;

/// The format of snapshots that say none: stage 1 up to the release before versions.
fn first_format() -> u32 {
    1
}

/// Why this build cannot read state in `format`; `None` when it can.
pub fn newer_format(format: u32) -> Option<String> {
    (format > FORMAT_VERSION).then(|| {
        format!(
            "the replicated state is in format {format}, written by a newer drover; this drover reads formats up to {FORMAT_VERSION}: use that release or newer (nothing was changed)"
        )
    })
}

/// The format a [`ClusterState`] is written in: always this build's (a state read from an
/// older format is held, and written again, in this one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
struct Format(u32);

impl Default for Format {
    fn default() -> Self {
        Format(FORMAT_VERSION)
    }
}

/// One stored version of an app.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppVersion {
    /// The version string.
    pub version: String,
    /// The definition at that version.
    pub app: AppDefinition,
    /// The format `app` is stored in ([`APP_FORMAT`]; absent in stage-1 entries, which are
    /// format 1).
    #[serde(default = "app_format")]
    pub format: u32,
}

fn app_format() -> u32 {
    APP_FORMAT
}

impl<'de> Deserialize<'de> for AppVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Stored {
            version: String,
            #[serde(default = "app_format")]
            format: u32,
            app: serde_json::Value,
        }
        let stored = Stored::deserialize(d)?;
        // A newer master may write a format this one cannot read: say so rather than guess.
        if stored.format > APP_FORMAT {
            return Err(serde::de::Error::custom(format!(
                "app version {} is stored in format {}, and this drover reads formats up to {APP_FORMAT}: upgrade this master to the version the others run",
                stored.version, stored.format
            )));
        }
        let app = AppDefinition::from_stored_json(&stored.app).map_err(|e| {
            serde::de::Error::custom(format!("app version {}: {e}", stored.version))
        })?;
        Ok(AppVersion {
            version: stored.version,
            app,
            format: stored.format,
        })
    }
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

/// How many versions of a group are kept, current one included.
pub const MAX_GROUP_VERSIONS: usize = MAX_APP_VERSIONS;

/// One stored version of a group: the group as that change left it, to roll back to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupVersion {
    /// The version string.
    pub version: String,
    /// Marathon's group JSON (apps and groups under it with absolute ids). Read again through
    /// the API's group reader when it is rolled back to, never when state is loaded, so no
    /// later tightening of validation makes a snapshot unreadable.
    pub definition: serde_json::Value,
}

/// An explicit group: one created through `/v2/groups`, with what it depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// What the group depends on (absolute ids), inherited by everything under it.
    pub dependencies: Vec<AppId>,
    /// The version of the last change that touched it.
    pub version: String,
    /// Versions to roll back to, oldest first; at most [`MAX_GROUP_VERSIONS`].
    #[serde(default)]
    pub versions: Vec<GroupVersion>,
}

/// Everything the masters replicate through Raft.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredState")]
pub struct ClusterState {
    /// The format it is written in ([`FORMAT_VERSION`]); read as 1 when absent.
    format_version: Format,
    cluster_id: Option<String>,
    masters: BTreeMap<u64, Master>,
    agents: BTreeMap<AgentId, AgentRecord>,
    apps: BTreeMap<AppId, AppRecord>,
    deployments: BTreeMap<String, Deployment>,
    instances: BTreeMap<InstanceId, Instance>,
    backoffs: BTreeMap<AppId, Backoff>,
    /// Counts every change to an instance record; an instance's revision is the count at
    /// its last change.
    #[serde(default)]
    changes: u64,
    /// Per agent, the change count when its assignments (the instances it must run or stop,
    /// their goals) last changed: what its long poll waits on.
    #[serde(default)]
    assignment_revisions: BTreeMap<AgentId, u64>,
    /// ACL tokens (absent in snapshots written before ACLs).
    #[serde(default)]
    acl: AclState,
    /// HTTP callback URLs subscribed to events (absent in snapshots written before them).
    #[serde(default)]
    event_subscriptions: BTreeSet<String>,
    /// Explicit groups (absent in snapshots written before groups).
    #[serde(default)]
    groups: BTreeMap<GroupId, GroupRecord>,
    /// Join tokens and agent certificates.
    #[serde(default)]
    credentials: Credentials,
    /// Instance ids by agent (derived from `instances`; rebuilt when a snapshot is read).
    #[serde(skip)]
    by_agent: BTreeMap<AgentId, BTreeSet<InstanceId>>,
    /// Instance ids by app (derived likewise).
    #[serde(skip)]
    by_app: BTreeMap<AppId, BTreeSet<InstanceId>>,
}

/// The serialized form of [`ClusterState`], without the derived indexes.
#[derive(Deserialize)]
struct StoredState {
    #[serde(default = "first_format")]
    format_version: u32,
    cluster_id: Option<String>,
    masters: BTreeMap<u64, Master>,
    agents: BTreeMap<AgentId, AgentRecord>,
    apps: BTreeMap<AppId, AppRecord>,
    deployments: BTreeMap<String, Deployment>,
    instances: BTreeMap<InstanceId, Instance>,
    backoffs: BTreeMap<AppId, Backoff>,
    #[serde(default)]
    changes: u64,
    #[serde(default)]
    assignment_revisions: BTreeMap<AgentId, u64>,
    #[serde(default)]
    acl: AclState,
    #[serde(default)]
    event_subscriptions: BTreeSet<String>,
    #[serde(default)]
    groups: BTreeMap<GroupId, GroupRecord>,
    #[serde(default)]
    credentials: Credentials,
}

impl TryFrom<StoredState> for ClusterState {
    type Error = String;

    fn try_from(s: StoredState) -> Result<Self, String> {
        // A newer format may mean something else in the same fields: refused, not misread.
        if let Some(problem) = newer_format(s.format_version) {
            return Err(problem);
        }
        let mut state = ClusterState {
            format_version: Format::default(),
            cluster_id: s.cluster_id,
            masters: s.masters,
            agents: s.agents,
            apps: s.apps,
            deployments: s.deployments,
            instances: s.instances,
            backoffs: s.backoffs,
            changes: s.changes,
            assignment_revisions: s.assignment_revisions,
            acl: s.acl,
            event_subscriptions: s.event_subscriptions,
            groups: s.groups,
            credentials: s.credentials,
            by_agent: BTreeMap::new(),
            by_app: BTreeMap::new(),
        };
        let ids: Vec<(InstanceId, AgentId, AppId)> = state
            .instances
            .values()
            .map(|i| (i.id.clone(), i.agent_id.clone(), i.app_id.clone()))
            .collect();
        for (id, agent, app) in ids {
            state.by_agent.entry(agent).or_default().insert(id.clone());
            state.by_app.entry(app).or_default().insert(id);
        }
        Ok(state)
    }
}

/// What the instances on one agent that have not ended take.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// How many instances.
    pub tasks: usize,
    /// CPU shares, in thousandths.
    pub cpus: u64,
    /// Memory, MiB in thousandths.
    pub mem: u64,
    /// Disk, MiB in thousandths.
    pub disk: u64,
    /// Host ports.
    pub ports: BTreeSet<u64>,
}

/// The resources one instance of a definition takes, in thousandths.
pub fn reserved(app: &AppDefinition) -> Reserved {
    Reserved {
        cpus: to_millis(app.cpus),
        mem: to_millis(app.mem),
        disk: to_millis(app.disk),
    }
}

/// Why master `id`, in `region`, may not be one of the masters of a cluster in
/// `cluster_region`: all masters live in one region (DESIGN.md, fault domains).
pub fn outside_the_region(id: u64, region: &str, cluster_region: &str) -> String {
    format!(
        "master {id} is in region '{region}', but the cluster's masters are in region \
         '{cluster_region}'. All masters must be in one region: fix its --domain or its fault \
         domain detect script"
    )
}

impl ClusterState {
    /// The format this state is written in ([`FORMAT_VERSION`]).
    pub fn format_version(&self) -> u32 {
        self.format_version.0
    }

    /// The cluster id, once `InitCluster` has been applied.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// Masters by Raft node id.
    pub fn masters(&self) -> &BTreeMap<u64, Master> {
        &self.masters
    }

    /// The master protocol every registered master speaks: the lowest newest protocol among
    /// them (`None` before any registered). A command or field a protocol introduced is
    /// written only once this reaches it, so that no master is sent an entry it cannot read
    /// during a rolling upgrade (docs/decisions.md, "Rolling upgrades").
    pub fn masters_protocol(&self) -> Option<u32> {
        self.masters.values().map(|m| m.protocol).min()
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

    /// Explicit groups by id (implicit ones exist by the ids of their apps).
    pub fn groups(&self) -> &BTreeMap<GroupId, GroupRecord> {
        &self.groups
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
        self.by_app
            .get(app)
            .into_iter()
            .flatten()
            .filter_map(|id| self.instances.get(id))
    }

    /// The instances assigned to one agent, in id order.
    pub fn instances_on<'a>(
        &'a self,
        agent: &'a AgentId,
    ) -> impl Iterator<Item = &'a Instance> + 'a {
        self.by_agent
            .get(agent)
            .into_iter()
            .flatten()
            .filter_map(|id| self.instances.get(id))
    }

    /// The revision of an agent's assignments: it changes exactly when an instance is
    /// assigned to the agent, changes goal, or is forgotten before it ended. 0 for an agent
    /// that never had one.
    pub fn assignment_revision(&self, agent: &AgentId) -> u64 {
        self.assignment_revisions.get(agent).copied().unwrap_or(0)
    }

    /// What the instances on `agent` that have not ended take. An instance whose app is gone
    /// counts its task and ports (which it holds until its agent stopped it), its other
    /// resources being unknown.
    pub fn usage(&self, agent: &AgentId) -> Usage {
        let mut used = Usage::default();
        for inst in self.instances_on(agent) {
            self.charge(&mut used, inst);
        }
        used
    }

    /// [`Self::usage`] of every agent that has instances (all of them ended: an empty
    /// usage), in one scan of the instances (what a scheduler pass reads for all agents at
    /// once: no lookup per instance). An agent without instances is absent.
    pub fn usage_by_agent(&self) -> HashMap<&AgentId, Usage> {
        let mut all: HashMap<&AgentId, Usage> = HashMap::new();
        for inst in self.instances.values() {
            self.charge(all.entry(&inst.agent_id).or_default(), inst);
        }
        all
    }

    /// Adds what `inst` takes, unless it has ended, to `used`.
    fn charge(&self, used: &mut Usage, inst: &Instance) {
        if inst.condition.is_terminal() {
            return;
        }
        used.tasks += 1;
        used.ports.extend(&inst.ports);
        if let Some(r) = self.reserved(inst) {
            used.cpus += r.cpus;
            used.mem += r.mem;
            used.disk += r.disk;
        }
    }

    /// What an instance holds on its agent: recorded at placement, or for a stage-1 record,
    /// its app's definition's share (`None` when that app is gone).
    pub fn reserved(&self, inst: &Instance) -> Option<Reserved> {
        inst.reserved
            .or_else(|| self.definition(inst).map(reserved))
    }

    /// The definition an instance runs: its app at its version, or the app's current one if
    /// that version is no longer stored; `None` when the app is gone.
    pub fn definition(&self, inst: &Instance) -> Option<&AppDefinition> {
        let record = self.apps.get(&inst.app_id)?;
        Some(
            &record
                .version(&inst.app_version)
                .unwrap_or_else(|| record.current())
                .app,
        )
    }

    /// The ACL tokens and whether bootstrap happened.
    pub fn acl(&self) -> &AclState {
        &self.acl
    }

    /// The HTTP callback URLs subscribed to events, in URL order.
    pub fn event_subscriptions(&self) -> &BTreeSet<String> {
        &self.event_subscriptions
    }

    /// Join tokens and agent certificates.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Launch backoffs by app.
    pub fn backoffs(&self) -> &BTreeMap<AppId, Backoff> {
        &self.backoffs
    }

    /// Applies one command. Deterministic; refusals are returned, and leave the state unchanged.
    pub fn apply(&mut self, cmd: Command) -> Response {
        match cmd {
            Command::InitCluster { cluster_id } => self.init_cluster(cluster_id),
            Command::PutMaster {
                id,
                addr,
                domain,
                protocol,
            } => self.put_master(Master {
                id,
                addr,
                domain,
                protocol,
            }),
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
            Command::AdvanceDeployment { id, from_step } => self.advance_deployment(&id, from_step),
            Command::PutGroup {
                id,
                dependencies,
                version,
                definition,
            } => self.put_group(id, dependencies, version, definition),
            Command::DeleteGroup { id } => {
                if !self.groups.contains_key(&id) {
                    return not_found(Subject::Group, id);
                }
                self.groups.retain(|g, _| !id.contains(g.as_str()));
                Response::Ok
            }
            Command::PutInstances { instances } => self.put_instances(instances),
            Command::PlaceInstances { instances } => self.place_instances(instances),
            Command::SetGoals { changes, at_ms } => self.set_goals(changes, at_ms),
            Command::MarkUnreachable { instances, at_ms } => {
                self.mark_unreachable(instances, at_ms)
            }
            Command::ForgetInstances { instances } => self.forget_instances(instances),
            Command::ReportInstances { agent_id, reports } => {
                self.report_instances(&agent_id, reports)
            }
            Command::RemoveInstances { ids } => {
                for id in &ids {
                    self.remove_instance(id);
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
            Command::BootstrapAcl { token } => acl_answer(self.acl.bootstrap(token)),
            Command::PutAclToken { token } => acl_answer(self.acl.put(token)),
            Command::RevokeAclToken { accessor_id } => {
                acl_answer(self.acl.revoke(&accessor_id).map(|_| ()))
            }
            Command::Subscribe { callback_url } => self.subscribe(callback_url),
            Command::Unsubscribe { callback_url } => {
                if self.event_subscriptions.remove(&callback_url) {
                    Response::Ok
                } else {
                    not_found(Subject::EventSubscription, callback_url)
                }
            }
            Command::PutJoinToken { token } => self.credentials.put_join_token(token),
            Command::RevokeJoinToken { id } => self.credentials.revoke_join_token(&id),
            Command::PutAgentCertificate {
                agent_id,
                fingerprint,
            } => {
                self.credentials
                    .put_agent_certificate(agent_id, fingerprint);
                Response::Ok
            }
            Command::Batch { commands } => {
                let responses = commands
                    .into_iter()
                    .map(|cmd| match cmd {
                        Command::Batch { .. } => Response::Conflict {
                            message: "a batch cannot hold another batch".into(),
                        },
                        cmd => self.apply(cmd),
                    })
                    .collect();
                Response::Batch { responses }
            }
        }
    }

    /// Adds a callback URL, unless the limit is reached; one already there is left as it is.
    fn subscribe(&mut self, callback_url: String) -> Response {
        if !self.event_subscriptions.contains(&callback_url)
            && self.event_subscriptions.len() >= MAX_EVENT_SUBSCRIPTIONS
        {
            return Response::Conflict {
                message: format!(
                    "{MAX_EVENT_SUBSCRIPTIONS} callback URLs are subscribed already, the most drover serves; unsubscribe one (DELETE /v2/eventSubscriptions?callbackUrl=…) first, or read the event stream (GET /v2/events) instead"
                ),
            };
        }
        self.event_subscriptions.insert(callback_url);
        Response::Ok
    }

    /// Stores an instance record as it now is, with the next revision; `assignment` says
    /// whether what its agent must do changed (see [`ClusterState::assignment_revision`]).
    fn store(&mut self, mut inst: Instance, assignment: bool) {
        self.changes += 1;
        inst.revision = self.changes;
        if assignment {
            self.assignment_revisions
                .insert(inst.agent_id.clone(), self.changes);
        }
        if let Some(old) = self.instances.get(&inst.id)
            && (old.agent_id != inst.agent_id || old.app_id != inst.app_id)
        {
            let old = (old.agent_id.clone(), old.app_id.clone());
            self.unindex(&inst.id, &old.0, &old.1);
        }
        self.by_agent
            .entry(inst.agent_id.clone())
            .or_default()
            .insert(inst.id.clone());
        self.by_app
            .entry(inst.app_id.clone())
            .or_default()
            .insert(inst.id.clone());
        self.instances.insert(inst.id.clone(), inst);
    }

    /// Forgets an instance; its agent's assignments change if it had not ended.
    fn remove_instance(&mut self, id: &InstanceId) {
        let Some(inst) = self.instances.remove(id) else {
            return;
        };
        self.changes += 1;
        if !inst.condition.is_terminal() {
            self.assignment_revisions
                .insert(inst.agent_id.clone(), self.changes);
        }
        self.unindex(id, &inst.agent_id, &inst.app_id);
    }

    fn unindex(&mut self, id: &InstanceId, agent: &AgentId, app: &AppId) {
        if let Some(ids) = self.by_agent.get_mut(agent) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_agent.remove(agent);
            }
        }
        if let Some(ids) = self.by_app.get_mut(app) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_app.remove(app);
            }
        }
    }

    /// The stored instance a decision names, if it is still as the decision saw it.
    fn as_decided(&self, id: &InstanceId, revision: u64) -> Result<&Instance, String> {
        match self.instances.get(id) {
            None => Err("no such instance".into()),
            Some(inst) if inst.revision != revision => Err(format!(
                "changed since the decision (revision {} now, {revision} decided from)",
                inst.revision
            )),
            Some(inst) => Ok(inst),
        }
    }

    fn place_instances(&mut self, instances: Vec<Instance>) -> Response {
        let mut applied = Vec::new();
        let mut refused = Vec::new();
        for mut inst in instances {
            match self.may_place(&inst) {
                Ok(()) => {
                    inst.condition = Condition::Scheduled;
                    inst.started_at_ms = None;
                    inst.reserved = self
                        .apps
                        .get(&inst.app_id)
                        .map(|r| reserved(&r.current().app));
                    applied.push(inst.id.clone());
                    self.store(inst, true);
                }
                Err(why) => refused.push((inst.id, why)),
            }
        }
        Response::Decided { applied, refused }
    }

    /// Why a new instance cannot be placed as decided, if it cannot.
    fn may_place(&self, inst: &Instance) -> Result<(), String> {
        if self.instances.contains_key(&inst.id) {
            return Err("an instance with this id exists".into());
        }
        let Some(record) = self.apps.get(&inst.app_id) else {
            return Err(format!("app {} is gone", inst.app_id));
        };
        if record.current().version != inst.app_version {
            return Err(format!(
                "app {} is now at version {}, not {}",
                inst.app_id,
                record.current().version,
                inst.app_version
            ));
        }
        if inst.goal != Goal::Running {
            return Err("a new instance must have the goal running".into());
        }
        let Some(agent) = self.agents.get(&inst.agent_id) else {
            return Err(format!("agent {} is not registered", inst.agent_id));
        };
        if agent.state != AgentState::Active {
            return Err(format!("agent {} is not active", inst.agent_id));
        }
        let used = self.usage(&inst.agent_id);
        let Reserved {
            cpus: c,
            mem: m,
            disk: d,
        } = reserved(&record.current().app);
        let total = &agent.agent.resources;
        let over = |name: &str, used: u64, want: u64, total: f64| {
            (used + want > to_millis(total)).then(|| {
                format!(
                    "agent {} has not {name} left ({} of {} in use, {} wanted)",
                    inst.agent_id,
                    used as f64 / 1000.0,
                    total,
                    want as f64 / 1000.0
                )
            })
        };
        if let Some(why) = over("cpus", used.cpus, c, total.cpus)
            .or_else(|| over("mem", used.mem, m, total.mem))
            .or_else(|| over("disk", used.disk, d, total.disk))
        {
            return Err(why);
        }
        let mut seen = BTreeSet::new();
        if let Some(p) = inst
            .ports
            .iter()
            .find(|p| used.ports.contains(p) || !seen.insert(**p))
        {
            return Err(format!("port {p} on agent {} is taken", inst.agent_id));
        }
        Ok(())
    }

    fn set_goals(&mut self, changes: Vec<GoalChange>, at_ms: u64) -> Response {
        let mut applied = Vec::new();
        let mut refused = Vec::new();
        for change in changes {
            let id = change.instance_id.clone();
            match self.goal_change(&change) {
                Ok(None) => applied.push(id),
                Ok(Some(mut inst)) => {
                    inst.goal = change.goal;
                    inst.updated_at_ms = at_ms;
                    self.store(inst, true);
                    applied.push(id);
                }
                Err(why) => refused.push((id, why)),
            }
        }
        Response::Decided { applied, refused }
    }

    /// The instance record a goal change applies to (`None` when it already has that goal),
    /// or why the change is refused.
    fn goal_change(&self, change: &GoalChange) -> Result<Option<Instance>, String> {
        let inst = self.as_decided(&change.instance_id, change.revision)?;
        if inst.goal == change.goal {
            return Ok(None);
        }
        if inst.condition.is_terminal() {
            return Err(format!("it has ended ({:?})", inst.condition));
        }
        if inst.goal == Goal::Decommissioned {
            return Err("it is being decommissioned, which is final".into());
        }
        if change.goal == Goal::Running && !self.apps.contains_key(&inst.app_id) {
            return Err(format!("app {} is gone", inst.app_id));
        }
        Ok(Some(inst.clone()))
    }

    fn mark_unreachable(&mut self, instances: Vec<Decided>, at_ms: u64) -> Response {
        let mut applied = Vec::new();
        let mut refused = Vec::new();
        for d in instances {
            let marked = self
                .as_decided(&d.instance_id, d.revision)
                .and_then(|inst| {
                    let agent = self.agents.get(&inst.agent_id).map(|r| r.state);
                    if inst.condition.is_terminal() {
                        Err(format!("it has ended ({:?})", inst.condition))
                    } else if agent != Some(AgentState::Unreachable) {
                        Err(format!("agent {} is not unreachable", inst.agent_id))
                    } else if inst.condition == Condition::Unreachable {
                        Ok(None)
                    } else {
                        Ok(Some(inst.clone()))
                    }
                });
            match marked {
                Ok(None) => applied.push(d.instance_id),
                Ok(Some(mut inst)) => {
                    inst.condition = Condition::Unreachable;
                    inst.updated_at_ms = at_ms;
                    self.store(inst, false);
                    applied.push(d.instance_id);
                }
                Err(why) => refused.push((d.instance_id, why)),
            }
        }
        Response::Decided { applied, refused }
    }

    fn forget_instances(&mut self, instances: Vec<Decided>) -> Response {
        let mut applied = Vec::new();
        let mut refused = Vec::new();
        for d in instances {
            let may = self
                .as_decided(&d.instance_id, d.revision)
                .and_then(|inst| {
                    let agent = self.agents.get(&inst.agent_id).map(|r| r.state);
                    if inst.condition.is_terminal() || agent != Some(AgentState::Active) {
                        Ok(())
                    } else {
                        Err(format!(
                            "it has not ended and agent {} is active",
                            inst.agent_id
                        ))
                    }
                });
            match may {
                Ok(()) => {
                    self.remove_instance(&d.instance_id);
                    applied.push(d.instance_id);
                }
                Err(why) => refused.push((d.instance_id, why)),
            }
        }
        Response::Decided { applied, refused }
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
                    message: outside_the_region(master.id, &domain.region, &other.region),
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
        if state == AgentState::Gone {
            // A removed agent's certificates admit it no more.
            self.credentials.revoke_agent(&agent_id);
        }
        // An agent heard from again after being unreachable: its instances that were not
        // replaced ran on unseen, so they are running again, in the same apply. (A task that
        // ended meanwhile is reported by the agent, whose outbox kept the news.)
        if was == AgentState::Unreachable && state == AgentState::Active {
            let back: Vec<Instance> = self
                .instances_on(&agent_id)
                .filter(|i| i.condition == Condition::Unreachable)
                .cloned()
                .collect();
            for mut inst in back {
                inst.condition = Condition::Running;
                inst.updated_at_ms = at_ms;
                self.store(inst, false);
            }
        }
        Response::Ok
    }

    fn put_app(&mut self, app: AppDefinition, version: String) -> Response {
        let id = app.id.clone();
        let entry = AppVersion {
            version: version.clone(),
            app,
            format: APP_FORMAT,
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
        // then forgets them. Nothing brings one back: a decommissioned goal is final.
        let doomed: Vec<Instance> = self
            .instances_of(&id)
            .filter(|i| i.goal != Goal::Decommissioned)
            .cloned()
            .collect();
        for mut inst in doomed {
            inst.goal = Goal::Decommissioned;
            self.store(inst, true);
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

    fn advance_deployment(&mut self, id: &str, from_step: u32) -> Response {
        let Some(d) = self.deployments.get_mut(id) else {
            return not_found(Subject::Deployment, id);
        };
        if d.current_step != from_step || from_step as usize >= d.steps.len() {
            return Response::Conflict {
                message: format!(
                    "deployment {id} is at step {} of {}, not at step {from_step} with a step after it",
                    d.current_step,
                    d.steps.len()
                ),
            };
        }
        d.current_step += 1;
        Response::Ok
    }

    fn put_group(
        &mut self,
        id: GroupId,
        dependencies: Vec<AppId>,
        version: String,
        definition: Option<serde_json::Value>,
    ) -> Response {
        let record = self.groups.entry(id).or_insert_with(|| GroupRecord {
            dependencies: Vec::new(),
            version: version.clone(),
            versions: Vec::new(),
        });
        record.dependencies = dependencies;
        record.version = version.clone();
        if let Some(definition) = definition {
            record.versions.retain(|v| v.version != version);
            record.versions.push(GroupVersion {
                version,
                definition,
            });
            let excess = record.versions.len().saturating_sub(MAX_GROUP_VERSIONS);
            record.versions.drain(..excess);
        }
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
            self.store(inst, true);
        }
        Response::Ok
    }

    fn report_instances(&mut self, agent: &AgentId, reports: Vec<InstanceReport>) -> Response {
        let mut changed = Vec::new();
        for report in reports {
            let Some(inst) = self.instances.get(&report.instance_id) else {
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
            let mut inst = inst.clone();
            inst.condition = report.condition;
            inst.updated_at_ms = report.at_ms;
            if report.condition == Condition::Running && inst.started_at_ms.is_none() {
                inst.started_at_ms = Some(report.at_ms);
            }
            changed.push((inst.id.clone(), report.condition));
            self.store(inst, false);
        }
        Response::Reported { changed }
    }
}

/// An ACL change's outcome as a response.
fn acl_answer(outcome: Result<(), AclRefusal>) -> Response {
    match outcome {
        Ok(()) => Response::Ok,
        Err(AclRefusal::AlreadyBootstrapped) => Response::Conflict {
            message: "ACL bootstrap has already been done".into(),
        },
        Err(AclRefusal::Taken(id)) => Response::Conflict {
            message: format!("ACL token {id}: its accessor id or secret is taken"),
        },
        Err(AclRefusal::NoSuchToken(id)) => not_found(Subject::AclToken, id),
    }
}

fn not_found(kind: Subject, id: impl ToString) -> Response {
    Response::NotFound {
        kind,
        id: id.to_string(),
    }
}

mod credentials;

pub use credentials::{Credentials, JoinRefusal, JoinTokenRecord};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod interleavings;

#[cfg(test)]
mod properties;
