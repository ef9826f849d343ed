//! ACL helpers for the security tests: bootstrap, tokens, requests with a token, and the
//! table of every route the master's router serves (read from the router's source, so a
//! route added there is in the table without anyone remembering to add it).

use std::time::Duration;

use serde_json::{Value, json};

use super::http::{self, Response};
use super::{Cluster, wait_until};

/// How long one request of these tests may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The router's source: every route the master serves is built here.
const ROUTER: &str = include_str!("../../../master/src/api/mod.rs");

/// `method path` with `Authorization: Bearer secret`.
pub fn with_token(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    secret: &str,
) -> Response {
    let auth = format!("Bearer {secret}");
    with_authorization(addr, method, path, body, &auth)
}

/// `method path` with the `Authorization` header given as is.
pub fn with_authorization(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    authorization: &str,
) -> Response {
    http::request_with(
        addr,
        method,
        path,
        body,
        &[("Authorization", authorization)],
        TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("{method} {path} at {addr}: no answer: {e}"))
}

/// Waits until every master names the same leader in its (open) `/health`.
pub fn wait_for_leader(cluster: &Cluster) -> String {
    let mut leader = String::new();
    wait_until(
        Duration::from_secs(60),
        "the masters agree on a leader",
        || {
            let named: Vec<Option<String>> = cluster
                .ids()
                .iter()
                .map(|&id| cluster.health(id).and_then(|h| h.leader))
                .collect();
            match named.first() {
                Some(Some(l)) if named.iter().all(|n| n.as_deref() == Some(l)) => {
                    leader = l.clone();
                    true
                }
                _ => false,
            }
        },
    );
    leader
}

/// `POST /v1/acl/bootstrap` at `addr`: the management token's secret.
pub fn bootstrap(addr: &str) -> String {
    let r = http::request(addr, "POST", "/v1/acl/bootstrap", None, TIMEOUT)
        .unwrap_or_else(|e| panic!("bootstrap at {addr}: {e}"));
    assert_eq!(r.status, 200, "bootstrap: {r}");
    let created: client::CreatedToken = r.typed();
    assert_eq!(created.token.policies, ["management"]);
    created.secret_id
}

/// A new token with `policies`, made with the management token: (accessor id, secret).
pub fn create_token(
    addr: &str,
    management: &str,
    name: &str,
    policies: &[&str],
) -> (String, String) {
    let body = json!({"name": name, "policies": policies});
    let r = with_token(addr, "POST", "/v1/acl/tokens", Some(&body), management);
    assert_eq!(r.status, 201, "create token {name}: {r}");
    let created: client::CreatedToken = r.typed();
    (created.token.accessor_id, created.secret_id)
}

/// One route the router serves, with a concrete path for its pattern.
#[derive(Debug, Clone)]
pub struct Route {
    /// `GET`, `POST`, …
    pub method: &'static str,
    /// The pattern as written in the router (`/v2/apps/{*path}`).
    pub pattern: String,
    /// A path that matches it (`/v2/apps/team-b/web`).
    pub path: String,
}

/// Every (method, route) of the master's router, the `/v2` routes under both of their
/// prefixes.
pub fn routes() -> Vec<Route> {
    let block = |start: &str| {
        let from = ROUTER
            .find(start)
            .unwrap_or_else(|| panic!("the router's source no longer has `{start}`"));
        let rest = &ROUTER[from..];
        &rest[..rest.find(';').unwrap_or(rest.len())]
    };
    let mut out = Vec::new();
    for (start, prefixes) in [
        (
            "let v2 = Router::new()",
            &["/v2", "/service/marathon/v2"][..],
        ),
        ("let public = Router::new()", &[""][..]),
        ("let raft = Router::new()", &[""][..]),
    ] {
        for chunk in block(start).split(".route(").skip(1) {
            let Some(pattern) = chunk.split('"').nth(1) else {
                continue;
            };
            for method in ["get", "post", "put", "patch", "delete"] {
                let called = chunk.match_indices(&format!("{method}(")).any(|(i, _)| {
                    i == 0
                        || !chunk.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && chunk.as_bytes()[i - 1] != b'_'
                });
                if !called {
                    continue;
                }
                for prefix in prefixes {
                    let pattern = format!("{prefix}{pattern}");
                    out.push(Route {
                        method: method_name(method),
                        path: concrete(&pattern),
                        pattern,
                    });
                }
            }
        }
    }
    out
}

fn method_name(m: &str) -> &'static str {
    match m {
        "get" => "GET",
        "post" => "POST",
        "put" => "PUT",
        "patch" => "PATCH",
        _ => "DELETE",
    }
}

fn concrete(pattern: &str) -> String {
    pattern
        .replace("{*path}", "team-b/web")
        .replace("{id}", "some-id")
        .replace("{file}", "app.js")
        .replace("{accessor}", "some-accessor")
        .replace("{rpc}", "append")
}
