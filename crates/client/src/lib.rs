//! The request and response types of drover's HTTP API, in one place for the master that
//! serializes them, the CLI that decodes them and the tests that read them.
//!
//! Marathon's v2 endpoints (`/v2/apps`, `/v2/tasks`, `/v2/deployments`, `/v2/queue`,
//! `/v2/info`, `/v2/leader`, the `/v2/events` stream) keep Marathon's field names
//! (camelCase, through serde renames); the Mesos read endpoints (`mesos`) keep Mesos' names;
//! drover's own (`/v1/nodes`, `/v1/cluster/health`, `/v1/plan`) use snake_case. A field the
//! master sends as `null` is an `Option` that serializes as `null`; a field it leaves out is
//! an `Option` skipped when `None`. The JSON fixtures in `tests/wire.rs` are answers of a
//! real master: a type that drifts from the wire fails there.

#![warn(missing_docs)]

pub mod acl;
pub mod apps;
pub mod deployments;
pub mod error;
pub mod events;
pub mod groups;
pub mod health;
pub mod mesos;
pub mod nodes;
pub mod plan;
pub mod queue;
pub mod routing;
pub mod system;
pub mod tasks;

pub use acl::{AclToken, AclTokens, CreatedToken, NewToken};
pub use apps::{
    App, AppEnvelope, AppList, Change, HttpResponse, LifeTime, ReadinessCheckResult, Stats,
    StatsCounts, TaskCounts, TaskStats, TaskStatsByVersion, VersionInfo, Versions,
};
pub use deployments::{
    CurrentAction, Deployment, DeploymentPlan, DeploymentRef, GroupState, Step, StepAction,
};
pub use error::{DecodeError, ErrorBody, ErrorDetail, Refusal, decode};
pub use events::{Event, EventSubscriptions, Stamped};
pub use groups::Group;
pub use health::{Check, ClusterHealth, Status, ZoneHealth};
pub use nodes::{AgentNode, DiskUse, MasterNode, Node, NodeState, Nodes, Used};
pub use plan::{Plan, PlannedInstance};
pub use queue::{Delay, DelayResult, OffersSummary, Queue, QueueItem, RejectReason};
pub use routing::{Routing, RoutingCheck, RoutingPort};
pub use system::{Info, Leader, Message, ProcessHealth};
pub use tasks::{HealthCheckResult, IpAddress, Task, TaskFailure, TaskIds, Tasks};
