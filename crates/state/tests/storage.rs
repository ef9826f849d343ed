//! The Raft stores against openraft's storage test suite, and across restarts.

use std::collections::BTreeMap;
use std::path::PathBuf;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftLogReader,
    RaftSnapshotBuilder, Vote,
};
use state::types::StorageError;
use state::{Command, MemLogStore, RedbLogStore, Response, StateMachineStore, TypeConfig};
use tempfile::TempDir;

struct RedbBuilder;

impl StoreBuilder<TypeConfig, RedbLogStore, StateMachineStore, TempDir> for RedbBuilder {
    async fn build(&self) -> Result<(TempDir, RedbLogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (log, sm) = state::open(&dir.path().join("raft.redb"))
            .await
            .expect("open store");
        Ok((dir, log, sm))
    }
}

struct MemBuilder;

impl StoreBuilder<TypeConfig, MemLogStore, StateMachineStore> for MemBuilder {
    async fn build(&self) -> Result<((), MemLogStore, StateMachineStore), StorageError> {
        Ok(((), MemLogStore::new(), StateMachineStore::in_memory()))
    }
}

#[test]
fn redb_store_passes_the_openraft_suite() {
    Suite::test_all(RedbBuilder).expect("openraft storage suite on redb");
}

#[test]
fn memory_store_passes_the_openraft_suite() {
    Suite::test_all(MemBuilder).expect("openraft storage suite in memory");
}

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn command_entry(term: u64, index: u64, cmd: Command) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(cmd),
    }
}

fn init(id: &str) -> Command {
    Command::InitCluster {
        cluster_id: id.into(),
    }
}

fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("raft.redb")
}

#[tokio::test]
async fn log_vote_and_committed_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let membership = Membership::new(
        vec![[1u64].into_iter().collect()],
        BTreeMap::from([(1u64, BasicNode::new("127.0.0.1:7001"))]),
    );
    {
        let (mut log, _sm) = state::open(&db_path(&dir)).await.expect("open");
        log.save_vote(&Vote::new_committed(2, 1))
            .await
            .expect("vote");
        log.blocking_append([
            Entry {
                log_id: log_id(1, 1),
                payload: EntryPayload::Membership(membership.clone()),
            },
            command_entry(2, 2, init("c1")),
            command_entry(2, 3, init("c2")),
        ])
        .await
        .expect("append");
        log.save_committed(Some(log_id(2, 2)))
            .await
            .expect("committed");
    }
    let (mut log, _sm) = state::open(&db_path(&dir)).await.expect("reopen");
    assert_eq!(
        log.read_vote().await.expect("read vote"),
        Some(Vote::new_committed(2, 1))
    );
    assert_eq!(
        log.read_committed().await.expect("read committed"),
        Some(log_id(2, 2))
    );
    let entries = log.try_get_log_entries(1..=3).await.expect("read log");
    assert_eq!(entries.len(), 3);
    assert!(matches!(&entries[0].payload, EntryPayload::Membership(m) if *m == membership));
    assert!(matches!(&entries[2].payload, EntryPayload::Normal(c) if *c == init("c2")));
    let state = log.get_log_state().await.expect("log state");
    assert_eq!(state.last_log_id, Some(log_id(2, 3)));
    assert_eq!(state.last_purged_log_id, None);
}

#[tokio::test]
async fn purge_and_truncate_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let (mut log, _sm) = state::open(&db_path(&dir)).await.expect("open");
        let entries: Vec<_> = (1..=10).map(|i| command_entry(1, i, init("c"))).collect();
        log.blocking_append(entries).await.expect("append");
        log.purge(log_id(1, 4)).await.expect("purge");
        log.truncate(log_id(1, 8)).await.expect("truncate");
    }
    let (mut log, _sm) = state::open(&db_path(&dir)).await.expect("reopen");
    let state = log.get_log_state().await.expect("log state");
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 4)));
    assert_eq!(state.last_log_id, Some(log_id(1, 7)));
    let indexes: Vec<u64> = log
        .try_get_log_entries(0..100)
        .await
        .expect("read log")
        .iter()
        .map(|e| e.log_id.index)
        .collect();
    assert_eq!(indexes, [5, 6, 7]);
}

#[tokio::test]
async fn the_state_machine_restarts_from_its_last_snapshot() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let (_log, mut sm) = state::open(&db_path(&dir)).await.expect("open");
        let responses = sm
            .apply([command_entry(1, 1, init("c1"))])
            .await
            .expect("apply");
        assert_eq!(
            responses,
            [Response::ClusterId {
                cluster_id: "c1".into()
            }]
        );
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("snapshot");
        // Applied after the snapshot: not persisted by the state machine; openraft re-applies
        // it from the log after a restart.
        sm.apply([command_entry(1, 2, Command::RemoveMaster { id: 9 })])
            .await
            .expect("apply");
    }
    let (_log, mut sm) = state::open(&db_path(&dir)).await.expect("reopen");
    let (applied, _) = sm.applied_state().await.expect("applied state");
    assert_eq!(applied, Some(log_id(1, 1)));
    let reader = sm.reader();
    assert_eq!(
        reader.read(|a| a.state.cluster_id().map(str::to_string)),
        Some("c1".to_string())
    );
    let current = sm
        .get_current_snapshot()
        .await
        .expect("read snapshot")
        .expect("a snapshot");
    assert_eq!(current.meta.last_log_id, Some(log_id(1, 1)));
}

#[tokio::test]
async fn a_second_open_of_the_same_file_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _first = state::open(&db_path(&dir)).await.expect("open");
    let err = state::open(&db_path(&dir))
        .await
        .expect_err("the file is in use");
    assert!(err.to_string().contains("raft.redb"), "{err}");
}

/// Replaces the value at `key` of the redb table `table` in the store at `path` (closed).
fn overwrite(path: &std::path::Path, table: &str, key: u64, value: &[u8]) {
    let db = redb::Database::open(path).expect("open the file");
    let txn = db.begin_write().expect("write");
    {
        let def: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new(table);
        let mut t = txn.open_table(def).expect("table");
        t.insert(key, value).expect("insert");
    }
    txn.commit().expect("commit");
}

#[tokio::test]
async fn a_store_whose_snapshot_is_in_a_newer_format_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = {
        let (_log, mut sm) = state::open(&db_path(&dir)).await.expect("open");
        sm.apply([command_entry(1, 1, init("c1"))])
            .await
            .expect("apply");
        let mut snapshot = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("snapshot");
        let mut data: serde_json::Value =
            serde_json::from_slice(snapshot.snapshot.get_mut()).expect("snapshot JSON");
        assert_eq!(data["format_version"], state::machine::FORMAT_VERSION);
        data["format_version"] = (state::machine::FORMAT_VERSION + 1).into();
        data
    };
    // The snapshot's data (key 2 of the snapshot table), as a newer drover would write it.
    let bytes = serde_json::to_vec(&data).expect("encode");
    overwrite(&db_path(&dir), "snapshot", 2, &bytes);
    let err = state::open(&db_path(&dir))
        .await
        .expect_err("a newer format is not misread")
        .to_string();
    assert!(
        err.contains("written by a newer drover") && err.contains("use that release or newer"),
        "{err}"
    );
}

#[tokio::test]
async fn a_log_entry_of_a_command_only_a_newer_drover_knows_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let entry = {
        let (mut log, _sm) = state::open(&db_path(&dir)).await.expect("open");
        let entry = command_entry(1, 1, init("c1"));
        log.blocking_append([entry.clone()]).await.expect("append");
        entry
    };
    let mut json = serde_json::to_value(&entry).expect("encode");
    json["payload"] = serde_json::json!({"Normal": {"type": "set_something_new", "value": 1}});
    overwrite(
        &db_path(&dir),
        "raft_log",
        1,
        &serde_json::to_vec(&json).expect("encode"),
    );
    let (mut log, _sm) = state::open(&db_path(&dir)).await.expect("reopen");
    let err = log
        .try_get_log_entries(1..2)
        .await
        .expect_err("an unknown command is not skipped")
        .to_string();
    assert!(
        err.contains("log entry 1") && err.contains("written by a newer drover"),
        "{err}"
    );
}
