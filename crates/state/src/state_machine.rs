//! The Raft state machine: [`ClusterState`] in memory, snapshots persisted.
//!
//! Applying does not touch the disk. A restart restores the state from the last persisted
//! snapshot, and openraft re-applies the committed log after it. Snapshots are the state as
//! JSON; the current one lives in redb (or, for tests, in memory).

use std::io::Cursor;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::command::Response;
use crate::error::{StoreError, blocking, decode, encode};
use crate::machine::ClusterState;
use crate::types::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

/// The current snapshot: its metadata and its data, under the keys below.
pub(crate) const SNAPSHOT: TableDefinition<u64, &[u8]> = TableDefinition::new("snapshot");

const KEY_SNAPSHOT_META: u64 = 1;
const KEY_SNAPSHOT_DATA: u64 = 2;

/// The cluster state with the log position it reflects.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The last log entry applied.
    pub last_applied: Option<LogId>,
    /// The last membership config applied.
    pub membership: StoredMembership,
    /// The state.
    pub state: ClusterState,
}

/// The current snapshot, when kept in memory.
pub(crate) type MemorySnapshot = Arc<std::sync::Mutex<Option<(SnapshotMeta, Vec<u8>)>>>;

/// Where the current snapshot is kept.
#[derive(Clone)]
enum SnapshotStore {
    Redb(Arc<Database>),
    Memory(MemorySnapshot),
}

impl SnapshotStore {
    /// Makes `meta`/`data` the current snapshot, unless the current one is newer (a snapshot
    /// built before an install finished must not replace what the install brought).
    async fn save(&self, meta: &SnapshotMeta, data: Vec<u8>) -> Result<(), StoreError> {
        match self {
            SnapshotStore::Redb(db) => {
                let db = db.clone();
                let meta_bytes = encode("snapshot meta", meta)?;
                let last_log_id = meta.last_log_id;
                blocking(move || {
                    let txn = db.begin_write()?;
                    {
                        let mut table = txn.open_table(SNAPSHOT)?;
                        let stored: Option<SnapshotMeta> = match table.get(KEY_SNAPSHOT_META)? {
                            Some(v) => Some(decode(|| "snapshot meta".into(), v.value())?),
                            None => None,
                        };
                        if stored.is_some_and(|s| s.last_log_id > last_log_id) {
                            return Ok(());
                        }
                        table.insert(KEY_SNAPSHOT_META, meta_bytes.as_slice())?;
                        table.insert(KEY_SNAPSHOT_DATA, data.as_slice())?;
                    }
                    txn.commit()?;
                    Ok(())
                })
                .await
            }
            SnapshotStore::Memory(slot) => {
                let mut slot = lock(slot);
                if slot
                    .as_ref()
                    .is_none_or(|(s, _)| s.last_log_id <= meta.last_log_id)
                {
                    *slot = Some((meta.clone(), data));
                }
                Ok(())
            }
        }
    }

    async fn load(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StoreError> {
        match self {
            SnapshotStore::Redb(db) => {
                let db = db.clone();
                blocking(move || {
                    let txn = db.begin_read()?;
                    let table = txn.open_table(SNAPSHOT)?;
                    let meta = table.get(KEY_SNAPSHOT_META)?;
                    let data = table.get(KEY_SNAPSHOT_DATA)?;
                    match (meta, data) {
                        (Some(meta), Some(data)) => {
                            let meta: SnapshotMeta =
                                decode(|| "snapshot meta".into(), meta.value())?;
                            Ok(Some((meta, data.value().to_vec())))
                        }
                        (None, None) => Ok(None),
                        _ => Err(StoreError::Corrupt(
                            "the snapshot table has metadata without data or data without metadata"
                                .into(),
                        )),
                    }
                })
                .await
            }
            SnapshotStore::Memory(slot) => Ok(lock(slot).clone()),
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave a half-written value: writes are single
    // assignments.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A read-only handle on the applied cluster state, for the API and the scheduler.
#[derive(Clone, Debug)]
pub struct StateReader {
    shared: Arc<RwLock<Applied>>,
    applied: AppliedWatch,
}

/// The index of the last applied log entry, sent after every apply: what passes and long
/// polls wait on (Raft's metrics change on every core iteration; this only on a change).
type AppliedWatch = Arc<tokio::sync::watch::Sender<u64>>;

impl StateReader {
    /// Runs `f` on the current state; keep `f` short, it holds off apply.
    pub fn read<T>(&self, f: impl FnOnce(&Applied) -> T) -> T {
        f(&read(&self.shared))
    }

    /// A copy of the current state.
    pub fn snapshot(&self) -> Applied {
        read(&self.shared).clone()
    }

    /// A receiver that sees the index of the last applied entry change after each apply
    /// (and after a snapshot is installed); the state it names is readable when it fires.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.applied.subscribe()
    }
}

fn index_of(applied: &Applied) -> u64 {
    applied.last_applied.map_or(0, |l| l.index)
}

fn read(shared: &RwLock<Applied>) -> RwLockReadGuard<'_, Applied> {
    // Apply is pure and does not panic on any input; if it ever did, openraft would already
    // have stopped, so the (possibly half-applied) state is only read, never built on.
    shared
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write(shared: &RwLock<Applied>) -> RwLockWriteGuard<'_, Applied> {
    shared
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The Raft state machine; clones share the state and the snapshot store.
#[derive(Clone)]
pub struct StateMachineStore {
    shared: Arc<RwLock<Applied>>,
    snapshots: SnapshotStore,
    applied: AppliedWatch,
}

impl std::fmt::Debug for StateMachineStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachineStore").finish_non_exhaustive()
    }
}

impl StateMachineStore {
    /// A state machine whose snapshots live in `db`, restored from the last one there.
    pub(crate) async fn open_redb(db: Arc<Database>) -> Result<Self, StoreError> {
        Self::restore(SnapshotStore::Redb(db)).await
    }

    /// A state machine whose snapshots live in `slot`, restored from the one there: a
    /// simulated disk ([`crate::MemDisk`]) that outlives a simulated crash.
    pub(crate) async fn open_memory(slot: MemorySnapshot) -> Result<Self, StoreError> {
        Self::restore(SnapshotStore::Memory(slot)).await
    }

    /// A state machine whose snapshots live in memory (for tests).
    pub fn in_memory() -> Self {
        StateMachineStore {
            shared: Arc::default(),
            snapshots: SnapshotStore::Memory(Arc::default()),
            applied: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    async fn restore(snapshots: SnapshotStore) -> Result<Self, StoreError> {
        let applied = match snapshots.load().await? {
            Some((meta, data)) => applied_from_snapshot(&meta, &data)?,
            None => Applied::default(),
        };
        let index = index_of(&applied);
        Ok(StateMachineStore {
            shared: Arc::new(RwLock::new(applied)),
            snapshots,
            applied: Arc::new(tokio::sync::watch::Sender::new(index)),
        })
    }

    /// A read-only handle on the applied state that stays valid after the store moves into Raft.
    pub fn reader(&self) -> StateReader {
        StateReader {
            shared: self.shared.clone(),
            applied: self.applied.clone(),
        }
    }
}

fn applied_from_snapshot(meta: &SnapshotMeta, data: &[u8]) -> Result<Applied, StoreError> {
    let state: ClusterState = decode(|| format!("snapshot {}", meta.snapshot_id), data)?;
    Ok(Applied {
        last_applied: meta.last_log_id,
        membership: meta.last_membership.clone(),
        state,
    })
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        // Copy under the lock so the state and its log position match; encode outside it.
        // Both take seconds for a large state, so they run off the runtime's workers: on a
        // worker they delayed this master's heartbeats until a follower stood for election
        // (the scale benchmark, 100,000 instances).
        let shared = self.shared.clone();
        let (applied, data) = crate::runtime::off_worker(move || {
            let applied = read(&shared).clone();
            let encoded = encode("snapshot", &applied.state);
            (applied, encoded)
        })
        .await
        .ok_or_else(|| StoreError::Task("encoding the snapshot panicked".into()))
        .and_then(|(applied, encoded)| Ok((applied, encoded?)))
        .map_err(|e| e.fatal(StorageIOError::read_state_machine))?;
        let built_ms = crate::runtime::wall_clock_ms();
        tracing::info!(bytes = data.len(), last_log_id = ?applied.last_applied, "snapshot built");
        let snapshot_id = match applied.last_applied {
            Some(id) => format!("{}-{}-{built_ms}", id.leader_id, id.index),
            None => format!("--{built_ms}"),
        };
        let meta = SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership,
            snapshot_id,
        };
        self.snapshots
            .save(&meta, data.clone())
            .await
            .map_err(|e| e.fatal(|a| StorageIOError::write_snapshot(Some(meta.signature()), a)))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = read(&self.shared);
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut applied = write(&self.shared);
        let responses: Vec<Response> = entries
            .into_iter()
            .map(|entry| {
                applied.last_applied = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => Response::Ok,
                    EntryPayload::Normal(cmd) => applied.state.apply(cmd),
                    EntryPayload::Membership(m) => {
                        applied.membership = StoredMembership::new(Some(entry.log_id), m);
                        Response::Ok
                    }
                }
            })
            .collect();
        let index = index_of(&applied);
        drop(applied);
        self.applied.send_replace(index);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        tracing::info!(bytes = data.len(), last_log_id = ?meta.last_log_id, "installing a snapshot from the leader");
        let sig = || Some(meta.signature());
        let applied = applied_from_snapshot(meta, &data)
            .map_err(|e| e.fatal(|a| StorageIOError::read_snapshot(sig(), a)))?;
        // Persist first: a crash after this restarts from the new snapshot.
        self.snapshots
            .save(meta, data)
            .await
            .map_err(|e| e.fatal(|a| StorageIOError::write_snapshot(sig(), a)))?;
        let index = index_of(&applied);
        *write(&self.shared) = applied;
        self.applied.send_replace(index);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let current = self
            .snapshots
            .load()
            .await
            .map_err(|e| e.fatal(|a| StorageIOError::read_snapshot(None, a)))?;
        Ok(current.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
