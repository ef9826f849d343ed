//! Assertions about apps and leaders that several test files share.

use std::time::Duration;

use client::{App, AppEnvelope, Info};

use super::{Cluster, Response, http};

/// Bound for a write to be acknowledged once the cluster has a leader (retries on 5xx
/// included); a liveness bound, not a performance assertion.
pub const WRITE: Duration = Duration::from_secs(30);

/// Asserts that `r` has `X-Marathon-Leader: http://<leader>`.
#[track_caller]
pub fn assert_leader_header(c: &Cluster, r: &Response, leader: &str, what: &str) {
    let expected = format!("http://{leader}");
    if r.header("X-Marathon-Leader") != Some(expected.as_str()) {
        c.fail(&format!(
            "{what}: X-Marathon-Leader is {:?}, expected {expected:?}; headers {:?}",
            r.header("X-Marathon-Leader"),
            r.headers
        ));
    }
}

/// `GET /v2/apps{id}` through `via`; the app if it exists, None on 404.
#[track_caller]
pub fn read_app(c: &mut Cluster, via: u32, id: &str) -> Option<App> {
    let r = c.get_settled(via, &format!("/v2/apps{id}"), WRITE);
    match r.status {
        200 => match r.decode::<AppEnvelope>() {
            Ok(envelope) => Some(envelope.app),
            Err(e) => c.fail(&format!("{e}; the answer: {r}")),
        },
        404 => None,
        _ => c.fail(&format!("GET /v2/apps{id} through master {via}: {r}")),
    }
}

/// Asserts that every app in `apps` (id, op) is readable through every master in `via`
/// with the op it was last acknowledged with.
#[track_caller]
pub fn assert_apps_present(c: &mut Cluster, via: &[u32], apps: &[(String, String)]) {
    for &m in via {
        for (id, op) in apps {
            match read_app(c, m, id) {
                Some(a) if a.label("op") == Some(op.as_str()) => {}
                Some(a) => c.fail(&format!(
                    "app {id} read through master {m} has labels {} but the acknowledged write had op {op}",
                    a.field("labels")
                )),
                None => c.fail(&format!(
                    "acknowledged app {id} (op {op}) is missing when read through master {m}"
                )),
            }
        }
    }
}

/// `frameworkId` of master `id`'s own `/v2/info` (None when it has none or no answer).
pub fn framework_id(c: &Cluster, id: u32) -> Option<String> {
    http::get_as::<Info>(&c.addr(id), "/v2/info")
        .ok()
        .and_then(|info| info.framework_id)
}
