//! API errors as Marathon answers them: a status and a JSON body with a `message`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body, at least `{"message": …}`.
    pub body: Value,
}

impl ApiError {
    /// An error with just a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: json!({"message": message.into()}),
        }
    }

    /// 503: the cluster cannot serve the request now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 404 with Marathon's app message.
    pub fn app_not_found(id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("App '{id}' does not exist"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
