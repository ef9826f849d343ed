//! The openraft type configuration drover's Raft runs with.

use std::io::Cursor;

use crate::command::{Command, Response};

/// A master's Raft node id.
pub type NodeId = u64;

/// A Raft member as the membership config names it: the address of its HTTP API.
pub type Node = openraft::BasicNode;

openraft::declare_raft_types!(
    /// drover's Raft types: [`Command`] entries answered with [`Response`]s, `u64` node ids,
    /// tokio with seedable election timeouts ([`crate::runtime::DroverRuntime`]).
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = NodeId,
        Node = Node,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = crate::runtime::DroverRuntime,
);

/// A Raft log entry carrying a [`Command`].
pub type Entry = openraft::Entry<TypeConfig>;

/// A log position: the leader that wrote it and its index.
pub type LogId = openraft::LogId<NodeId>;

/// A vote: the term and the candidate voted for.
pub type Vote = openraft::Vote<NodeId>;

/// The membership config in force, with the log id that brought it.
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;

/// Metadata of a state machine snapshot.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;

/// A state machine snapshot with its data.
pub type Snapshot = openraft::Snapshot<TypeConfig>;

/// openraft's storage error, as drover's stores return it.
pub type StorageError = openraft::StorageError<NodeId>;

/// A running Raft node.
pub type Raft = openraft::Raft<TypeConfig>;
