//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a session ends, every
//! client that signed in from it and registered a `backchannel_logout_uri` is sent a
//! logout token, a JWT typed `logout+jwt` naming the session (`sid`) and the person
//! (`sub`), with the back-channel logout event (§2.4) and no `nonce` (§2.4).
//!
//! The tokens go out in the background, all clients at once, each request with a
//! 5-second timeout and tried up to 3 times (1 and 2 seconds apart) while the client
//! answers with a network error or a 5xx; a 4xx is final (§2.8). Each outcome is audited.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::clients::ClientRegistry;
use crate::audit::{Audit, Event, Kind};
use crate::clock::Clock;
use crate::keys::KeyManager;
use crate::secret::random_token;
use crate::storage::Storage;

pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long a logout token is valid.
const LIFETIME: i64 = 120;
const ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(5);

pub struct Backchannel {
    pub issuer: String,
    pub keys: Arc<KeyManager>,
    pub clients: Arc<ClientRegistry>,
    pub storage: Arc<dyn Storage>,
    pub clock: Arc<dyn Clock>,
    pub audit: Arc<Audit>,
    http: reqwest::Client,
}

/// How one delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Delivered,
    /// The client answered 4xx: it refused the token.
    Refused(u16),
    /// Every attempt failed (network error, timeout, 5xx).
    Failed,
}

impl Backchannel {
    pub fn new(
        issuer: String,
        keys: Arc<KeyManager>,
        clients: Arc<ClientRegistry>,
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        audit: Arc<Audit>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            issuer,
            keys,
            clients,
            storage,
            clock,
            audit,
            http,
        }
    }

    /// Session `sid` of `sub` ended: its clients are told, in the background. The handle
    /// resolves once every delivery has ended (tests wait on it; requests do not).
    pub fn session_ended(self: &Arc<Self>, sid: &str, sub: &str) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        let (sid, sub) = (sid.to_string(), sub.to_string());
        tokio::spawn(async move { this.notify(&sid, &sub).await })
    }

    async fn notify(self: Arc<Self>, sid: &str, sub: &str) {
        // A provider just started (the mock's keys come up in the background).
        if !self.keys.wait_active().await {
            tracing::error!("back-channel logout: no signing key became active");
            return;
        }
        let ids = match self.storage.session_clients(sid).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!(error = %e, "back-channel logout: reading the session's clients failed");
                return;
            }
        };
        let mut sends = tokio::task::JoinSet::new();
        for id in ids {
            let Some(client) = self.clients.find(&id).await else {
                continue;
            };
            let Some(uri) = client.config.agents.backchannel_logout_uri.clone() else {
                continue;
            };
            let token = match self.logout_token(&id, sid, sub) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "signing a logout token failed");
                    continue;
                }
            };
            let this = self.clone();
            sends.spawn(async move {
                let outcome = this.deliver(&uri, &token).await;
                (id, outcome)
            });
        }
        while let Some(Ok((client_id, outcome))) = sends.join_next().await {
            self.record(&client_id, sub, outcome);
        }
    }

    /// The logout token for `client_id` (§2.4).
    fn logout_token(
        &self,
        client_id: &str,
        sid: &str,
        sub: &str,
    ) -> Result<String, crate::keys::KeyError> {
        let now = self.clock.now();
        let claims = json!({
            "iss": self.issuer,
            "sub": sub,
            "aud": client_id,
            "iat": now,
            "exp": now + LIFETIME,
            "jti": random_token(16),
            "sid": sid,
            "events": { LOGOUT_EVENT: {} },
        });
        self.keys.sign(LOGOUT_TOKEN_TYP, &claims)
    }

    async fn deliver(&self, uri: &str, token: &str) -> Delivery {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
            }
            let sent = self
                .http
                .post(uri)
                .header(reqwest::header::CACHE_CONTROL, "no-store")
                .form(&[("logout_token", token)])
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => return Delivery::Delivered,
                Ok(r) if r.status().is_client_error() => {
                    return Delivery::Refused(r.status().as_u16());
                }
                Ok(r) => {
                    tracing::info!(uri, status = %r.status(), attempt, "back-channel logout answered with an error")
                }
                Err(e) => {
                    tracing::info!(uri, error = %e, attempt, "back-channel logout could not be delivered")
                }
            }
        }
        Delivery::Failed
    }

    fn record(&self, client_id: &str, sub: &str, outcome: Delivery) {
        let (result, detail) = match outcome {
            Delivery::Delivered => ("success", None),
            Delivery::Refused(status) => ("failure", Some(format!("refused_{status}"))),
            Delivery::Failed => ("failure", Some("unreachable".to_string())),
        };
        let mut event = Event::new(Kind::BackchannelLogout, result)
            .client(client_id)
            .subject(sub);
        if let Some(d) = detail {
            tracing::warn!(client_id, reason = %d, "back-channel logout not delivered");
            event = event.detail("reason", d);
        }
        self.audit.record(event);
    }
}
