//! The azure persona's Graph-like API: `GET /v1.0/me/transitiveMemberOf` (and its
//! `/microsoft.graph.group` cast), paged with `@odata.nextLink`, authorized by the persona's
//! own access tokens. It is where a bridge resolves an overage user's groups. `GET /v1.0/me`
//! answers the user's profile (`id`, `displayName`, `mail`, `userPrincipalName` and the
//! user's own `claims`), narrowed by `$select`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::persona::Persona;
use crate::federation::Identity;
use crate::oidc::shape::TokenShape;
use crate::oidc::tokens::TokenService;
use crate::storage::Storage;

pub struct Graph {
    pub tokens: Arc<TokenService>,
    pub storage: Arc<dyn Storage>,
    pub persona: Persona,
    /// Public URL of this API, for `@odata.nextLink`.
    pub url: String,
}

/// Routes at `{mount}/graph/v1.0/...`.
pub fn routes(mount: &str, graph: Arc<Graph>) -> Router {
    let api = Router::new()
        .route("/v1.0/me", get(me))
        .route("/v1.0/me/transitiveMemberOf", get(member_of))
        .route(
            "/v1.0/me/transitiveMemberOf/microsoft.graph.group",
            get(member_of_groups),
        )
        .with_state(graph);
    Router::new().nest(&format!("{mount}/graph"), api)
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

async fn member_of(
    State(g): State<Arc<Graph>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    page(&g, &headers, &q, false).await
}

async fn member_of_groups(
    State(g): State<Arc<Graph>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    page(&g, &headers, &q, true).await
}

async fn me(
    State(g): State<Arc<Graph>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (identity, oid) = match signed_in(&g, &headers).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let mut profile = serde_json::Map::new();
    profile.insert("id".into(), json!(oid));
    profile.insert("displayName".into(), json!(identity.name));
    profile.insert("mail".into(), json!(identity.email));
    profile.insert("userPrincipalName".into(), json!(identity.email));
    for (k, v) in &identity.extra {
        if !super::persona::NOT_USER_CLAIMS.contains(&k.as_str()) {
            profile.insert(k.clone(), v.clone());
        }
    }
    if let Some(select) = q.get("$select") {
        let wanted: Vec<&str> = select.split(',').map(str::trim).collect();
        profile.retain(|k, _| wanted.contains(&k.as_str()));
    }
    profile.insert(
        "@odata.context".into(),
        json!("https://graph.microsoft.com/v1.0/$metadata#users/$entity"),
    );
    axum::Json(Value::Object(profile)).into_response()
}

async fn page(
    g: &Graph,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    groups_only: bool,
) -> Response {
    let identity = match signed_in(g, headers).await {
        Ok((identity, _)) => identity,
        Err(resp) => return resp,
    };
    let mut entries: Vec<Value> = identity
        .groups
        .iter()
        .map(|name| {
            json!({
                "@odata.type": "#microsoft.graph.group",
                "id": g.persona.group_id(name),
                "displayName": name,
            })
        })
        .collect();
    if !groups_only && let Some(Value::Array(roles)) = identity.extra.get("roles") {
        for r in roles.iter().filter_map(Value::as_str) {
            entries.push(json!({
                "@odata.type": "#microsoft.graph.directoryRole",
                "id": g.persona.group_id(&format!("role:{r}")),
                "displayName": r,
            }));
        }
    }
    let top: usize = q
        .get("$top")
        .and_then(|t| t.parse().ok())
        .unwrap_or(100)
        .clamp(1, 999);
    let skip: usize = q
        .get("$skiptoken")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let select = q.get("$select").cloned();
    let value: Vec<Value> = entries.iter().skip(skip).take(top).cloned().collect();
    let mut body = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects",
        "value": value,
    });
    if skip + top < entries.len() {
        let path = if groups_only {
            "/v1.0/me/transitiveMemberOf/microsoft.graph.group"
        } else {
            "/v1.0/me/transitiveMemberOf"
        };
        let mut next = format!("{}{path}?$top={top}&$skiptoken={}", g.url, skip + top);
        if let Some(s) = select {
            next.push_str(&format!("&$select={s}"));
        }
        body["@odata.nextLink"] = json!(next);
    }
    axum::Json(body).into_response()
}

/// The person a Graph request's bearer token (one of the persona's access tokens) is for,
/// and their object id; or Graph's error answer.
async fn signed_in(g: &Graph, headers: &HeaderMap) -> Result<(Identity, String), Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string());
    let Some(token) = token else {
        return Err(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty.",
        ));
    };
    let claims = match g.tokens.validate_access_token(&token).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token validation failure.",
            ));
        }
        Err(_) => {
            return Err(graph_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "Try again.",
            ));
        }
    };
    let key = g
        .persona
        .identity_key(&claims.sub, &claims.extra)
        .to_string();
    let identity: Option<Identity> = match g.storage.get_identity(&key).await {
        Ok(found) => found.and_then(|j| serde_json::from_str(&j).ok()),
        Err(_) => {
            return Err(graph_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "Try again.",
            ));
        }
    };
    let Some(identity) = identity else {
        return Err(graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            "The user does not exist.",
        ));
    };
    Ok((identity, key))
}
