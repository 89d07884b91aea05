//! The application state, and the sub-states handlers extract from it (`FromRef`).

use std::sync::Arc;

use axum::extract::FromRef;

use crate::audit::Audit;
use crate::keys::KeyManager;
use crate::metrics::Metrics;
use crate::oidc::authorize::Flows;
use crate::oidc::client_auth::ClientAuth;
use crate::oidc::clients::ClientRegistry;
use crate::oidc::discovery::Discovery;
use crate::oidc::grants::Grants;
use crate::oidc::tokens::TokenService;
use crate::oidc::userinfo::Userinfo;
use crate::password::PasswordVerifier;
use crate::server::TrustedProxies;
use crate::storage::Storage;

/// Cloned for every request (axum hands each handler its own copy): one reference count,
/// whatever the number of parts.
#[derive(Clone)]
pub struct AppState(Arc<Parts>);

impl AppState {
    pub fn new(parts: Parts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// What an issuer's handlers work with.
pub struct Parts {
    pub storage: Arc<dyn Storage>,
    pub keys: Arc<KeyManager>,
    pub clients: Arc<ClientRegistry>,
    pub client_auth: Arc<ClientAuth>,
    pub verifier: Arc<PasswordVerifier>,
    pub trusted_proxies: TrustedProxies,
    pub tokens: Arc<TokenService>,
    pub grants: Arc<Grants>,
    pub flows: Arc<Flows>,
    pub userinfo: Arc<Userinfo>,
    pub discovery: Discovery,
    pub metrics: Arc<Metrics>,
    pub audit: Arc<Audit>,
    pub backchannel: Arc<crate::oidc::backchannel::Backchannel>,
}

macro_rules! sub_state {
    ($($field:ident: $ty:ty),* $(,)?) => {$(
        impl FromRef<AppState> for $ty {
            fn from_ref(s: &AppState) -> Self {
                s.$field.clone()
            }
        }
    )*};
}

sub_state!(
    storage: Arc<dyn Storage>,
    keys: Arc<KeyManager>,
    clients: Arc<ClientRegistry>,
    client_auth: Arc<ClientAuth>,
    trusted_proxies: TrustedProxies,
    tokens: Arc<TokenService>,
    grants: Arc<Grants>,
    flows: Arc<Flows>,
    userinfo: Arc<Userinfo>,
    discovery: Discovery,
    metrics: Arc<Metrics>,
    audit: Arc<Audit>,
    backchannel: Arc<crate::oidc::backchannel::Backchannel>,
);
