//! What `/proc` says about the task processes the agents start: are they alive, which
//! environment do they run with, and how to end them when a test is over.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, getpgrp};
use serde_json::Value;

/// A process as an agent checkpoints it: pid plus start time (pids are reused; a pid with
/// another start time is another process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TaskProcess {
    /// The process id (tasks lead their own process group, so also the group id).
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat`.
    pub start_time: u64,
}

impl TaskProcess {
    /// True while this very process exists and has not exited (a zombie counts as exited).
    pub fn is_alive(&self) -> bool {
        stat(self.pid).is_some_and(|s| s.state != 'Z' && s.start_time == self.start_time)
    }

    /// The process as it is now, when `pid` is alive.
    pub fn of(pid: u32) -> Option<Self> {
        let s = stat(pid)?;
        (s.state != 'Z').then_some(TaskProcess {
            pid,
            start_time: s.start_time,
        })
    }
}

/// The fields of `/proc/<pid>/stat` the tests read.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    /// Field 3: R, S, T (stopped), Z (zombie), …
    pub state: char,
    /// Field 5: the process group.
    pub pgrp: i32,
    /// Field 22: start time in clock ticks after boot.
    pub start_time: u64,
}

/// `/proc/<pid>/stat`, if the process exists.
pub fn stat(pid: u32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count fields after the last ')'.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(5 - 3)?.parse().ok()?,
        start_time: fields.get(22 - 3)?.parse().ok()?,
    })
}

/// The environment of a live process (empty when it cannot be read).
pub fn environ(pid: u32) -> BTreeMap<String, String> {
    let Ok(bytes) = fs::read(format!("/proc/{pid}/environ")) else {
        return BTreeMap::new();
    };
    bytes
        .split(|b| *b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Every live process whose environment has `key=value`.
pub fn processes_with_env(key: &str, value: &str) -> Vec<u32> {
    processes_where(|env| env.get(key).is_some_and(|v| v == value))
}

/// Every live (not zombie) process whose environment satisfies `pred`.
pub fn processes_where(pred: impl Fn(&BTreeMap<String, String>) -> bool) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| stat(pid).is_some_and(|s| s.state != 'Z'))
        .filter(|&pid| pred(&environ(pid)))
        .collect();
    pids.sort_unstable();
    pids
}

/// One task checkpoint of an agent (`WORK_DIR/tasks/<instance-id>.json`), the fields the
/// tests read.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The instance id.
    pub instance_id: String,
    /// The task's sandbox.
    pub sandbox: PathBuf,
    /// Its process, once started.
    pub process: Option<TaskProcess>,
    /// Its terminal status, once it ended.
    pub terminal: Option<Value>,
}

/// Every readable checkpoint in `work_dir/tasks`, sorted by instance id.
pub fn checkpoints(work_dir: &Path) -> Vec<Checkpoint> {
    let Ok(entries) = fs::read_dir(work_dir.join("tasks")) else {
        return Vec::new();
    };
    let mut out: Vec<Checkpoint> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .filter_map(|p| {
            let v: Value = serde_json::from_slice(&fs::read(&p).ok()?).ok()?;
            let process = v["process"]["pid"].as_u64().and_then(|pid| {
                Some(TaskProcess {
                    pid: u32::try_from(pid).ok()?,
                    start_time: v["process"]["start_time"].as_u64()?,
                })
            });
            Some(Checkpoint {
                instance_id: v["assignment"]["instance_id"].as_str()?.to_string(),
                sandbox: PathBuf::from(v["sandbox"].as_str().unwrap_or_default()),
                process,
                terminal: Some(v["terminal"].clone()).filter(|t| !t.is_null()),
            })
        })
        .collect();
    out.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    out
}

/// SIGKILLs the process group of `p` (the task and everything it started) if `p` is still
/// the same process; never this test's own group.
pub fn kill_group(p: TaskProcess) {
    let Some(s) = stat(p.pid).filter(|s| s.start_time == p.start_time) else {
        return;
    };
    let Ok(pid) = i32::try_from(p.pid) else {
        return;
    };
    if s.pgrp > 1 && s.pgrp != getpgrp().as_raw() {
        let _ = killpg(Pid::from_raw(s.pgrp), Signal::SIGKILL);
    }
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

/// Ends every task started under `dir`: the processes named by the checkpoints of the agents'
/// work dirs in `work_dirs`, and any process whose `MESOS_SANDBOX` lies under `dir` (which
/// also finds tasks whose checkpoint is gone).
pub fn kill_tasks_under(dir: &Path, work_dirs: &[PathBuf]) {
    for wd in work_dirs {
        for cp in checkpoints(wd) {
            if let Some(p) = cp.process {
                kill_group(p);
            }
        }
    }
    // Agents canonicalize their work dirs, so sandboxes are named by canonical paths.
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let dir = dir.to_string_lossy().into_owned();
    for pid in processes_where(|env| {
        env.get("MESOS_SANDBOX")
            .is_some_and(|s| s.starts_with(dir.as_str()))
    }) {
        if let Some(p) = TaskProcess::of(pid) {
            kill_group(p);
        }
    }
}
