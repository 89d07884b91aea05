//! `POST /consent`: the user allows or denies the scopes a client asked for. An approval is
//! remembered per user, client and scope set.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::authorize::{AuthorizeError, Flows, respond_to_client};
use super::params::HtmlForm;

pub async fn post(
    State(flows): State<Arc<Flows>>,
    headers: HeaderMap,
    form: Result<HtmlForm, Response>,
) -> Response {
    let form = match form {
        Ok(HtmlForm(f)) => f,
        Err(resp) => return resp,
    };
    let (record, mut req) = match flows.load_pending(&headers, &form).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let session = match flows.current_session(&headers).await {
        Ok(Some(s)) if record.session_id.as_deref() == Some(s.id_hash.as_str()) => s,
        Ok(_) => {
            return flows.page(
                StatusCode::BAD_REQUEST,
                "Session ended",
                "Your session ended before you answered. Go back to the application and start again.",
            );
        }
        Err(e) => return flows.fail(AuthorizeError::internal(&e)),
    };
    match form.get("decision") {
        Some("allow") => {}
        Some("deny") => {
            if let Err(e) = flows.storage.delete_auth_request(&record.id).await {
                return flows.fail(AuthorizeError::internal(&e));
            }
            return respond_to_client(
                &flows.issuer,
                &req.target(),
                &[
                    ("error", "access_denied"),
                    ("error_description", "the user denied access"),
                ],
            );
        }
        _ => {
            return flows.page(
                StatusCode::BAD_REQUEST,
                "Sign-in error",
                "The consent form was incomplete.",
            );
        }
    }
    let mut granted = match flows
        .storage
        .get_consent(&session.sub, &req.client_id)
        .await
    {
        Ok(g) => g.unwrap_or_default(),
        Err(e) => return flows.fail(AuthorizeError::internal(&e)),
    };
    for s in super::authorize::consent_items(&req) {
        if !granted.contains(&s) {
            granted.push(s);
        }
    }
    let now = flows.clock.now();
    if let Err(e) = flows
        .storage
        .put_consent(&session.sub, &req.client_id, &granted, now)
        .await
    {
        return flows.fail(AuthorizeError::internal(&e));
    }
    req.consent_done = true;
    flows
        .proceed(&headers, req, Some(record), Some(session), Vec::new(), None)
        .await
        .unwrap_or_else(|e| flows.fail(e))
}
