//! The seam between the OP and whoever vouches for a person: the [`Identity`] a connector
//! hands back, and the small capabilities a connector may have, after Dex's `connector/`
//! package. A connector is found by what it can do:
//!
//! * [`RedirectConnector`]: sends the browser to an upstream IdP and turns its answer into an
//!   identity (OIDC, Okta, Entra ID);
//! * [`PasswordConnector`]: checks a username and password from the login form (local users;
//!   the mock's any-username form);
//! * [`SilentLogin`]: signs a person in without a page (the mock's `login_hint` and queued
//!   logins);
//! * [`RefreshConnector`]: says, at refresh, whether an identity still holds and what it is
//!   now.
//!
//! The OP only ever sees these traits, through the registry (`registry.rs`).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use super::upstream::Pending as PendingUpstream;
use super::upstream::UpstreamError;
use crate::password::Lane;
use crate::protocol::Subject;

/// The claims of an authenticated person. `extra` holds anything else (namespaced upstream
/// claims, mock-mode claims).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub sub: Subject,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Roles (Entra ID app roles, Keycloak realm roles, a local user's `roles`), as given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Authentication methods used (`amr`), e.g. `pwd`.
    #[serde(default)]
    pub amr: Vec<String>,
    /// A local user from the config (re-read on refresh; gone means refresh refused).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local: bool,
    /// Federated identities: how to refresh them upstream. Never released as a claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_session: Option<UpstreamSession>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// What the bridge keeps of an upstream login to refresh it later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamSession {
    pub connector: String,
    /// The upstream refresh token, sealed (AES-256-GCM) and base64url-encoded.
    pub refresh_token: Option<String>,
    /// When the claims (and groups) were last fetched upstream.
    pub fetched_at: i64,
}

impl Identity {
    /// This identity with the authentication methods of an earlier login.
    pub fn with_amr(mut self, amr: &[String]) -> Self {
        self.amr = amr.to_vec();
        self
    }
}

/// Why a connector could not produce (or renew) an identity.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectorError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The group pipeline left nothing and the connector requires a group.
    #[error("no group of yours is allowed to sign in here")]
    NoRequiredGroup,
    /// The upstream answer does not make an identity (no subject, say).
    #[error("{0}")]
    Identity(String),
    /// Where the connector keeps its identities cannot answer now: try again.
    #[error("the connector cannot answer right now: {0}")]
    Unavailable(String),
    /// The claims are past `groups_max_staleness` and there is no upstream refresh token
    /// to renew them with: the person must sign in upstream again.
    #[error("the upstream identity must be checked again by signing in")]
    ReauthenticationRequired,
}

/// One more input a password connector's form asks for (besides `username` and
/// `password`, whose names are a contract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormField {
    pub name: &'static str,
    pub label: &'static str,
    pub hint: Option<&'static str>,
    pub placeholder: Option<&'static str>,
}

/// How a password connector's sign-in form looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPrompt {
    /// A line above the form.
    pub note: Option<&'static str>,
    pub password_required: bool,
    pub extra: Vec<FormField>,
    /// Failed attempts count against the sign-in budgets (a real password check).
    pub throttled: bool,
}

/// What the login form sent.
pub struct LoginForm<'a> {
    pub username: &'a str,
    pub password: &'a str,
    /// Any other field of the form, by name.
    pub field: &'a (dyn Fn(&str) -> Option<&'a str> + Sync),
    /// The client the person signs in to.
    pub client_id: &'a str,
    /// Which queue the password check waits in.
    pub lane: Lane,
}

/// Why a password sign-in did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginFailure {
    /// Wrong username or password (counted against the budgets).
    WrongCredentials,
    /// The form was filled in wrongly: this message, shown with a 400.
    Invalid(String),
    /// The password hasher is saturated: try again shortly.
    Busy,
    /// Where the passwords are checked (a directory) cannot answer now: not counted as a
    /// failed attempt.
    Unavailable,
}

/// A connector that sends the browser to an upstream IdP and back to
/// `{issuer}/callback/{id}`.
#[async_trait]
pub trait RedirectConnector: Send + Sync {
    /// The connector's id (the `connector_id` parameter, the callback path).
    fn id(&self) -> &str;
    /// What the chooser page calls it.
    fn name(&self) -> &str;
    /// `login_hint` domains that route here without the chooser.
    fn email_domains(&self) -> &[String];
    /// Where to send the browser (the upstream `state` given), and the secrets to keep until
    /// the callback.
    async fn start(
        &self,
        state: String,
        login_hint: Option<&str>,
    ) -> Result<(String, PendingUpstream), UpstreamError>;
    /// Whether the callback's `iss` (RFC 9207), or its absence, is acceptable.
    async fn accepts_issuer(&self, iss: Option<&str>) -> bool;
    /// The identity for the callback's `code`.
    async fn finish(
        &self,
        code: &str,
        pending: &PendingUpstream,
    ) -> Result<Identity, ConnectorError>;
}

/// A connector that checks the login form's username and password.
#[async_trait]
pub trait PasswordConnector: Send + Sync {
    /// The connector's id in metrics and logs (`local` for the local users).
    fn id(&self) -> &str;
    /// What the chooser calls it.
    fn name(&self) -> &str {
        self.id()
    }
    /// `login_hint` domains that route to its form without the chooser.
    fn email_domains(&self) -> &[String] {
        &[]
    }
    /// Whether the form is offered at all (local users: only when there are some).
    fn offered(&self) -> bool {
        true
    }
    fn prompt(&self) -> PasswordPrompt;
    async fn login(&self, form: &LoginForm<'_>) -> Result<Identity, LoginFailure>;
}

pub trait SilentLogin: Send + Sync {
    /// The connector's id in metrics and logs.
    fn id(&self) -> &str;
    /// An identity to sign in with no page, if this request warrants one.
    fn silent_login(&self, login_hint: Option<&str>, client_id: &str) -> Option<Identity>;
}

/// What a refresh found.
#[derive(Debug)]
pub enum Refreshed {
    /// Still as it was.
    Unchanged,
    /// Still valid, with these claims, re-read from where they live (nothing to store).
    Current(Identity),
    /// Still valid, with these claims fetched anew upstream: stored for the next refresh.
    Renewed(Identity),
    /// The person is gone: the refresh is refused.
    Gone,
}

#[async_trait]
pub trait RefreshConnector: Send + Sync {
    async fn refresh(&self, identity: &Identity) -> Result<Refreshed, ConnectorError>;
}

/// A connector that can vouch for a person from an ID token its upstream issued to it
/// (token exchange, RFC 8693, as Dex does): validated as at sign-in, then through its group
/// pipeline like a sign-in.
#[async_trait]
pub trait TokenIdentity: Send + Sync {
    /// The identity, and when the person signed in upstream (`auth_time`, else `iat`).
    async fn token_identity(&self, id_token: &str) -> Result<(Identity, i64), ConnectorError>;
}

/// Where the OP looks up the current identity behind a `sub` (local users, whose config is
/// the truth), before the claims stored at sign-in.
pub trait IdentityLookup: Send + Sync {
    fn lookup(&self, sub: &str) -> Option<Identity>;
}
