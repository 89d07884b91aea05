//! The admin API's JSON: error bodies (`error`, `error_description`, and `problems` with key
//! paths), the client view, and reading a body into a client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::config::{ClientConfig, client_from_json};
use crate::oidc::clients::Client;
use crate::storage::StorageError;

pub(super) fn error(status: StatusCode, code: &str, description: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": description.into()})),
    )
        .into_response()
}

pub(super) fn problems(p: crate::config::Problems) -> Response {
    let list: Vec<Value> =
        p.0.iter()
            .map(|p| json!({"path": p.path, "message": p.message}))
            .collect();
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "error": "invalid_client_metadata",
            "error_description": p.to_string().trim_end(),
            "problems": list,
        })),
    )
        .into_response()
}

pub(super) fn storage_failed(e: StorageError) -> Response {
    tracing::error!(error = %e, "admin API: storage failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "storage is unavailable; nothing was changed",
    )
}

/// A client as the API shows it: its settings as in the config, where it is defined, and
/// its secrets' ids and ends (never a hash).
pub(super) fn view(c: &Client, now: i64) -> Value {
    let mut v = serde_json::to_value(&c.config).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        // Lifetimes as durations, so that a view can be sent back as a body.
        if let Some(Value::Object(t)) = m.get_mut("tokens") {
            t.retain(|_, v| !v.is_null());
            for v in t.values_mut() {
                if let Some(n) = v.as_i64() {
                    *v = json!(format!("{n}s"));
                }
            }
        }
        m.insert("source".into(), json!(c.source.as_str()));
        let secrets: Vec<Value> = c
            .secrets()
            .map(|s| {
                json!({
                    "id": s.id,
                    "created_at": s.created_at,
                    "expires_at": s.expires_at,
                    "active": s.expires_at.is_none_or(|e| now < e),
                })
            })
            .collect();
        m.insert("secrets".into(), Value::Array(secrets));
    }
    v
}

/// The body as a client: secrets are generated here, never sent in. A view sent back as it
/// was read is a body: its `source` and its secrets' ids (no hash, no value) are dropped.
pub(super) fn read_body(body: &Value) -> Result<ClientConfig, Response> {
    let mut body = body.clone();
    if let Value::Object(m) = &mut body {
        m.remove("source");
        let only_ids = m
            .get("secrets")
            .and_then(Value::as_array)
            .is_some_and(|list| {
                list.iter().all(|s| {
                    s.as_object().is_some_and(|o| {
                        o.contains_key("id") && !o.contains_key("hash") && !o.contains_key("secret")
                    })
                })
            });
        if only_ids {
            m.remove("secrets");
        }
    }
    let body = &body;
    let Value::Object(map) = body else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be a JSON object with the keys of a `clients:` entry",
        ));
    };
    if let Some(k) = ["secret", "secret_hash", "secrets"]
        .iter()
        .find(|k| map.contains_key(**k))
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("`{k}` is not accepted: the server generates secrets (see rotate-secret)"),
        ));
    }
    // Public and private_key_jwt clients hold no secret.
    let public = map
        .get("token_endpoint_auth_method")
        .is_some_and(|m| m == "none" || m == "private_key_jwt");
    let mut with_secret = body.clone();
    if !public && let Value::Object(m) = &mut with_secret {
        // Stands for the secret generated below, so the checks see a confidential client.
        m.insert("secret".into(), json!("0123456789abcdef-placeholder"));
    }
    let mut config = client_from_json(&with_secret).map_err(problems)?;
    config.secret = None;
    Ok(config)
}
