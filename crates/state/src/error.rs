//! Errors of drover's Raft storage, and their mapping onto openraft's fatal storage error.

use std::path::PathBuf;

use openraft::{AnyError, StorageIOError};

use crate::types::{NodeId, StorageError};

/// A failure of the Raft store. Every one is fatal for the node: openraft shuts down on it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error(
        "cannot open the Raft store {path}: {source} (is another drover using it, or is the file damaged?)"
    )]
    Open {
        /// The file.
        path: PathBuf,
        /// What redb said.
        #[source]
        source: redb::DatabaseError,
    },
    /// Reading or writing the database failed (I/O, fsync, corruption).
    #[error("Raft store I/O failed: {0}")]
    Redb(#[from] redb::Error),
    /// A value could not be encoded.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// A stored value could not be decoded.
    #[error(
        "cannot decode {what} (corrupt, or written by an incompatible drover version): {source}"
    )]
    Decode {
        /// What was being decoded.
        what: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// A stored value in a form only a newer drover writes (a command or a format this
    /// build does not know).
    #[error(
        "cannot read {what}: it was written by a newer drover ({source}); use that release or newer (nothing was changed)"
    )]
    Newer {
        /// What was being decoded.
        what: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// The store contradicts itself.
    #[error("Raft store is corrupt: {0}")]
    Corrupt(String),
    /// The blocking task doing the I/O panicked or was cancelled.
    #[error("Raft store task failed: {0}")]
    Task(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {
        $(impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Redb(e.into())
            }
        })*
    };
}

from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl StoreError {
    /// Logs the error and turns it into openraft's storage error, which stops the Raft node.
    pub(crate) fn fatal(self, io: impl FnOnce(AnyError) -> StorageIOError<NodeId>) -> StorageError {
        tracing::error!(error = %self, "Raft storage failed; the Raft node stops");
        StorageError::IO {
            source: io(AnyError::new(&self)),
        }
    }
}

/// Runs blocking redb work off the async runtime's worker threads.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    crate::runtime::off_worker(f)
        .await
        .ok_or_else(|| StoreError::Task("the blocking store task panicked".into()))?
}

/// Encodes a value as JSON.
pub(crate) fn encode<T: serde::Serialize>(
    what: &'static str,
    v: &T,
) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|source| StoreError::Encode { what, source })
}

/// Decodes a JSON value.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    what: impl FnOnce() -> String,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Decode {
        what: what(),
        source,
    })
}

/// An error with its causes, `a: b: c` (hyper's and rustls's own messages hide the
/// interesting part a few sources deep).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
