//! What the authorization flow works with.

use std::sync::Arc;

use crate::audit::{Event, Kind};
use crate::clock::Clock;
use crate::config::TokenLifetimes;
use crate::federation::ConnectorRegistry;
use crate::keys::KeyManager;
use crate::metrics::{LoginResult, Metrics};
use crate::oidc::clients::ClientRegistry;
use crate::oidc::session::{Cookies, DeviceCookies};
use crate::oidc::throttle::Budgets;
use crate::storage::Storage;

pub struct Flows {
    pub issuer: String,
    /// The issuer's path, which prefixes every route and asset.
    pub base: String,
    pub storage: Arc<dyn Storage>,
    pub clients: Arc<ClientRegistry>,
    pub keys: Arc<KeyManager>,
    pub clock: Arc<dyn Clock>,
    pub lifetimes: TokenLifetimes,
    pub cookies: Cookies,
    /// Failed sign-ins, per username, address and device (see `login.rs`).
    pub login_budgets: Arc<Budgets>,
    pub devices: DeviceCookies,
    /// Pending requests started, per address, and how many a minute.
    pub pending_budgets: Arc<Budgets>,
    pub pending_per_minute: u32,
    /// The longest any access token lives (how long logout keeps refusing a session's).
    pub max_access_lifetime: i64,
    /// Who signs people in: the password form, upstream IdPs, silent logins.
    pub connectors: Arc<ConnectorRegistry>,
    /// The `claims` parameter may name any claim (the person's claims were chosen by a test
    /// author), not only the standard ones.
    pub any_claims: bool,
    /// New pending requests count against their address's budget.
    pub charge_pending: bool,
    pub metrics: Arc<Metrics>,
    pub audit: Arc<crate::audit::Audit>,
    /// What the scopes of your own release (the consent page names their claims).
    pub scopes: Arc<crate::oidc::claims::ScopeCatalog>,
    /// Tells the clients of an ended session (back-channel logout).
    pub backchannel: Arc<crate::oidc::backchannel::Backchannel>,
}

/// Who a sign-in attempt was for, as far as it got.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoginFacts<'a> {
    pub client: Option<&'a str>,
    pub sub: Option<&'a str>,
    /// What the person typed (failed local sign-ins), cut to 64 characters.
    pub username: Option<&'a str>,
    /// A word for why it failed (`wrong_credentials`, `upstream_error`, ...).
    pub reason: Option<&'a str>,
}

impl<'a> LoginFacts<'a> {
    pub fn signed_in(client: &'a str, sub: &'a str) -> Self {
        Self {
            client: Some(client),
            sub: Some(sub),
            ..Default::default()
        }
    }

    /// A refused attempt, with what the person typed as username.
    pub fn attempt(client: &'a str, username: &'a str) -> Self {
        Self {
            client: Some(client),
            username: Some(username),
            ..Default::default()
        }
    }
}

impl Flows {
    /// A sign-in attempt through `connector` ended with `result`: counted in `logins`, and
    /// an audit line.
    pub fn record_login(&self, connector: &str, result: LoginResult, facts: LoginFacts<'_>) {
        self.metrics.login(connector, result);
        let mut event = Event::new(Kind::Login, result.as_str()).connector(connector);
        if let Some(c) = facts.client {
            event = event.client(c);
        }
        if let Some(s) = facts.sub {
            event = event.subject(s);
        }
        if let Some(u) = facts.username {
            event = event.detail("username", u.chars().take(64).collect::<String>());
        }
        let reason = facts.reason.or(match result {
            LoginResult::Success => None,
            LoginResult::Failure => Some("wrong_credentials"),
            LoginResult::Throttled => Some("too_many_attempts"),
            LoginResult::Busy => Some("busy"),
            LoginResult::Error => Some("error"),
            LoginResult::Denied => Some("denied"),
        });
        if let Some(r) = reason {
            event = event.detail("reason", r);
        }
        self.audit.record(event);
    }
}
