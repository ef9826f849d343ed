//! Writes and reads of the leader-cut tests: many attempts at once to find the first moment
//! a majority acknowledges, and what the answers were.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use client::AppEnvelope;
use serde_json::Value;

use crate::common::http;

/// How often a new write attempt is sent to the majority while it has no leader yet, so that
/// the first acknowledgement is seen within this of when the majority could give it.
const ATTEMPT_EVERY: Duration = Duration::from_millis(50);

/// Timeout of one request in the suite: longer than a master's leader wait (3 s) plus its
/// write time-out (5 s), so that a master's own answer (an error) arrives before it.
pub const REQUEST: Duration = Duration::from_secs(15);

/// `labels.op` of the app in a `GET /v2/apps{id}` answer.
pub fn op_of(r: &http::Response) -> Option<String> {
    let app = r.decode::<AppEnvelope>().ok()?.app;
    app.definition
        .get("labels")?
        .get("op")?
        .as_str()
        .map(str::to_string)
}

/// One write attempt's answer: when it came, and what it was.
pub type Attempt = (Instant, Result<http::Response, String>);

/// Sends `PUT /v2/apps{id}` to the masters at `addrs` in turn, a new attempt every
/// [`ATTEMPT_EVERY`] while none is acknowledged, until one is or `timeout` passes; returns
/// when the first acknowledgement arrived (None on time-out) and every answer, once every
/// attempt has ended (so that none lands later). PUT is idempotent: many acknowledged
/// attempts apply one definition.
pub fn first_ack(
    addrs: &[String],
    body: &Value,
    timeout: Duration,
) -> (Option<Instant>, Vec<Attempt>) {
    let id = body["id"].as_str().unwrap_or_default();
    let path = format!("/v2/apps{id}");
    let (tx, rx) = mpsc::channel::<Attempt>();
    let mut running: Vec<JoinHandle<()>> = Vec::new();
    let mut answers = Vec::new();
    let mut acked = None;
    let deadline = Instant::now() + timeout;
    let mut n = 0usize;
    while acked.is_none() && Instant::now() < deadline {
        let addr = addrs[n % addrs.len()].clone();
        n += 1;
        let (tx, path, body) = (tx.clone(), path.clone(), body.clone());
        running.push(std::thread::spawn(move || {
            let r = http::request(&addr, "PUT", &path, Some(&body), REQUEST)
                .map_err(|e| format!("{addr}: {e}"));
            let _ = tx.send((Instant::now(), r));
        }));
        let next = Instant::now() + ATTEMPT_EVERY;
        while let Some(left) = next.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok((at, r)) => {
                    if acked.is_none() && r.as_ref().is_ok_and(http::Response::is_success) {
                        acked = Some(at);
                    }
                    answers.push((at, r));
                }
                Err(_) => break,
            }
        }
    }
    drop(tx);
    for t in running {
        let _ = t.join();
    }
    answers.extend(rx.try_iter());
    (acked, answers)
}

/// What a list of answers was, for failure messages.
pub fn summary(answers: &[Attempt]) -> String {
    let mut n: BTreeMap<String, usize> = BTreeMap::new();
    for (_, r) in answers {
        let what = match r {
            Ok(r) => format!("{} {}", r.status, r.message()),
            Err(e) => e.clone(),
        };
        *n.entry(what).or_insert(0) += 1;
    }
    format!("{n:?}")
}
