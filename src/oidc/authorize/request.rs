//! Parsing and validating an authorization request (OIDC Core §3.1.2.1, RFC 7636).
//!
//! Until `client_id` and `redirect_uri` are known to be good, errors are an HTML page; after
//! that they are redirects to the client with `error`, `state` and `iss`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::AuthorizeError;
pub use super::error::{ErrorTarget, ResponseMode};
use crate::config::GrantType;
use crate::oidc::clients::{Client, ClientRegistry};
use crate::oidc::params::Params;
use crate::protocol::{ClientId, RedirectUri};

/// The longest authorization request taken (all parameters together), and the longest
/// value of each free-text parameter. Longer is an `invalid_request` (a page when the value
/// is `state`, which could not be echoed).
pub const MAX_REQUEST: usize = 16 * 1024;
pub const LIMITS: &[(&str, usize)] = &[
    ("state", 1024),
    ("nonce", 1024),
    ("login_hint", 255),
    ("claims", 4096),
    ("scope", 1024),
    ("ui_locales", 255),
    ("claims_locales", 255),
    ("acr_values", 255),
    ("display", 255),
    ("connector_id", 255),
    ("id_token_hint", 8192),
    ("prompt", 255),
    ("max_age", 32),
];

/// Claims the `claims` parameter may name (discovery's `claims_supported`, less the ones
/// every token carries anyway).
pub const REQUESTABLE_CLAIMS: &[&str] = &[
    "sub",
    "name",
    "preferred_username",
    "email",
    "email_verified",
    "groups",
];

/// Scopes this provider understands.
pub const SUPPORTED_SCOPES: &[&str] = crate::config::STANDARD_SCOPES;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    None,
    Login,
    Consent,
    SelectAccount,
}

/// A validated authorization request. Stored as JSON while the user logs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: ClientId,
    pub redirect_uri: RedirectUri,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
    /// Granted scopes, in request order.
    pub scope: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Vec<Prompt>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// `sub` of a valid `id_token_hint`.
    pub hint_sub: Option<String>,
    pub ui_locales: Option<String>,
    /// The `claims` parameter (OIDC Core §5.5).
    pub claims: Option<Value>,
    pub acr_values: Option<String>,
    pub display: Option<String>,
    #[serde(default)]
    pub login_done: bool,
    #[serde(default)]
    pub consent_done: bool,
    /// `connector_id`: skip the chooser and use this connector.
    #[serde(default)]
    pub connector_id: Option<String>,
    /// The round trip to an upstream IdP in progress, if any.
    #[serde(default)]
    pub upstream: Option<crate::federation::upstream::Pending>,
    /// Resource indicators (RFC 8707) the access tokens may be for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// The device request (its id) this sign-in approves (RFC 8628), instead of a code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

impl AuthRequest {
    pub fn has_prompt(&self, p: Prompt) -> bool {
        self.prompt.contains(&p)
    }

    pub fn target(&self) -> ErrorTarget {
        ErrorTarget {
            redirect_uri: self.redirect_uri.clone(),
            response_mode: self.response_mode,
            state: self.state.clone(),
        }
    }
}

/// Checks the client and redirect URI; an untrusted one is an error page, never a redirect.
pub fn trusted_target(
    params: &Params,
    clients: &ClientRegistry,
) -> Result<(Arc<Client>, ErrorTarget), AuthorizeError> {
    let client_id = params.get("client_id").ok_or_else(|| {
        AuthorizeError::page(
            "The request has no client_id: the application that sent you here is misconfigured.",
        )
    })?;
    let client = clients.get(client_id).ok_or_else(|| {
        AuthorizeError::page(
            "The application that sent you here is not registered with this sign-in service.",
        )
    })?;
    let redirect_uri = params.get("redirect_uri").ok_or_else(|| {
        AuthorizeError::page(
            "The request has no redirect_uri, so there is nowhere safe to send you back to.",
        )
    })?;
    if !client.accepts_redirect_uri(redirect_uri) {
        return Err(AuthorizeError::page(
            "The redirect_uri in the request is not one the application registered, so you were not sent back to it.",
        ));
    }
    if params.get("state").is_some_and(|s| s.len() > 1024) {
        return Err(AuthorizeError::page(
            "The request's state is longer than 1024 characters, so it could not be sent back safely.",
        ));
    }
    let response_mode = match params.get("response_mode") {
        Some("form_post") => ResponseMode::FormPost,
        _ => ResponseMode::Query,
    };
    Ok((
        client,
        ErrorTarget {
            redirect_uri: redirect_uri.into(),
            response_mode,
            state: params.get("state").map(str::to_string),
        },
    ))
}

fn is_pkce_challenge(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Validates everything after the client and redirect URI.
/// `any_claim`: mock mode, where a test author chose every claim a user has, so the
/// `claims` parameter may name any of them.
pub fn parse(
    params: &Params,
    client: &Client,
    target: &ErrorTarget,
    hint_sub: impl Fn(&str) -> Option<String>,
    any_claim: bool,
) -> Result<AuthRequest, AuthorizeError> {
    let err = |code: &'static str, desc: &str| AuthorizeError::redirect(target, code, desc);
    check_shape(params, client, &err)?;
    let scope = parse_scope(params, client, &err)?;
    let resources = crate::oidc::resource::check_requested(client, params.all("resource"))
        .map_err(|d| err("invalid_target", &d))?;
    let code_challenge = parse_pkce(params, client, &err)?;
    let prompt = parse_prompt(params, &err)?;
    let max_age = match params.get("max_age") {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return Err(err(
                    "invalid_request",
                    "max_age must be a whole number of seconds",
                ));
            }
        },
    };
    let claims = match params.get("claims") {
        None => None,
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) if any_claim => Some(v),
            // A client without a consent page gets nothing beyond what its granted scopes
            // release: nobody is asked.
            Ok(v @ Value::Object(_)) if client.config.skip_consent => {
                requestable_claims(&v, client, Some(&scope))
            }
            Ok(v @ Value::Object(_)) => requestable_claims(&v, client, None),
            _ => return Err(err("invalid_request", "claims must be a JSON object")),
        },
    };
    let hint = match params.get("id_token_hint") {
        None => None,
        Some(token) => Some(hint_sub(token).ok_or_else(|| {
            err(
                "invalid_request",
                "id_token_hint is not an ID token this provider issued",
            )
        })?),
    };
    let text = |name: &str| params.get(name).map(str::to_string);
    Ok(AuthRequest {
        client_id: client.id().into(),
        redirect_uri: target.redirect_uri.clone(),
        response_mode: target.response_mode,
        state: target.state.clone(),
        scope,
        nonce: text("nonce"),
        code_challenge,
        prompt,
        max_age,
        login_hint: text("login_hint"),
        hint_sub: hint,
        ui_locales: text("ui_locales"),
        claims,
        acr_values: text("acr_values"),
        display: text("display"),
        login_done: false,
        consent_done: false,
        connector_id: text("connector_id"),
        upstream: None,
        resources,
        device: None,
    })
}

/// How an error found while parsing is sent: to the (trusted) redirect URI.
type Refuse<'a> = &'a dyn Fn(&'static str, &str) -> AuthorizeError;

/// Lengths, `response_mode`, request objects, `response_type`, and whether the client may
/// use the code flow at all.
fn check_shape(params: &Params, client: &Client, err: Refuse<'_>) -> Result<(), AuthorizeError> {
    for (name, max) in LIMITS {
        if params.get(name).is_some_and(|v| v.len() > *max) {
            return Err(err(
                "invalid_request",
                &format!("{name} is longer than {max} characters"),
            ));
        }
    }
    if let Some(m) = params.get("response_mode")
        && m != "query"
        && m != "form_post"
    {
        return Err(err(
            "invalid_request",
            "response_mode must be query or form_post",
        ));
    }
    if params.get("request").is_some() {
        return Err(err(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(err(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    match params.get("response_type") {
        None => return Err(err("invalid_request", "response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(err(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(err(
            "unauthorized_client",
            "this client may not use the authorization code flow",
        ));
    }
    Ok(())
}

/// The scopes granted of those requested: `openid` required, the rest if the client may
/// have them (`offline_access` only with the refresh grant), each once.
fn parse_scope(
    params: &Params,
    client: &Client,
    err: Refuse<'_>,
) -> Result<Vec<String>, AuthorizeError> {
    let requested: Vec<&str> = params
        .get("scope")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    if !requested.contains(&"openid") {
        return Err(err("invalid_scope", "scope must include openid"));
    }
    Ok(grantable_scope(client, &requested))
}

/// The scopes of `requested` the client may have, in order, once each (unknown ones are
/// dropped, OIDC Core §3.1.2.1).
pub fn grantable_scope(client: &Client, requested: &[&str]) -> Vec<String> {
    let allowed = |s: &str| match &client.config.scopes {
        Some(list) => list.iter().any(|a| a == s),
        None => SUPPORTED_SCOPES.contains(&s),
    };
    let mut scope: Vec<String> = Vec::new();
    for s in requested {
        let grantable = *s == "openid"
            || (allowed(s)
                && (*s != "offline_access" || client.allows_grant(GrantType::RefreshToken)));
        if grantable && !scope.iter().any(|g| g == s) {
            scope.push(s.to_string());
        }
    }
    scope
}

/// The PKCE challenge (RFC 7636): S256 only, required when the client says so.
fn parse_pkce(
    params: &Params,
    client: &Client,
    err: Refuse<'_>,
) -> Result<Option<String>, AuthorizeError> {
    match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (None, Some(_)) => Err(err(
            "invalid_request",
            "code_challenge_method without code_challenge",
        )),
        (Some(_), None | Some("plain")) => Err(err(
            "invalid_request",
            "code_challenge_method must be S256 (plain is not accepted)",
        )),
        (Some(c), Some("S256")) if is_pkce_challenge(c) => Ok(Some(c.to_string())),
        (Some(_), Some("S256")) => Err(err(
            "invalid_request",
            "code_challenge must be a base64url SHA-256 digest (43 characters)",
        )),
        (Some(_), Some(_)) => Err(err("invalid_request", "code_challenge_method must be S256")),
        (None, None) if client.config.require_pkce => Err(err(
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        )),
        (None, None) => Ok(None),
    }
}

/// `prompt` (OIDC Core §3.1.2.1): known values only, `none` alone.
fn parse_prompt(params: &Params, err: Refuse<'_>) -> Result<Vec<Prompt>, AuthorizeError> {
    let mut prompt = Vec::new();
    for p in params
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
    {
        prompt.push(match p {
            "none" => Prompt::None,
            "login" => Prompt::Login,
            "consent" => Prompt::Consent,
            "select_account" => Prompt::SelectAccount,
            _ => return Err(err("invalid_request", "prompt has an unknown value")),
        });
    }
    if prompt.contains(&Prompt::None) && prompt.len() > 1 {
        return Err(err(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(prompt)
}

/// The part of a `claims` parameter (OIDC Core §5.5) this client may have: under
/// `userinfo` and `id_token`, names in [`REQUESTABLE_CLAIMS`] that a scope this client may
/// ask for releases. Anything else is ignored, as §5.5 allows. What remains is shown on the
/// consent page and released only with the user's approval (or for a `skip_consent`
/// client, which is trusted with its scopes).
///
/// With `granted`, only what those scopes release (a client that skips consent).
pub fn requestable_claims(
    claims: &Value,
    client: &Client,
    granted: Option<&[String]>,
) -> Option<Value> {
    let allowed_scope = |s: &str| match (granted, &client.config.scopes) {
        (Some(g), _) => g.iter().any(|a| a == s),
        (None, Some(list)) => list.iter().any(|a| a == s),
        (None, None) => SUPPORTED_SCOPES.contains(&s),
    };
    let releasable = |name: &str| {
        name == "sub"
            || SUPPORTED_SCOPES
                .iter()
                .any(|s| allowed_scope(s) && crate::oidc::claims::scope_claims(s).contains(&name))
    };
    let mut out = serde_json::Map::new();
    for member in ["userinfo", "id_token"] {
        let Some(Value::Object(names)) = claims.get(member) else {
            continue;
        };
        let kept: serde_json::Map<String, Value> = names
            .iter()
            .filter(|(n, _)| REQUESTABLE_CLAIMS.contains(&n.as_str()) && releasable(n))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        if !kept.is_empty() {
            out.insert(member.into(), Value::Object(kept));
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// Claim names a `claims` value asks for, in both members, deduplicated and sorted.
pub fn requested_claim_names(claims: Option<&Value>) -> Vec<String> {
    let mut names: Vec<String> = ["userinfo", "id_token"]
        .iter()
        .filter_map(|m| claims?.get(*m)?.as_object())
        .flat_map(|o| o.keys().cloned())
        .filter(|n| n != "sub")
        .collect();
    names.sort();
    names.dedup();
    names
}
