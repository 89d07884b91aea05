//! The admin API (`/admin/...`): clients made, changed, deleted and their secrets rotated
//! at run time, and the config reloaded. Off unless `admin.token` or `admin.token_hash` is
//! set; every request carries `Authorization: Bearer <token>`, compared in constant time
//! (an argon2id `token_hash` is verified once through the bounded verifier, then by the
//! digest of the token that passed). Served on `admin.listen` when set, else on the main
//! listener. The OpenAPI document is `docs/admin-api.yaml`.
//!
//! Clients from the config file are listed but read-only here. Clients made here live in
//! storage: every node sees a new one at once (a node that does not know a client asks
//! storage) and changes within `CLIENT_REFRESH`. Secrets are generated here and shown once.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::admin_auth::AdminToken;
use super::admin_json::{error, read_body, storage_failed, view};
use super::build::Shared;
use super::reload::Reloader;
use crate::audit::{Audit, Event, Kind};
use crate::clock::Clock;
use crate::config::{AdminConfig, AuthMethod, ClientConfig, Seconds};
use crate::model::{ClientRecord, ClientSource, StoredSecret};
use crate::oidc::clients::ClientRegistry;
use crate::oidc::throttle::{Budgets, Rule};
use crate::secret::random_token;
use crate::server::ClientAddr;
use crate::storage::{Storage, StorageError};

/// At most this many secrets a client holds (live or within their overlap).
const MAX_SECRETS: usize = 5;
/// A rotation without `overlap` keeps the old secret working this long.
const DEFAULT_OVERLAP: Seconds = Seconds(24 * 3600);

/// What the admin API works with.
pub struct Admin {
    token: AdminToken,
    /// Wrong tokens, per client address.
    failures: Budgets,
    pub storage: Arc<dyn Storage>,
    pub clients: Arc<ClientRegistry>,
    pub audit: Arc<Audit>,
    pub clock: Arc<dyn Clock>,
    pub reloader: Arc<Reloader>,
}

type A = State<Arc<Admin>>;

impl Admin {
    /// `None` when the config sets no admin token.
    pub fn new(
        config: &AdminConfig,
        shared: &Shared,
        clock: Arc<dyn Clock>,
        reloader: Arc<Reloader>,
    ) -> Option<Self> {
        Some(Self {
            token: AdminToken::from_config(config, shared.verifier.clone())?,
            failures: Budgets::default(),
            storage: shared.storage.clone(),
            clients: shared.clients.clone(),
            audit: shared.audit.clone(),
            clock,
            reloader,
        })
    }

    fn changed(&self, action: &str, client: &str, outcome: &'static str) {
        self.audit.record(
            Event::new(Kind::AdminChange, outcome)
                .client(client)
                .detail("action", action),
        );
    }
}

/// The admin routes, behind the bearer check.
pub fn routes(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/admin/clients", get(list).post(create))
        .route("/admin/clients/{id}", get(show).put(update).delete(delete))
        .route("/admin/clients/{id}/rotate-secret", post(rotate))
        .route("/admin/reload", post(reload))
        .layer(axum::middleware::from_fn_with_state(
            admin.clone(),
            require_token,
        ))
        .with_state(admin)
}

/// Wrong admin tokens allowed per client address (an IPv6 /64) in five minutes; past that,
/// `429` without a check (an argon2id `token_hash` would otherwise cost a hash per guess).
const FAILURES_PER_ADDRESS: Rule = Rule {
    window: 300,
    limit: 10,
};

async fn require_token(State(admin): A, req: Request, next: Next) -> Response {
    let addr = req
        .extensions()
        .get::<ClientAddr>()
        .map_or_else(|| "?".to_string(), ClientAddr::budget_key);
    let now = admin.clock.now();
    let keys = vec![(format!("admin:{addr}"), FAILURES_PER_ADDRESS)];
    let reservation = match admin.failures.reserve(keys, now) {
        Ok(r) => r,
        Err(refused) => {
            let mut resp = error(
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                "too many wrong admin tokens from this address; try again later",
            );
            if let Ok(v) = header::HeaderValue::from_str(&refused.wait.max(1).to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return resp;
        }
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        })
        .map(|(_, t)| t.trim().to_owned());
    let accepted = match &presented {
        Some(t) => admin.token.accepts(t).await,
        None => false,
    };
    if accepted {
        reservation.succeed(&[], now);
        return next.run(req).await;
    }
    if presented.is_some() {
        reservation.fail(now);
    } else {
        reservation.release();
    }
    let mut resp = error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "send Authorization: Bearer <admin.token>",
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"oidc-bridge admin\""),
    );
    resp
}

async fn list(State(admin): A) -> Response {
    if let Err(e) = admin.clients.refresh().await {
        return storage_failed(e);
    }
    let now = admin.clock.now();
    let clients: Vec<Value> = admin.clients.all().iter().map(|c| view(c, now)).collect();
    Json(json!({ "clients": clients })).into_response()
}

async fn show(State(admin): A, Path(id): Path<String>) -> Response {
    match admin.clients.load_one(&id).await {
        Some(c) => Json(view(&c, admin.clock.now())).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "no such client"),
    }
}

/// A fresh secret: its plain text (shown once) and how it is stored.
fn new_secret(admin: &Admin, expires_at: Option<i64>) -> (String, StoredSecret) {
    let plain = random_token(32);
    let now = admin.clock.now();
    let stored = StoredSecret {
        id: format!("s{}-{}", now, &random_token(3)[..4]),
        hash: admin.clients.secret_key().digest(&plain),
        created_at: Some(now),
        expires_at,
    };
    (plain, stored)
}

fn record(config: &ClientConfig, secrets: Vec<StoredSecret>, now: i64) -> ClientRecord {
    ClientRecord {
        id: config.id.clone(),
        secret_hash: None,
        metadata: serde_json::to_string(config).unwrap_or_default(),
        updated_at: now,
        source: ClientSource::Api,
        secrets,
    }
}

async fn create(State(admin): A, Json(body): Json<Value>) -> Response {
    let config = match read_body(&body) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let now = admin.clock.now();
    // Public clients and private_key_jwt ones hold no secret.
    let secretless = matches!(
        config.token_endpoint_auth_method,
        Some(AuthMethod::None | AuthMethod::PrivateKeyJwt)
    );
    let (plain, secrets) = if secretless {
        (None, Vec::new())
    } else {
        let (plain, stored) = new_secret(&admin, None);
        (Some(plain), vec![stored])
    };
    let secret_id = secrets.first().map(|s| s.id.clone());
    match admin
        .storage
        .create_client(&record(&config, secrets, now))
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return error(
                StatusCode::CONFLICT,
                "client_exists",
                format!("a client `{}` exists", config.id),
            );
        }
        Err(e) => return storage_failed(e),
    }
    let client = admin.clients.load_one(&config.id).await;
    admin.changed("create", &config.id, "success");
    let mut answer = json!({
        "client_id": config.id,
        "client_secret": plain,
        "secret_id": secret_id,
    });
    if let Some(c) = client {
        answer["client"] = view(&c, now);
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

/// The stored client `id`, if the API may change it.
async fn changeable(admin: &Admin, id: &str) -> Result<ClientRecord, Response> {
    match admin.storage.get_client(id).await {
        Err(e) => Err(storage_failed(e)),
        Ok(None) => Err(error(StatusCode::NOT_FOUND, "not_found", "no such client")),
        Ok(Some(r)) if r.source == ClientSource::Config => Err(error(
            StatusCode::CONFLICT,
            "read_only",
            "this client is defined in the config file: change it there and reload",
        )),
        Ok(Some(r)) => Ok(r),
    }
}

async fn update(State(admin): A, Path(id): Path<String>, Json(body): Json<Value>) -> Response {
    let mut body = body;
    if let Value::Object(m) = &mut body {
        match m.get("id") {
            None => {
                m.insert("id".into(), json!(id));
            }
            Some(v) if v != &json!(id) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "`id` differs from the path",
                );
            }
            Some(_) => {}
        }
    }
    let config = match read_body(&body) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let old = match changeable(&admin, &id).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let secretless = matches!(
        config.token_endpoint_auth_method,
        Some(AuthMethod::None | AuthMethod::PrivateKeyJwt)
    );
    if secretless != old.secrets.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "a client cannot change between holding a secret and not (public or private_key_jwt); delete it and create it again",
        );
    }
    let now = admin.clock.now();
    if let Err(e) = admin
        .storage
        .upsert_client(&record(&config, old.secrets, now))
        .await
    {
        return storage_failed(e);
    }
    admin.changed("update", &id, "success");
    match admin.clients.load_one(&id).await {
        Some(c) => Json(view(&c, now)).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "no such client"),
    }
}

async fn delete(State(admin): A, Path(id): Path<String>) -> Response {
    if let Err(resp) = changeable(&admin, &id).await {
        return resp;
    }
    match admin.storage.delete_client(&id).await {
        Ok(_) => {
            admin.clients.remove(&id);
            admin.changed("delete", &id, "success");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => storage_failed(e),
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    overlap: Option<String>,
}

async fn rotate(State(admin): A, Path(id): Path<String>, body: axum::body::Bytes) -> Response {
    let parsed: Result<RotateBody, _> = if body.is_empty() {
        Ok(RotateBody::default())
    } else {
        serde_json::from_slice(&body)
    };
    let overlap = match parsed.map(|b| b.overlap) {
        Ok(None) => DEFAULT_OVERLAP,
        Ok(Some(text)) => match Seconds::parse(&text) {
            Ok(d) => d,
            Err(why) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    format!("overlap {why}"),
                );
            }
        },
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("the body must be {{\"overlap\": \"7d\"}}: {e}"),
            );
        }
    };
    let old = match changeable(&admin, &id).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if old.secrets.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "a public client has no secret to rotate",
        );
    }
    let now = admin.clock.now();
    let end = now + overlap.get().max(0);
    // The old secrets end with the overlap (or sooner, if they already were to); ended
    // ones are dropped.
    let mut secrets: Vec<StoredSecret> = old
        .secrets
        .into_iter()
        .filter(|s| s.expires_at.is_none_or(|e| e > now))
        .map(|mut s| {
            s.expires_at = Some(s.expires_at.map_or(end, |e| e.min(end)));
            s
        })
        .filter(|s| s.expires_at.is_some_and(|e| e > now))
        .collect();
    if secrets.len() >= MAX_SECRETS {
        return error(
            StatusCode::CONFLICT,
            "too_many_secrets",
            format!(
                "the client holds {MAX_SECRETS} secrets still in their overlap; wait for one to end"
            ),
        );
    }
    let (plain, stored) = new_secret(&admin, None);
    let secret_id = stored.id.clone();
    secrets.push(stored);
    let config: ClientConfig = match serde_json::from_str(&old.metadata) {
        Ok(c) => c,
        Err(e) => return storage_failed(StorageError::Corrupt(e.to_string())),
    };
    if let Err(e) = admin
        .storage
        .upsert_client(&record(&config, secrets, now))
        .await
    {
        return storage_failed(e);
    }
    admin.clients.load_one(&id).await;
    admin.audit.record(
        Event::new(Kind::AdminChange, "success")
            .client(id.as_str())
            .detail("action", "rotate_secret")
            .detail("secret_id", secret_id.as_str())
            .detail("old_secrets_end_at", end),
    );
    Json(json!({
        "client_id": id,
        "client_secret": plain,
        "secret_id": secret_id,
        "old_secrets_expire_at": end,
    }))
    .into_response()
}

async fn reload(State(admin): A) -> Response {
    match admin.reloader.reload("admin").await {
        Ok(summary) => Json(json!({"status": "reloaded", "config": summary})).into_response(),
        Err(list) => {
            let problems: Vec<Value> = list
                .iter()
                .map(|p| json!({"path": p.path, "message": p.message}))
                .collect();
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({
                    "error": "invalid_config",
                    "error_description": "the config was refused whole; the running config stays",
                    "problems": problems,
                })),
            )
                .into_response()
        }
    }
}
