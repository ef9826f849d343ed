//! Task checkpoints: one JSON file per task in `WORK_DIR/tasks/`, written before and after
//! every step that a restarted agent must know about (launch, kill request, exit).

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use state::InstanceId;
use state::protocol::{TaskAssignment, TaskStatus};

use crate::procfs::ProcessIdentity;
use crate::work_dir::{check_instance_id, write_atomically};

/// What a restarted agent needs to find a task again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The assignment the task was started for.
    pub assignment: TaskAssignment,
    /// The task's sandbox.
    pub sandbox: PathBuf,
    /// When the task was started, ms since the Unix epoch (health check grace periods).
    pub started_at_ms: u64,
    /// The process, once spawned (process executor).
    #[serde(default)]
    pub process: Option<ProcessIdentity>,
    /// The container's name, once created (Docker executor).
    #[serde(default)]
    pub container: Option<String>,
    /// True once a kill was requested: an exit after this is reported `killed`.
    #[serde(default)]
    pub kill_requested: bool,
    /// The terminal status, once the task ended (kept until the master has it).
    #[serde(default)]
    pub terminal: Option<TaskStatus>,
}

impl Checkpoint {
    /// The task's instance id.
    pub fn instance_id(&self) -> &InstanceId {
        &self.assignment.instance_id
    }
}

/// The checkpoint files in one directory.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
}

impl Checkpoints {
    /// Checkpoints kept in `dir` (which must exist).
    pub fn new(dir: PathBuf) -> Self {
        Checkpoints { dir }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &InstanceId) -> io::Result<PathBuf> {
        check_instance_id(id).map_err(io::Error::other)?;
        Ok(self.dir.join(format!("{id}.json")))
    }

    /// Writes (replaces) a task's checkpoint durably.
    pub fn save(&self, cp: &Checkpoint) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(cp).map_err(io::Error::other)?;
        write_atomically(&self.path(cp.instance_id())?, &bytes)
    }

    /// Reads one task's checkpoint.
    pub fn load(&self, id: &InstanceId) -> Result<Checkpoint, String> {
        load(&self.path(id).map_err(|e| e.to_string())?)
    }

    /// Removes a task's checkpoint (the task is over and the master knows it).
    pub fn remove(&self, id: &InstanceId) -> io::Result<()> {
        match std::fs::remove_file(self.path(id)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every checkpoint in the directory; unreadable ones come back as errors naming the file.
    pub fn load_all(&self) -> io::Result<Vec<Result<Checkpoint, String>>> {
        let mut out = Vec::new();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        paths.sort();
        for path in paths {
            out.push(load(&path));
        }
        Ok(out)
    }
}

fn load(path: &Path) -> Result<Checkpoint, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
}
