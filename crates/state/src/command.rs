//! Commands that change the replicated cluster state, and the responses applying them gives.
//!
//! A command is the unit of a Raft log entry. Applying it must be deterministic on every
//! master: no clocks, no randomness, no I/O. Timestamps, versions and ids are chosen by the
//! leader before it proposes a command and travel inside it.

use domain::{Agent, AgentId, AppDefinition, AppId, FaultDomain, GroupId};
use serde::{Deserialize, Serialize};

use crate::acl::AclToken;

/// A change to the cluster state; the application data of a Raft log entry.
#[expect(
    clippy::large_enum_variant,
    reason = "a command lives briefly in one log entry; boxing apps and agents buys nothing"
)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Fixes the cluster id; the first one committed wins.
    InitCluster {
        /// The id, chosen by the master that bootstraps the cluster.
        cluster_id: String,
    },
    /// Adds or updates a master's address and fault domain.
    PutMaster {
        /// The master's Raft node id.
        id: u64,
        /// Address its HTTP API listens on, `host:port`.
        addr: String,
        /// The master's fault domain, if it has one.
        domain: Option<FaultDomain>,
        /// The newest master protocol it speaks (absent in commands of masters released
        /// before protocol versions: 1).
        #[serde(default = "crate::machine::first_master_protocol")]
        protocol: u32,
    },
    /// Removes a master from the registry (its Raft membership changes separately).
    RemoveMaster {
        /// The master's Raft node id.
        id: u64,
    },
    /// Registers an agent, or re-registers one the registry already knows.
    RegisterAgent {
        /// The agent as it describes itself.
        agent: Agent,
        /// True when the agent is outside the local region.
        remote: bool,
        /// When the leader accepted the registration, ms since the Unix epoch.
        at_ms: u64,
    },
    /// Changes an agent's liveness state.
    SetAgentState {
        /// The agent.
        agent_id: AgentId,
        /// Its new state.
        state: AgentState,
        /// When the leader decided it, ms since the Unix epoch.
        at_ms: u64,
    },
    /// Creates or replaces an app definition; the previous one stays in its version history.
    PutApp {
        /// The new definition.
        app: AppDefinition,
        /// Its version, Marathon style (an ISO-8601 timestamp chosen by the leader).
        version: String,
    },
    /// Deletes an app and its backoff; its instances are marked for decommissioning.
    DeleteApp {
        /// The app.
        id: AppId,
    },
    /// Creates or replaces a deployment.
    PutDeployment {
        /// The deployment.
        deployment: Deployment,
        /// Cancel (remove) other deployments that touch the same apps instead of refusing.
        force: bool,
    },
    /// Removes a deployment (finished or cancelled).
    DeleteDeployment {
        /// The deployment's id.
        id: String,
    },
    /// Moves a deployment from step `from_step` to the next one (steps count from 1);
    /// refused when it is no longer at `from_step`.
    AdvanceDeployment {
        /// The deployment's id.
        id: String,
        /// The step that finished, as the scheduler saw it.
        from_step: u32,
    },
    /// Creates or updates an explicit group (one created through `/v2/groups`; implicit
    /// groups exist by the ids of their apps and are never stored).
    PutGroup {
        /// The group.
        id: GroupId,
        /// What it depends on (absolute ids), inherited by everything under it.
        dependencies: Vec<AppId>,
        /// The version of the change.
        version: String,
        /// The group as the change left it (Marathon's group JSON), kept as a version to
        /// roll back to; `None` for the groups under the one a change named.
        definition: Option<serde_json::Value>,
    },
    /// Forgets an explicit group and every explicit group under it (their apps are deleted
    /// by their own commands).
    DeleteGroup {
        /// The group.
        id: GroupId,
    },
    /// Stage-1 entries: whole instance records. Kept only so that a log written by drover 0.1
    /// replays; no master proposes it any more (see [`Command::PlaceInstances`] and the other
    /// intents), and [`Command::is_legacy`] says so.
    PutInstances {
        /// The instances in their new form.
        instances: Vec<Instance>,
    },
    /// The scheduler places new instances. Each is refused on its own (and named in the
    /// response) when its id exists, its app is gone or no longer at the version it was
    /// decided from, its agent is not active, or the agent has not the resources or ports left.
    PlaceInstances {
        /// The new instances, condition `Scheduled`.
        instances: Vec<Instance>,
    },
    /// The scheduler changes what instances should do. Each change names the instance
    /// revision it was decided from and is refused when the instance changed since.
    SetGoals {
        /// The changes.
        changes: Vec<GoalChange>,
        /// When the leader decided them, ms since the Unix epoch.
        at_ms: u64,
    },
    /// The scheduler marks instances of unreachable agents unreachable (refused for an
    /// instance whose agent is active again, or that changed since the decision).
    MarkUnreachable {
        /// The instances, with the revisions they were decided from.
        instances: Vec<Decided>,
        /// When the leader decided it, ms since the Unix epoch.
        at_ms: u64,
    },
    /// The scheduler forgets instances: ended ones, and those of agents gone or unreachable
    /// past the app's expunge time. Refused for an instance that changed since the decision,
    /// and for a live instance on an active agent.
    ForgetInstances {
        /// The instances, with the revisions they were decided from.
        instances: Vec<Decided>,
    },
    /// What an agent reports of its own instances. Applied under the life-cycle rules: only
    /// instances assigned to that agent change, only their condition and timestamps, and
    /// never out of a terminal condition (see [`crate::machine`]).
    ReportInstances {
        /// The reporting agent.
        agent_id: AgentId,
        /// The reports, oldest first.
        reports: Vec<InstanceReport>,
    },
    /// Stage-1 entries (see [`Command::PutInstances`]); replaced by [`Command::ForgetInstances`].
    RemoveInstances {
        /// The instances' ids.
        ids: Vec<InstanceId>,
    },
    /// Delays the next launches of an app after failures.
    SetBackoff {
        /// The app.
        app_id: AppId,
        /// The current delay, ms.
        delay_ms: u64,
        /// No launch before this time, ms since the Unix epoch.
        until_ms: u64,
    },
    /// Clears an app's launch backoff (after a successful run or a new version).
    ClearBackoff {
        /// The app.
        app_id: AppId,
    },
    /// Creates the first management token; refused once bootstrap has happened.
    BootstrapAcl {
        /// The token (its secret's hash only).
        token: AclToken,
    },
    /// Creates an ACL token; refused when its accessor id or secret is taken.
    PutAclToken {
        /// The token (its secret's hash only).
        token: AclToken,
    },
    /// Revokes an ACL token: it stops working where this is applied.
    RevokeAclToken {
        /// The token's accessor id.
        accessor_id: String,
    },
    /// Registers an HTTP callback URL for events (Marathon's `POST /v2/eventSubscriptions`);
    /// registering one that is there already changes nothing. Refused past
    /// [`crate::machine::MAX_EVENT_SUBSCRIPTIONS`].
    Subscribe {
        /// The URL events are POSTed to, as the API validated it.
        callback_url: String,
    },
    /// Removes an HTTP callback URL (Marathon's `DELETE /v2/eventSubscriptions`).
    Unsubscribe {
        /// The URL, as it was registered.
        callback_url: String,
    },
    /// Adds a join token (its secret's hash only); an id that exists is refused.
    PutJoinToken {
        /// The token as the state keeps it.
        token: crate::machine::JoinTokenRecord,
    },
    /// Revokes a join token: it admits no one from now on.
    RevokeJoinToken {
        /// The token's id.
        id: String,
    },
    /// Records a certificate issued to an agent, so removing the agent can revoke it.
    PutAgentCertificate {
        /// The agent.
        agent_id: AgentId,
        /// SHA-256 of the certificate's DER, hex.
        fingerprint: String,
    },
    /// Several commands applied in order in one log entry, so that one scheduler pass, or an
    /// app with its deployment, is one commit. Each command is applied under its own rules
    /// and answered in [`Response::Batch`]; a batch inside a batch is refused.
    Batch {
        /// The commands, in order.
        commands: Vec<Command>,
    },
}

impl Command {
    /// True for the stage-1 whole-record instance writes, which replay but are never proposed.
    pub fn is_legacy(&self) -> bool {
        match self {
            Command::PutInstances { .. } | Command::RemoveInstances { .. } => true,
            Command::Batch { commands } => commands.iter().any(Command::is_legacy),
            _ => false,
        }
    }
}

/// One instance as a decision saw it: its id and the revision the decision was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decided {
    /// The instance.
    pub instance_id: InstanceId,
    /// Its revision when the decision was made.
    pub revision: u64,
}

/// A new goal for one instance, decided from one revision of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoalChange {
    /// The instance.
    pub instance_id: InstanceId,
    /// Its revision when the decision was made.
    pub revision: u64,
    /// What it should do now.
    pub goal: Goal,
}

/// One condition an agent reports for one of its instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceReport {
    /// The instance.
    pub instance_id: InstanceId,
    /// Its condition, as the agent saw it.
    pub condition: Condition,
    /// When the agent saw it, ms since the Unix epoch.
    pub at_ms: u64,
}

/// What applying a command gave; business-rule refusals are data, never storage errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// Applied; nothing more to say.
    Ok,
    /// The cluster id in force after `InitCluster`.
    ClusterId {
        /// The id.
        cluster_id: String,
    },
    /// An app version was stored by `PutApp`.
    AppVersion {
        /// The app.
        id: AppId,
        /// The version now current.
        version: String,
        /// True when the app did not exist before.
        created: bool,
    },
    /// The command names something the state does not have.
    NotFound {
        /// What kind of thing.
        kind: Subject,
        /// Its id.
        id: String,
    },
    /// The instances an agent's reports changed, in the order they were reported (an
    /// instance changed twice is listed twice); the rest were stale or not the agent's.
    Reported {
        /// The instances changed, with the condition each took.
        changed: Vec<(InstanceId, Condition)>,
    },
    /// What a scheduler intent did: the instances it changed, and those it refused, each
    /// with why (stale decisions are expected under concurrency: the next pass decides again).
    Decided {
        /// The instances changed.
        applied: Vec<InstanceId>,
        /// The instances refused, with the reason.
        refused: Vec<(InstanceId, String)>,
    },
    /// The responses of a [`Command::Batch`], in order.
    Batch {
        /// One response per command.
        responses: Vec<Response>,
    },
    /// The command contradicts the state; nothing was changed.
    Conflict {
        /// What contradicts what, for people.
        message: String,
    },
}

/// The kinds of thing a command can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// A master.
    Master,
    /// An agent.
    Agent,
    /// An app.
    App,
    /// A deployment.
    Deployment,
    /// An instance.
    Instance,
    /// An ACL token.
    AclToken,
    /// An event subscription (a callback URL).
    EventSubscription,
    /// A group.
    Group,
    /// A join token.
    JoinToken,
}

/// An agent's liveness as the leader decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Registered and heartbeating.
    Active,
    /// No heartbeat for longer than the unreachable timeout.
    Unreachable,
    /// Decommissioned or replaced; its address may be reused.
    Gone,
}

/// A deployment: a plan of steps that moves apps to their new definitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// Marathon-style deployment id (a UUID chosen by the leader).
    pub id: String,
    /// The version of the change that started it.
    pub version: String,
    /// Apps the deployment changes; an app is locked by at most one deployment.
    pub affected_apps: Vec<AppId>,
    /// The steps, in order (Marathon's JSON shape when serialized).
    pub steps: Vec<DeploymentStep>,
    /// Index of the step in progress, from 0.
    pub current_step: u32,
    /// When the leader created it, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// The group a `/v2/groups` change deploys (absent for app changes, and in deployments
    /// stored before groups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupId>,
}

/// One step of a deployment: actions that run together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentStep {
    /// The actions.
    pub actions: Vec<DeploymentAction>,
}

/// One action of a step: what happens to which app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentAction {
    /// What happens.
    pub action: ActionKind,
    /// To which app.
    pub app: AppId,
}

/// What a deployment action does (Marathon's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionKind {
    /// A new app.
    StartApplication,
    /// Only the instance count changed.
    ScaleApplication,
    /// The definition changed, or a restart was asked for: every instance is replaced.
    RestartApplication,
    /// The app is being removed.
    StopApplication,
}

/// An instance's id, Marathon style: `<app path with dots>.instance-<uuid>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstanceId(pub String);

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for InstanceId {
    fn from(s: &str) -> Self {
        InstanceId(s.to_string())
    }
}

/// One placed copy of an app: where it runs, what it should do, and what it last did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Stable id.
    pub id: InstanceId,
    /// The app it is a copy of.
    pub app_id: AppId,
    /// The app version it runs.
    pub app_version: String,
    /// The agent it is assigned to.
    pub agent_id: AgentId,
    /// Host ports assigned to it.
    pub ports: Vec<u64>,
    /// What the scheduler wants of it.
    pub goal: Goal,
    /// What its agent last reported.
    pub condition: Condition,
    /// Raft term of the leader that assigned it; agents ignore lower terms.
    pub term: u64,
    /// When it was assigned, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// When its condition last changed, ms since the Unix epoch.
    pub updated_at_ms: u64,
    /// When it was first reported running, ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<u64>,
    /// What it holds on its agent until it ends, recorded when it is placed (so that an
    /// instance of a deleted or changed app keeps its share until its agent stopped it).
    /// `None` in stage-1 records, whose share is read from their app's definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<Reserved>,
    /// Changes each time the record changes (the state's change counter at that moment);
    /// decisions name the revision they were made from. 0 in stage-1 records until changed.
    #[serde(default)]
    pub revision: u64,
}

/// The resources an instance holds, in thousandths (see `domain::resources::to_millis`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserved {
    /// CPU shares.
    pub cpus: u64,
    /// Memory, MiB.
    pub mem: u64,
    /// Disk, MiB.
    pub disk: u64,
}

/// What the scheduler wants an instance to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// Keep it running.
    Running,
    /// Stop it, but keep the record (e.g. a suspended app).
    Stopped,
    /// Stop it and forget it once it has stopped.
    Decommissioned,
}

/// An instance's last known condition, after Marathon's conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Assigned by the leader, not yet picked up by its agent.
    Scheduled,
    /// The agent is preparing it (fetching, creating the sandbox).
    Staging,
    /// The process or container is starting.
    Starting,
    /// Running.
    Running,
    /// Being stopped.
    Killing,
    /// Stopped on request.
    Killed,
    /// Exited with a failure.
    Failed,
    /// Exited successfully.
    Finished,
    /// Could not be started at all.
    Error,
    /// Its agent is unreachable; the instance may still be running.
    Unreachable,
    /// Its agent is gone; the instance is lost.
    Gone,
}

impl Condition {
    /// True when the instance has stopped for good and needs no more attention from its agent.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Condition::Killed
                | Condition::Failed
                | Condition::Finished
                | Condition::Error
                | Condition::Gone
        )
    }

    /// True while its task may be serving: launched on its agent and not known to have
    /// ended or to be out of reach (`Staging`, `Starting`, `Running`).
    pub fn is_live(self) -> bool {
        matches!(
            self,
            Condition::Staging | Condition::Starting | Condition::Running
        )
    }
}
