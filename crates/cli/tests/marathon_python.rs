//! A real Marathon client drives a live drover (issue 14, scope 10): marathon-python, pinned
//! and installed from PyPI into a virtual environment this test makes (cached under
//! `target/tmp/`), runs `marathon_python/client_calls.py` against real `drover master` and
//! `drover agent` processes on loopback: apps listed (with filters and embeds), created,
//! updated, scaled, restarted, rolled back by cancelling a deployment, bulk-updated and
//! deleted; tasks listed and killed (replaced, and with scale); deployments, the queue, the
//! leader and the event stream; groups created, listed, read, scaled, updated and deleted.
//!
//! Needs `python3` with `venv` and access to PyPI (the first run); without them the test
//! fails saying so. A failure of the script is a failure of drover: its output and every
//! process's log are shown.

mod agent_support;
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use agent_support::{SETTLE, Site};
use common::run_to_exit;

/// The client under test: the latest marathon-python on PyPI.
const MARATHON_PYTHON: &str = "marathon==0.13.0";

/// Bound for making the venv and installing the client (a network download the first time).
const INSTALL: Duration = Duration::from_secs(300);

/// Bound for the whole script: a liveness bound for a loaded 2-core machine, not a speed
/// assertion (each of its waits has its own bound).
const SCRIPT: Duration = Duration::from_secs(900);

/// A virtual environment with [`MARATHON_PYTHON`] installed; made once and kept in
/// `target/tmp/`, so later runs need no network.
fn client_venv() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("marathon-python-0.13.0");
    let python = dir.join("bin/python");
    let installed = |python: &Path| {
        Command::new(python)
            .args(["-c", "import marathon, requests"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if installed(&python) {
        return python;
    }
    let mut venv = Command::new("python3");
    venv.args(["-m", "venv", "--clear"]).arg(&dir);
    let (status, out, err) = run_to_exit(venv, INSTALL);
    assert!(
        status.success(),
        "python3 -m venv {} failed ({status}): this test needs python3 with venv\n{out}\n{err}",
        dir.display()
    );
    let mut pip = Command::new(&python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ])
    .arg(MARATHON_PYTHON);
    let (status, out, err) = run_to_exit(pip, INSTALL);
    assert!(
        status.success(),
        "pip install {MARATHON_PYTHON} failed ({status}): this test needs PyPI the first time\n{out}\n{err}"
    );
    assert!(
        installed(&python),
        "{MARATHON_PYTHON} was installed but does not import"
    );
    python
}

#[test]
fn marathon_python_drives_apps_tasks_deployments_queue_leader_and_events() {
    let python = client_venv();
    let mut s = Site::new("marathon-python", 1);
    s.start_masters();
    for n in 0..2 {
        // Hostnames that are the agents' addresses, as DC/OS names its agents.
        let ip = format!("127.0.1.{}", n + 1);
        let a = s.add_agent(&ip, "local", &format!("local-{n}"));
        s.start_agent_active(a);
    }
    let leader = s.masters.wait_for_leader(SETTLE);
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/marathon_python/client_calls.py");
    let mut cmd = Command::new(&python);
    cmd.arg(&script)
        .env("DROVER_URL", format!("http://{leader}"))
        .env("SETTLE_SECONDS", SETTLE.as_secs().to_string())
        .env("PYTHONUNBUFFERED", "1");
    let (status, out, err) = run_to_exit(cmd, SCRIPT);
    if !status.success() || !out.lines().any(|l| l == "OK") {
        s.fail(&format!(
            "marathon-python against drover failed ({status})\n--- script stdout\n{out}\n--- script stderr\n{err}"
        ));
    }
}

#[test]
fn marathon_python_works_with_an_acl_token_and_is_refused_without_one() {
    let python = client_venv();
    let mut masters = common::Cluster::new("marathon-python-token", 1);
    masters.insecure = false;
    masters.start_all();
    let leader = common::acl::wait_for_leader(&masters);
    let management = common::acl::bootstrap(&leader);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/marathon_python/token_calls.py");
    let mut cmd = Command::new(&python);
    // HTTPS with the cluster CA: marathon-python verifies through requests, which trusts
    // the bundle REQUESTS_CA_BUNDLE names (the client passes `verify=True` through).
    cmd.arg(&script)
        .env("DROVER_URL", format!("https://{leader}"))
        .env("REQUESTS_CA_BUNDLE", common::secure::ca_file(&masters))
        .env("DROVER_TOKEN", &management)
        .env("PYTHONUNBUFFERED", "1");
    let (status, out, err) = run_to_exit(cmd, SCRIPT);
    if !status.success() || !out.lines().any(|l| l == "OK") {
        masters.fail(&format!(
            "marathon-python with a token failed ({status})\n--- script stdout\n{out}\n--- script stderr\n{err}"
        ));
    }
}
