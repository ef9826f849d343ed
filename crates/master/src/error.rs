//! API errors as Marathon answers them: a status and a JSON body with a `message`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use client::ErrorBody;
use domain::ValidationErrors;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The body, Marathon's `{"message", "details"?}` (typed, so the CLI and tests read it
    /// with the same type).
    pub body: ErrorBody,
}

impl ApiError {
    /// An error with just a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody::new(message),
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

    /// 422 with Marathon's validation body, one detail per offending path.
    pub fn invalid(errors: &ValidationErrors) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: ErrorBody::invalid(errors),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
