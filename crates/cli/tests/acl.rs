//! ACL tokens across real `drover master` processes started without `--insecure`: every
//! public route refuses a request without a token, policies decide what a token may do,
//! the leader decides after forwarding, and a revoked token stops working on every master.

mod common;

use std::time::{Duration, Instant};

use serde_json::json;

use common::acl::{self, bootstrap, create_token, routes, with_authorization, with_token};
use common::{Cluster, http, wait_until};

/// Routes that answer without a token: liveness, the UI's static files, bootstrap (once).
fn open(method: &str, pattern: &str) -> bool {
    matches!(
        pattern,
        "/ping" | "/service/marathon/ping" | "/" | "/ui/{file}" | "/health"
    ) || (method == "POST" && pattern == "/v1/acl/bootstrap")
}

fn app(id: &str) -> serde_json::Value {
    json!({"id": id, "cmd": "sleep 1000", "cpus": 0.01, "mem": 8, "instances": 0})
}

fn secure(name: &str, n: u32) -> Cluster {
    let mut c = Cluster::new(name, n);
    c.insecure = false;
    c.start_all();
    c
}

#[test]
fn every_public_route_refuses_a_request_without_a_token_and_says_what_to_send() {
    let c = secure("acl-routes", 1);
    let leader = acl::wait_for_leader(&c);
    let table = routes();
    assert!(
        table.len() > 40,
        "the route table read from the router is too short: {table:?}"
    );
    let management = bootstrap(&leader);
    for route in &table {
        // Masters and agents authenticate with certificates there (the TLS half).
        if route.pattern.starts_with("/internal/") {
            continue;
        }
        let body = (route.method != "GET" && route.method != "DELETE").then(|| json!({}));
        let r = http::request(
            &leader,
            route.method,
            &route.path,
            body.as_ref(),
            Duration::from_secs(30),
        )
        .unwrap_or_else(|e| panic!("{} {}: {e}", route.method, route.path));
        if open(route.method, &route.pattern) {
            assert!(
                r.status != 401 && r.status != 403,
                "{} {} should answer without a token: {r}",
                route.method,
                route.path
            );
            continue;
        }
        assert_eq!(
            r.status, 401,
            "{} {} (route {}) must refuse a request without a token: {r}",
            route.method, route.path, route.pattern
        );
        assert!(r.message().contains("Authorization: Bearer"), "{r}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"drover\"")
        );
    }
    // Bootstrap happens once.
    let again = http::post(&leader, "/v1/acl/bootstrap", &json!({})).expect("answer");
    assert_eq!(again.status, 409, "{again}");
    assert!(again.message().contains("already"), "{again}");
    // The management token reads what was refused.
    let r = with_token(&leader, "GET", "/v1/nodes", None, &management);
    assert_eq!(r.status, 200, "{r}");
}

#[test]
fn bearer_and_dcos_tokens_work_and_bad_credentials_get_400_or_401_with_a_message() {
    let c = secure("acl-credentials", 1);
    let leader = acl::wait_for_leader(&c);
    let management = bootstrap(&leader);
    let (_, reader) = create_token(&leader, &management, "reader", &["read"]);
    for header in [format!("Bearer {reader}"), format!("token={reader}")] {
        let r = with_authorization(&leader, "GET", "/v2/apps", None, &header);
        assert_eq!(r.status, 200, "{header}: {r}");
    }
    let oversized = format!("Bearer {}", "a".repeat(8 * 1024));
    let cases: [(&str, u16, &str); 6] = [
        ("Bearer", 400, "not followed by a secret"),
        ("token=", 400, "empty"),
        ("Basic dXNlcjpwYXNz", 401, "scheme `Basic`"),
        (&oversized, 400, "bytes"),
        (
            "Bearer 0000000000000000000000000000000000000000000000000000000000000000",
            401,
            "not known",
        ),
        ("justasecret", 400, "no scheme"),
    ];
    for (header, status, says) in cases {
        let r = with_authorization(&leader, "GET", "/v2/apps", None, header);
        assert_eq!(r.status, status, "{}: {r}", &header[..header.len().min(40)]);
        assert!(r.message().contains(says), "{r}");
    }
    let body = json!({"name": "brief", "policies": ["read"], "ttlSeconds": 1});
    let r = with_token(&leader, "POST", "/v1/acl/tokens", Some(&body), &management);
    assert_eq!(r.status, 201, "{r}");
    let brief: client::CreatedToken = r.typed();
    wait_until(Duration::from_secs(30), "the 1 s token expires", || {
        let r = with_token(&leader, "GET", "/v2/apps", None, &brief.secret_id);
        r.status == 401 && r.message().contains("expired")
    });
    // The event stream takes its token in the query too (EventSource sets no headers).
    let r = http::request(
        &leader,
        "GET",
        &format!("/v2/events?event_type=none&access_token={reader}"),
        None,
        Duration::from_secs(2),
    );
    assert!(
        !matches!(&r, Ok(r) if r.status == 401),
        "the stream refused its query token: {r:?}"
    );
}

#[test]
fn policies_decide_and_forwarding_keeps_rights_and_a_revoked_token_stops_everywhere() {
    let c = secure("acl-policies", 3);
    let leader = acl::wait_for_leader(&c);
    let follower = c.addr(c.a_follower(c.id_of(&leader)));
    let management = bootstrap(&follower);
    let (_, reader) = create_token(&follower, &management, "reader", &["read"]);
    let (_, team_a) = create_token(&follower, &management, "team-a", &["apps-write:/team-a/"]);
    let (_, operator) = create_token(&follower, &management, "ops", &["operator"]);

    // Read-only lists but does not write, through a follower as at the leader.
    for addr in [&leader, &follower] {
        let r = with_token(addr, "GET", "/v2/apps", None, &reader);
        assert_eq!(r.status, 200, "{r}");
        let r = with_token(addr, "POST", "/v2/apps", Some(&app("/team-a/web")), &reader);
        assert_eq!(r.status, 403, "{r}");
        assert!(r.message().contains("needs"), "{r}");
    }
    // A prefix token writes under its prefix only, through a follower too.
    let r = with_token(
        &follower,
        "POST",
        "/v2/apps",
        Some(&app("/team-a/web")),
        &team_a,
    );
    assert_eq!(r.status, 201, "{r}");
    for (method, path, body) in [
        ("POST", "/v2/apps", Some(app("/team-b/web"))),
        (
            "PUT",
            "/v2/apps",
            Some(json!([app("/team-a/x"), app("/team-b/x")])),
        ),
        ("PUT", "/v2/apps/team-a/web", Some(app("/team-b/web"))),
        ("DELETE", "/v2/apps/team-b/web", None),
        ("POST", "/v2/apps/team-ab/web/restart", None),
        // Groups: only a group under the prefix; the root never.
        ("POST", "/v2/groups", Some(json!({"id": "/team-b/g"}))),
        ("POST", "/v2/groups/team-b", Some(json!({"id": "g"}))),
        ("PUT", "/v2/groups/team-b", Some(json!({}))),
        ("DELETE", "/v2/groups/team-a", None),
        ("PUT", "/v2/groups", Some(json!({}))),
    ] {
        let r = with_token(&follower, method, path, body.as_ref(), &team_a);
        assert_eq!(r.status, 403, "{method} {path}: {r}");
        assert!(r.message().contains("/team-a/"), "{r}");
    }
    let r = with_token(&leader, "DELETE", "/v2/leader", None, &team_a);
    assert_eq!(r.status, 403, "{r}");
    let r = with_token(&follower, "GET", "/v1/acl/tokens", None, &operator);
    assert_eq!(r.status, 403, "{r}");
    let r = with_token(&follower, "DELETE", "/v2/apps/team-a/web", None, &team_a);
    assert_eq!(r.status, 200, "{r}");
    let group = json!({"id": "/team-a/g", "apps": [app("x")]});
    let r = with_token(&follower, "POST", "/v2/groups", Some(&group), &team_a);
    assert_eq!(r.status, 201, "{r}");
    let r = with_token(
        &follower,
        "DELETE",
        "/v2/groups/team-a/g?force=true",
        None,
        &team_a,
    );
    assert_eq!(r.status, 200, "{r}");

    // Revoked: refused on every master, timed for docs/benchmarks.md.
    let (accessor, doomed) = create_token(&leader, &management, "doomed", &["read"]);
    for addr in c.ids().iter().map(|&id| c.addr(id)) {
        assert_eq!(
            with_token(&addr, "GET", "/v1/nodes", None, &doomed).status,
            200
        );
    }
    let revoked_at = Instant::now();
    let r = with_token(
        &follower,
        "DELETE",
        &format!("/v1/acl/tokens/{accessor}"),
        None,
        &management,
    );
    assert_eq!(r.status, 200, "{r}");
    for id in c.ids() {
        let addr = c.addr(id);
        // `/v2/info` is answered by each master itself; `/v1/nodes` by the leader.
        for path in ["/v2/info", "/v1/nodes"] {
            wait_until(
                Duration::from_secs(10),
                "the revoked token is refused",
                || with_token(&addr, "GET", path, None, &doomed).status == 401,
            );
        }
    }
    eprintln!(
        "revoked token refused on all {} masters {} ms after the revoke was sent",
        c.ids().len(),
        revoked_at.elapsed().as_millis()
    );
}
