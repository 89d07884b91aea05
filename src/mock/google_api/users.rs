//! The google persona's `users.get` (`GET {mount}/admin/directory/v1/users/{userKey}`): what
//! a bridge asks at a refresh to learn whether a person was suspended or archived. A mock
//! user's `claims` say so (`suspended: true`, `archived: true`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::wire::bearer;
use super::{DirectoryError, GoogleApi, user_email};

/// The scopes `users.get` takes.
pub const USER_SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.user",
];

/// Routes at `{mount}/admin/directory/v1/users/{userKey}`.
pub fn routes(mount: &str, api: Arc<GoogleApi>) -> Router {
    Router::new()
        .route(
            &format!("{mount}/admin/directory/v1/users/{{key}}"),
            get(user),
        )
        .with_state(api)
}

async fn user(
    State(api): State<Arc<GoogleApi>>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    let now = api.state.clock.current();
    let Some(issued) = bearer(&headers).and_then(|t| api.issued.get(t, now)) else {
        return DirectoryError::Unauthenticated.into_response();
    };
    let may = issued
        .scopes
        .iter()
        .any(|s| USER_SCOPES.contains(&s.as_str()));
    if issued.sub.is_none() || !may {
        return DirectoryError::PermissionDenied.into_response();
    }
    let key = key.trim().to_lowercase();
    let users = api.state.users.read().unwrap_or_else(|e| e.into_inner());
    let Some((name, u)) = users.iter().find(|(n, u)| user_email(n, u) == key) else {
        return DirectoryError::NotFound.into_response();
    };
    let flag = |k: &str| u.claims.get(k) == Some(&Value::Bool(true));
    axum::Json(json!({
        "kind": "admin#directory#user",
        "primaryEmail": user_email(name, u),
        "name": {"fullName": u.name},
        "suspended": flag("suspended"),
        "archived": flag("archived"),
    }))
    .into_response()
}
