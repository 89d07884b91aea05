//! Token revocation (RFC 7009). Valid, already revoked, foreign and unknown tokens all get
//! 200, so the answer says nothing about the token.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::backchannel::Backchannel;
use super::client_auth::ClientRequest;
use super::error::{OAuthError, no_store};
use super::tokens::{Revoked, TokenService};
use crate::audit::{Audit, Event, Kind};

pub async fn post(
    State(tokens): State<Arc<TokenService>>,
    State(audit): State<Arc<Audit>>,
    State(backchannel): State<Arc<Backchannel>>,
    req: ClientRequest,
) -> Result<Response, OAuthError> {
    let token = req.params.require("token")?;
    let revoked = tokens.revoke(token, &req.client).await?;
    let event = Event::new(Kind::Revocation, "success").client(req.client.id());
    audit.record(match revoked {
        Revoked::Nothing => event.detail("revoked", "nothing"),
        Revoked::AccessToken { sub } => event.subject(sub).detail("revoked", "access_token"),
        Revoked::RefreshToken { sub, ended_session } => {
            if let Some(sid) = &ended_session {
                backchannel.session_ended(sid, &sub);
            }
            event
                .subject(sub)
                .detail("revoked", "refresh_token")
                .detail("session_ended", ended_session.is_some())
        }
    });
    let mut resp = ().into_response();
    no_store(&mut resp);
    Ok(resp)
}
