//! The agent's work dir: its id, the highest leader term it has seen, task checkpoints and
//! sandboxes. Everything the agent must remember across a restart (even a SIGKILL) is here.
//!
//! ```text
//! WORK_DIR/agent-id                  the agent's id (a UUID v4, made on first start)
//! WORK_DIR/term                      the highest leader term seen (fencing)
//! WORK_DIR/lock                      held while an agent uses the dir
//! WORK_DIR/tasks/<instance-id>.json  one checkpoint per task
//! WORK_DIR/sandboxes/<instance-id>/  each task's working directory, stdout and stderr
//! ```

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use domain::AgentId;
use state::InstanceId;

/// Why the work dir cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WorkDirError {
    /// A file or directory could not be read, written or created.
    #[error("work dir {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// Another agent holds the lock.
    #[error("work dir {0} is in use by another drover agent; give each agent its own --work-dir")]
    InUse(PathBuf),
    /// `agent-id` holds something that is not an id.
    #[error("{0} does not hold an agent id; remove it to let the agent make a new one")]
    BadAgentId(PathBuf),
    /// An instance id that cannot name a file.
    #[error("instance id `{0}` cannot name a sandbox: only letters, digits, `.`, `_` and `-`")]
    BadInstanceId(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WorkDirError + '_ {
    move |source| WorkDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An agent's work dir, locked for this process.
#[derive(Debug)]
pub struct WorkDir {
    root: PathBuf,
    _lock: File,
}

impl WorkDir {
    /// Creates (if needed) and locks the work dir.
    pub fn open(root: &Path) -> Result<Self, WorkDirError> {
        for dir in [
            root.to_path_buf(),
            root.join("tasks"),
            root.join("sandboxes"),
        ] {
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        let root = root.canonicalize().map_err(io_err(root))?;
        let lock_path = root.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(WorkDirError::InUse(root)),
            Err(TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        Ok(WorkDir { root, _lock: lock })
    }

    /// The work dir's path (absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The agent's id: read from `agent-id`, or made and stored on first start.
    pub fn agent_id(&self) -> Result<AgentId, WorkDirError> {
        let path = self.root.join("agent-id");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let id = text.trim();
                if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(WorkDirError::BadAgentId(path));
                }
                Ok(AgentId(id.to_string()))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let id = state::runtime::uuid_v4().to_string();
                write_atomically(&path, format!("{id}\n").as_bytes()).map_err(io_err(&path))?;
                Ok(AgentId(id))
            }
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Where task checkpoints live.
    pub fn tasks_dir(&self) -> PathBuf {
        self.root.join("tasks")
    }

    /// Where the sandboxes live.
    pub fn sandboxes_dir(&self) -> PathBuf {
        self.root.join("sandboxes")
    }

    /// The sandbox of an instance.
    pub fn sandbox(&self, id: &InstanceId) -> Result<PathBuf, WorkDirError> {
        check_instance_id(id)?;
        Ok(self.root.join("sandboxes").join(&id.0))
    }

    /// The highest-term fence, loaded from `term`.
    pub fn term_fence(&self) -> Result<TermFence, WorkDirError> {
        TermFence::load(self.root.join("term"))
    }
}

/// Refuses instance ids that could escape the work dir or are not portable file names.
pub fn check_instance_id(id: &InstanceId) -> Result<(), WorkDirError> {
    let s = id.0.as_str();
    let ok = !s.is_empty()
        && !s.starts_with('.')
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(WorkDirError::BadInstanceId(s.to_string()))
    }
}

/// Writes a file so that a crash leaves either the old or the new content: a temporary file,
/// fsync, rename over the target, fsync of the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        // A half-written temporary file on a full disk would hold space nobody frees.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()
}

/// The highest leader term this agent has seen, kept on disk. Answers from a lower term come
/// from a deposed leader and are ignored.
#[derive(Debug)]
pub struct TermFence {
    path: PathBuf,
    highest: Mutex<u64>,
}

impl TermFence {
    /// Loads the fence from `path` (0 when the file does not exist yet).
    pub fn load(path: PathBuf) -> Result<Self, WorkDirError> {
        let highest = match std::fs::read_to_string(&path) {
            Ok(t) => t.trim().parse().unwrap_or(0),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io_err(&path)(e)),
        };
        Ok(TermFence {
            path,
            highest: Mutex::new(highest),
        })
    }

    /// The highest term seen.
    pub fn highest(&self) -> u64 {
        *self.highest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `term`; returns false when it is lower than the highest seen (ignore the
    /// answer that carried it). A higher term is written to disk before this returns.
    pub fn observe(&self, term: u64) -> bool {
        let mut highest = self.highest.lock().unwrap_or_else(|p| p.into_inner());
        if term < *highest {
            return false;
        }
        if term > *highest {
            if let Err(e) = write_atomically(&self.path, format!("{term}\n").as_bytes()) {
                // Fencing still holds in memory; only a restart could forget this term.
                tracing::warn!(
                    "cannot persist leader term {term} to {}: {e}",
                    self.path.display()
                );
            }
            *highest = term;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_id_survives_a_restart() {
        let tmp = tempfile::tempdir().unwrap();
        let first = {
            let wd = WorkDir::open(tmp.path()).unwrap();
            wd.agent_id().unwrap()
        };
        let wd = WorkDir::open(tmp.path()).unwrap();
        assert_eq!(wd.agent_id().unwrap(), first);
        assert_eq!(
            uuid::Uuid::parse_str(&first.0).unwrap().get_version_num(),
            4
        );
    }

    #[test]
    fn a_second_agent_cannot_share_the_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let _first = WorkDir::open(tmp.path()).unwrap();
        let e = WorkDir::open(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("in use by another drover agent"), "{e}");
    }

    #[test]
    fn the_fence_refuses_lower_terms_and_remembers_across_restarts() {
        let tmp = tempfile::tempdir().unwrap();
        let wd = WorkDir::open(tmp.path()).unwrap();
        let fence = wd.term_fence().unwrap();
        assert!(fence.observe(3));
        assert!(fence.observe(3));
        assert!(!fence.observe(2));
        drop(fence);
        let fence = wd.term_fence().unwrap();
        assert_eq!(fence.highest(), 3);
        assert!(!fence.observe(1));
        assert!(fence.observe(4));
    }

    #[test]
    fn instance_ids_cannot_escape_the_sandboxes() {
        let tmp = tempfile::tempdir().unwrap();
        let wd = WorkDir::open(tmp.path()).unwrap();
        assert!(wd.sandbox(&"web.instance-1".into()).is_ok());
        for bad in ["", "..", "../x", "a/b", ".hidden"] {
            assert!(wd.sandbox(&bad.into()).is_err(), "{bad}");
        }
    }
}
