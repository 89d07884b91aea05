//! The local users from the config as a connector: a password form (the login page's
//! `username` and `password`) checked with argon2id through the bounded verifier, and a
//! refresh that re-reads the user (changed groups reach new tokens; a removed user can no
//! longer refresh). Their `sub` is their username.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::connector::{
    ConnectorError, Identity, IdentityLookup, LoginFailure, LoginForm, PasswordConnector,
    PasswordPrompt, RefreshConnector, Refreshed,
};
use super::groups::{self, RawGroup};
use crate::config::{GroupRules, UserConfig};
use crate::password::PasswordVerifier;
use crate::secret::hash_password;

/// An argon2id hash, with the default parameters, of a random password nobody knows: verified
/// against for unknown usernames so that they cost what known ones do. Never a match, since
/// the username is unknown anyway.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$IeATHLJGXYJpN8yJ75ZmvQ$rC/NgTaeKsqGTbPOBacpOsbFqBTmZRGtVQoRUikYzGQ";

/// The local users from the config.
pub struct LocalConnector {
    users: HashMap<String, LocalUser>,
    /// Verified against when the username is unknown, so that both cost the same.
    dummy_hash: String,
    verifier: Arc<PasswordVerifier>,
}

struct LocalUser {
    config: UserConfig,
    /// Its groups through the top-level `groups:` pipeline, as clients see them.
    groups: Vec<String>,
    hash: String,
}

impl LocalConnector {
    /// Prepares the users: plain-text development passwords are hashed here, once, and
    /// groups go through `rules` (the top-level `groups:`), once.
    pub fn new(users: &[UserConfig], rules: &GroupRules, verifier: Arc<PasswordVerifier>) -> Self {
        let fallback = || hash_password(&crate::secret::random_token(16)).unwrap_or_default();
        let users = users
            .iter()
            .map(|u| {
                let hash = match (&u.password_hash, &u.password) {
                    (Some(h), _) => h.clone(),
                    (None, Some(p)) => hash_password(p.expose()).unwrap_or_else(|_| fallback()),
                    (None, None) => fallback(),
                };
                (
                    u.username.clone(),
                    LocalUser {
                        config: u.clone(),
                        groups: groups::normalize(rules, &raw_groups(u)).groups,
                        hash,
                    },
                )
            })
            .collect();
        Self {
            users,
            dummy_hash: DUMMY_HASH.to_string(),
            verifier,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The identity of a local user. Their `sub` is their username.
    pub fn identity(&self, sub: &str) -> Option<Identity> {
        self.users.get(sub).map(identity_of)
    }
}

#[async_trait]
impl PasswordConnector for LocalConnector {
    fn id(&self) -> &str {
        "local"
    }

    fn offered(&self) -> bool {
        !self.is_empty()
    }

    fn prompt(&self) -> PasswordPrompt {
        PasswordPrompt {
            note: None,
            password_required: true,
            extra: Vec::new(),
            throttled: true,
        }
    }

    /// Checks a username and password through the bounded verifier, in the form's lane. An
    /// unknown username costs the same argon2id verification as a known one.
    async fn login(&self, form: &LoginForm<'_>) -> Result<Identity, LoginFailure> {
        let (hash, known) = match self.users.get(form.username) {
            Some(u) => (u.hash.as_str(), true),
            None => (self.dummy_hash.as_str(), false),
        };
        let ok = self
            .verifier
            .verify_in(form.lane, form.password, hash)
            .await
            .map_err(|_| LoginFailure::Busy)?;
        match (ok && known)
            .then(|| self.identity(form.username))
            .flatten()
        {
            Some(mut id) => {
                id.amr = vec!["pwd".into()];
                Ok(id)
            }
            None => Err(LoginFailure::WrongCredentials),
        }
    }
}

#[async_trait]
impl RefreshConnector for LocalConnector {
    /// A local user is re-read; a user no longer in the config is gone. Identities this
    /// connector did not issue are left as they are.
    async fn refresh(&self, identity: &Identity) -> Result<Refreshed, ConnectorError> {
        if !identity.local {
            return Ok(Refreshed::Unchanged);
        }
        Ok(match self.identity(&identity.sub) {
            Some(current) => Refreshed::Current(current.with_amr(&identity.amr)),
            None => Refreshed::Gone,
        })
    }
}

impl IdentityLookup for LocalConnector {
    fn lookup(&self, sub: &str) -> Option<Identity> {
        self.identity(sub)
    }
}

/// A local user's groups as the pipeline's input.
pub fn raw_groups(u: &UserConfig) -> Vec<RawGroup> {
    u.groups
        .iter()
        .map(|g| RawGroup {
            value: g.clone(),
            source: "users[].groups".into(),
            display_name: None,
        })
        .collect()
}

fn identity_of(user: &LocalUser) -> Identity {
    let u = &user.config;
    let mut roles = u.roles.clone();
    roles.sort();
    roles.dedup();
    Identity {
        sub: u.username.as_str().into(),
        preferred_username: Some(u.username.clone()),
        name: u.name.clone(),
        email: u.email.clone(),
        email_verified: u.email.as_ref().map(|_| u.email_verified),
        groups: user.groups.clone(),
        roles,
        amr: vec!["pwd".into()],
        local: true,
        upstream_session: None,
        extra: u.claims.clone(),
    }
}
