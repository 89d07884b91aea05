//! The control API under `{issuer}/mock/` (JSON; `docs/mock-api.yaml` is its OpenAPI file).
//! It exists only in mock mode, or under `serve` with `mock.control_api` and an admin token.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::error::ControlError;
use super::faults::Rule;
use super::mint::{MintRequest, mint};
use super::state::{Control, QueuedLogin};
use crate::clock::rfc3339;
use crate::config::{ClientTokenLifetimes, Seconds};

type C = State<Arc<Control>>;

fn error(e: ControlError) -> Response {
    e.into_response()
}

fn parse<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        error(ControlError::bad_request(format!(
            "the JSON body is not valid: {e}"
        )))
    })
}

fn ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

pub fn routes(control: Arc<Control>) -> Router {
    let base = control.mock.base.clone();
    let api = Router::new()
        .route("/tokens", post(tokens))
        .route("/clock", get(clock_get).post(clock_set))
        .route("/keys/rotate", post(rotate))
        .route(
            "/faults",
            get(faults_list).post(faults_add).delete(faults_clear),
        )
        .route("/faults/{id}", delete(fault_remove))
        .route("/next-login", post(next_login))
        .route("/requests", get(requests_list).delete(requests_clear))
        .route("/clients/{id}/lifetimes", put(lifetimes))
        .route("/sessions/revoke", post(sessions_revoke))
        .route("/users/{username}", put(user_put))
        .route("/device/{user_code}", post(super::device::decide))
        .route("/reset", post(reset))
        .layer(axum::middleware::from_fn_with_state(
            control.clone(),
            admin_guard,
        ))
        .with_state(control);
    Router::new().nest(&format!("{base}/mock"), api)
}

/// Under `serve`, every control call needs `Authorization: Bearer <mock.admin_token>`.
async fn admin_guard(State(c): C, req: Request, next: Next) -> Response {
    if let Some(expected) = &c.mock.admin_token {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            // The scheme is case-insensitive (RFC 7235 §2.1); the token is exact.
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or("", |(_, token)| token);
        if !crate::secret::ct_eq(presented.as_bytes(), expected.as_bytes()) {
            let mut resp = error(ControlError::unauthorized(
                "the control API needs the admin bearer token",
            ));
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return resp;
        }
    }
    next.run(req).await
}

async fn tokens(State(c): C, body: Bytes) -> Response {
    let req: MintRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match mint(&c, req).await {
        Ok(v) => ok(v),
        Err(e) => error(e),
    }
}

fn clock_view(c: &Control) -> Value {
    let clock = &c.mock.clock;
    json!({
        "now": rfc3339(clock.current()),
        "now_unix": clock.current(),
        "offset_seconds": clock.offset(),
        "frozen_at": clock.frozen_at().map(rfc3339),
    })
}

async fn clock_get(State(c): C) -> Response {
    ok(clock_view(&c))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockSet {
    offset_seconds: Option<i64>,
    /// RFC 3339, or `null` to let time run again.
    #[serde(default, deserialize_with = "some_or_null")]
    frozen_at: Option<Option<String>>,
    advance_seconds: Option<i64>,
}

fn some_or_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::<String>::deserialize(d)?))
}

async fn clock_set(State(c): C, body: Bytes) -> Response {
    let req: ClockSet = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let clock = &c.mock.clock;
    if let Some(o) = req.offset_seconds {
        clock.set_offset(o);
    }
    match req.frozen_at {
        Some(Some(text)) => {
            let Ok(t) =
                time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            else {
                return error(ControlError::bad_request(format!(
                    "frozen_at `{text}` is not an RFC 3339 time"
                )));
            };
            clock.freeze_at(t.unix_timestamp());
        }
        Some(None) => clock.set_offset(clock.offset()),
        None => {}
    }
    if let Some(a) = req.advance_seconds {
        clock.advance(a);
    }
    if let Err(e) = c.keys.refresh().await {
        tracing::warn!(error = %e, "key refresh after a clock change failed");
    }
    tracing::info!(event = "mock_clock", offset = clock.offset(), frozen = ?clock.frozen_at(), "mock clock changed");
    ok(clock_view(&c))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotate {
    /// Seconds before the new key signs; default `signing.publish_ahead`. `0`: at once.
    publish_ahead: Option<i64>,
}

async fn rotate(State(c): C, body: Bytes) -> Response {
    let req: Rotate = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let ahead = req.publish_ahead.map(Seconds).unwrap_or(c.publish_ahead);
    if ahead.get() < 0 {
        return error(ControlError::bad_request(
            "publish_ahead must be 0 or more seconds",
        ));
    }
    match c.keys.rotate(ahead).await {
        Ok(Some(kid)) => ok(json!({
            "kid": kid,
            "signs_from": rfc3339(c.mock.clock.current() + ahead.get()),
        })),
        Ok(None) => error(ControlError::conflict(
            "another rotation happened at the same moment",
        )),
        Err(e) => error(ControlError::internal(&e)),
    }
}

async fn faults_list(State(c): C) -> Response {
    ok(json!(c.mock.faults.list()))
}

async fn faults_add(State(c): C, body: Bytes) -> Response {
    let rule: Rule = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(ControlError::bad_request(format!("not a fault rule: {e}"))),
    };
    match c.mock.faults.add(rule) {
        Ok(r) => (StatusCode::CREATED, axum::Json(json!(r))).into_response(),
        Err(e) => error(ControlError::bad_request(e)),
    }
}

async fn faults_clear(State(c): C) -> Response {
    c.mock.faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn fault_remove(State(c): C, Path(id): Path<String>) -> Response {
    if c.mock.faults.remove(&id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(ControlError::not_found(format!("no fault rule `{id}`")))
    }
}

async fn next_login(State(c): C, body: Bytes) -> Response {
    let q: QueuedLogin = match serde_json::from_slice(&body) {
        Ok(q) => q,
        Err(e) => {
            return error(ControlError::bad_request(format!(
                "not a queued login: {e}"
            )));
        }
    };
    let mut queue = c.mock.next_logins.lock().unwrap_or_else(|e| e.into_inner());
    queue.push(q);
    (
        StatusCode::CREATED,
        axum::Json(json!({"queued": queue.len()})),
    )
        .into_response()
}

#[derive(Deserialize)]
struct RequestFilter {
    endpoint: Option<String>,
    path: Option<String>,
    client_id: Option<String>,
    method: Option<String>,
}

async fn requests_list(State(c): C, Query(f): Query<RequestFilter>) -> Response {
    let log = c.mock.requests.lock().unwrap_or_else(|e| e.into_inner());
    let list: Vec<_> = log
        .iter()
        .filter(|r| f.endpoint.as_ref().is_none_or(|e| &r.endpoint == e))
        .filter(|r| f.path.as_ref().is_none_or(|p| &r.path == p))
        .filter(|r| {
            f.client_id
                .as_ref()
                .is_none_or(|id| r.client_id.as_ref() == Some(id))
        })
        .filter(|r| {
            f.method
                .as_ref()
                .is_none_or(|m| r.method.eq_ignore_ascii_case(m))
        })
        .cloned()
        .collect();
    ok(json!(list))
}

async fn requests_clear(State(c): C) -> Response {
    c.mock
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Lifetimes {
    access_token: Option<i64>,
    id_token: Option<i64>,
    refresh_token_idle: Option<i64>,
    refresh_token_absolute: Option<i64>,
    #[serde(default)]
    force: bool,
}

/// Backstage refreshes a session when less than this remains (reference A.5).
const BACKSTAGE_REFRESH_MARGIN: i64 = 180;

async fn lifetimes(State(c): C, Path(id): Path<String>, body: Bytes) -> Response {
    let req: Lifetimes = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    for (name, v) in [
        ("access_token", req.access_token),
        ("id_token", req.id_token),
        ("refresh_token_idle", req.refresh_token_idle),
        ("refresh_token_absolute", req.refresh_token_absolute),
    ] {
        if v.is_some_and(|v| v <= 0) {
            return error(ControlError::bad_request(format!(
                "{name} must be a positive number of seconds"
            )));
        }
    }
    if let Some(at) = req.access_token
        && at < BACKSTAGE_REFRESH_MARGIN
        && !req.force
    {
        return error(ControlError::bad_request(format!(
            "access_token lifetime {at}s is under {BACKSTAGE_REFRESH_MARGIN}s: Backstage refreshes \
             a session when less than {BACKSTAGE_REFRESH_MARGIN}s remain, so it would refresh on \
             every call. Use 240s or more, or send \"force\": true to set it anyway."
        )));
    }
    let mut applied = ClientTokenLifetimes::default();
    let found = c.clients.update(&id, |cfg| {
        let t = &mut cfg.tokens;
        t.access_token = req.access_token.map(Seconds).or(t.access_token);
        t.id_token = req.id_token.map(Seconds).or(t.id_token);
        t.refresh_token_idle = req.refresh_token_idle.map(Seconds).or(t.refresh_token_idle);
        t.refresh_token_absolute = req
            .refresh_token_absolute
            .map(Seconds)
            .or(t.refresh_token_absolute);
        applied = t.clone();
    });
    if !found {
        return error(ControlError::not_found(format!("no client `{id}`")));
    }
    tracing::info!(event = "mock_lifetimes", client_id = %id, "client token lifetimes changed");
    ok(json!({ "client_id": id, "tokens": applied }))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionsRevoke {
    /// One user's sessions; absent: everyone's.
    sub: Option<String>,
}

async fn sessions_revoke(State(c): C, body: Bytes) -> Response {
    let req: SessionsRevoke = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match c.storage.delete_sessions(req.sub.as_deref()).await {
        Ok(ended) => {
            // Their clients hear of it as from a real sign-out (back-channel logout).
            for (sid, sub) in &ended {
                c.backchannel.session_ended(sid, sub);
            }
            ok(json!({ "revoked": ended.len() }))
        }
        Err(e) => error(ControlError::storage(&e)),
    }
}

async fn reset(State(c): C) -> Response {
    let m = &c.mock;
    m.clock.set_offset(0);
    m.faults.clear();
    m.requests.lock().unwrap_or_else(|e| e.into_inner()).clear();
    m.next_logins
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    for (id, t) in &m.initial_lifetimes {
        c.clients.update(id, |cfg| cfg.tokens = t.clone());
    }
    if let Err(e) = c.storage.delete_sessions(None).await {
        return error(ControlError::storage(&e));
    }
    tracing::info!(event = "mock_reset", "mock issuer reset");
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserChange {
    name: Option<String>,
    email: Option<String>,
    groups: Option<Vec<String>>,
    roles: Option<Vec<String>>,
    claims: Option<serde_json::Map<String, Value>>,
}

/// `PUT /mock/users/{username}`: create or change a user "upstream". Their next login, and
/// the next refresh of tokens already issued, carry the new claims.
async fn user_put(State(c): C, Path(username): Path<String>, body: Bytes) -> Response {
    let req: UserChange = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    {
        let mut users = c.mock.users.write().unwrap_or_else(|e| e.into_inner());
        let u = users
            .entry(username.clone())
            .or_insert_with(|| crate::config::MockUserConfig {
                username: username.clone(),
                ..Default::default()
            });
        if let Some(v) = req.name {
            u.name = Some(v);
        }
        if let Some(v) = req.email {
            u.email = Some(v);
        }
        if let Some(v) = req.groups {
            u.groups = v;
        }
        if let Some(v) = req.roles {
            u.roles = v;
        }
        if let Some(v) = req.claims {
            u.claims = v;
        }
    }
    let identity = c.mock.identity(&username, None, &Default::default());
    let json = match serde_json::to_string(&identity) {
        Ok(j) => j,
        Err(e) => return error(ControlError::internal(&e)),
    };
    if let Err(e) = c
        .storage
        .put_identity(&identity.sub, &json, c.mock.clock.current())
        .await
    {
        return error(ControlError::storage(&e));
    }
    ok(json!({ "sub": identity.sub, "groups": identity.groups }))
}
