//! A master's storage held in memory that outlives the master: the simulated disk a
//! deterministic simulation gives each master, so a crashed master restarts with its log,
//! vote and last snapshot, as it would from redb, without threads or files.

use std::sync::{Arc, Mutex};

use openraft::storage::RaftLogStorage;

use crate::error::StoreError;
use crate::mem_log_store::MemLogStore;
use crate::state_machine::{MemorySnapshot, StateMachineStore, StateReader};

/// One master's log, vote and current snapshot in memory; clones share them.
#[derive(Debug, Clone, Default)]
pub struct MemDisk {
    log: MemLogStore,
    snapshot: MemorySnapshot,
    /// The applied state of the master that opened this disk last, for a simulation's
    /// invariant checks (a real disk has no such window).
    opened: Arc<Mutex<Option<StateReader>>>,
}

impl MemDisk {
    /// An empty disk (a master's first start).
    pub fn new() -> Self {
        Self::default()
    }

    /// The log store and the state machine over this disk, the state restored from its last
    /// snapshot (openraft re-applies the committed log after it), as [`crate::open`] does for
    /// a redb file.
    pub async fn open(&self) -> Result<(MemLogStore, StateMachineStore), StoreError> {
        self.log.synced_on_open();
        let sm = StateMachineStore::open_memory(self.snapshot.clone()).await?;
        *self
            .opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sm.reader());
        Ok((self.log.clone(), sm))
    }

    /// The log as it is on this disk (what a restart would find).
    pub fn log(&self) -> MemLogStore {
        self.log.clone()
    }

    /// The applied state of the master that opened this disk last (it may have crashed
    /// since: then the state it had).
    pub fn applied(&self) -> Option<StateReader> {
        self.opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether nothing was ever written: no log entry, no vote, no snapshot (what an absent
    /// redb file means to a starting master).
    pub async fn is_empty(&self) -> Result<bool, StoreError> {
        let mut log = self.log.clone();
        let state = log
            .get_log_state()
            .await
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let vote = log
            .read_vote()
            .await
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let snapshot = self
            .snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some();
        Ok(state.last_log_id.is_none() && vote.is_none() && !snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::Vote;

    #[tokio::test]
    async fn a_reopened_disk_keeps_the_vote_it_was_given() {
        let disk = MemDisk::new();
        assert!(disk.is_empty().await.expect("readable"));
        let (mut log, _sm) = disk.open().await.expect("opens");
        log.save_vote(&Vote::new(3, 2)).await.expect("saved");
        drop(log);
        let (mut again, _sm) = disk.open().await.expect("reopens");
        assert_eq!(
            again.read_vote().await.expect("read"),
            Some(Vote::new(3, 2))
        );
        assert!(!disk.is_empty().await.expect("readable"));
    }
}
