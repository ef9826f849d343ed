//! The web UI: plain HTML, CSS and JS modules from `ui/`, compiled into the binary (a handful
//! of files do not need an embedding crate). Every master serves it; its API calls are
//! forwarded to the leader like any other.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

const INDEX: &str = include_str!("../../../../ui/index.html");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The files under `/ui/`: name, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", JS, include_str!("../../../../ui/app.js")),
    ("api.js", JS, include_str!("../../../../ui/api.js")),
    ("auth.js", JS, include_str!("../../../../ui/auth.js")),
    ("where.js", JS, include_str!("../../../../ui/where.js")),
    ("routes.js", JS, include_str!("../../../../ui/routes.js")),
    ("nodes.js", JS, include_str!("../../../../ui/nodes.js")),
    (
        "services.js",
        JS,
        include_str!("../../../../ui/services.js"),
    ),
    ("service.js", JS, include_str!("../../../../ui/service.js")),
    ("tree.js", JS, include_str!("../../../../ui/tree.js")),
    ("group.js", JS, include_str!("../../../../ui/group.js")),
    ("pods.js", JS, include_str!("../../../../ui/pods.js")),
    ("deploy.js", JS, include_str!("../../../../ui/deploy.js")),
    ("style.css", CSS, include_str!("../../../../ui/style.css")),
];

/// `GET /`.
pub async fn index() -> Html<&'static str> {
    Html(INDEX)
}

/// `GET /ui/{file}`: one of the UI's scripts or its style sheet.
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type)], *body).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            format!("/ui/{file} is not part of drover's web UI"),
        )
            .into_response(),
    }
}
