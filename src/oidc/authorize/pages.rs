//! The pages of the authorization flow: the password form (as its connector asks for it)
//! and the consent page, and what a consent covers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::flows::Flows;
use super::request::{self, AuthRequest};
use crate::federation::Identity;
use crate::model::{AuthRequestRecord, SessionRecord};
use crate::oidc::claims::scope_claims;
use crate::oidc::clients::Client;
use crate::web;

impl Flows {
    /// The password form of `connector` (a directory's id; none: the local users').
    #[allow(clippy::too_many_arguments)]
    pub fn login_page(
        &self,
        client: &Client,
        record: &AuthRequestRecord,
        connector: Option<&str>,
        username: &str,
        error: Option<String>,
        status: StatusCode,
        cookies: Vec<HeaderValue>,
    ) -> Response {
        let directory = connector.filter(|c| *c != crate::federation::registry::PASSWORD_CHOICE);
        let prompt = self.connectors.form(directory).map(|p| p.prompt());
        let mut resp = web::render(
            status,
            &web::LoginView {
                assets: &self.base,
                action: format!("{}/login", self.base),
                client_name: client.display_name(),
                error,
                request_id: &record.id,
                csrf: &record.csrf,
                username,
                connector: directory,
                connector_name: directory.and_then(|d| self.connectors.name_of(d)),
                note: prompt.as_ref().and_then(|p| p.note),
                password_required: prompt.as_ref().is_none_or(|p| p.password_required),
                fields: prompt
                    .map(|p| {
                        p.extra
                            .into_iter()
                            .map(|f| web::LoginField {
                                name: f.name,
                                label: f.label,
                                hint: f.hint,
                                placeholder: f.placeholder,
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            },
        );
        web::allow_form_targets(&mut resp, client.form_targets());
        for c in cookies {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
        resp
    }

    pub(super) fn consent_page(
        &self,
        client: &Client,
        record: &AuthRequestRecord,
        session: &SessionRecord,
        req: &AuthRequest,
        cookies: Vec<HeaderValue>,
    ) -> Response {
        let username = serde_json::from_str::<Identity>(&session.identity)
            .ok()
            .and_then(|i| i.preferred_username)
            .unwrap_or_else(|| session.sub.clone());
        let mut resp = web::render(
            StatusCode::OK,
            &web::ConsentView {
                assets: &self.base,
                action: format!("{}/consent", self.base),
                client_name: client.display_name(),
                username: &username,
                scopes: req.scope.iter().map(|s| self.scopes.describe(s)).collect(),
                claims: extra_claims(req),
                request_id: &record.id,
                csrf: &record.csrf,
            },
        );
        web::allow_form_targets(&mut resp, client.form_targets());
        for c in cookies {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
        resp
    }
}

/// What a consent covers: the scopes, plus `claim:NAME` for each claim the `claims`
/// parameter asks for beyond what those scopes release.
pub fn consent_items(req: &AuthRequest) -> Vec<String> {
    let mut items = req.scope.clone();
    items.extend(extra_claims(req).into_iter().map(|c| format!("claim:{c}")));
    items
}

/// Claims the `claims` parameter asks for that the granted scopes do not release.
pub fn extra_claims(req: &AuthRequest) -> Vec<String> {
    request::requested_claim_names(req.claims.as_ref())
        .into_iter()
        .filter(|c| {
            !req.scope
                .iter()
                .any(|s| scope_claims(s).contains(&c.as_str()))
        })
        .collect()
}
