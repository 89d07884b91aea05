//! How the authorization endpoint answers: to the client (a redirect or a form_post page,
//! always with `iss`, RFC 9207) once its redirect URI is trusted, or with an HTML page.
//!
//! Every browser-facing handler (authorize, login, consent, the connector chooser and
//! callback, logout) fails with one type, [`AuthorizeError`], whose `IntoResponse` renders
//! every error page and error redirect. It needs the issuer (for `iss`) and the
//! asset path: the issuer's routes carry a layer ([`render_pages`]) that supplies them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use serde::{Deserialize, Serialize};

use crate::protocol::RedirectUri;
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
    pub redirect_uri: RedirectUri,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
}

#[derive(Debug, Clone)]
pub enum AuthorizeError {
    /// Shown to the person: the redirect URI cannot be trusted, or the flow broke.
    Page {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
    /// The person may not use the client ([`crate::oidc::policy`]): a page saying why, whose
    /// button takes the browser back to the client with `access_denied`.
    Denied {
        target: ErrorTarget,
        app: String,
        message: String,
        description: &'static str,
    },
    /// Sent to the client's redirect URI.
    Redirect {
        target: ErrorTarget,
        error: &'static str,
        description: String,
    },
}

impl AuthorizeError {
    pub fn page(message: impl Into<String>) -> Self {
        Self::page_with(StatusCode::BAD_REQUEST, message)
    }

    pub fn page_with(status: StatusCode, message: impl Into<String>) -> Self {
        Self::titled(status, "Sign-in error", message)
    }

    /// A page with its own title ("Sign-in expired", "Not allowed").
    pub fn titled(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self::Page {
            status,
            title,
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
            Self::Page {
                status,
                title,
                message,
            } => web::message(status, assets, title, &message),
            Self::Redirect {
                target,
                error,
                description,
            } => respond_to_client(
                issuer,
                &target,
                &[("error", error), ("error_description", &description)],
            ),
            Self::Denied {
                target,
                app,
                message,
                description,
            } => denied_page(issuer, assets, &target, &app, &message, description),
        }
    }
}

/// The "Not allowed" page: 403, and a way back to the client carrying `access_denied`.
fn denied_page(
    issuer: &str,
    assets: &str,
    target: &ErrorTarget,
    app: &str,
    message: &str,
    description: &str,
) -> Response {
    let mut fields = vec![
        ("error", "access_denied"),
        ("error_description", description),
    ];
    if let Some(state) = &target.state {
        fields.push(("state", state));
    }
    fields.push(("iss", issuer));
    let link = (target.response_mode == ResponseMode::Query)
        .then(|| url::Url::parse(&target.redirect_uri).ok())
        .flatten()
        .map(|mut u| {
            u.query_pairs_mut().extend_pairs(&fields);
            u.to_string()
        });
    let mut resp = web::render(
        StatusCode::FORBIDDEN,
        &web::DeniedView {
            assets,
            app,
            message,
            link,
            action: &target.redirect_uri,
            fields,
        },
    );
    web::allow_form_targets(&mut resp, Some(&[target.redirect_uri.to_string()]));
    resp
}

/// What an [`AuthorizeError`] is rendered with: the issuer and its asset path.
#[derive(Debug, Clone)]
pub struct PageContext {
    pub issuer: Arc<str>,
    pub assets: Arc<str>,
}

/// An error response not yet rendered with its issuer's [`PageContext`].
#[derive(Clone)]
struct Unrendered(AuthorizeError);

impl IntoResponse for AuthorizeError {
    /// Left for [`render_pages`] on the issuer's routes, which knows the issuer (for `iss`)
    /// and the asset path. A route without that layer answers a bare 500 rather than a
    /// redirect without `iss`.
    fn into_response(self) -> Response {
        let mut resp = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        resp.extensions_mut().insert(Unrendered(self));
        resp
    }
}

/// The layer on an issuer's routes that renders [`AuthorizeError`]s with its context.
pub async fn render_pages(State(ctx): State<PageContext>, mut resp: Response) -> Response {
    match resp.extensions_mut().remove::<Unrendered>() {
        Some(Unrendered(e)) => e.respond(&ctx.issuer, &ctx.assets),
        None => resp,
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
