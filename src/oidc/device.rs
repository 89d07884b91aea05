//! The device authorization grant (RFC 8628), its two halves apart from the polling
//! (`grants/device_code.rs`):
//!
//! - `POST /device_authorization`: an authenticated (or public) client gets a device code,
//!   a user code and where to enter it (§3.1, §3.2).
//! - `GET|POST /device`: a person enters the user code, confirms the client it names (a
//!   page that warns against codes handed over by someone else, §5.4), and then signs in
//!   as for any authorization request: every connector, the access policy and consent
//!   apply. The end of that flow approves the device request instead of sending a code.
//!
//! User codes are eight letters from a 20-consonant alphabet with no vowels or look-alikes
//! (§6.1: about 34 bits), shown as `BCDF-GHJK`, read case- and dash-insensitively. Wrong
//! codes are counted per address: past 10 in 5 minutes, the form answers "try later"
//! before looking. The confirmation form carries a token bound to the browser, so another
//! site cannot confirm a code of its own for a signed-in person. Device requests count
//! against the address's pending-request budget (each stores a row).

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::authorize::request::ResponseMode;
use super::authorize::{AuthRequest, AuthorizeError, Flows};
use super::client_auth::ClientRequest;
use super::clients::Client;
use super::error::{ErrorCode, OAuthError, no_store};
use super::params::{HtmlForm, Params};
use super::session::{hash_value, new_secret, read_cookie};
use super::throttle::Rule;
use crate::config::GrantType;
use crate::model::{DeviceCodeRecord, DeviceStatus};
use crate::secret::{ct_eq, random_token, sha256_b64url};
use crate::server::ClientAddr;
use crate::web;

/// RFC 8628 §6.1's alphabet: consonants only, no look-alikes.
const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;
/// Wrong user codes per address.
pub const WRONG_CODES: Rule = Rule {
    window: 300,
    limit: 10,
};

/// What the device asked for, kept with its request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeviceRequest {
    pub scope: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
}

/// A new user code, uniformly from [`ALPHABET`] (rejection sampling: no modulo bias).
fn new_user_code() -> String {
    let mut out = String::with_capacity(USER_CODE_LEN);
    while out.len() < USER_CODE_LEN {
        let mut byte = [0u8; 16];
        openssl::rand::rand_bytes(&mut byte).unwrap_or_default();
        for b in byte {
            // 240 = 12 × 20: bytes above it would favour the first letters.
            if b < 240 && out.len() < USER_CODE_LEN {
                out.push(ALPHABET[(b % 20) as usize] as char);
            }
        }
    }
    out
}

/// A typed user code in its stored form (upper case, no dashes or spaces); `None` when it
/// cannot be one.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// `BCDFGHJK` as `BCDF-GHJK`.
pub fn display_user_code(code: &str) -> String {
    match code.split_at_checked(USER_CODE_LEN / 2) {
        Some((a, b)) => format!("{a}-{b}"),
        None => code.to_string(),
    }
}

/// The device authorization response (RFC 8628 §3.2).
#[derive(Debug, Serialize)]
struct DeviceAuthorization {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    expires_in: i64,
    interval: i64,
}

/// The scopes a device request may have: those the client may ask for (unknown ones are
/// dropped, as at `/authorize`).
fn device_scope(client: &Client, requested: Option<&str>) -> Vec<String> {
    let requested: Vec<&str> = requested
        .unwrap_or("openid")
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    super::authorize::request::grantable_scope(client, &requested)
}

/// Each request stores a row: they count against the address's pending-request budget
/// (`server.pending_requests_per_minute`), as authorization requests do.
fn charge(flows: &Flows, addr: ClientAddr) -> Result<(), OAuthError> {
    if !flows.charge_pending {
        return Ok(());
    }
    let now = flows.clock.now();
    let key = format!("device-authorization:{}", addr.budget_key());
    let rule = Rule {
        window: super::authorize::PENDING_WINDOW,
        limit: flows.pending_per_minute,
    };
    if let Some(wait) = flows.pending_budgets.exhausted(&key, rule, now) {
        return Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "too many device authorization requests from this address; try again later",
        )
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .with_retry_after(wait));
    }
    flows.pending_budgets.record_failure(vec![(key, rule)], now);
    Ok(())
}

/// `POST /device_authorization`.
pub async fn authorize(
    State(flows): State<Arc<Flows>>,
    req: ClientRequest,
) -> Result<Response, OAuthError> {
    let client = &req.client;
    if !client.allows_grant(GrantType::DeviceCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the device authorization grant",
        ));
    }
    charge(&flows, req.addr)?;
    let request = DeviceRequest {
        scope: device_scope(client, req.params.get("scope")),
        resources: super::resource::check_at_token(client, req.params.all("resource"))?,
    };
    let now = flows.clock.now();
    let device_code = random_token(32);
    let lifetime = flows.lifetimes.device_code.get();
    let interval = flows.lifetimes.device_poll_interval.get();
    let mut record = DeviceCodeRecord {
        device_code_hash: sha256_b64url(device_code.as_bytes()),
        user_code: new_user_code(),
        id: random_token(16),
        client_id: client.id().to_string(),
        request: serde_json::to_string(&request).map_err(|e| OAuthError::internal(&e))?,
        status: DeviceStatus::Pending,
        grant: None,
        created_at: now,
        expires_at: now + lifetime,
        poll_interval: interval,
        last_poll_at: None,
        polls: 0,
        slow_down: false,
        approve_after_polls: None,
        taken_at_poll: None,
    };
    // A user code already in use (one in 20^8 per live code) gets another.
    let mut tries = 0;
    loop {
        match flows.storage.insert_device_code(&record).await {
            Ok(()) => break,
            Err(crate::storage::StorageError::Conflict(_)) if tries < 3 => {
                tries += 1;
                record.user_code = new_user_code();
            }
            Err(e) => return Err(e.into()),
        }
    }
    tracing::info!(
        event = "device_authorization",
        client_id = client.id(),
        "device code issued"
    );
    let shown = display_user_code(&record.user_code);
    let verification_uri = format!("{}{}", flows.issuer, super::discovery::DEVICE_PATH);
    let body = DeviceAuthorization {
        device_code,
        verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
        user_code: shown,
        verification_uri,
        expires_in: lifetime,
        interval,
    };
    let mut resp = Json(body).into_response();
    no_store(&mut resp);
    Ok(resp)
}

/// The confirmation form's token: bound to the browser's binding cookie and the code.
fn csrf_for(binding: &str, user_code: &str) -> String {
    sha256_b64url(format!("device\n{}\n{user_code}", hash_value(binding)).as_bytes())
}

impl Flows {
    fn device_form(&self, user_code: &str, error: Option<&str>, status: StatusCode) -> Response {
        web::render(
            status,
            &web::DeviceView {
                assets: &self.base,
                action: format!("{}{}", self.base, super::discovery::DEVICE_PATH),
                user_code,
                error,
                client_name: None,
                csrf: "",
            },
        )
    }

    /// A pending, unexpired device request by its typed user code; a wrong one is counted
    /// against the address.
    async fn pending_device(
        &self,
        addr: ClientAddr,
        typed: &str,
    ) -> Result<Result<DeviceCodeRecord, Response>, AuthorizeError> {
        let now = self.clock.now();
        let key = format!("device-code:{}", addr.budget_key());
        if self
            .login_budgets
            .exhausted(&key, WRONG_CODES, now)
            .is_some()
        {
            return Ok(Err(self.device_form(
                typed,
                Some("Too many wrong codes from your network. Wait a few minutes and try again."),
                StatusCode::TOO_MANY_REQUESTS,
            )));
        }
        let found = match normalize_user_code(typed) {
            Some(code) => self.storage.get_device_code(&code).await?,
            None => None,
        };
        match found {
            Some(d) if d.status == DeviceStatus::Pending && d.expires_at > now => Ok(Ok(d)),
            _ => {
                self.login_budgets
                    .record_failure(vec![(key, WRONG_CODES)], now);
                Ok(Err(self.device_form(
                    typed,
                    Some("That code is wrong, expired or already used. Check the code on your device."),
                    StatusCode::BAD_REQUEST,
                )))
            }
        }
    }

    /// The page that names the client and asks the person to confirm the code.
    fn device_confirm(
        &self,
        headers: &HeaderMap,
        device: &DeviceCodeRecord,
        client: &Client,
    ) -> Response {
        let (binding, cookie) = match read_cookie(headers, &self.cookies.binding) {
            Some(v) => (v.to_string(), None),
            None => {
                let (v, _) = new_secret();
                let cookie = self.cookies.set_binding(&v);
                (v, Some(cookie))
            }
        };
        let shown = display_user_code(&device.user_code);
        let mut resp = web::render(
            StatusCode::OK,
            &web::DeviceView {
                assets: &self.base,
                action: format!("{}{}", self.base, super::discovery::DEVICE_PATH),
                user_code: &shown,
                error: None,
                client_name: Some(client.display_name()),
                csrf: &csrf_for(&binding, &device.user_code),
            },
        );
        if let Some(c) = cookie {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
        resp
    }

    /// The confirmed code: the sign-in of a new authorization request that approves it.
    async fn device_sign_in(
        &self,
        headers: &HeaderMap,
        addr: ClientAddr,
        device: DeviceCodeRecord,
        client: &Client,
    ) -> Result<Response, AuthorizeError> {
        let asked: DeviceRequest = serde_json::from_str(&device.request).unwrap_or_default();
        let done = format!("{}{}/done", self.issuer, super::discovery::DEVICE_PATH);
        let req = AuthRequest {
            client_id: client.id().into(),
            redirect_uri: done.as_str().into(),
            response_mode: ResponseMode::Query,
            state: Some(device.id.clone()),
            scope: asked.scope,
            nonce: None,
            code_challenge: None,
            prompt: Vec::new(),
            max_age: None,
            login_hint: None,
            hint_sub: None,
            ui_locales: None,
            claims: None,
            acr_values: None,
            display: None,
            login_done: false,
            consent_done: false,
            connector_id: None,
            upstream: None,
            resources: asked.resources,
            device: Some(device.id),
        };
        let session = self.current_session(headers).await?;
        let charge = self.charge_pending.then_some(addr);
        self.proceed(headers, req, None, session, Vec::new(), charge)
            .await
    }
}

/// `GET /device[?user_code=…]`: the code form, filled in from `verification_uri_complete`.
pub async fn page(
    State(flows): State<Arc<Flows>>,
    RawQuery(q): RawQuery,
) -> Result<Response, AuthorizeError> {
    let p = Params::parse(q.unwrap_or_default().as_bytes()).unwrap_or_default();
    let typed: String = p.get("user_code").unwrap_or("").chars().take(32).collect();
    Ok(flows.device_form(&typed, None, StatusCode::OK))
}

/// `POST /device`: a typed code (then the confirmation page), or a confirmed one (then the
/// sign-in).
pub async fn post(
    State(flows): State<Arc<Flows>>,
    addr: ClientAddr,
    headers: HeaderMap,
    form: Result<HtmlForm, Response>,
) -> Result<Response, AuthorizeError> {
    let form = match form {
        Ok(HtmlForm(f)) => f,
        Err(resp) => return Ok(resp),
    };
    let typed: String = form
        .get("user_code")
        .unwrap_or("")
        .chars()
        .take(32)
        .collect();
    let device = match flows.pending_device(addr, &typed).await? {
        Ok(d) => d,
        Err(page) => return Ok(page),
    };
    let client = flows
        .clients
        .find(&device.client_id)
        .await
        .ok_or_else(|| AuthorizeError::page("The application is no longer registered."))?;
    if form.get("confirm") != Some("yes") {
        return Ok(flows.device_confirm(&headers, &device, &client));
    }
    let bound = read_cookie(&headers, &flows.cookies.binding).is_some_and(|b| {
        form.get("csrf")
            .is_some_and(|c| ct_eq(c.as_bytes(), csrf_for(b, &device.user_code).as_bytes()))
    });
    if !bound {
        return Err(AuthorizeError::titled(
            StatusCode::FORBIDDEN,
            "Sign-in refused",
            "The form could not be verified. Enter the code from your device again.",
        ));
    }
    flows.device_sign_in(&headers, addr, device, &client).await
}

/// `GET /device/done`: where a device sign-in that ended in an error lands (the person
/// denied consent, or the access policy refused them): the request is denied, so the
/// device hears `access_denied` at once.
pub async fn done(
    State(flows): State<Arc<Flows>>,
    RawQuery(q): RawQuery,
) -> Result<Response, AuthorizeError> {
    let p = Params::parse(q.unwrap_or_default().as_bytes()).unwrap_or_default();
    if let Some(id) = p.get("state").filter(|_| p.get("error").is_some()) {
        let now = flows.clock.now();
        let denied = flows
            .storage
            .decide_device_code(id, &crate::model::DeviceDecision::Deny, now)
            .await?;
        if denied {
            flows.audit.record(
                crate::audit::Event::new(crate::audit::Kind::DeviceAuthorization, "denied").detail(
                    "reason",
                    p.get("error")
                        .unwrap_or_default()
                        .chars()
                        .take(64)
                        .collect::<String>(),
                ),
            );
        }
    }
    Ok(flows.page(
        StatusCode::OK,
        "Device sign-in refused",
        "The device was not signed in. You can close this window.",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_eight_consonants_read_loosely() {
        for _ in 0..50 {
            let code = new_user_code();
            assert_eq!(code.len(), 8);
            assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
            assert_eq!(
                normalize_user_code(&display_user_code(&code)),
                Some(code.clone())
            );
            assert_eq!(normalize_user_code(&code.to_lowercase()), Some(code));
        }
        assert_eq!(normalize_user_code("bcdf ghjk"), Some("BCDFGHJK".into()));
        assert_eq!(
            normalize_user_code("BCDF-GHJA"),
            None,
            "a vowel is never in a code"
        );
        assert_eq!(normalize_user_code("BCDF-GHJ"), None);
        assert_eq!(display_user_code("BCDFGHJK"), "BCDF-GHJK");
    }
}
