//! drover's replicated state: the commands masters agree on through Raft, the cluster state
//! they build, and the storage openraft keeps them in.
//!
//! - [`acl`]: ACL tokens and policies (hashes of secrets only).
//! - [`command`]: [`Command`]s (Raft log entries) and their [`Response`]s.
//! - [`machine`]: [`ClusterState`] and its deterministic `apply`.
//! - [`types`]: openraft's type configuration, [`TypeConfig`].
//! - [`log_store`] / [`mem_log_store`]: the Raft log and vote, in redb or in memory.
//! - [`mem_disk`]: a master's whole store in memory, surviving its restart (simulations).
//! - [`state_machine`]: the state machine around `ClusterState`, with persisted snapshots.
//! - [`network`]: the Raft network over HTTP (client, and the server's request handling).
//! - [`runtime`]: openraft's runtime, and where chance and wall-clock time are drawn from
//!   (seedable, for the simulation).
//! - [`transport`]: the [`transport::Connector`] every internal HTTP client opens
//!   connections with (TCP, or a test's own streams), with TLS over it or not.
//! - [`tls`]: the cluster CA, the certificates it issues, rustls configurations, join tokens.
//!
//! One redb file holds a master's log, vote and current snapshot: [`open`] it.

pub mod acl;
pub mod command;
pub mod error;
pub mod log_store;
pub mod machine;
pub mod mem_disk;
pub mod mem_log_store;
pub mod network;
pub mod protocol;
pub mod runtime;
pub mod state_machine;
pub mod tls;
pub mod transport;
pub mod types;

use std::path::Path;
use std::sync::Arc;

pub use command::{
    ActionKind, AgentState, Command, Condition, Decided, Deployment, DeploymentAction,
    DeploymentStep, Goal, GoalChange, Instance, InstanceId, InstanceReport, Reserved, Response,
    Subject,
};
pub use error::StoreError;
pub use log_store::RedbLogStore;
pub use machine::{ClusterState, Usage, reserved};
pub use mem_disk::MemDisk;
pub use mem_log_store::MemLogStore;
pub use state_machine::{Applied, StateMachineStore, StateReader};
pub use types::{NodeId, TypeConfig};

/// Opens (or creates) the redb file at `path` and returns its log store and state machine,
/// the state restored from the last snapshot in it.
///
/// The file is checked for integrity on open, so a damaged file is refused with an error
/// rather than trusted. A file is opened by one store at a time: after `Raft::shutdown`,
/// openraft's tasks may hold it for a moment longer, so an in-process reopen may need a retry.
pub async fn open(path: &Path) -> Result<(RedbLogStore, StateMachineStore), StoreError> {
    let owned = path.to_path_buf();
    let db = error::blocking(move || {
        let db = redb::Database::builder()
            .set_check_integrity_on_open(true)
            .create(&owned)
            .map_err(|source| StoreError::Open {
                path: owned.clone(),
                source,
            })?;
        // Create every table up front, so readers never meet a missing one.
        let txn = db.begin_write()?;
        txn.open_table(log_store::LOG)?;
        txn.open_table(log_store::META)?;
        txn.open_table(state_machine::SNAPSHOT)?;
        txn.commit()?;
        Ok(db)
    })
    .await?;
    let db = Arc::new(db);
    let sm = StateMachineStore::open_redb(db.clone()).await?;
    Ok((RedbLogStore::new(db), sm))
}
