//! Where a node learns its fault domain: `--domain JSON` or `--fault-domain-detect PATH`.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use domain::FaultDomain;
use domain::fault_domain::DETECT_OUTPUT_EXAMPLE;

/// Reads the fault domain from the flag that was given.
pub fn fault_domain(domain: Option<&str>, script: Option<&Path>) -> Result<FaultDomain, String> {
    match (domain, script) {
        (Some(json), None) => FaultDomain::parse(json).map_err(|e| format!("--domain: {e}")),
        (None, Some(path)) => run_detect_script(path),
        (Some(_), Some(_)) => Err("give either --domain or --fault-domain-detect, not both".into()),
        (None, None) => Err(format!(
            "no fault domain: give --fault-domain-detect PATH (a script that prints {DETECT_OUTPUT_EXAMPLE}) or --domain JSON"
        )),
    }
}

/// How long a fault domain detect script may run before it is killed (with everything it
/// started in its process group) and the node refuses to start.
pub const DETECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a detect script once and parses what it prints; a script still running after
/// [`DETECT_TIMEOUT`] is killed.
pub fn run_detect_script(path: &Path) -> Result<FaultDomain, String> {
    run_detect_script_within(path, DETECT_TIMEOUT)
}

/// [`run_detect_script`] with a time limit of `timeout`.
pub fn run_detect_script_within(path: &Path, timeout: Duration) -> Result<FaultDomain, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("fault domain detect script {shown} cannot be read: {e}"))?;
    {
        use std::os::unix::fs::PermissionsExt;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(format!(
                "fault domain detect script {shown} is not an executable file; make it executable (chmod +x {shown})"
            ));
        }
    }
    let mut child = Command::new(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: a timeout kills what it started too (a hung `curl`, a `sleep`).
        .process_group(0)
        .spawn()
        .map_err(|e| format!("fault domain detect script {shown} could not be run: {e}"))?;
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                if let Ok(pid) = i32::try_from(child.id()) {
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                }
                let _ = child.wait();
                return Err(format!(
                    "fault domain detect script {shown} did not finish within {} s and was killed; it must print the fault domain JSON and exit (check what it waits for, e.g. a metadata service that does not answer)",
                    timeout.as_secs_f64()
                ));
            }
            Err(e) => {
                return Err(format!(
                    "fault domain detect script {shown} cannot be waited for: {e}"
                ));
            }
        }
    };
    // What it left running in the background may hold the pipes open: wait no longer than
    // the time that is left.
    let left = deadline.saturating_duration_since(Instant::now());
    let stdout = stdout.recv_timeout(left).unwrap_or_default();
    let stderr = stderr
        .recv_timeout(Duration::from_millis(100))
        .unwrap_or_default();
    if !status.success() {
        let stderr = String::from_utf8_lossy(&stderr);
        return Err(format!(
            "fault domain detect script {shown} failed ({status}); its stderr:\n{}",
            stderr.trim_end()
        ));
    }
    let stdout = String::from_utf8_lossy(&stdout);
    FaultDomain::parse(stdout.trim()).map_err(|e| {
        format!("fault domain detect script {shown} printed something drover cannot use: {e}")
    })
}

/// Reads a pipe to its end on a thread; the bytes arrive on the channel.
fn read_all(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
    }
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, body: &str) -> std::path::PathBuf {
        let path = dir.join("detect");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_hanging_script_is_killed_with_its_children_and_named() {
        let tmp = tempfile::tempdir().unwrap();
        let marker = tmp.path().join("child-pid");
        let path = script(
            tmp.path(),
            &format!("sleep 1000 & echo $! > {}; wait", marker.display()),
        );
        let e = run_detect_script_within(&path, Duration::from_millis(500)).unwrap_err();
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("did not finish within 0.5 s"), "{e}");
        let child: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Killed with its group (a zombie until init reaps it counts as gone); SIGKILL is
        // delivered asynchronously, so poll to a deadline.
        let alive = || {
            let state = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            let running = state
                .rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'));
            running.then_some(state)
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(state) = alive() {
            assert!(
                Instant::now() < deadline,
                "the script's child {child} still runs: {state}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_quick_script_is_read() {
        let tmp = tempfile::tempdir().unwrap();
        let path = script(
            tmp.path(),
            r#"echo '{"fault_domain":{"region":{"name":"r1"},"zone":{"name":"z1"}}}'"#,
        );
        let d = run_detect_script_within(&path, Duration::from_secs(30)).unwrap();
        assert_eq!((d.region.as_str(), d.zone.as_str()), ("r1", "z1"));
    }
}
