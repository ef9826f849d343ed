//! Removal of ended tasks' sandboxes, so that churn cannot fill the work dir's disk: at most
//! [`Retention::max_count`] sandboxes of ended tasks are kept, none longer than
//! [`Retention::max_age`] after its task ended. Sandboxes of active tasks are never touched.
//! Each sweep also measures the work dir's disk use, which heartbeats report.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use state::InstanceId;
use state::protocol::DiskUse;

use crate::checkpoint::Checkpoints;
use crate::clock::now_ms;
use crate::machine::fs_space;
use crate::supervisor::Supervisor;
use crate::work_dir::WorkDir;

/// How many sandboxes of ended tasks are kept, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Most sandboxes of ended tasks kept (the most recently ended ones).
    pub max_count: usize,
    /// Longest a sandbox is kept after its task ended.
    pub max_age: Duration,
}

/// Default of `--sandbox-retention-count`.
pub const DEFAULT_MAX_COUNT: usize = 20;

/// Default of `--sandbox-retention-age`: an hour, time enough to read a failed task's logs.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_count: DEFAULT_MAX_COUNT,
            max_age: DEFAULT_MAX_AGE,
        }
    }
}

impl Retention {
    /// How often sandboxes are swept besides after every task end: often enough that none
    /// outlives `max_age` by more than a tenth of it (between 1 s and a minute).
    pub fn sweep_interval(&self) -> Duration {
        (self.max_age / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
    }
}

/// Which sandboxes of ended tasks to remove, given each one's end (ms since the Unix epoch)
/// and the time now: those older than `max_age`, and beyond the `max_count` most recent.
pub fn to_remove(ended: &[(InstanceId, u64)], now_ms: u64, policy: &Retention) -> Vec<InstanceId> {
    let mut newest_first: Vec<&(InstanceId, u64)> = ended.iter().collect();
    // Ties broken by id, so the choice does not depend on the listing order.
    newest_first.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let max_age_ms = u64::try_from(policy.max_age.as_millis()).unwrap_or(u64::MAX);
    newest_first
        .into_iter()
        .enumerate()
        .filter(|(rank, (_, at))| {
            *rank >= policy.max_count || now_ms.saturating_sub(*at) > max_age_ms
        })
        .map(|(_, (id, _))| id.clone())
        .collect()
}

/// Sweeps the sandboxes now and then, and after every task end; keeps `disk` current.
/// Returns once `stop` changes, after the sweep under way (which holds the work dir).
pub async fn run(
    supervisor: Supervisor,
    work_dir: Arc<WorkDir>,
    policy: Retention,
    disk: Arc<Mutex<Option<DiskUse>>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (supervisor2, work_dir2) = (supervisor.clone(), work_dir.clone());
        let swept =
            tokio::task::spawn_blocking(move || sweep(&supervisor2, &work_dir2, &policy)).await;
        match swept {
            Ok(Ok(use_now)) => *disk.lock().unwrap_or_else(|p| p.into_inner()) = Some(use_now),
            Ok(Err(e)) => tracing::warn!(
                "cannot sweep the sandboxes in {}: {e}",
                work_dir.sandboxes_dir().display()
            ),
            Err(e) => tracing::warn!("the sandbox sweep stopped: {e}"),
        }
        tokio::select! {
            biased;
            () = supervisor.task_ended() => {}
            () = tokio::time::sleep(policy.sweep_interval()) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Removes the sandboxes `policy` no longer keeps; returns the work dir's disk use after.
pub fn sweep(
    supervisor: &Supervisor,
    work_dir: &WorkDir,
    policy: &Retention,
) -> io::Result<DiskUse> {
    let dir = work_dir.sandboxes_dir();
    // Listed before the active tasks are asked for: a task starting meanwhile makes its
    // sandbox after it is active, so every sandbox listed here of a live task is protected.
    let mut listed = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            listed.push((
                InstanceId(entry.file_name().to_string_lossy().into_owned()),
                entry.path(),
            ));
        }
    }
    let active = supervisor.running();
    let checkpoints = &supervisor.context().checkpoints;
    let ended: Vec<(InstanceId, u64)> = listed
        .iter()
        .filter(|(id, _)| active.binary_search(id).is_err())
        .map(|(id, path)| (id.clone(), ended_at_ms(checkpoints, id, path)))
        .collect();
    let remove = to_remove(&ended, now_ms(), policy);
    for id in &remove {
        let path = dir.join(&id.0);
        match std::fs::remove_dir_all(&path) {
            Ok(()) => tracing::info!("removed the sandbox of ended task {id}"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot remove the sandbox {}: {e}", path.display()),
        }
    }
    let space = fs_space(work_dir.root())?;
    Ok(DiskUse {
        work_dir_bytes: disk_usage(work_dir.root()),
        sandboxes: (listed.len() - remove.len()) as u64,
        available_bytes: space.available,
        total_bytes: space.total,
    })
}

/// When a task ended: its checkpoint says, while it is kept; else the last change in its
/// sandbox (the checkpoint goes once the masters have forgotten the task).
fn ended_at_ms(checkpoints: &Checkpoints, id: &InstanceId, sandbox: &Path) -> u64 {
    if let Some(at) = checkpoints
        .load(id)
        .ok()
        .and_then(|cp| cp.terminal.map(|t| t.at_ms))
    {
        return at;
    }
    let modified = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    };
    ["", "stdout", "stderr"]
        .iter()
        .map(|f| modified(&sandbox.join(f)))
        .max()
        .unwrap_or(0)
}

/// Bytes of disk the files under `root` take (allocated blocks, not apparent sizes);
/// symbolic links are not followed, unreadable entries are skipped.
fn disk_usage(root: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0u64;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            total = total.saturating_add(meta.blocks().saturating_mul(512));
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::SystemTime;

    const MIN: u64 = 60_000;

    fn ids(v: &[InstanceId]) -> Vec<&str> {
        let mut out: Vec<&str> = v.iter().map(|i| i.0.as_str()).collect();
        out.sort_unstable();
        out
    }

    fn ended(list: &[(&str, u64)]) -> Vec<(InstanceId, u64)> {
        list.iter()
            .map(|(id, at)| (InstanceId::from(*id), *at))
            .collect()
    }

    #[test]
    fn beyond_the_count_the_oldest_ends_go_first() {
        let policy = Retention {
            max_count: 2,
            max_age: Duration::from_secs(3600),
        };
        let now = 100 * MIN;
        let list = ended(&[
            ("c", now - 3 * MIN),
            ("a", now - MIN),
            ("b", now - 2 * MIN),
            ("d", now - 4 * MIN),
        ]);
        assert_eq!(ids(&to_remove(&list, now, &policy)), ["c", "d"]);
    }

    #[test]
    fn older_than_the_age_goes_even_within_the_count() {
        let policy = Retention {
            max_count: 20,
            max_age: Duration::from_secs(600),
        };
        let now = 100 * MIN;
        let list = ended(&[
            ("young", now - 9 * MIN),
            ("edge", now - 10 * MIN),
            ("old", now - 11 * MIN),
        ]);
        assert_eq!(ids(&to_remove(&list, now, &policy)), ["old"]);
    }

    #[test]
    fn a_count_of_zero_keeps_nothing_and_nothing_ended_removes_nothing() {
        let none = Retention {
            max_count: 0,
            max_age: Duration::from_secs(3600),
        };
        let list = ended(&[("a", 5), ("b", 6)]);
        assert_eq!(ids(&to_remove(&list, 10, &none)), ["a", "b"]);
        assert!(to_remove(&[], 10, &Retention::default()).is_empty());
    }

    #[test]
    fn an_end_in_the_future_is_kept_and_ties_break_by_id() {
        let policy = Retention {
            max_count: 1,
            max_age: Duration::from_secs(1),
        };
        // A clock that stepped back: the end looks later than now; it is not "old".
        let list = ended(&[("b", 50), ("a", 50)]);
        assert_eq!(ids(&to_remove(&list, 10, &policy)), ["b"]);
    }

    #[test]
    fn a_sweep_keeps_the_most_recently_ended_within_the_age() {
        let tmp = tempfile::tempdir().unwrap();
        let work_dir = Arc::new(WorkDir::open(tmp.path()).unwrap());
        let supervisor = Supervisor::new(crate::supervisor::TaskContext {
            hostname: "h".into(),
            ip: "127.0.0.1".into(),
            work_dir: work_dir.clone(),
            checkpoints: Checkpoints::new(work_dir.tasks_dir()),
            make_sandboxes: true,
            outbox: Arc::new(crate::outbox::Outbox::new()),
            executors: crate::executor::Executors::host(
                crate::executor::ContainerRuntime::unavailable("test"),
            ),
        });
        let now = SystemTime::now();
        for (name, minutes_ago) in [("old", 30), ("older", 40), ("new", 1)] {
            let dir = work_dir.sandboxes_dir().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            for f in ["stdout", "stderr"] {
                let mut file = std::fs::File::create(dir.join(f)).unwrap();
                file.write_all(b"output").unwrap();
                file.set_modified(now - Duration::from_secs(60 * minutes_ago))
                    .unwrap();
            }
            std::fs::File::open(&dir)
                .unwrap()
                .set_modified(now - Duration::from_secs(60 * minutes_ago))
                .unwrap();
        }
        let policy = Retention {
            max_count: 2,
            max_age: Duration::from_secs(35 * 60),
        };
        let use_now = sweep(&supervisor, &work_dir, &policy).unwrap();
        let left: Vec<String> = std::fs::read_dir(work_dir.sandboxes_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(left, ["new", "old"]);
        assert_eq!(use_now.sandboxes, 2);
        assert!(use_now.work_dir_bytes > 0 && use_now.total_bytes >= use_now.available_bytes);
    }

    #[test]
    fn the_sweep_interval_follows_the_age_within_bounds() {
        let at = |secs| Retention {
            max_count: 1,
            max_age: Duration::from_secs(secs),
        };
        assert_eq!(at(0).sweep_interval(), Duration::from_secs(1));
        assert_eq!(at(100).sweep_interval(), Duration::from_secs(10));
        assert_eq!(at(3600).sweep_interval(), Duration::from_secs(60));
    }
}
