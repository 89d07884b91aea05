//! `POST /login`: the username and password form, checked by the issuer's password
//! connector (the local users; in mock mode the mock's any-username form).
//!
//! When the connector does a real password check (`PasswordPrompt::throttled`), failed
//! attempts are throttled before the password is checked (the attempt is reserved first, so
//! concurrent guesses cannot all pass, and a cancelled attempt counts): five per username
//! and address, twenty per username and thirty per address in fifteen minutes. A
//! browser holding a device cookie from an earlier sign-in of that user counts against its
//! own budget only (five), which nobody else can spend, so a person on a browser they used
//! before is never locked out by someone else's failures; its password check is also served
//! ahead of strangers' when the hasher is saturated. See the README's "Security model".

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::authorize::{AuthorizeError, Flows, LoginFacts};
use super::params::HtmlForm;
use super::session::read_cookie;
use super::throttle::Rule;
use crate::federation::{Identity, LoginFailure, LoginForm, PasswordConnector};
use crate::metrics::LoginResult;
use crate::password::Lane;
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

/// What a sign-in attempt came to.
enum Attempt {
    SignedIn(Box<Identity>, Option<HeaderValue>),
    /// The page to show instead, and how the attempt ended.
    Page(Response, LoginResult),
}

fn result_of(failure: &LoginFailure) -> LoginResult {
    match failure {
        LoginFailure::Busy | LoginFailure::Unavailable => LoginResult::Busy,
        LoginFailure::WrongCredentials | LoginFailure::Invalid(_) => LoginResult::Failure,
    }
}

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
    let (record, req) = flows.load_pending(&headers, &form).await?;
    let client = flows
        .clients
        .find(&req.client_id)
        .await
        .ok_or_else(|| AuthorizeError::page("The application is no longer registered."))?;
    let named = form.get("connector").filter(|c| !c.is_empty());
    let connector = form_connector(&flows, &client, named)?;
    let username = form.get("username").unwrap_or("").trim().to_string();
    let field = |name: &str| form.get(name);
    let login = LoginForm {
        username: &username,
        password: form.get("password").unwrap_or(""),
        field: &field,
        client_id: client.id(),
        lane: Lane::Ordinary,
    };
    let shown: String = username.chars().take(MAX_USERNAME).collect();
    let page = |message: String, status: StatusCode| {
        flows.login_page(
            &client,
            &record,
            named,
            &shown,
            Some(message),
            status,
            Vec::new(),
        )
    };
    let throttled = connector.prompt().throttled;
    let attempt = if throttled && out_of_bounds(&username, login.password) {
        // Refused unhashed, as a wrong password.
        let resp = page(
            "Wrong username or password.".into(),
            StatusCode::UNAUTHORIZED,
        );
        Attempt::Page(resp, LoginResult::Failure)
    } else if throttled {
        throttled_login(&flows, &headers, addr, &*connector, login, &page).await
    } else {
        match connector.login(&login).await {
            Ok(identity) => Attempt::SignedIn(Box::new(identity), None),
            Err(failure) => {
                let result = result_of(&failure);
                Attempt::Page(failure_page(failure, &page), result)
            }
        }
    };
    match attempt {
        Attempt::SignedIn(identity, device_cookie) => {
            let facts = LoginFacts::signed_in(client.id(), identity.sub.as_str());
            flows.record_login(connector.id(), LoginResult::Success, facts);
            finish_login(
                &flows,
                &headers,
                record,
                req,
                &client,
                *identity,
                device_cookie,
            )
            .await
        }
        Attempt::Page(resp, result) => {
            let facts = LoginFacts::attempt(client.id(), &shown);
            flows.record_login(connector.id(), result, facts);
            Ok(resp)
        }
    }
}

/// The password connector a form posts to: a directory's form names it (and the client must
/// be allowed to use it); none named, the local users' (or the mock's).
fn form_connector(
    flows: &Flows,
    client: &crate::oidc::clients::Client,
    named: Option<&str>,
) -> Result<Arc<dyn PasswordConnector>, AuthorizeError> {
    let unavailable =
        || AuthorizeError::page("Signing in with a username and password is not available here.");
    if let Some(id) = named {
        let routed = flows
            .connectors
            .route(&client.config.allowed_connectors, Some(id), None);
        if !matches!(routed, Ok(crate::federation::Route::Form(ref f)) if f == id) {
            return Err(unavailable());
        }
    }
    flows
        .connectors
        .form(named)
        .cloned()
        .ok_or_else(unavailable)
}

fn out_of_bounds(username: &str, password: &str) -> bool {
    username.is_empty() || username.len() > MAX_USERNAME || password.len() > MAX_PASSWORD
}

/// The page for a failed sign-in (other than too many attempts).
fn failure_page(
    failure: LoginFailure,
    page: &(dyn Fn(String, StatusCode) -> Response + Sync),
) -> Response {
    match failure {
        LoginFailure::WrongCredentials => page(
            "Wrong username or password.".into(),
            StatusCode::UNAUTHORIZED,
        ),
        LoginFailure::Invalid(why) => page(why, StatusCode::BAD_REQUEST),
        LoginFailure::Unavailable => {
            let mut resp = page(
                "The directory that checks your password cannot be reached right now. Try again in a minute."
                    .into(),
                StatusCode::SERVICE_UNAVAILABLE,
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
            resp
        }
        LoginFailure::Busy => {
            let mut resp = page(
                "The sign-in service is very busy right now. Wait a few seconds and try again."
                    .into(),
                StatusCode::SERVICE_UNAVAILABLE,
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            resp
        }
    }
}

/// A password check under the sign-in budgets: the attempt is reserved before the check,
/// a known device waits in the priority lane, and a success earns a device cookie.
async fn throttled_login(
    flows: &Flows,
    headers: &HeaderMap,
    addr: ClientAddr,
    connector: &dyn PasswordConnector,
    mut login: LoginForm<'_>,
    page: &(dyn Fn(String, StatusCode) -> Response + Sync),
) -> Attempt {
    // A directory's users are budgeted apart from the local users of the same name.
    let username = match connector.id() {
        "local" => login.username.to_string(),
        id => format!("{id}/{}", login.username),
    };
    let username = username.as_str();
    let now = flows.clock.now();
    let device = read_cookie(headers, &flows.cookies.device)
        .and_then(|v| flows.devices.check(v, username, now));
    let keys = budget_keys(username, addr, device.as_deref());
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
                client_id = login.client_id,
                ip = %addr,
                known_device = device.is_some(),
                retry_after = refusal.wait,
                busy = refusal.busy,
                "sign-in attempt refused: too many failures or attempts at once"
            );
            return Attempt::Page(throttled_page(&refusal, page), LoginResult::Throttled);
        }
    };
    // A browser that proved this user signed in there before waits in the priority lane.
    if device.is_some() {
        login.lane = Lane::Priority;
    }
    match connector.login(&login).await {
        Ok(identity) => {
            let clear: Vec<&str> = clear.iter().map(String::as_str).collect();
            reservation.succeed(&clear, flows.clock.now());
            let cookie = flows
                .cookies
                .set_device(&flows.devices.issue(username, flows.clock.now()));
            Attempt::SignedIn(Box::new(identity), Some(cookie))
        }
        Err(failure @ (LoginFailure::Busy | LoginFailure::Unavailable)) => {
            reservation.release();
            Attempt::Page(failure_page(failure, page), LoginResult::Busy)
        }
        Err(failure) => {
            reservation.fail(flows.clock.now());
            tracing::info!(
                event = "login_failed",
                client_id = login.client_id,
                ip = %addr,
                "wrong username or password"
            );
            let result = result_of(&failure);
            Attempt::Page(failure_page(failure, page), result)
        }
    }
}

fn throttled_page(
    refusal: &crate::oidc::throttle::Refusal,
    page: &(dyn Fn(String, StatusCode) -> Response + Sync),
) -> Response {
    let message = if refusal.busy {
        "Too many sign-ins at once from your network. Try again in a few seconds.".to_string()
    } else {
        let minutes = (refusal.wait + 59) / 60;
        format!(
            "Too many failed sign-in attempts. Try again in {minutes} minute{}.",
            if minutes == 1 { "" } else { "s" }
        )
    };
    let mut resp = page(message, StatusCode::TOO_MANY_REQUESTS);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(refusal.wait.max(1)));
    resp
}

async fn finish_login(
    flows: &Flows,
    headers: &HeaderMap,
    mut record: crate::model::AuthRequestRecord,
    mut req: super::authorize::AuthRequest,
    client: &super::clients::Client,
    identity: Identity,
    device_cookie: Option<HeaderValue>,
) -> Result<Response, AuthorizeError> {
    let (session, cookie) = flows.start_session(headers, &identity).await?;
    tracing::info!(event = "login", client_id = client.id(), sub = %session.sub, "user signed in");
    req.login_done = true;
    record.session_id = Some(session.id_hash.clone());
    let mut cookies = vec![cookie];
    cookies.extend(device_cookie);
    flows
        .proceed(headers, req, Some(record), Some(session), cookies, None)
        .await
}
