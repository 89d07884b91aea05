//! Who a user is: the claims of an authenticated identity, which of them each scope
//! releases (OIDC Core §5.4), and the local users from the config with their password check.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::config::UserConfig;
use crate::password::{Busy, Lane, PasswordVerifier};
use crate::secret::hash_password;

/// The claims of an authenticated person. `extra` holds anything else (namespaced upstream
/// claims, mock-mode claims).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub sub: String,
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

/// Claims each scope releases (OIDC Core §5.4), plus `groups`.
pub fn scope_claims(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
            "upstream",
        ],
        "email" => &["email", "email_verified"],
        "address" => &["address"],
        "phone" => &["phone_number", "phone_number_verified"],
        "groups" => &["groups"],
        _ => &[],
    }
}

impl Identity {
    /// Every claim this identity has, as JSON (without `amr`).
    pub fn all_claims(&self) -> Map<String, Value> {
        let mut m = self.extra.clone();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        put("sub", json!(self.sub));
        if let Some(v) = &self.preferred_username {
            put("preferred_username", json!(v));
        }
        if let Some(v) = &self.name {
            put("name", json!(v));
        }
        if let Some(v) = &self.email {
            put("email", json!(v));
            put(
                "email_verified",
                json!(self.email_verified.unwrap_or(false)),
            );
        }
        put("groups", json!(self.groups));
        m
    }

    /// The claims released by `scopes` plus those named in `requested` (the `claims`
    /// parameter's `userinfo` or `id_token` member). `sub` is always there.
    pub fn claims_for(&self, scopes: &[String], requested: Option<&Value>) -> Map<String, Value> {
        let all = self.all_claims();
        let mut out = Map::new();
        out.insert("sub".into(), json!(self.sub));
        let mut names: Vec<&str> = scopes
            .iter()
            .flat_map(|s| scope_claims(s))
            .copied()
            .collect();
        if let Some(Value::Object(req)) = requested {
            names.extend(req.keys().map(String::as_str));
        }
        for n in names {
            if let Some(v) = all.get(n) {
                out.insert(n.to_string(), v.clone());
            }
        }
        out
    }
}

/// An argon2id hash, with the default parameters, of a random password nobody knows: verified
/// against for unknown usernames so that they cost what known ones do. Never a match, since
/// the username is unknown anyway.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$IeATHLJGXYJpN8yJ75ZmvQ$rC/NgTaeKsqGTbPOBacpOsbFqBTmZRGtVQoRUikYzGQ";

/// The local users from the config.
pub struct LocalUsers {
    users: HashMap<String, LocalUser>,
    /// Verified against when the username is unknown, so that both cost the same.
    dummy_hash: String,
    verifier: Arc<PasswordVerifier>,
}

struct LocalUser {
    config: UserConfig,
    hash: String,
}

impl LocalUsers {
    /// Prepares the users. Plain-text development passwords are hashed here, once.
    pub fn new(users: &[UserConfig], verifier: Arc<PasswordVerifier>) -> Self {
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
        self.users.get(sub).map(|u| identity_of(&u.config))
    }

    /// Checks a username and password through the bounded verifier, in `lane`. An unknown
    /// username costs the same argon2id verification as a known one.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
        lane: Lane,
    ) -> Result<Option<Identity>, Busy> {
        let (hash, known) = match self.users.get(username) {
            Some(u) => (u.hash.as_str(), true),
            None => (self.dummy_hash.as_str(), false),
        };
        let ok = self.verifier.verify_in(lane, password, hash).await?;
        Ok((ok && known).then(|| {
            let mut id = self.identity(username).unwrap_or_default();
            id.amr = vec!["pwd".into()];
            id
        }))
    }
}

fn identity_of(u: &UserConfig) -> Identity {
    Identity {
        sub: u.username.clone(),
        preferred_username: Some(u.username.clone()),
        name: u.name.clone(),
        email: u.email.clone(),
        email_verified: u.email.as_ref().map(|_| u.email_verified),
        groups: u.groups.clone(),
        amr: vec!["pwd".into()],
        local: true,
        upstream_session: None,
        extra: Map::new(),
    }
}

impl Identity {
    /// This identity with the authentication methods of an earlier login.
    pub fn with_amr(mut self, amr: &[String]) -> Self {
        self.amr = amr.to_vec();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_release_only_their_claims() {
        let id = Identity {
            sub: "alice".into(),
            name: Some("Alice".into()),
            email: Some("a@example.com".into()),
            email_verified: Some(true),
            groups: vec!["dev".into()],
            ..Identity::default()
        };
        let c = id.claims_for(&["openid".into()], None);
        assert_eq!(c.keys().collect::<Vec<_>>(), ["sub"]);
        let c = id.claims_for(&["openid".into(), "email".into()], None);
        assert_eq!(c["email"], "a@example.com");
        assert_eq!(c["email_verified"], true);
        assert!(c.get("name").is_none());
        let req = json!({"name": {"essential": true}});
        let c = id.claims_for(&["openid".into()], Some(&req));
        assert_eq!(c["name"], "Alice");
        let c = id.claims_for(&["groups".into()], None);
        assert_eq!(c["groups"], json!(["dev"]));
    }
}
