//! `POST /login`: the local username and password form.
//!
//! Failed attempts are throttled before the password is checked (the attempt is reserved
//! first, so concurrent guesses cannot all pass, and a cancelled attempt counts): five per
//! username and address, twenty per username and thirty per address in fifteen minutes. A
//! browser holding a device cookie from an earlier sign-in of that user counts against its
//! own budget only (five), which nobody else can spend, so a person on a browser they used
//! before is never locked out by someone else's failures; its password check is also served
//! ahead of strangers' when the hasher is saturated. See the README's "Security model".

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::authorize::{AuthorizeError, Flows};
use super::params::HtmlForm;
use super::session::read_cookie;
use super::throttle::Rule;
use crate::server::ClientAddr;

const WINDOW: i64 = 900;
pub const PER_USER_AND_ADDRESS: Rule = Rule {
    window: WINDOW,
    limit: 5,
};
pub const PER_USER: Rule = Rule {
    window: WINDOW,
    limit: 20,
};
pub const PER_ADDRESS: Rule = Rule {
    window: WINDOW,
    limit: 30,
};
pub const PER_DEVICE: Rule = Rule {
    window: WINDOW,
    limit: 5,
};

/// Longest username and password the form takes; longer ones are refused unhashed.
const MAX_USERNAME: usize = 255;
const MAX_PASSWORD: usize = 1024;

/// The budgets an attempt counts against: a known device's own, or else the
/// username-and-address, username and address budgets.
fn budget_keys(username: &str, addr: ClientAddr, device: Option<&str>) -> Vec<(String, Rule)> {
    let user = username.to_lowercase();
    let addr = addr.budget_key();
    match device {
        Some(d) => vec![(format!("login:d:{d}\n{user}"), PER_DEVICE)],
        None => vec![
            (format!("login:ua:{user}\n{addr}"), PER_USER_AND_ADDRESS),
            (format!("login:u:{user}"), PER_USER),
            (format!("login:a:{addr}"), PER_ADDRESS),
        ],
    }
}

pub async fn post(
    State(flows): State<Arc<Flows>>,
    addr: ClientAddr,
    headers: HeaderMap,
    form: Result<HtmlForm, Response>,
) -> Response {
    let form = match form {
        Ok(HtmlForm(f)) => f,
        Err(resp) => return resp,
    };
    let (record, req) = match flows.load_pending(&headers, &form).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let Some(client) = flows.clients.get(&req.client_id) else {
        return flows.fail(AuthorizeError::page(
            "The application is no longer registered.",
        ));
    };
    let username = form.get("username").unwrap_or("").trim().to_string();
    let password = form.get("password").unwrap_or("");
    let now = flows.clock.now();

    if let Some(mock) = flows.mock.as_ref().filter(|m| m.mock_login) {
        let claims = match form
            .get("claims")
            .map(serde_json::from_str::<serde_json::Value>)
        {
            None => serde_json::Map::new(),
            Some(Ok(serde_json::Value::Object(m))) => m,
            Some(_) => {
                return flows.login_page(
                    &client,
                    &record,
                    &username,
                    Some(
                        "Extra claims must be a JSON object, like {\"department\": \"QA\"}.".into(),
                    ),
                    StatusCode::BAD_REQUEST,
                    Vec::new(),
                );
            }
        };
        if username.is_empty()
            || username.len() > 255
            || !username.bytes().all(|b| (0x21..=0x7e).contains(&b))
        {
            return flows.login_page(
                &client,
                &record,
                &username,
                Some("Enter a username of printable ASCII characters, without spaces.".into()),
                StatusCode::BAD_REQUEST,
                Vec::new(),
            );
        }
        let groups = form.get("groups").map(|g| {
            g.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
        if flows.clients.get(&username).is_some() {
            // A client's own tokens have its id as `sub`: no user may share it.
            return flows.login_page(
                &client,
                &record,
                &username,
                Some("That username is taken by an application here; choose another.".into()),
                StatusCode::BAD_REQUEST,
                Vec::new(),
            );
        }
        let identity = match mock.take_queued(Some(&username), client.id()) {
            Some(q) => mock.queued_identity(&q, &username),
            None => mock.identity(&username, groups, &claims),
        };
        return finish_login(&flows, &headers, record, req, &client, identity, None).await;
    }

    if username.is_empty() || username.len() > MAX_USERNAME || password.len() > MAX_PASSWORD {
        return flows.login_page(
            &client,
            &record,
            &username.chars().take(MAX_USERNAME).collect::<String>(),
            Some("Wrong username or password.".into()),
            StatusCode::UNAUTHORIZED,
            Vec::new(),
        );
    }
    let device = read_cookie(&headers, &flows.cookies.device)
        .and_then(|v| flows.devices.check(v, &username, now));
    let keys = budget_keys(&username, addr, device.as_deref());
    // A success clears this address's and this device's count for the user, never the
    // per-user or per-address counts a distributed attacker is building.
    let clear: Vec<String> = keys
        .iter()
        .filter(|(k, _)| k.starts_with("login:ua:") || k.starts_with("login:d:"))
        .map(|(k, _)| k.clone())
        .collect();
    let reservation = match flows.login_budgets.reserve(keys, now) {
        Ok(r) => r,
        Err(refusal) => {
            tracing::info!(
                event = "login_throttled",
                client_id = client.id(),
                ip = %addr,
                known_device = device.is_some(),
                retry_after = refusal.wait,
                busy = refusal.busy,
                "sign-in attempt refused: too many failures or attempts at once"
            );
            let message = if refusal.busy {
                "Too many sign-ins at once from your network. Try again in a few seconds."
                    .to_string()
            } else {
                let minutes = (refusal.wait + 59) / 60;
                format!(
                    "Too many failed sign-in attempts. Try again in {minutes} minute{}.",
                    if minutes == 1 { "" } else { "s" }
                )
            };
            let mut resp = flows.login_page(
                &client,
                &record,
                &username,
                Some(message),
                StatusCode::TOO_MANY_REQUESTS,
                Vec::new(),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(refusal.wait.max(1)));
            return resp;
        }
    };
    // A browser that proved this user signed in there before waits in the priority lane.
    let lane = if device.is_some() {
        crate::password::Lane::Priority
    } else {
        crate::password::Lane::Ordinary
    };
    let identity = match flows.users.authenticate(&username, password, lane).await {
        Ok(Some(id)) => {
            let clear: Vec<&str> = clear.iter().map(String::as_str).collect();
            reservation.succeed(&clear, flows.clock.now());
            id
        }
        Ok(None) => {
            reservation.fail(flows.clock.now());
            tracing::info!(
                event = "login_failed",
                client_id = client.id(),
                ip = %addr,
                "wrong username or password"
            );
            return flows.login_page(
                &client,
                &record,
                &username,
                Some("Wrong username or password.".into()),
                StatusCode::UNAUTHORIZED,
                Vec::new(),
            );
        }
        Err(crate::password::Busy) => {
            reservation.release();
            let mut resp = flows.login_page(
                &client,
                &record,
                &username,
                Some(
                    "The sign-in service is very busy right now. Wait a few seconds and try again."
                        .into(),
                ),
                StatusCode::SERVICE_UNAVAILABLE,
                Vec::new(),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            return resp;
        }
    };
    let device_cookie = flows
        .cookies
        .set_device(&flows.devices.issue(&username, flows.clock.now()));
    finish_login(
        &flows,
        &headers,
        record,
        req,
        &client,
        identity,
        Some(device_cookie),
    )
    .await
}

async fn finish_login(
    flows: &Flows,
    headers: &HeaderMap,
    mut record: crate::model::AuthRequestRecord,
    mut req: super::authorize::AuthRequest,
    client: &super::clients::Client,
    identity: super::identity::Identity,
    device_cookie: Option<HeaderValue>,
) -> Response {
    let (session, cookie) = match flows.start_session(headers, &identity).await {
        Ok(x) => x,
        Err(e) => return flows.fail(AuthorizeError::internal(&e)),
    };
    tracing::info!(event = "login", client_id = client.id(), sub = %session.sub, "user signed in");
    req.login_done = true;
    record.session_id = Some(session.id_hash.clone());
    let mut cookies = vec![cookie];
    cookies.extend(device_cookie);
    flows
        .proceed(headers, req, Some(record), Some(session), cookies, None)
        .await
        .unwrap_or_else(|e| flows.fail(e))
}
