//! An in-memory Raft log store, for tests and simulations (nothing survives the process).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};

use crate::log_store::is_empty;
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

#[derive(Default)]
struct Inner {
    log: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    committed: Option<LogId>,
    vote: Option<Vote>,
    /// With a flush delay (a simulated slow disk), appends are acknowledged this long after
    /// they were written; until then they are unsynced and a crash may lose them.
    flush_delay: Option<std::time::Duration>,
    /// Appends written but not yet acknowledged, oldest first: when each is due, its first
    /// index, and the callback that acknowledges it.
    unsynced: VecDeque<(tokio::time::Instant, u64, LogFlushed<TypeConfig>)>,
}

impl Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("entries", &self.log.len())
            .field("last_purged", &self.last_purged)
            .field("committed", &self.committed)
            .field("vote", &self.vote)
            .field("unsynced", &self.unsynced.len())
            .finish()
    }
}

/// The Raft log and vote in memory; clones share them.
#[derive(Debug, Clone, Default)]
pub struct MemLogStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemLogStore {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Acknowledges appends only `delay` after they were written (`None`: at once, the
    /// default), as a disk whose writes take that long to sync; [`Self::tear`] then loses
    /// what was not yet acknowledged, as a crash would.
    pub fn set_flush_delay(&self, delay: Option<std::time::Duration>) {
        self.inner().flush_delay = delay;
    }

    /// A crash lost the unsynced writes: drops every entry from the first append not yet
    /// acknowledged on (a torn tail), and returns how many entries went. Raft allows it:
    /// an entry is durable, and may count towards a commit, only once its append was
    /// acknowledged. The committed index is brought back below what was dropped (it is a
    /// hint; the cluster's commit does not depend on this copy). Call it after the crash,
    /// before the restart.
    pub fn tear(&self) -> usize {
        let mut inner = self.inner();
        let Some(first) = inner.unsynced.front().map(|(_, index, _)| *index) else {
            return 0;
        };
        inner.unsynced.clear();
        let dropped = inner.log.split_off(&first).len();
        if inner.committed.is_some_and(|c| c.index >= first) {
            inner.committed = inner.log.values().next_back().map(|e| e.log_id);
        }
        dropped
    }

    /// How many appends are written but not yet acknowledged.
    pub fn unsynced(&self) -> usize {
        self.inner().unsynced.len()
    }

    /// What was written is on the disk as a restart finds it: whatever was unsynced when
    /// the master stopped and was not torn counts as synced (its acknowledgements went
    /// with the stopped master).
    pub(crate) fn synced_on_open(&self) {
        self.inner().unsynced.clear();
    }

    /// Acknowledges the appends that are due, oldest first.
    fn flush_due(&self) {
        let now = tokio::time::Instant::now();
        let due: Vec<LogFlushed<TypeConfig>> = {
            let mut inner = self.inner();
            let mut due = Vec::new();
            while inner.unsynced.front().is_some_and(|(at, _, _)| *at <= now) {
                if let Some((_, _, callback)) = inner.unsynced.pop_front() {
                    due.push(callback);
                }
            }
            due
        };
        for callback in due {
            callback.log_io_completed(Ok(()));
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Every write is a few map operations that do not panic; a poisoned lock holds a
        // consistent log.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl RaftLogReader<TypeConfig> for MemLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let bounds: (Bound<u64>, Bound<u64>) =
            (range.start_bound().cloned(), range.end_bound().cloned());
        if is_empty(&bounds) {
            return Ok(Vec::new());
        }
        Ok(self
            .inner()
            .log
            .range(bounds)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for MemLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let inner = self.inner();
        let last_log_id = inner
            .log
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(inner.last_purged);
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.inner().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.inner().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.inner().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.inner().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let delay = {
            let mut inner = self.inner();
            let mut first = None;
            for entry in entries {
                first = first.or(Some(entry.log_id.index));
                inner.log.insert(entry.log_id.index, entry);
            }
            match (inner.flush_delay, first) {
                (Some(delay), Some(first)) => {
                    let due = tokio::time::Instant::now() + delay;
                    inner.unsynced.push_back((due, first, callback));
                    Some(delay)
                }
                _ => {
                    drop(inner);
                    callback.log_io_completed(Ok(()));
                    None
                }
            }
        };
        if let Some(delay) = delay {
            let store = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                store.flush_due();
            });
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.inner().log.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut inner = self.inner();
        inner.last_purged = Some(log_id);
        inner.log = inner.log.split_off(&log_id.index.saturating_add(1));
        Ok(())
    }
}
