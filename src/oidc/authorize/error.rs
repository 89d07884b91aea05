//! How the authorization endpoint answers: to the client (a redirect or a form_post page,
//! always with `iss`, RFC 9207) once its redirect URI is trusted, or with an HTML page.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use serde::{Deserialize, Serialize};

use crate::web;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
}

/// Where errors may be sent once the client and redirect URI are trusted.
#[derive(Debug, Clone)]
pub struct ErrorTarget {
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
}

#[derive(Debug)]
pub enum AuthorizeError {
    /// Shown to the person: the redirect URI cannot be trusted, or the flow broke.
    Page { status: StatusCode, message: String },
    /// Sent to the client's redirect URI.
    Redirect {
        target: ErrorTarget,
        error: &'static str,
        description: String,
    },
}

impl AuthorizeError {
    pub fn page(message: impl Into<String>) -> Self {
        Self::Page {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn page_with(status: StatusCode, message: impl Into<String>) -> Self {
        Self::Page {
            status,
            message: message.into(),
        }
    }

    pub fn redirect(target: &ErrorTarget, error: &'static str, description: &str) -> Self {
        Self::Redirect {
            target: target.clone(),
            error,
            description: description.to_string(),
        }
    }

    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "authorization flow failed");
        Self::page_with(
            StatusCode::SERVICE_UNAVAILABLE,
            "The sign-in service could not complete your request. Please try again.",
        )
    }

    pub fn respond(self, issuer: &str, assets: &str) -> Response {
        match self {
            Self::Page { status, message } => {
                web::message(status, assets, "Sign-in error", &message)
            }
            Self::Redirect {
                target,
                error,
                description,
            } => respond_to_client(
                issuer,
                &target,
                &[("error", error), ("error_description", &description)],
            ),
        }
    }
}

impl From<crate::storage::StorageError> for AuthorizeError {
    fn from(e: crate::storage::StorageError) -> Self {
        Self::internal(&e)
    }
}

/// Sends `fields` plus `state` and `iss` to the client, as its response_mode says.
pub fn respond_to_client(issuer: &str, target: &ErrorTarget, fields: &[(&str, &str)]) -> Response {
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    if let Some(state) = &target.state {
        all.push(("state", state));
    }
    all.push(("iss", issuer));
    match target.response_mode {
        ResponseMode::FormPost => web::render_form_post(&web::FormPostView {
            action: &target.redirect_uri,
            fields: all,
            script: web::FORM_POST_SCRIPT,
        }),
        ResponseMode::Query => {
            let Ok(mut url) = url::Url::parse(&target.redirect_uri) else {
                return web::message(
                    StatusCode::BAD_REQUEST,
                    "",
                    "Sign-in error",
                    "The application's redirect URI is not a valid URL.",
                );
            };
            url.query_pairs_mut().extend_pairs(all);
            let mut resp = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(url.as_str()) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            web::secure_headers(&mut resp);
            resp
        }
    }
}
