//! The web UI: plain HTML, CSS and JS modules from `ui/`, compiled into the binary (three
//! files do not need an embedding crate). Every master serves it; its API calls are
//! forwarded to the leader like any other.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

const INDEX: &str = include_str!("../../../../ui/index.html");
const APP_JS: &str = include_str!("../../../../ui/app.js");
const STYLE: &str = include_str!("../../../../ui/style.css");

/// `GET /`.
pub async fn index() -> Html<&'static str> {
    Html(INDEX)
}

/// `GET /ui/app.js`.
pub async fn app_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
        .into_response()
}

/// `GET /ui/style.css`.
pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}
