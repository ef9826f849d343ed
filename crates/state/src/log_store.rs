//! The Raft log and vote, stored in redb.
//!
//! Every write is one redb transaction committed with redb's default durability (fsync before
//! `commit` returns); openraft is told an append is durable only after that. Any failure is
//! fatal: it is logged and returned as openraft's storage error, which stops the Raft node.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, StorageIOError};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::{StoreError, blocking, decode, encode};
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// Log entries by index, each as JSON.
pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");

/// Raft metadata by key (see the `KEY_*` constants), each as JSON.
pub(crate) const META: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_meta");

const KEY_VOTE: u64 = 1;
const KEY_COMMITTED: u64 = 2;
const KEY_LAST_PURGED: u64 = 3;

/// The Raft log store over a redb database; clones share the database.
#[derive(Clone)]
pub struct RedbLogStore {
    db: Arc<Database>,
}

impl Debug for RedbLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbLogStore").finish_non_exhaustive()
    }
}

impl RedbLogStore {
    /// A log store over an opened database whose tables exist (see [`crate::open`]).
    pub(crate) fn new(db: Arc<Database>) -> Self {
        RedbLogStore { db }
    }

    async fn read_meta<T>(&self, key: u64, what: &'static str) -> Result<Option<T>, StoreError>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_read()?;
            let table = txn.open_table(META)?;
            match table.get(key)? {
                Some(v) => Ok(Some(decode(|| what.to_string(), v.value())?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn write_meta(&self, key: u64, bytes: Vec<u8>) -> Result<(), StoreError> {
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(META)?;
                table.insert(key, bytes.as_slice())?;
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }
}

impl RedbLogStore {
    /// `drover master --force-new-cluster`: makes this log's membership `id` alone, so a
    /// single surviving master can lead again when the others are gone for good.
    ///
    /// openraft 0.9 refuses to initialise a node twice and commits a membership change only
    /// with a quorum of the old members, which are gone; so before Raft starts this writes
    /// what a leader of a new term would have written: a vote for `id` in a term above every
    /// term seen, and after the last entry a membership entry of that term naming `id` as the
    /// only voter. openraft takes the last membership entry in the log as the one in force,
    /// elects `id` (its own quorum) and commits that entry with everything before it.
    /// Entries the old cluster had not committed are committed too (etcd does the same).
    /// Returns the new entry's log id.
    pub async fn force_single_member(
        &mut self,
        id: crate::types::NodeId,
        node: crate::types::Node,
    ) -> Result<LogId, StorageError> {
        let state = self.get_log_state().await?;
        let vote = self.read_vote().await?;
        let last_term = state.last_log_id.map_or(0, |l| l.leader_id.term);
        let voted_term = vote.map_or(0, |v| v.leader_id.term);
        let term = last_term.max(voted_term) + 1;
        let index = state.last_log_id.map_or(0, |l| l.index + 1);
        let log_id = LogId::new(openraft::CommittedLeaderId::new(term, id), index);
        let membership = openraft::Membership::new(
            vec![std::collections::BTreeSet::from([id])],
            std::collections::BTreeMap::from([(id, node)]),
        );
        let entry = Entry {
            log_id,
            payload: openraft::EntryPayload::Membership(membership),
        };
        self.save_vote(&Vote::new(term, id)).await?;
        let bytes = encode("log entry", &entry).map_err(|e| e.fatal(StorageIOError::write_logs))?;
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(LOG)?;
                table.insert(index, bytes.as_slice())?;
            }
            txn.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| e.fatal(StorageIOError::write_logs))?;
        Ok(log_id)
    }
}

fn decode_entry(index: u64, bytes: &[u8]) -> Result<Entry, StoreError> {
    let entry: Entry = decode(|| format!("log entry {index}"), bytes).map_err(newer_entry)?;
    if entry.log_id.index != index {
        return Err(StoreError::Corrupt(format!(
            "log entry stored at index {index} says it is at index {}",
            entry.log_id.index
        )));
    }
    Ok(entry)
}

/// A log entry whose command this build does not know was written by a newer drover (new
/// commands are written only once every master speaks them): said so, rather than "corrupt".
fn newer_entry(e: StoreError) -> StoreError {
    match e {
        StoreError::Decode { what, source } if source.to_string().contains("unknown variant") => {
            StoreError::Newer { what, source }
        }
        other => other,
    }
}

/// True when no index lies within `bounds` (redb, like `BTreeMap`, wants `start <= end`).
pub(crate) fn is_empty(bounds: &(Bound<u64>, Bound<u64>)) -> bool {
    let start = match bounds.0 {
        Bound::Included(s) => s,
        Bound::Excluded(s) => match s.checked_add(1) {
            Some(s) => s,
            None => return true,
        },
        Bound::Unbounded => 0,
    };
    match bounds.1 {
        Bound::Included(e) => start > e,
        Bound::Excluded(e) => start >= e,
        Bound::Unbounded => false,
    }
}

impl RaftLogReader<TypeConfig> for RedbLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let bounds: (Bound<u64>, Bound<u64>) =
            (range.start_bound().cloned(), range.end_bound().cloned());
        if is_empty(&bounds) {
            return Ok(Vec::new());
        }
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_read()?;
            let table = txn.open_table(LOG)?;
            let mut entries = Vec::new();
            for item in table.range::<u64>(bounds)? {
                let (k, v) = item?;
                entries.push(decode_entry(k.value(), v.value())?);
            }
            Ok(entries)
        })
        .await
        .map_err(|e| e.fatal(StorageIOError::read_logs))
    }
}

impl RaftLogStorage<TypeConfig> for RedbLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_read()?;
            let last_purged_log_id: Option<LogId> =
                match txn.open_table(META)?.get(KEY_LAST_PURGED)? {
                    Some(v) => Some(decode(|| "last purged log id".into(), v.value())?),
                    None => None,
                };
            let last_log_id = match txn.open_table(LOG)?.last()? {
                Some((k, v)) => Some(decode_entry(k.value(), v.value())?.log_id),
                None => last_purged_log_id,
            };
            Ok(LogState {
                last_purged_log_id,
                last_log_id,
            })
        })
        .await
        .map_err(|e| e.fatal(StorageIOError::read_logs))
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let bytes = encode("vote", vote).map_err(|e| e.fatal(StorageIOError::write_vote))?;
        self.write_meta(KEY_VOTE, bytes)
            .await
            .map_err(|e| e.fatal(StorageIOError::write_vote))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_meta(KEY_VOTE, "vote")
            .await
            .map_err(|e| e.fatal(StorageIOError::read_vote))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let bytes =
            encode("committed log id", &committed).map_err(|e| e.fatal(StorageIOError::write))?;
        self.write_meta(KEY_COMMITTED, bytes)
            .await
            .map_err(|e| e.fatal(StorageIOError::write))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let committed: Option<Option<LogId>> = self
            .read_meta(KEY_COMMITTED, "committed log id")
            .await
            .map_err(|e| e.fatal(StorageIOError::read))?;
        Ok(committed.flatten())
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
        let encoded = entries
            .into_iter()
            .map(|e| Ok((e.log_id.index, encode("log entry", &e)?)))
            .collect::<Result<Vec<_>, StoreError>>()
            .map_err(|e| e.fatal(StorageIOError::write_logs))?;
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(LOG)?;
                for (index, bytes) in &encoded {
                    table.insert(*index, bytes.as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| e.fatal(StorageIOError::write_logs))?;
        // Only now, after the fsync'd commit, are the entries durable.
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "truncating the Raft log from this entry on");
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(LOG)?;
                table.retain_in(log_id.index.., |_, _| false)?;
            }
            txn.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| e.fatal(StorageIOError::write_logs))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "purging the Raft log up to this entry");
        let bytes = encode("last purged log id", &log_id)
            .map_err(|e| e.fatal(StorageIOError::write_logs))?;
        let db = self.db.clone();
        blocking(move || {
            let txn = db.begin_write()?;
            {
                // One transaction: the purge mark and the deletion land together or not at all.
                let mut meta = txn.open_table(META)?;
                meta.insert(KEY_LAST_PURGED, bytes.as_slice())?;
                let mut table = txn.open_table(LOG)?;
                table.retain_in(..=log_id.index, |_, _| false)?;
            }
            txn.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| e.fatal(StorageIOError::write_logs))
    }
}
