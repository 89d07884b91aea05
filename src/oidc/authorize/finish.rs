//! The end of the flow: a session started for an identity, and the code sent to the
//! client.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use super::error::{AuthorizeError, respond_to_client};
use super::flows::{Flows, LoginFacts};
use super::request::{AuthRequest, Prompt};
use crate::federation::Identity;
use crate::federation::policy;
use crate::metrics::LoginResult;
use crate::model::{AuthCodeRecord, SessionRecord};
use crate::oidc::clients::Client;
use crate::oidc::grant::Grant;
use crate::oidc::session::{hash_value, new_secret, read_cookie};
use crate::secret::{random_token, sha256_b64url};

impl Flows {
    /// The client's access policy on the person of `session`: refused, the person gets a
    /// page saying why (with `prompt=none`, no page), and the client `access_denied`.
    pub(super) fn check_access(
        &self,
        client: &Client,
        req: &AuthRequest,
        session: &SessionRecord,
    ) -> Result<(), AuthorizeError> {
        let identity: Identity =
            serde_json::from_str(&session.identity).map_err(|e| AuthorizeError::internal(&e))?;
        let Err(refusal) = policy::admits(&client.config, &identity) else {
            return Ok(());
        };
        self.record_login(
            policy::connector_of(&identity),
            LoginResult::Denied,
            LoginFacts {
                client: Some(client.id()),
                sub: Some(&session.sub),
                reason: Some(refusal.reason()),
                ..Default::default()
            },
        );
        tracing::info!(client_id = client.id(), sub = %session.sub, reason = refusal.reason(), "access policy refused a sign-in");
        if req.has_prompt(Prompt::None) {
            return Err(AuthorizeError::redirect(
                &req.target(),
                "access_denied",
                refusal.description(),
            ));
        }
        Err(AuthorizeError::Denied {
            target: req.target(),
            app: client.display_name().to_string(),
            message: refusal.message(client.display_name()),
            description: refusal.description(),
        })
    }

    /// Issues a code for `req`; `answered` is the pending request it answers, removed in the
    /// same transaction.
    fn grant_for(
        &self,
        client: &Client,
        req: &AuthRequest,
        session: &SessionRecord,
    ) -> Result<Grant, AuthorizeError> {
        let identity =
            serde_json::from_str(&session.identity).map_err(|e| AuthorizeError::internal(&e))?;
        Ok(Grant {
            sub: session.sub.clone().into(),
            client_id: client.id().into(),
            scope: req.scope.clone(),
            redirect_uri: req.redirect_uri.clone(),
            nonce: req.nonce.clone(),
            code_challenge: req.code_challenge.clone(),
            auth_time: session.auth_time,
            sid: Some(session.sid.clone()),
            claims: req.claims.clone(),
            identity,
            resources: req.resources.clone(),
            act: None,
        })
    }

    /// Issues a code for `req`; `answered` is the pending request it answers, removed in the
    /// same transaction.
    pub(super) async fn issue_code(
        &self,
        client: &Client,
        req: &AuthRequest,
        session: &SessionRecord,
        answered: Option<&str>,
    ) -> Result<Response, AuthorizeError> {
        let grant = self.grant_for(client, req, session)?;
        self.note_session_client(client, session).await?;
        let code = random_token(32);
        let now = self.clock.now();
        self.storage
            .insert_auth_code(
                &AuthCodeRecord {
                    code_hash: sha256_b64url(code.as_bytes()),
                    client_id: client.id().to_string(),
                    grant: serde_json::to_string(&grant)
                        .map_err(|e| AuthorizeError::internal(&e))?,
                    created_at: now,
                    expires_at: now + self.lifetimes.authorization_code.get(),
                    redeemed_at: None,
                    family_id: None,
                    access_jti: None,
                    access_exp: None,
                    replayed_at: None,
                },
                answered,
            )
            .await?;
        Ok(respond_to_client(
            &self.issuer,
            &req.target(),
            &[("code", &code)],
        ))
    }

    /// Approves device request `id` (RFC 8628) with what `req` grants: its next poll gets
    /// the tokens. The person sees a page saying so.
    pub(super) async fn approve_device(
        &self,
        client: &Client,
        req: &AuthRequest,
        session: &SessionRecord,
        answered: Option<&str>,
        id: &str,
    ) -> Result<Response, AuthorizeError> {
        let grant = self.grant_for(client, req, session)?;
        self.note_session_client(client, session).await?;
        let json = serde_json::to_string(&grant).map_err(|e| AuthorizeError::internal(&e))?;
        let decision = crate::model::DeviceDecision::Approve { grant: json };
        let approved = self
            .storage
            .decide_device_code(id, &decision, self.clock.now())
            .await?;
        if let Some(pending) = answered {
            self.storage.delete_auth_request(pending).await?;
        }
        if !approved {
            return Err(AuthorizeError::titled(
                StatusCode::BAD_REQUEST,
                "Code expired",
                "The code expired or was already used. Start again on your device.",
            ));
        }
        self.audit.record(
            crate::audit::Event::new(crate::audit::Kind::DeviceAuthorization, "approved")
                .client(client.id())
                .subject(session.sub.as_str()),
        );
        tracing::info!(event = "device_approved", client_id = client.id(), sub = %session.sub, "device request approved");
        Ok(self.page(
            StatusCode::OK,
            "Device signed in",
            "Your device is signed in. You can close this window and return to it.",
        ))
    }

    /// Records that `client` signed in from `session`, when it wants back-channel logout.
    async fn note_session_client(
        &self,
        client: &Client,
        session: &SessionRecord,
    ) -> Result<(), AuthorizeError> {
        if client.config.agents.backchannel_logout_uri.is_some() {
            self.storage
                .note_session_client(&session.sid, client.id(), session.expires_at)
                .await?;
        }
        Ok(())
    }

    /// Starts a session for `identity`, replacing the browser's previous one.
    pub async fn start_session(
        &self,
        headers: &HeaderMap,
        identity: &Identity,
    ) -> Result<(SessionRecord, HeaderValue), crate::storage::StorageError> {
        if let Some(old) = read_cookie(headers, &self.cookies.session) {
            // The replaced session ends: its clients are told (back-channel logout).
            if let Some((sid, sub)) = self.storage.delete_session(&hash_value(old)).await? {
                self.backchannel.session_ended(&sid, &sub);
            }
        }
        let (value, id_hash) = new_secret();
        let now = self.clock.now();
        let session = SessionRecord {
            id_hash,
            sid: random_token(16),
            sub: identity.sub.to_string(),
            identity: serde_json::to_string(identity).unwrap_or_else(|_| "{}".into()),
            auth_time: now,
            created_at: now,
            expires_at: now + self.lifetimes.session.get(),
        };
        // The identity is stored as the subject's latest claims in the same transaction.
        self.storage.create_session(&session).await?;
        Ok((session, self.cookies.set_session(&value)))
    }
}
