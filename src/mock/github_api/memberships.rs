//! The github persona's org membership checks: `GET /api/v3/orgs/{org}/members/{username}`
//! (204, or 404) and `GET /api/v3/user/memberships/orgs/{org}` (the signed-in user's
//! membership with the org's numeric id, which a connector pins against renamed orgs).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

use super::{
    Answer, Api, GithubApi, api_error, github_json, login_of, memberships, org_json, signed_in,
};

/// Routes at `{mount}/api/v3/orgs/{org}/members/{username}` and
/// `{mount}/api/v3/user/memberships/orgs/{org}`.
pub fn routes(mount: &str, api: Arc<GithubApi>) -> Router {
    let v3 = format!("{mount}/api/v3");
    Router::new()
        .route(
            &format!("{v3}/orgs/{{org}}/members/{{username}}"),
            get(member),
        )
        .route(
            &format!("{v3}/user/memberships/orgs/{{org}}"),
            get(membership),
        )
        .with_state(api)
}

/// 204 when the signed-in user is `username` and in `org`; else 404 (GitHub may also
/// answer 302 to a requester outside the org).
async fn member(
    State(api): Api,
    Path((org, username)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    let identity = signed_in(&api, &headers).await?;
    let is_self = login_of(&identity).eq_ignore_ascii_case(&username);
    let orgs = memberships(&identity.groups).orgs;
    if is_self && orgs.iter().any(|o| o.eq_ignore_ascii_case(&org)) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Err(api_error(StatusCode::NOT_FOUND, "Not Found"))
}

/// The signed-in user's active membership in `org` (its login and id), or 404.
async fn membership(State(api): Api, Path(org): Path<String>, headers: HeaderMap) -> Answer {
    let identity = signed_in(&api, &headers).await?;
    let orgs = memberships(&identity.groups).orgs;
    let Some(org) = orgs.iter().find(|o| o.eq_ignore_ascii_case(&org)) else {
        return Err(api_error(StatusCode::NOT_FOUND, "Not Found"));
    };
    Ok(github_json(
        StatusCode::OK,
        json!({
            "state": "active",
            "role": "member",
            "organization": org_json(org),
            "user": {"login": login_of(&identity)},
        }),
    ))
}
