//! Health checks, run on the agent next to each task, with Marathon's semantics:
//!
//! - the first check runs `delaySeconds` after the task starts, then one every
//!   `intervalSeconds`; a check slower than `timeoutSeconds` fails;
//! - failures before the first success and within `gracePeriodSeconds` of the start do not
//!   count;
//! - `maxConsecutiveFailures` failures in a row mean the task should be killed (the
//!   scheduler decides; the agent reports `should_kill`). 0 never kills for `HTTP`, `HTTPS`
//!   and `TCP`; for the Mesos-level protocols (`MESOS_*`, `COMMAND`) Marathon documents
//!   that 0 kills at the first counted failure, and so it does here;
//! - HTTP(S): 200–399 healthy, 1xx neither healthy nor unhealthy with `ignoreHttp1xx`;
//!   HTTPS does not verify the certificate; TCP: a connect; COMMAND: `/bin/sh -c` in the
//!   sandbox with the task's environment, exit 0.
//!
//! Where a check reaches the task follows Marathon's documentation: Marathon-level checks
//! (`HTTP`, `HTTPS`, `TCP`) reach it at its host, which is also the task's `$HOST` (see
//! [`task_host`]: the agent's advertised IP), so a task that binds `$HOST:$PORT0` is
//! healthy;
//! Mesos-level checks (`MESOS_HTTP`, `MESOS_HTTPS`, `MESOS_TCP`) run next to the task and,
//! for host networking, reach it on the loopback interface (127.0.0.1), which Marathon
//! documents as a requirement of those protocols.
//!
//! A task with several checks is healthy when every check is; it is reported only when its
//! verdict (healthy, or should be killed) changes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::app::{HealthCheck, HealthProtocol};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use state::protocol::HealthReport;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::clock::now_ms;

pub mod http;
mod tls;

use http::Scheme;
#[cfg(test)]
use http::status_code;

/// Where Mesos-level checks reach a task with host networking: the loopback interface.
pub const MESOS_CHECK_HOST: &str = "127.0.0.1";

/// One probe's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The check passed.
    Healthy,
    /// The check failed, and why.
    Unhealthy(String),
    /// Neither (an HTTP 1xx answer with `ignoreHttp1xx`).
    Ignored,
}

/// What a check probes: the task's address and ports, and for commands its environment and
/// sandbox.
#[derive(Debug, Clone)]
pub struct Target {
    /// The task's host, where Marathon-level checks reach it: its `$HOST` ([`task_host`]).
    pub host: String,
    /// The task's host ports, in port-definition order.
    pub ports: Vec<u64>,
    /// The task's environment (COMMAND checks).
    pub env: BTreeMap<String, String>,
    /// The task's sandbox (COMMAND checks run there).
    pub sandbox: PathBuf,
}

fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

/// True for the protocols Mesos runs next to the task rather than Marathon from afar.
pub fn is_mesos_level(check: &HealthCheck) -> bool {
    check.protocol == HealthProtocol::Command || check.protocol_name.starts_with("MESOS_")
}

/// The address a port check of `check` connects to (see the module documentation).
pub fn probe_host<'a>(check: &HealthCheck, target: &'a Target) -> &'a str {
    if is_mesos_level(check) {
        MESOS_CHECK_HOST
    } else {
        &target.host
    }
}

/// Runs one probe of `check` against `target`, bounded by the check's timeout.
pub async fn probe(check: &HealthCheck, target: &Target) -> Verdict {
    let timeout = seconds(check.timeout_seconds);
    if check.protocol == HealthProtocol::Command {
        let cmd = check.command.clone().unwrap_or_default();
        return probe_command(&cmd, target, timeout).await;
    }
    let port = match (check.port, check.port_index) {
        (Some(p), _) => u64::from(p),
        (None, Some(i)) => match target.ports.get(i as usize) {
            Some(p) => *p,
            None => {
                return Verdict::Unhealthy(format!(
                    "portIndex {i} names no port: the instance has {} port(s)",
                    target.ports.len()
                ));
            }
        },
        (None, None) => {
            return Verdict::Unhealthy("the health check names no port".to_string());
        }
    };
    let Ok(port) = u16::try_from(port) else {
        return Verdict::Unhealthy(format!("port {port} is not a TCP port"));
    };
    let host = probe_host(check, target);
    let run = async {
        let scheme = match check.protocol {
            HealthProtocol::Tcp => {
                return match TcpStream::connect((host, port)).await {
                    Ok(_) => Verdict::Healthy,
                    Err(e) => Verdict::Unhealthy(format!(
                        "TCP connect to {}: {e}",
                        url(check, host, port)
                    )),
                };
            }
            HealthProtocol::Http => Scheme::Http,
            HealthProtocol::Https => Scheme::Https,
            HealthProtocol::Command => {
                return Verdict::Unhealthy("a COMMAND check has no port".into());
            }
        };
        match http::get(scheme, host, port, &check.path, false).await {
            Ok(answer) => http_verdict(answer.status, check.ignore_http1xx),
            Err(e) => Verdict::Unhealthy(format!("GET {}: {e}", url(check, host, port))),
        }
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(v) => v,
        Err(_) => Verdict::Unhealthy(format!(
            "no answer from {} within timeoutSeconds ({}s)",
            url(check, host, port),
            check.timeout_seconds
        )),
    }
}

/// What a check reaches, for messages: `http://10.0.0.5:31000/health`, `10.0.0.5:31000`.
fn url(check: &HealthCheck, host: &str, port: u16) -> String {
    match check.protocol {
        HealthProtocol::Http => http::url(Scheme::Http, host, port, &check.path),
        HealthProtocol::Https => http::url(Scheme::Https, host, port, &check.path),
        _ => http::authority(host, port),
    }
}

/// Marathon's reading of a status code.
pub fn http_verdict(code: u16, ignore_1xx: bool) -> Verdict {
    match code {
        200..=399 => Verdict::Healthy,
        100..=199 if ignore_1xx => Verdict::Ignored,
        _ => Verdict::Unhealthy(format!("HTTP status {code}")),
    }
}

async fn probe_command(cmd: &str, target: &Target, timeout: Duration) -> Verdict {
    let mut command = tokio::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(cmd)
        .env_clear()
        .envs(&target.env)
        .current_dir(&target.sandbox)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return Verdict::Unhealthy(format!("command `{cmd}` could not run: {e}")),
    };
    let pid = child.id();
    let mut stderr = child.stderr.take();
    let run = async {
        // Keep the end of stderr: its last line says why the command failed.
        let mut err = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let mut chunk = [0u8; 1024];
            while let Ok(n @ 1..) = s.read(&mut chunk).await {
                err.extend_from_slice(&chunk[..n]);
                let excess = err.len().saturating_sub(4096);
                err.drain(..excess);
            }
        }
        (child.wait().await, err)
    };
    match tokio::time::timeout(timeout, run).await {
        Ok((Ok(status), _)) if status.success() => Verdict::Healthy,
        Ok((Ok(status), err)) => {
            let err = String::from_utf8_lossy(&err);
            let last = err.lines().last().unwrap_or("").trim();
            let mut cause = format!("command `{cmd}` {status}");
            if !last.is_empty() {
                cause.push_str(&format!(": {last}"));
            }
            Verdict::Unhealthy(cause)
        }
        Ok((Err(e), _)) => Verdict::Unhealthy(format!("command `{cmd}`: {e}")),
        Err(_) => {
            // The command's whole process group goes, not just its shell.
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            Verdict::Unhealthy(format!(
                "command `{cmd}` did not finish within timeoutSeconds ({}s)",
                timeout.as_secs_f64()
            ))
        }
    }
}

/// One check's record: its latest verdict and the failures in a row.
#[derive(Debug, Clone)]
pub struct CheckState {
    grace: Duration,
    max_failures: u32,
    /// Mesos-level checks kill at `maxConsecutiveFailures` even when it is 0.
    zero_kills: bool,
    ever_healthy: bool,
    /// The latest verdict that counted; `None` before one did.
    pub healthy: Option<bool>,
    /// Counted failures in a row.
    pub consecutive_failures: u32,
    /// Why the latest counted failure failed.
    pub last_failure_cause: Option<String>,
    /// When the check last ran, ms since the Unix epoch.
    pub checked_at_ms: u64,
}

impl CheckState {
    /// A check that has not run yet.
    pub fn new(check: &HealthCheck) -> Self {
        CheckState {
            grace: seconds(check.grace_period_seconds),
            max_failures: check.max_consecutive_failures,
            zero_kills: is_mesos_level(check),
            ever_healthy: false,
            healthy: None,
            consecutive_failures: 0,
            last_failure_cause: None,
            checked_at_ms: 0,
        }
    }

    /// Records a verdict reached `since_start` after the task started.
    pub fn record(&mut self, verdict: Verdict, since_start: Duration, at_ms: u64) {
        self.checked_at_ms = at_ms;
        match verdict {
            Verdict::Healthy => {
                self.ever_healthy = true;
                self.healthy = Some(true);
                self.consecutive_failures = 0;
            }
            Verdict::Ignored => {}
            Verdict::Unhealthy(_) if !self.ever_healthy && since_start < self.grace => {}
            Verdict::Unhealthy(cause) => {
                self.healthy = Some(false);
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.last_failure_cause = Some(cause);
            }
        }
    }

    /// True when the counted failures in a row reached `maxConsecutiveFailures`; when that is
    /// 0, never for Marathon-level checks and at the first counted failure for Mesos-level
    /// ones (as Marathon documents).
    pub fn should_kill(&self) -> bool {
        if self.max_failures == 0 {
            return self.zero_kills && self.consecutive_failures > 0;
        }
        self.consecutive_failures >= self.max_failures
    }
}

/// All checks of one task, combined into the report the master gets.
#[derive(Debug, Clone)]
pub struct TaskHealth {
    checks: Vec<CheckState>,
    reported: Option<(bool, bool)>,
}

impl TaskHealth {
    /// The record for a task's checks.
    pub fn new(checks: &[HealthCheck]) -> Self {
        TaskHealth {
            checks: checks.iter().map(CheckState::new).collect(),
            reported: None,
        }
    }

    /// The combined health: unhealthy when any check is, healthy when all are, else unknown.
    pub fn combined(&self) -> Option<HealthReport> {
        let failing = self
            .checks
            .iter()
            .filter(|c| c.healthy == Some(false))
            .max_by_key(|c| c.consecutive_failures);
        let all_healthy = self.checks.iter().all(|c| c.healthy == Some(true));
        if failing.is_none() && !all_healthy {
            return None;
        }
        Some(HealthReport {
            healthy: failing.is_none(),
            consecutive_failures: failing.map_or(0, |c| c.consecutive_failures),
            last_failure_cause: failing.and_then(|c| c.last_failure_cause.clone()),
            checked_at_ms: self
                .checks
                .iter()
                .map(|c| c.checked_at_ms)
                .max()
                .unwrap_or(0),
            should_kill: self.checks.iter().any(CheckState::should_kill),
        })
    }

    /// Records check `index`'s verdict; returns the report to send when the task's verdict
    /// (healthy, should be killed) changed.
    pub fn record(
        &mut self,
        index: usize,
        verdict: Verdict,
        since_start: Duration,
        at_ms: u64,
    ) -> Option<HealthReport> {
        self.checks
            .get_mut(index)?
            .record(verdict, since_start, at_ms);
        let report = self.combined()?;
        let key = (report.healthy, report.should_kill);
        if self.reported == Some(key) {
            return None;
        }
        self.reported = Some(key);
        Some(report)
    }
}

/// Where health reports go.
pub type HealthSink = Arc<dyn Fn(HealthReport) + Send + Sync>;

/// A task's host: its `$HOST`, and where Marathon-level checks reach it. The agent's
/// advertised IP (what the masters reach it at, unique among live agents), as DC/OS names
/// its agents; the hostname only when no IP is known. Never a name lookup: a hostname may
/// not resolve (`drover dev`'s agents), or resolve elsewhere (127.0.1.1 on Debian), and then
/// a task binding `$HOST` and a check reaching the host would disagree.
pub fn task_host<'a>(hostname: &'a str, ip: &'a str) -> &'a str {
    if ip.is_empty() { hostname } else { ip }
}

/// Runs every check of a task until the returned future is dropped (the task ended).
/// `started_at_ms` is when the task started (the grace period counts from there).
pub async fn run_checks(
    checks: Vec<HealthCheck>,
    target: Target,
    started_at_ms: u64,
    sink: HealthSink,
) {
    if checks.is_empty() {
        return;
    }
    let target = Arc::new(target);
    let health = Arc::new(Mutex::new(TaskHealth::new(&checks)));
    let mut set = tokio::task::JoinSet::new();
    for (index, check) in checks.into_iter().enumerate() {
        let (health, target, sink) = (health.clone(), target.clone(), sink.clone());
        set.spawn(async move {
            tokio::time::sleep(seconds(check.delay_seconds)).await;
            loop {
                let verdict = probe(&check, &target).await;
                let at = now_ms();
                let since_start = Duration::from_millis(at.saturating_sub(started_at_ms));
                let report = health.lock().unwrap_or_else(|p| p.into_inner()).record(
                    index,
                    verdict,
                    since_start,
                    at,
                );
                if let Some(r) = report {
                    sink(r);
                }
                tokio::time::sleep(seconds(check.interval_seconds)).await;
            }
        });
    }
    // The check loops never end; dropping this future drops the set, which aborts them.
    while set.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests;
