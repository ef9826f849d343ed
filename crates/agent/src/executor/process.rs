//! The process executor: a task is a process group on this host, started in its sandbox
//! with `/bin/sh -c cmd` (or `args` directly), stdout and stderr written to files there.
//!
//! Tasks lead their own process group, so a signal meant for the agent (Ctrl-C in its
//! terminal, a supervisor's SIGTERM) never reaches them, and a stop reaches everything the
//! task started. The agent never kills tasks when it exits: a restarted agent finds them
//! again by their checkpointed pid and start time.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use state::protocol::TaskAssignment;
use tokio::process::Child;

use super::{Exit, StopSignal};
use crate::procfs::{self, ProcessIdentity};

/// How often a task found again after a restart is checked for exit.
pub const ADOPTED_POLL: Duration = Duration::from_millis(250);

/// A task's process group.
#[derive(Debug)]
pub struct ProcessTask {
    identity: ProcessIdentity,
    /// Set when this agent process started the task (it can read the exit status).
    child: Option<Child>,
    /// Set once the process has been waited for (its pid may be reused after that).
    exited: bool,
}

/// Starts a task's process in `sandbox` with exactly the environment `env`.
pub fn spawn(
    assignment: &TaskAssignment,
    sandbox: &Path,
    env: &BTreeMap<String, String>,
) -> Result<ProcessTask, String> {
    let app = &assignment.app;
    let mut command = match (&app.cmd, &app.args) {
        (Some(cmd), _) => {
            let mut c = tokio::process::Command::new("/bin/sh");
            c.arg("-c").arg(cmd);
            c
        }
        (None, Some(args)) if !args.is_empty() => {
            let mut c = tokio::process::Command::new(&args[0]);
            c.args(&args[1..]);
            c
        }
        _ => return Err("the app has neither cmd nor args to run".to_string()),
    };
    let open = |name: &str| {
        let path = sandbox.join(name);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))
    };
    command
        .env_clear()
        .envs(env)
        .current_dir(sandbox)
        .stdin(Stdio::null())
        .stdout(open("stdout")?)
        .stderr(open("stderr")?)
        .process_group(0)
        .kill_on_drop(false);
    let child = command.spawn().map_err(|e| match (&app.cmd, &app.args) {
        (None, Some(args)) => format!("cannot start `{}`: {e}", args[0]),
        _ => format!("cannot start /bin/sh: {e}"),
    })?;
    let pid = child
        .id()
        .ok_or_else(|| "the process exited before its pid was known".to_string())?;
    // A process that already exited is a zombie until waited for: its stat is still there.
    let start_time = procfs::stat(pid)
        .map(|s| s.start_time)
        .ok_or_else(|| format!("cannot read /proc/{pid}/stat of the new process"))?;
    Ok(ProcessTask {
        identity: ProcessIdentity { pid, start_time },
        child: Some(child),
        exited: false,
    })
}

impl ProcessTask {
    /// Takes over a task an earlier agent process started, if it is still running.
    pub fn adopt(identity: ProcessIdentity) -> Option<Self> {
        procfs::is_running(identity).then_some(ProcessTask {
            identity,
            child: None,
            exited: false,
        })
    }

    /// The process's identity, for the checkpoint.
    pub fn identity(&self) -> ProcessIdentity {
        self.identity
    }

    /// Waits for the group leader to exit.
    pub async fn wait(&mut self) -> Exit {
        let exit = match self.child.as_mut() {
            Some(child) => match child.wait().await {
                Ok(status) => {
                    use std::os::unix::process::ExitStatusExt;
                    match (status.code(), status.signal()) {
                        (Some(code), _) => Exit::Code(code),
                        (None, Some(sig)) => Exit::Signal(sig),
                        (None, None) => Exit::Unknown(format!("ended ({status})")),
                    }
                }
                Err(e) => Exit::Unknown(format!("cannot be waited for: {e}")),
            },
            None => {
                while procfs::is_running(self.identity) {
                    tokio::time::sleep(ADOPTED_POLL).await;
                }
                Exit::Unknown(
                    "exited after an agent restart; the restarted agent is not its parent, so its exit code is unknown"
                        .to_string(),
                )
            }
        };
        self.exited = true;
        exit
    }

    /// Signals the task's process group. Before the leader exits, an adopted task is checked
    /// to still be the same process, so a reused pid is never signalled.
    pub fn signal(&self, signal: StopSignal) {
        if !self.exited && self.child.is_none() && !procfs::is_running(self.identity) {
            return;
        }
        let Ok(pid) = i32::try_from(self.identity.pid) else {
            return;
        };
        let sig = match signal {
            StopSignal::Term => Signal::SIGTERM,
            StopSignal::Kill => Signal::SIGKILL,
        };
        // ESRCH: the group is already empty.
        let _ = killpg(Pid::from_raw(pid), sig);
    }
}
