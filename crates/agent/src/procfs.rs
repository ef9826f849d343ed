//! What `/proc` tells about a process: whether it still exists and when it started.
//!
//! A pid alone is not an identity (pids are reused), so the agent pairs it with the process's
//! start time, `/proc/<pid>/stat` field 22 (clock ticks since boot), which a reused pid
//! cannot share.

use std::path::Path;

/// A process as the agent checkpoints it: pid plus start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessIdentity {
    /// The process id (also its process group id: tasks lead their own group).
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat`.
    pub start_time: u64,
}

/// The parts of `/proc/<pid>/stat` the agent reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Field 3: `R`, `S`, `D`, `Z` (zombie), …
    pub state: char,
    /// Field 22: start time in clock ticks after boot.
    pub start_time: u64,
}

/// Parses the text of `/proc/<pid>/stat`. The command name (field 2) is in parentheses and
/// may itself hold spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is field 3 (state), so field N is fields[N - 3].
    let state = fields.first()?.chars().next()?;
    let start_time = fields.get(22 - 3)?.parse().ok()?;
    Some(Stat { state, start_time })
}

/// Reads `/proc/<pid>/stat`; `None` when there is no such process.
pub fn stat(pid: u32) -> Option<Stat> {
    stat_in(Path::new("/proc"), pid)
}

fn stat_in(proc_root: &Path, pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    parse_stat(&text)
}

/// The identity of a live process, `None` when it is gone or a zombie.
pub fn identity(pid: u32) -> Option<ProcessIdentity> {
    let s = stat(pid)?;
    (s.state != 'Z').then_some(ProcessIdentity {
        pid,
        start_time: s.start_time,
    })
}

/// True when the process `id` names is still running (same pid, same start time, not a zombie).
pub fn is_running(id: ProcessIdentity) -> bool {
    identity(id.pid) == Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_state_and_start_time_past_a_tricky_command_name() {
        let line = "4242 (we ird) (name)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.start_time, 987654);
    }

    #[test]
    fn refuses_truncated_text() {
        assert_eq!(parse_stat("1 (init) S 0 1"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_running_and_a_different_start_time_is_not() {
        let me = identity(std::process::id()).unwrap();
        assert!(is_running(me));
        assert!(!is_running(ProcessIdentity {
            start_time: me.start_time + 1,
            ..me
        }));
    }
}
