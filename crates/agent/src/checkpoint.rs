//! Task checkpoints: one JSON file per task in `WORK_DIR/tasks/`, written before and after
//! every step that a restarted agent must know about (launch, kill request, exit). Hollow
//! agents keep them in memory instead ([`Checkpoints::in_memory`]): their tasks are fake and
//! end with the process, so there is nothing a restart could find again.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
    /// The process groups of a pod instance's containers, in container order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_processes: Vec<ProcessIdentity>,
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

/// The checkpoints of one agent: files in one directory, or (hollow agents) a table in
/// memory.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    store: Store,
}

#[derive(Debug, Clone)]
enum Store {
    /// One fsynced file per task.
    Dir(PathBuf),
    /// Nothing survives the process; clones share the table.
    Memory(Arc<Mutex<BTreeMap<InstanceId, Checkpoint>>>),
}

impl Checkpoints {
    /// Checkpoints kept in `dir` (which must exist).
    pub fn new(dir: PathBuf) -> Self {
        Checkpoints {
            store: Store::Dir(dir),
        }
    }

    /// Checkpoints kept only in memory: no file, no fsync. For hollow agents, whose fake
    /// tasks do not outlive the process; a real agent must never use this.
    pub fn in_memory() -> Self {
        Checkpoints {
            store: Store::Memory(Arc::default()),
        }
    }

    /// The directory; `None` for checkpoints in memory.
    pub fn dir(&self) -> Option<&Path> {
        match &self.store {
            Store::Dir(dir) => Some(dir),
            Store::Memory(_) => None,
        }
    }

    fn path(dir: &Path, id: &InstanceId) -> io::Result<PathBuf> {
        check_instance_id(id).map_err(io::Error::other)?;
        Ok(dir.join(format!("{id}.json")))
    }

    fn table(
        table: &Mutex<BTreeMap<InstanceId, Checkpoint>>,
    ) -> std::sync::MutexGuard<'_, BTreeMap<InstanceId, Checkpoint>> {
        table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes (replaces) a task's checkpoint durably.
    pub fn save(&self, cp: &Checkpoint) -> io::Result<()> {
        match &self.store {
            Store::Dir(dir) => {
                let bytes = serde_json::to_vec_pretty(cp).map_err(io::Error::other)?;
                write_atomically(&Self::path(dir, cp.instance_id())?, &bytes)
            }
            Store::Memory(table) => {
                Self::table(table).insert(cp.instance_id().clone(), cp.clone());
                Ok(())
            }
        }
    }

    /// Reads one task's checkpoint.
    pub fn load(&self, id: &InstanceId) -> Result<Checkpoint, String> {
        match &self.store {
            Store::Dir(dir) => load(&Self::path(dir, id).map_err(|e| e.to_string())?),
            Store::Memory(table) => Self::table(table)
                .get(id)
                .cloned()
                .ok_or_else(|| format!("no checkpoint of task {id}")),
        }
    }

    /// Removes a task's checkpoint (the task is over and the master knows it).
    pub fn remove(&self, id: &InstanceId) -> io::Result<()> {
        match &self.store {
            Store::Dir(dir) => match std::fs::remove_file(Self::path(dir, id)?) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            Store::Memory(table) => {
                Self::table(table).remove(id);
                Ok(())
            }
        }
    }

    /// Every checkpoint in the directory; unreadable ones come back as errors naming the file.
    pub fn load_all(&self) -> io::Result<Vec<Result<Checkpoint, String>>> {
        let dir = match &self.store {
            Store::Dir(dir) => dir,
            Store::Memory(table) => {
                return Ok(Self::table(table).values().cloned().map(Ok).collect());
            }
        };
        let mut out = Vec::new();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
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
