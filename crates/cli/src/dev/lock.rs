//! One `drover dev` per data dir: `DATA_DIR/dev.lock` is locked (flock) while a dev runs and
//! holds its pid. The kernel drops the lock when that dev dies, however it dies, so a lock
//! left by a dead dev is simply taken over.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::Path;

/// The data dir, locked for this dev.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// The lock file's name inside the data dir.
pub const LOCK_FILE: &str = "dev.lock";

impl DataDirLock {
    /// Creates the data dir if needed and locks it, or says which dev uses it. Touches
    /// nothing else in the dir.
    pub fn acquire(data_dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("cannot create the data dir {}: {e}", data_dir.display()))?;
        let path = data_dir.join(LOCK_FILE);
        let cannot = |e: std::io::Error| format!("cannot lock {}: {e}", path.display());
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(cannot)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(in_use(data_dir, &path, &mut file)),
            Err(TryLockError::Error(e)) => return Err(cannot(e)),
        }
        file.set_len(0).map_err(cannot)?;
        file.rewind().map_err(cannot)?;
        writeln!(file, "{}", std::process::id()).map_err(cannot)?;
        Ok(DataDirLock { _file: file })
    }
}

/// The refusal, naming the dev that holds the lock.
fn in_use(data_dir: &Path, path: &Path, file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let who = match text.trim().parse::<u32>() {
        Ok(pid) => format!("another drover dev (pid {pid}) uses the data dir"),
        // It has locked the file and not written its pid yet.
        Err(_) => "another drover dev, starting this very moment, uses the data dir".to_string(),
    };
    format!(
        "{who} {} (it holds {}); stop that one first (Ctrl-C in its terminal), or give this one another --data-dir",
        data_dir.display(),
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_dir_is_refused_naming_the_holder_and_a_released_one_is_taken_over()
    {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let e = DataDirLock::acquire(dir.path()).unwrap_err();
        assert!(
            e.contains(&format!("pid {}", std::process::id()))
                && e.contains(&dir.path().display().to_string())
                && e.contains("--data-dir"),
            "{e}"
        );
        drop(first);
        let _again = DataDirLock::acquire(dir.path()).unwrap();
        let pid = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
    }
}
