//! Waiting in the benchmarks: a condition polled to a deadline, and the JSON of a 200 answer.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Cluster, http};

/// Polls `f` every `every` until it returns `Some`; after `limit` fails the run naming
/// `what`, with the masters' logs and `logs()` (the agents').
pub fn poll<T>(
    c: &Cluster,
    limit: Duration,
    every: Duration,
    what: &str,
    logs: impl FnOnce() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(t) = f() {
            return t;
        }
        if Instant::now() >= deadline {
            c.fail(&format!(
                "gave up after {limit:?} waiting until {what}{}",
                logs()
            ));
        }
        std::thread::sleep(every);
    }
}

/// The JSON body of `GET path` when it is answered 200 within `timeout`.
pub fn get_json(addr: &str, path: &str, timeout: Duration) -> Option<Value> {
    http::request(addr, "GET", path, None, timeout)
        .ok()
        .filter(|r| r.status == 200)
        .map(|r| r.body_json)
}
