//! Per-test directories, log files, and one-shot runs of the binary.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{POLL, TAIL_LINES};
/// A directory under the system temp dir, unique to one cluster, removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    /// Creates `$TMPDIR/drover-tests/<name>-<pid>-<nanos>-<n>`.
    pub fn new(name: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir()
            .join("drover-tests")
            .join(format!("{name}-{}-{nanos}-{n}", std::process::id()));
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("create temp dir {}: {e}", path.display()));
        let keep = std::env::var_os("DROVER_TEST_KEEP").is_some();
        TempDir { path, keep }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("kept test dir {} (DROVER_TEST_KEEP)", self.path.display());
            return;
        }
        if std::thread::panicking() {
            eprintln!(
                "test failed: removing {}; set DROVER_TEST_KEEP=1 to keep data dirs and logs",
                self.path.display()
            );
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Runs `cmd` to its exit (killing it after `timeout`) and returns status, stdout, stderr.
pub fn run_to_exit(mut cmd: Command, timeout: Duration) -> (ExitStatus, String, String) {
    let dir = TempDir::new("run");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let out = File::create(&out_path).expect("create stdout file");
    let err = File::create(&err_path).expect("create stderr file");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{cmd:?} still running after {timeout:?}\n--- stdout\n{}\n--- stderr\n{}",
                    tail(&out_path, TAIL_LINES),
                    tail(&err_path, TAIL_LINES)
                );
            }
            Err(e) => panic!("wait for {cmd:?}: {e}"),
        }
    };
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    (status, stdout, stderr)
}

/// The last `n` lines of a file, or a note why there are none.
pub fn tail(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = strip_ansi(&String::from_utf8_lossy(&bytes));
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// `text` without ANSI escape sequences (colours in log lines), for reading and matching.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, then one final byte in '@'..='~'.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(ch);
        }
    }
    out
}

/// The state letter of a process in `/proc/<pid>/stat` (R, S, T for stopped, Z for
/// exited but not reaped yet), if it can be read.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: the state follows ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}
