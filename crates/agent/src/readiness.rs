//! Readiness checks, run on the agent next to each task, with Marathon's semantics
//! (`readiness-checks.md`):
//!
//! - the first check runs when the task is running, then one every `intervalSeconds`; a
//!   check slower than `timeoutSeconds` is not ready;
//! - a check is ready once its endpoint answers one of `httpStatusCodesForReady`, and then
//!   it stops (readiness is what a deployment waits for, not a health signal);
//! - a task is ready when all its checks are.
//!
//! They reach the task where Marathon-level health checks do (its host, `$HOST`, at the host
//! port of the port definition named by `portName`), over the same HTTP code
//! ([`crate::health::http`]). The agent reports the first answer, the turn to ready, and,
//! with `preserveLastResponse`, every change of the last answer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::AppDefinition;
use domain::app::{ReadinessCheck, ReadinessProtocol};
use state::protocol::{HttpAnswer, ReadinessCheckReport, ReadinessReport};

use crate::health::Target;
use crate::health::http::{self, Scheme};

/// Where readiness reports go.
pub type ReadinessSink = Arc<dyn Fn(ReadinessReport) + Send + Sync>;

/// One probe's outcome: the endpoint's answer, or why there was none.
pub type Outcome = Result<HttpAnswer, String>;

/// The host port a check reaches: the instance's port of the definition named `portName`.
pub fn check_port(app: &AppDefinition, check: &ReadinessCheck, ports: &[u64]) -> Option<u16> {
    let index = check.port_index(&app.port_definitions)?;
    ports.get(index).and_then(|p| u16::try_from(*p).ok())
}

/// GETs the check's path at `host:port`, bounded by its timeout.
pub async fn probe(check: &ReadinessCheck, host: &str, port: u16) -> Outcome {
    let scheme = match check.protocol {
        ReadinessProtocol::Http => Scheme::Http,
        ReadinessProtocol::Https => Scheme::Https,
    };
    let url = http::url(scheme, host, port, &check.path);
    let timeout = Duration::from_secs(u64::from(check.timeout_seconds));
    let get = http::get(
        scheme,
        host,
        port,
        &check.path,
        check.preserve_last_response,
    );
    match tokio::time::timeout(timeout, get).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(format!("GET {url}: {e}")),
        Err(_) => Err(format!(
            "no answer from {url} within timeoutSeconds ({}s)",
            check.timeout_seconds
        )),
    }
}

/// All readiness checks of one task: each one's latest result, and what was last reported.
#[derive(Debug, Clone)]
pub struct TaskReadiness {
    checks: Vec<ReadinessCheck>,
    results: Vec<ReadinessCheckReport>,
    reported: Option<ReadinessReport>,
}

impl TaskReadiness {
    /// The record for a task's checks, none answered yet.
    pub fn new(checks: &[ReadinessCheck]) -> Self {
        TaskReadiness {
            checks: checks.to_vec(),
            results: checks
                .iter()
                .map(|c| ReadinessCheckReport {
                    name: c.name.clone(),
                    ready: false,
                    last_response: None,
                })
                .collect(),
            reported: None,
        }
    }

    /// True when every check is ready.
    pub fn ready(&self) -> bool {
        self.results.iter().all(|r| r.ready)
    }

    /// Whether check `index` is ready (it is then not probed again).
    pub fn check_ready(&self, index: usize) -> bool {
        self.results.get(index).is_some_and(|r| r.ready)
    }

    /// Records check `index`'s outcome; returns the report to send when it differs from the
    /// last one sent (the first outcome always does).
    pub fn record(&mut self, index: usize, outcome: Outcome) -> Option<ReadinessReport> {
        let check = self.checks.get(index)?;
        let result = self.results.get_mut(index)?;
        // Ready is final: a later answer cannot take it back (none is asked for).
        if !result.ready {
            result.ready = outcome
                .as_ref()
                .is_ok_and(|a| check.is_ready_status(a.status));
            if check.preserve_last_response {
                result.last_response = outcome.ok();
            }
        }
        let report = ReadinessReport {
            ready: self.ready(),
            checks: self.results.clone(),
        };
        if self.reported.as_ref() == Some(&report) {
            return None;
        }
        self.reported = Some(report.clone());
        Some(report)
    }
}

/// Runs the readiness checks of a task of `app` (its version's definition) until every one
/// is ready; returns then, or never if one never is (the task's end drops the future).
pub async fn run_checks(app: &AppDefinition, target: Target, sink: ReadinessSink) {
    let checks = app.readiness_checks.clone();
    if checks.is_empty() {
        return;
    }
    let target = Arc::new(target);
    let state = Arc::new(Mutex::new(TaskReadiness::new(&checks)));
    let mut set = tokio::task::JoinSet::new();
    for (index, check) in checks.into_iter().enumerate() {
        let port = check_port(app, &check, &target.ports);
        let (state, target, sink) = (state.clone(), target.clone(), sink.clone());
        set.spawn(async move {
            loop {
                let outcome = match port {
                    Some(port) => probe(&check, &target.host, port).await,
                    None => Err(format!(
                        "portName '{}' names no port of this instance",
                        check.port_name
                    )),
                };
                let (report, ready) = {
                    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                    (s.record(index, outcome), s.check_ready(index))
                };
                if let Some(r) = report {
                    sink(r);
                }
                if ready {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(u64::from(check.interval_seconds))).await;
            }
        });
    }
    while set.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests;
