//! The okta persona's Groups API: `GET {org}/api/v1/users/{id}/groups`, authorized by the
//! issuer's `api_token` (`Authorization: SSWS …`) or a token of its service app
//! (`okta_app.rs`: `Bearer …` with `okta.users.read`), paged with `limit` and `after` and a
//! `Link: <…>; rel="next"` header, as Okta's is. It is where a bridge reads the groups of a
//! user in more than the 100 an Okta token carries.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::federation::Identity;
use crate::secret::ct_eq;
use crate::storage::Storage;

pub struct OktaApi {
    pub storage: Arc<dyn Storage>,
    pub token: String,
    /// The org's API service app, whose tokens are accepted too.
    pub app: Arc<super::okta_app::ServiceApp>,
    /// The org URL, for the `Link` header.
    pub url: String,
}

/// Routes at `{mount}/api/v1/...`.
pub fn routes(mount: &str, api: Arc<OktaApi>) -> Router {
    Router::new()
        .route(
            &format!("{mount}/api/v1/users/{{id}}/groups"),
            get(user_groups),
        )
        .with_state(api)
}

fn okta_error(status: StatusCode, code: &str, summary: &str) -> Response {
    (
        status,
        axum::Json(json!({"errorCode": code, "errorSummary": summary})),
    )
        .into_response()
}

async fn user_groups(
    State(api): State<Arc<OktaApi>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let api_token = presented
        .and_then(|v| v.strip_prefix("SSWS "))
        .is_some_and(|t| ct_eq(t.as_bytes(), api.token.as_bytes()));
    let app_token = presented
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| api.app.accepts(t, "okta.users.read"));
    if !api_token && !app_token {
        return okta_error(
            StatusCode::UNAUTHORIZED,
            "E0000011",
            "Invalid token provided",
        );
    }
    let identity: Option<Identity> = match api.storage.get_identity(&id).await {
        Ok(found) => found.and_then(|j| serde_json::from_str(&j).ok()),
        Err(_) => {
            return okta_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "E0000010",
                "Service unavailable",
            );
        }
    };
    let Some(identity) = identity else {
        return okta_error(
            StatusCode::NOT_FOUND,
            "E0000007",
            &format!("Not found: Resource not found: {id} (User)"),
        );
    };
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(200)
        .clamp(1, 10_000);
    let after: usize = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let page: Vec<_> = identity
        .groups
        .iter()
        .skip(after.min(identity.groups.len()))
        .take(limit)
        .map(|name| {
            json!({
                "id": format!("00g{}", &crate::secret::sha256_b64url(name.as_bytes())[..17]),
                "type": "OKTA_GROUP",
                "profile": {"name": name, "description": null},
            })
        })
        .collect();
    let mut resp = axum::Json(page).into_response();
    if after.saturating_add(limit) < identity.groups.len() {
        let next = format!(
            "<{}/api/v1/users/{id}/groups?limit={limit}&after={}>; rel=\"next\"",
            api.url,
            after.saturating_add(limit)
        );
        if let Ok(v) = HeaderValue::from_str(&next) {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
    resp
}
