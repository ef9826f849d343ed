//! Assertions about apps and leaders that several test files share.

use std::time::Duration;

use serde_json::Value;

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

/// `GET /v2/apps{id}` through `via`; the app JSON if it exists, None on 404.
#[track_caller]
pub fn read_app(c: &mut Cluster, via: u32, id: &str) -> Option<Value> {
    let r = c.get_settled(via, &format!("/v2/apps{id}"), WRITE);
    match r.status {
        200 => Some(r.body_json["app"].clone()),
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
                Some(a) if a["labels"]["op"] == op.as_str() => {}
                Some(a) => c.fail(&format!(
                    "app {id} read through master {m} has labels {} but the acknowledged write had op {op}",
                    a["labels"]
                )),
                None => c.fail(&format!(
                    "acknowledged app {id} (op {op}) is missing when read through master {m}"
                )),
            }
        }
    }
}

/// `frameworkId` of master `id`'s own `/v2/info` (Null when it has none or no answer).
pub fn framework_id(c: &Cluster, id: u32) -> Value {
    http::get(&c.addr(id), "/v2/info")
        .ok()
        .filter(|r| r.status == 200)
        .map(|r| r.body_json["frameworkId"].clone())
        .unwrap_or(Value::Null)
}
