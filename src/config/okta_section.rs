//! okta: `groups_api`, where an Okta connector reads groups past the 100 a token carries,
//! with an API token or an OAuth 2.0 service app.

use super::connector_kinds::ConnectorKind;
use super::tree::{Obj, Reader};
use crate::secret::SecretString;

/// okta: `groups_api`, Okta's Groups API (`/api/v1/users/{id}/groups`).
#[derive(Debug, Clone)]
pub struct OktaGroupsApi {
    /// How the bridge authenticates to the API.
    pub auth: OktaApiAuth,
    /// The org URL (`https://acme.okta.com`): the issuer up to `/oauth2/` by default.
    pub url: String,
    /// Ask the API at every sign-in, not only when the token holds exactly 100 groups.
    pub always: bool,
    /// A group the org's claim rule adds when it cut the list (a token holding it is
    /// read from the API, whatever its count).
    pub marker: Option<String>,
}

/// Okta puts at most this many groups in a token, silently dropping the rest.
pub const OKTA_TOKEN_GROUPS: usize = 100;

/// An API token, or an OAuth 2.0 service app.
#[derive(Debug, Clone)]
pub enum OktaApiAuth {
    /// An API token (`Authorization: SSWS …`) of a read-only admin.
    Token(SecretString),
    /// A service app: client credentials with `private_key_jwt`, scoped tokens.
    ServiceApp(OktaServiceApp),
}

/// An Okta API service app (`groups_api.client_id` and its private key).
#[derive(Clone)]
pub struct OktaServiceApp {
    pub client_id: String,
    /// PKCS#8 PEM; its public half is registered with the app.
    pub private_key: SecretString,
    pub key_id: Option<String>,
    /// Default `okta.users.read okta.groups.read`.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for OktaServiceApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OktaServiceApp")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// okta: `groups_api: {token | client_id + private_key_file, url, always, marker}`.
pub fn read_groups_api(
    r: &mut Reader,
    o: &Obj<'_>,
    kind: ConnectorKind,
    issuer: Option<&str>,
) -> Option<OktaGroupsApi> {
    o.get("groups_api")?;
    let path = o.key_path("groups_api");
    if kind != ConnectorKind::Okta {
        r.problem(&path, "is Okta's Groups API: only an okta connector has it");
        return None;
    }
    let a = r.obj(o.get("groups_api"), &path, GROUPS_API);
    let auth = read_auth(r, &a);
    let url = r.string(&a, "url").or_else(|| {
        let i = issuer?;
        Some(match i.find("/oauth2/") {
            Some(at) => i[..at].to_string(),
            None => url::Url::parse(i).ok()?.origin().ascii_serialization(),
        })
    });
    if let Some(u) = &url
        && url::Url::parse(u).is_err()
    {
        r.problem(a.key_path("url"), format!("`{u}` is not a URL"));
    }
    Some(OktaGroupsApi {
        auth: auth?,
        url: url?.trim_end_matches('/').to_string(),
        always: r.bool(&a, "always").unwrap_or(false),
        marker: r.string(&a, "marker").filter(|m| !m.is_empty()),
    })
}

const GROUPS_API: &[&str] = &[
    "token",
    "client_id",
    "private_key_file",
    "private_key",
    "key_id",
    "scopes",
    "url",
    "always",
    "marker",
];

/// `token`, or a service app's `client_id` with `private_key_file` (or `private_key`).
fn read_auth(r: &mut Reader, a: &Obj<'_>) -> Option<OktaApiAuth> {
    let token = r.string(a, "token").filter(|t| !t.is_empty());
    let client_id = r.string(a, "client_id").filter(|c| !c.is_empty());
    match (token, client_id) {
        (Some(t), None) => Some(OktaApiAuth::Token(SecretString::new(t))),
        (None, Some(client_id)) => {
            let pem = super::checks::read_pem(
                r,
                a,
                ("private_key_file", "private_key"),
                "a service app needs its private key",
            )?;
            if !pem.contains("BEGIN PRIVATE KEY") {
                r.problem(
                    a.key_path("private_key_file"),
                    "is not a PKCS#8 PEM private key",
                );
                return None;
            }
            Some(OktaApiAuth::ServiceApp(OktaServiceApp {
                client_id,
                private_key: SecretString::new(pem),
                key_id: r.string(a, "key_id"),
                scopes: r
                    .strings(a, "scopes")
                    .unwrap_or_else(|| vec!["okta.users.read".into(), "okta.groups.read".into()]),
            }))
        }
        (Some(_), Some(_)) => {
            r.problem(
                a.key_path("token"),
                "give token or client_id (a service app), not both",
            );
            None
        }
        (None, None) => {
            r.problem(
                a.key_path("token"),
                "is required (or client_id and private_key_file: a service app)",
            );
            None
        }
    }
}
