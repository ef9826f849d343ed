//! drover's master: a Raft member that serves the Marathon-compatible API.
//!
//! - [`config`]: flags and their checks.
//! - [`node`]: the running master ([`Master`]): role, leader, linearizable reads, writes.
//! - [`forward`]: followers forward every request to the leader.
//! - [`api`]: the HTTP API.
//! - [`leadership`]: leader-only services, started on election and stopped on its loss.
//! - [`startup`]: the checks and steps from flags to a serving master.

pub mod agents;
pub mod api;
pub mod clock;
pub mod config;
pub mod deployments;
pub mod error;
pub mod events;
pub mod forward;
pub mod leadership;
pub mod metrics;
pub mod node;
pub mod peer;
pub mod scheduler;
pub mod startup;

pub use config::{ConfigError, MasterConfig, parse_masters};
pub use node::Master;
pub use startup::{StartupError, run};
