//! `POST /consent`: the user allows or denies the scopes a client asked for. An approval is
//! remembered per user, client and scope set.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::authorize::{AuthorizeError, Flows};
use super::params::HtmlForm;
use crate::audit::{Event, Kind};

pub async fn post(
    State(flows): State<Arc<Flows>>,
    headers: HeaderMap,
    form: Result<HtmlForm, Response>,
) -> Result<Response, AuthorizeError> {
    let form = match form {
        Ok(HtmlForm(f)) => f,
        Err(resp) => return Ok(resp),
    };
    let (record, mut req) = flows.load_pending(&headers, &form).await?;
    let session = match flows.current_session(&headers).await? {
        Some(s) if record.session_id.as_deref() == Some(s.id_hash.as_str()) => s,
        _ => {
            return Err(AuthorizeError::titled(
                StatusCode::BAD_REQUEST,
                "Session ended",
                "Your session ended before you answered. Go back to the application and start again.",
            ));
        }
    };
    match form.get("decision") {
        Some("allow") => {}
        Some("deny") => {
            flows.storage.delete_auth_request(&record.id).await?;
            flows.audit.record(
                Event::new(Kind::Consent, "denied")
                    .client(req.client_id.as_str())
                    .subject(session.sub.as_str()),
            );
            return Err(AuthorizeError::redirect(
                &req.target(),
                "access_denied",
                "the user denied access",
            ));
        }
        _ => return Err(AuthorizeError::page("The consent form was incomplete.")),
    }
    let mut granted = flows
        .storage
        .get_consent(&session.sub, &req.client_id)
        .await?
        .unwrap_or_default();
    for s in super::authorize::consent_items(&req) {
        if !granted.contains(&s) {
            granted.push(s);
        }
    }
    let now = flows.clock.now();
    flows
        .storage
        .put_consent(&session.sub, &req.client_id, &granted, now)
        .await?;
    flows.audit.record(
        Event::new(Kind::Consent, "success")
            .client(req.client_id.as_str())
            .subject(session.sub.as_str())
            .detail("scopes", granted.clone()),
    );
    req.consent_done = true;
    flows
        .proceed(&headers, req, Some(record), Some(session), Vec::new(), None)
        .await
}
