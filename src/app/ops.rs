//! Operations: liveness and readiness probes, one log line per request, and JSON answers for
//! unknown paths and wrong methods.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::keys::KeyManager;
use crate::metrics::{Metrics, StateSnapshot};
use crate::oidc::error::OAuthError;
use crate::storage::Storage;

/// The process is up.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Storage answers with every migration of this build applied (within a second: an
/// unreachable database is reported at once, not after the pool's acquire timeout), and a
/// signing key is active.
pub async fn readyz(
    State(storage): State<Arc<dyn Storage>>,
    State(keys): State<Arc<KeyManager>>,
) -> Response {
    let pending = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        storage.pending_migrations(),
    )
    .await;
    let storage_ok = matches!(pending, Ok(Ok(_)));
    let migrations_ok = matches!(pending, Ok(Ok(0)));
    let keys_ok = keys.active().is_some();
    let status = if storage_ok && migrations_ok && keys_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if status == StatusCode::OK { "ready" } else { "unavailable" },
        "checks": {
            "storage": storage_ok,
            "migrations": migrations_ok,
            "signing_key": keys_ok,
        },
    });
    (status, Json(body)).into_response()
}

/// `GET /metrics` (on `server.metrics_listen`): the exposition, with the state gauges
/// (signing keys, the password-hash queue, the database pool) read now.
pub async fn metrics(State(state): State<super::state::AppState>) -> Response {
    let now = state.flows.clock.now();
    let snapshot = StateSnapshot {
        keys: state
            .keys
            .list()
            .into_iter()
            .map(|k| (k.kid, k.state.as_str(), now - k.created_at))
            .collect(),
        hash_queue: state.verifier.queued(),
        pool: state.storage.pool_stats(),
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(&snapshot),
    )
        .into_response()
}

pub async fn not_found() -> Response {
    OAuthError::invalid_request("no such endpoint")
        .with_status(StatusCode::NOT_FOUND)
        .into_response()
}

pub async fn method_not_allowed(method: Method) -> Response {
    OAuthError::invalid_request(format!("method {method} is not allowed here"))
        .with_status(StatusCode::METHOD_NOT_ALLOWED)
        .into_response()
}

/// One line per request: method, path (never the query, which can carry codes), status and
/// latency; and the request counted in the metrics by its route pattern.
pub async fn log_requests(
    State(metrics): State<Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let took = start.elapsed();
    metrics.http(&route, method.as_str(), status, took);
    let latency_ms = took.as_secs_f64() * 1000.0;
    let request_id = crate::audit::request_id().unwrap_or_default();
    if status >= 500 {
        tracing::warn!(%method, %path, status, latency_ms, request_id, "request");
    } else {
        tracing::info!(%method, %path, status, latency_ms, request_id, "request");
    }
    resp
}
