//! `POST /mock/device/{user_code}`: decide a pending device request (RFC 8628) without a
//! browser: approve it as a mock user (at once, or once the device has polled N times),
//! deny it, or expire it. The device's next poll hears the outcome.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::ControlError;
use super::state::Control;
use crate::model::{DeviceDecision, DeviceStatus};
use crate::oidc::device::{DeviceRequest, display_user_code, normalize_user_code};
use crate::oidc::grant::Grant;

#[derive(Debug, Default, Deserialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Action {
    #[default]
    Approve,
    Deny,
    Expire,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Decide {
    #[serde(default)]
    action: Action,
    /// Approve as this mock user (default `user`).
    username: Option<String>,
    groups: Option<Vec<String>>,
    #[serde(default)]
    claims: Map<String, Value>,
    /// Approve only once the device has polled this many times in all ("succeed after N
    /// polls"); the polls before get `authorization_pending` or `slow_down`.
    after_polls: Option<u32>,
}

fn fail(e: ControlError) -> Response {
    e.into_response()
}

pub async fn decide(
    State(c): State<Arc<Control>>,
    Path(user_code): Path<String>,
    body: Bytes,
) -> Response {
    let req: Decide = if body.iter().all(u8::is_ascii_whitespace) {
        Decide::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return fail(ControlError::bad_request(format!(
                    "the JSON body is not valid: {e}"
                )));
            }
        }
    };
    let now = c.mock.clock.current();
    let found = match normalize_user_code(&user_code) {
        Some(code) => c.storage.get_device_code(&code).await,
        None => Ok(None),
    };
    let device = match found {
        Ok(Some(d)) if d.status == DeviceStatus::Pending && d.expires_at > now => d,
        Ok(_) => {
            return fail(ControlError::not_found(
                "no pending device request has this user code",
            ));
        }
        Err(e) => return fail(ControlError::storage(&e)),
    };
    let decision = match req.action {
        Action::Deny => DeviceDecision::Deny,
        Action::Expire => DeviceDecision::Expire,
        Action::Approve => match approval(&c, &req, &device, now).await {
            Ok(d) => d,
            Err(e) => return fail(e),
        },
    };
    match c
        .storage
        .decide_device_code(&device.id, &decision, now)
        .await
    {
        Ok(true) => axum::Json(json!({
            "user_code": display_user_code(&device.user_code),
            "client_id": device.client_id,
            "decision": format!("{:?}", req.action).to_lowercase(),
            "after_polls": req.after_polls,
        }))
        .into_response(),
        Ok(false) => fail(ControlError::conflict(
            "the device request was decided meanwhile",
        )),
        Err(e) => fail(ControlError::storage(&e)),
    }
}

/// The grant the device gets: what it asked for, for the mock user named.
async fn approval(
    c: &Control,
    req: &Decide,
    device: &crate::model::DeviceCodeRecord,
    now: i64,
) -> Result<DeviceDecision, ControlError> {
    let asked: DeviceRequest = serde_json::from_str(&device.request).unwrap_or_default();
    let username = req.username.as_deref().unwrap_or("user");
    let identity = c.mock.identity(username, req.groups.clone(), &req.claims);
    let stored = serde_json::to_string(&identity).map_err(|e| ControlError::internal(&e))?;
    c.storage
        .put_identity(&identity.sub, &stored, now)
        .await
        .map_err(|e| ControlError::storage(&e))?;
    let grant = Grant {
        sub: identity.sub.clone(),
        client_id: device.client_id.as_str().into(),
        scope: asked.scope,
        redirect_uri: Default::default(),
        nonce: None,
        code_challenge: None,
        auth_time: now,
        sid: None,
        claims: None,
        identity,
        resources: asked.resources,
        act: None,
    };
    let grant = serde_json::to_string(&grant).map_err(|e| ControlError::internal(&e))?;
    Ok(match req.after_polls {
        Some(n) => DeviceDecision::ApproveAfterPolls {
            grant,
            polls: i64::from(n.max(1)),
        },
        None => DeviceDecision::Approve { grant },
    })
}
