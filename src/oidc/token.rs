//! The token endpoint (RFC 6749 §3.2): authenticate the client, run its grant.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::client_auth::ClientRequest;
use super::error::{OAuthError, no_store};
use super::grants::Grants;

pub async fn post(
    State(grants): State<Arc<Grants>>,
    req: ClientRequest,
) -> Result<Response, OAuthError> {
    let mut resp = Json(super::grants::exchange(&grants, req).await?).into_response();
    no_store(&mut resp);
    Ok(resp)
}
