//! What each route of the API needs of its caller. Deny by default: a route this table does
//! not name needs a management token, so a new route is never open by accident.

use axum::http::Method;
use domain::{AppId, GroupId};

/// What a request needs before its handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Nothing: liveness, the UI's static files, and bootstrap (which works once).
    Open,
    /// Masters' and agents' own traffic (`/internal/*`): authenticated by their certificates.
    Internal,
    /// Any valid token (`GET /v1/acl/token/self`).
    Authenticated,
    /// A token that may read.
    Read,
    /// A token that may write the apps the request changes.
    WriteApps(AppTarget),
    /// A token that may operate the cluster (leadership, nodes, masters, eviction).
    Operate,
    /// A management token.
    Manage,
}

/// Where the apps a write changes are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppTarget {
    /// In the path (`/v2/apps/{id}…`); with `body`, also in an `id` in the body.
    Path {
        /// The app.
        app: AppId,
        /// True when the body may name an id too (PUT, PATCH).
        body: bool,
    },
    /// In the body's `id`, or each array element's (`POST`/`PUT /v2/apps`).
    Body,
    /// As task ids in the body's `ids` (`POST /v2/tasks/delete`).
    Tasks,
    /// As the apps a deployment changes (`DELETE /v2/deployments/{id}`).
    Deployment(String),
    /// A group in the path (`/v2/groups/{id}`); with `body`, the group the body's `id`
    /// names, read from it (`POST`). The root group is for management tokens only.
    Group {
        /// The group in the path.
        group: GroupId,
        /// True when the body's `id` names the group (`POST`).
        body: bool,
    },
    /// An app id that cannot be read: the handler refuses it; a prefix token may not try.
    Unreadable,
}

/// Classifies a request by method and path.
pub fn need(method: &Method, path: &str) -> Need {
    if matches!(path, "/ping" | "/service/marathon/ping" | "/" | "/health")
        || path.starts_with("/ui/")
        || (method == Method::POST && path == "/v1/acl/bootstrap")
    {
        return Need::Open;
    }
    // Which certificate each needs is `tls::guard`'s: an agent's own routes (its VIPs'
    // projection, `/internal/agents/{id}/vips` and `…/vip-events`, included) need that
    // agent's, the rest a master's.
    if path.starts_with("/internal/") {
        return Need::Internal;
    }
    if method == Method::GET && path == "/v1/acl/token/self" {
        return Need::Authenticated;
    }
    // The masters' membership (`drover operator masters`): operators.
    if path == "/v1/operator/masters" || path.starts_with("/v1/operator/masters/") {
        return Need::Operate;
    }
    // ACL tokens; backups (they hold every app's environment and the tokens' hashes) and
    // restores.
    if path.starts_with("/v1/acl/") || path.starts_with("/v1/operator/") {
        return Need::Manage;
    }
    let reads = method == Method::GET || method == Method::HEAD;
    let v2 = path
        .strip_prefix("/service/marathon")
        .unwrap_or(path)
        .strip_prefix("/v2");
    match v2 {
        // Plan is a dry run: it reads the state and changes nothing.
        _ if reads || (method == Method::POST && path == "/v1/plan") => Need::Read,
        Some("/apps") if method == Method::POST || method == Method::PUT => {
            Need::WriteApps(AppTarget::Body)
        }
        Some(rest) if rest.starts_with("/apps/") => Need::WriteApps(app_in_path(method, rest)),
        // Pods share the apps' namespace, and so their tokens' prefixes.
        Some("/pods") if method == Method::POST => Need::WriteApps(AppTarget::Body),
        Some(rest) if rest.starts_with("/pods/") => Need::WriteApps(pod_in_path(method, rest)),
        Some(rest) if rest == "/groups" || rest.starts_with("/groups/") => {
            let path = &rest["/groups".len()..];
            match GroupId::parse(path) {
                Ok(group) => Need::WriteApps(AppTarget::Group {
                    group,
                    body: method == Method::POST,
                }),
                Err(_) => Need::WriteApps(AppTarget::Unreadable),
            }
        }
        Some("/tasks/delete") if method == Method::POST => Need::WriteApps(AppTarget::Tasks),
        // Resetting an app's launch delay changes that app.
        Some(rest) if method == Method::DELETE && rest.starts_with("/queue/") => {
            Need::WriteApps(delay_in_path(rest))
        }
        Some(rest) if method == Method::DELETE && rest.starts_with("/deployments/") => {
            let id = rest.trim_start_matches("/deployments/");
            Need::WriteApps(AppTarget::Deployment(id.to_string()))
        }
        Some("/leader") if method == Method::DELETE => Need::Operate,
        // Removing an agent (its instances are replaced, its certificates revoked).
        None if method == Method::DELETE && path.starts_with("/v1/nodes/") => Need::Operate,
        // A subscriber is sent every event (app definitions included): operators decide.
        Some("/eventSubscriptions") if method == Method::POST || method == Method::DELETE => {
            Need::Operate
        }
        _ => Need::Manage,
    }
}

/// The app a write under `/apps/…` changes: the path without Marathon's suffixes
/// (`/restart`, `/tasks`, `/tasks/{task}`).
fn app_in_path(method: &Method, rest: &str) -> AppTarget {
    let path = &rest["/apps".len()..];
    let id = if let Some(id) = path.strip_suffix("/restart") {
        id
    } else if let Some(id) = path.strip_suffix("/tasks") {
        id
    } else if let Some((id, _task)) = path.rsplit_once("/tasks/") {
        id
    } else {
        path
    };
    match AppId::parse(id) {
        Ok(app) => AppTarget::Path {
            app,
            body: method == Method::PUT || method == Method::PATCH,
        },
        Err(_) => AppTarget::Unreadable,
    }
}

/// The pod a write under `/pods/…` changes: the path before Marathon's `::` suffixes
/// (`::instances`, `::instances/{instance}`).
fn pod_in_path(method: &Method, rest: &str) -> AppTarget {
    let path = &rest["/pods".len()..];
    let id = path.split_once("::").map_or(path, |(id, _)| id);
    match AppId::parse(id) {
        Ok(app) => AppTarget::Path {
            app,
            body: method == Method::PUT,
        },
        Err(_) => AppTarget::Unreadable,
    }
}

/// The app whose launch delay `DELETE /queue/{app}/delay` resets.
fn delay_in_path(rest: &str) -> AppTarget {
    let path = &rest["/queue".len()..];
    match path.strip_suffix("/delay").map(AppId::parse) {
        Some(Ok(app)) => AppTarget::Path { app, body: false },
        _ => AppTarget::Unreadable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(id: &str, body: bool) -> Need {
        Need::WriteApps(AppTarget::Path {
            app: AppId::parse(id).expect("id"),
            body,
        })
    }

    #[test]
    fn routes_need_what_their_effect_needs() {
        let cases = [
            (Method::GET, "/ping", Need::Open),
            (Method::GET, "/ui/app.js", Need::Open),
            (Method::GET, "/health", Need::Open),
            (Method::POST, "/v1/acl/bootstrap", Need::Open),
            (Method::POST, "/internal/agents/register", Need::Internal),
            // An agent's certificate reads the VIPs' projection, never `/v2/apps`.
            (Method::GET, "/internal/agents/agent-1/vips", Need::Internal),
            (
                Method::GET,
                "/internal/agents/agent-1/vip-events",
                Need::Internal,
            ),
            (Method::GET, "/v1/acl/token/self", Need::Authenticated),
            (Method::GET, "/v1/acl/tokens", Need::Manage),
            (Method::DELETE, "/v1/acl/tokens/abc", Need::Manage),
            (Method::GET, "/v2/apps", Need::Read),
            (Method::GET, "/metrics", Need::Read),
            (Method::GET, "/v2/events", Need::Read),
            (Method::POST, "/v1/plan", Need::Read),
            (Method::POST, "/v2/apps", Need::WriteApps(AppTarget::Body)),
            (Method::POST, "/v2/pods", Need::WriteApps(AppTarget::Body)),
            (Method::HEAD, "/v2/pods", Need::Read),
            (Method::GET, "/v2/pods/team-a/p::status", Need::Read),
            (Method::PUT, "/v2/pods/team-a/p", app("/team-a/p", true)),
            (
                Method::DELETE,
                "/v2/pods/team-a/p::instances/x.instance-1",
                app("/team-a/p", false),
            ),
            (Method::DELETE, "/v2/pods/team-a/p", app("/team-a/p", false)),
            (
                Method::PUT,
                "/service/marathon/v2/apps",
                Need::WriteApps(AppTarget::Body),
            ),
            (Method::PUT, "/v2/apps/team-a/web", app("/team-a/web", true)),
            (
                Method::POST,
                "/v2/apps/team-a/web/restart",
                app("/team-a/web", false),
            ),
            (
                Method::DELETE,
                "/v2/apps/team-a/web/tasks/x.instance-1",
                app("/team-a/web", false),
            ),
            (
                Method::DELETE,
                "/v2/apps/team-a/web",
                app("/team-a/web", false),
            ),
            (
                Method::POST,
                "/v2/tasks/delete",
                Need::WriteApps(AppTarget::Tasks),
            ),
            (
                Method::DELETE,
                "/v2/deployments/d1",
                Need::WriteApps(AppTarget::Deployment("d1".into())),
            ),
            (
                Method::PUT,
                "/v2/groups/team-a/prod",
                Need::WriteApps(AppTarget::Group {
                    group: GroupId::parse("/team-a/prod").expect("group"),
                    body: false,
                }),
            ),
            (
                Method::POST,
                "/service/marathon/v2/groups",
                Need::WriteApps(AppTarget::Group {
                    group: GroupId::root(),
                    body: true,
                }),
            ),
            (
                Method::DELETE,
                "/v2/groups/Bad_Id",
                Need::WriteApps(AppTarget::Unreadable),
            ),
            (Method::GET, "/v2/groups/team-a/versions", Need::Read),
            (Method::GET, "/v2/queue/team-a/web/delay", Need::Read),
            (
                Method::DELETE,
                "/v2/queue/team-a/web/delay",
                app("/team-a/web", false),
            ),
            (
                Method::DELETE,
                "/service/marathon/v2/queue/team-a/web/delay",
                app("/team-a/web", false),
            ),
            (
                Method::DELETE,
                "/v2/queue/team-a/web",
                Need::WriteApps(AppTarget::Unreadable),
            ),
            (Method::DELETE, "/v2/leader", Need::Operate),
            (Method::GET, "/v2/eventSubscriptions", Need::Read),
            (Method::POST, "/v2/eventSubscriptions", Need::Operate),
            (
                Method::DELETE,
                "/service/marathon/v2/eventSubscriptions",
                Need::Operate,
            ),
            (Method::POST, "/v2/something-new", Need::Manage),
            (Method::DELETE, "/v1/nodes", Need::Manage),
            (Method::DELETE, "/v1/nodes/agent-1", Need::Operate),
            (Method::GET, "/v1/operator/masters", Need::Operate),
            (Method::DELETE, "/v1/operator/masters/4", Need::Operate),
            (Method::GET, "/v1/operator/snapshot", Need::Manage),
            (Method::POST, "/internal/masters/join", Need::Internal),
        ];
        for (method, path, want) in cases {
            assert_eq!(need(&method, path), want, "{method} {path}");
        }
    }
}
