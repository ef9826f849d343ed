//! drover's master: a Raft member that serves the Marathon-compatible API.
//!
//! - [`config`]: flags and their checks.
//! - [`node`]: the Raft node ([`RaftNode`]): role, leader, linearizable reads, writes.
//! - [`agents`], [`scheduler`]: the leader's memory ([`agents::AgentView`], the queue and the
//!   eviction guard) and the leader services that use it.
//! - [`events`]: the event bus behind `/v2/events`.
//! - [`callbacks`]: HTTP callback subscribers, to whom the leader POSTs every event.
//! - [`parts`]: the parts put together ([`Parts`]), for the router and the leader services.
//! - [`forward`]: followers forward every request to the leader.
//! - [`api`]: the HTTP API.
//! - [`auth`]: ACL tokens: who calls, and whether their policies allow the request.
//! - [`leadership`]: leader-only services, started on election and stopped on its loss.
//! - [`membership`]: masters joining (learners promoted to voters), removed, cleaned up.
//! - [`startup`]: the checks and steps from flags to a serving master.
//! - [`tls`]: a secure master's CA and certificates, its TLS listener and the guard on
//!   `/internal/*`.
//! - [`vips`]: what an agent serving VIPs may read (routing fields, route-changing events).

pub mod agents;
pub mod api;
pub mod auth;
pub mod callbacks;
pub mod clock;
pub mod config;
pub mod deployments;
pub mod error;
pub mod events;
pub mod forward;
pub mod groups;
pub mod leadership;
pub mod membership;
pub mod metrics;
pub mod node;
pub mod parts;
pub mod peer;
pub mod reports;
pub mod scheduler;
pub mod startup;
pub mod tls;
pub mod vips;

pub use config::{ConfigError, MasterConfig, MembershipConfig, parse_join_masters, parse_masters};
pub use node::RaftNode;
pub use parts::Parts;
pub use startup::{Seams, StartupError, Store, run_secure, run_with};
