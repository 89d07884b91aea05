//! What the authorization flow works with.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::TokenLifetimes;
use crate::federation::ConnectorRegistry;
use crate::keys::KeyManager;
use crate::metrics::Metrics;
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
    pub login_budgets: Budgets,
    pub devices: DeviceCookies,
    /// Pending requests started, per address, and how many a minute.
    pub pending_budgets: Budgets,
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
}
