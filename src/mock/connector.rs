//! The mock as a connector: a password form that takes any username (the password is
//! ignored) with optional groups and claims fields, silent logins (`login_hint` and queued
//! ones, with `mock.auto_login`), and a refresh that re-reads the latest claims stored for
//! the identity (what a later login or `POST /mock/tokens` wrote), refused for a user whose
//! claims say `suspended: true`.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::state::MockState;
use crate::federation::{
    ConnectorError, FormField, Identity, LoginFailure, LoginForm, PasswordConnector,
    PasswordPrompt, RefreshConnector, Refreshed, SilentLogin,
};
use crate::oidc::clients::ClientRegistry;
use crate::storage::Storage;

pub struct MockConnector {
    state: Arc<MockState>,
    /// A username may not be a client's id (a client's own tokens have it as `sub`).
    clients: Arc<ClientRegistry>,
    storage: Arc<dyn Storage>,
}

impl MockConnector {
    pub fn new(
        state: Arc<MockState>,
        clients: Arc<ClientRegistry>,
        storage: Arc<dyn Storage>,
    ) -> Self {
        Self {
            state,
            clients,
            storage,
        }
    }
}

/// The groups field: comma-separated, blanks dropped.
fn groups_field(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn printable_username(u: &str) -> bool {
    !u.is_empty() && u.len() <= 255 && u.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

#[async_trait]
impl PasswordConnector for MockConnector {
    fn id(&self) -> &str {
        "mock"
    }

    fn prompt(&self) -> PasswordPrompt {
        PasswordPrompt {
            note: Some("Mock identity provider: any username signs in, the password is ignored."),
            password_required: false,
            extra: vec![
                FormField {
                    name: "groups",
                    label: "Groups",
                    hint: Some("(optional, comma-separated)"),
                    placeholder: None,
                },
                FormField {
                    name: "claims",
                    label: "Extra claims",
                    hint: Some("(optional, a JSON object)"),
                    placeholder: Some(r#"{"department": "QA"}"#),
                },
            ],
            throttled: false,
        }
    }

    async fn login(&self, form: &LoginForm<'_>) -> Result<Identity, LoginFailure> {
        let claims = match (form.field)("claims").map(serde_json::from_str::<Value>) {
            None => Map::new(),
            Some(Ok(Value::Object(m))) => m,
            Some(_) => {
                return Err(LoginFailure::Invalid(
                    "Extra claims must be a JSON object, like {\"department\": \"QA\"}.".into(),
                ));
            }
        };
        if !printable_username(form.username) {
            return Err(LoginFailure::Invalid(
                "Enter a username of printable ASCII characters, without spaces.".into(),
            ));
        }
        if self.clients.get(form.username).is_some() {
            return Err(LoginFailure::Invalid(
                "That username is taken by an application here; choose another.".into(),
            ));
        }
        let groups = (form.field)("groups").map(groups_field);
        Ok(
            match self.state.take_queued(Some(form.username), form.client_id) {
                Some(q) => self.state.queued_identity(&q, form.username),
                None => self.state.identity(form.username, groups, &claims),
            },
        )
    }
}

impl SilentLogin for MockConnector {
    fn id(&self) -> &str {
        "mock"
    }

    /// A queued login for this request, or else the user named by `login_hint`.
    fn silent_login(&self, login_hint: Option<&str>, client_id: &str) -> Option<Identity> {
        match (self.state.take_queued(login_hint, client_id), login_hint) {
            (Some(q), hint) => Some(self.state.queued_identity(&q, hint.unwrap_or("user"))),
            (None, Some(hint)) => Some(self.state.identity(hint, None, &Map::new())),
            (None, None) => None,
        }
    }
}

#[async_trait]
impl RefreshConnector for MockConnector {
    /// The latest claims stored for this identity, if any.
    async fn refresh(&self, identity: &Identity) -> Result<Refreshed, ConnectorError> {
        let stored = self
            .storage
            .get_identity(&identity.sub)
            .await
            .map_err(|e| ConnectorError::Unavailable(e.to_string()))?;
        Ok(
            match stored.and_then(|json| serde_json::from_str::<Identity>(&json).ok()) {
                // A user made `suspended: true` upstream (`PUT /mock/users`): refused, as a
                // real IdP refuses a disabled person's refresh token.
                Some(latest) if latest.extra.get("suspended") == Some(&Value::Bool(true)) => {
                    Refreshed::Gone
                }
                Some(latest) => Refreshed::Current(latest),
                None => Refreshed::Unchanged,
            },
        )
    }
}
