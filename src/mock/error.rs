//! How the control API says no: a status and a message for the test author, as JSON
//! (`error`, `error_description`). Internal failures are logged and answered in general
//! terms, never with their details.

use std::borrow::Cow;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlError {
    pub status: StatusCode,
    pub message: Cow<'static, str>,
}

impl ControlError {
    fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// Not ready yet (no signing key), or storage unavailable: try again.
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// Storage failed: logged, answered as "try again".
    pub fn storage(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "mock control API: storage failure");
        Self::unavailable("the mock's storage is unavailable; try again")
    }

    /// Anything else that should not happen: logged, answered in general terms.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "mock control API: internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the mock could not complete the request",
        )
    }
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for ControlError {}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let code = if self.status.is_server_error() {
            "server_error"
        } else {
            "invalid_request"
        };
        (
            self.status,
            axum::Json(json!({"error": code, "error_description": self.message})),
        )
            .into_response()
    }
}
