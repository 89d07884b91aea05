//! Every connector of one issuer, found by what it can do, and the routing of a login from
//! plain inputs: `connector_id`, the `login_hint`'s e-mail domain, the client's
//! `allowed_connectors`, or else the chooser.

use std::collections::HashMap;
use std::sync::Arc;

use super::connector::{
    ConnectorError, Identity, IdentityLookup, PasswordConnector, RedirectConnector,
    RefreshConnector, Refreshed, SilentLogin, TokenIdentity,
};
use super::upstream::UpstreamError;

/// The id under which the password form appears among the choices.
pub const PASSWORD_CHOICE: &str = "local";

/// Where a login should go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To this redirect connector.
    Connector(String),
    /// To the chooser, offering these redirect connectors (and the password form, if
    /// offered).
    Chooser(Vec<String>),
    /// To the password form of the local users (or the mock's form).
    Password,
    /// To the password form of this directory connector (LDAP).
    Form(String),
}

/// `connector_id` names nothing this client may use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("connector_id names no connector this client may use")]
pub struct UnknownConnector;

#[derive(Default)]
pub struct ConnectorRegistry {
    /// In the config's order, for the chooser page.
    redirect: Vec<Arc<dyn RedirectConnector>>,
    /// Refresh for identities with an upstream session, by connector id.
    upstream_refresh: HashMap<String, Arc<dyn RefreshConnector>>,
    /// Connectors that vouch for upstream tokens (token exchange), by id.
    token_identity: HashMap<String, Arc<dyn TokenIdentity>>,
    password: Option<Arc<dyn PasswordConnector>>,
    /// Password connectors of their own (LDAP), in the config's order, each behind its own
    /// form; they refresh what they signed in through `upstream_refresh`.
    directories: Vec<Arc<dyn PasswordConnector>>,
    /// Refresh for the password connector's identities (`Identity::local`).
    password_refresh: Option<Arc<dyn RefreshConnector>>,
    /// Refresh for every other identity (none: they stand as issued).
    other_refresh: Option<Arc<dyn RefreshConnector>>,
    silent: Option<Arc<dyn SilentLogin>>,
    lookup: Option<Arc<dyn IdentityLookup>>,
    /// Sign-ins go to the password form without routing (the redirect connectors stay
    /// reachable through the chooser's form and their callbacks).
    password_first: bool,
}

impl ConnectorRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an upstream connector, which also refreshes what it signed in.
    pub fn add_upstream<C>(&mut self, connector: Arc<C>)
    where
        C: RedirectConnector + RefreshConnector + 'static,
    {
        self.upstream_refresh
            .insert(connector.id().to_string(), connector.clone());
        self.redirect.push(connector);
    }

    /// An upstream connector whose tokens may be exchanged (OIDC, Okta, Entra ID, Google).
    pub fn add_exchangeable<C>(&mut self, connector: Arc<C>)
    where
        C: RedirectConnector + RefreshConnector + TokenIdentity + 'static,
    {
        self.token_identity
            .insert(connector.id().to_string(), connector.clone());
        self.add_upstream(connector);
    }

    /// The identity an upstream ID token of connector `id` vouches for; `None` when no
    /// such connector takes tokens.
    pub async fn token_identity(
        &self,
        id: &str,
        id_token: &str,
    ) -> Option<Result<(Identity, i64), ConnectorError>> {
        let connector = self.token_identity.get(id)?;
        Some(connector.token_identity(id_token).await)
    }

    /// A directory (LDAP) connector: its own password form, and the refresh of what it
    /// signed in.
    pub fn add_directory<C>(&mut self, connector: Arc<C>)
    where
        C: PasswordConnector + RefreshConnector + 'static,
    {
        self.upstream_refresh
            .insert(connector.id().to_string(), connector.clone());
        self.directories.push(connector);
    }

    /// The password form's connector, which also refreshes (and looks up) its identities.
    pub fn set_password<C>(&mut self, connector: Arc<C>)
    where
        C: PasswordConnector + RefreshConnector + IdentityLookup + 'static,
    {
        self.password = Some(connector.clone());
        self.password_refresh = Some(connector.clone());
        self.lookup = Some(connector);
    }

    /// Another password form in front of the first (whose identities still refresh and look
    /// up through it), offered for every sign-in without routing to a redirect connector.
    pub fn put_password_form_first(&mut self, connector: Arc<dyn PasswordConnector>) {
        self.password = Some(connector);
        self.password_first = true;
    }

    pub fn set_silent(&mut self, connector: Arc<dyn SilentLogin>) {
        self.silent = Some(connector);
    }

    /// Who refreshes identities neither the password connector nor an upstream issued.
    pub fn set_other_refresh(&mut self, connector: Arc<dyn RefreshConnector>) {
        self.other_refresh = Some(connector);
    }

    /// Whether there is any connector besides the password form (a redirect connector or
    /// a directory).
    pub fn has_redirect(&self) -> bool {
        !self.redirect.is_empty() || !self.directories.is_empty()
    }

    /// Whether a sign-in is routed ([`Self::route`]) at all, or goes to the password form.
    pub fn routes_sign_ins(&self) -> bool {
        self.has_redirect() && !self.password_first
    }

    pub fn redirect(&self, id: &str) -> Option<&Arc<dyn RedirectConnector>> {
        self.redirect.iter().find(|c| c.id() == id)
    }

    pub fn password(&self) -> Option<&Arc<dyn PasswordConnector>> {
        self.password.as_ref()
    }

    /// The password connector behind a form: `local` (or none named) the local users' (or
    /// the mock's), else a directory connector's.
    pub fn form(&self, id: Option<&str>) -> Option<&Arc<dyn PasswordConnector>> {
        match id {
            None | Some(PASSWORD_CHOICE) => self.password.as_ref(),
            Some(id) => self.directories.iter().find(|c| c.id() == id),
        }
    }

    /// What the chooser calls a connector (redirect or directory).
    pub fn name_of(&self, id: &str) -> Option<&str> {
        self.redirect(id).map(|c| c.name()).or_else(|| {
            self.form(Some(id))
                .filter(|_| id != PASSWORD_CHOICE)
                .map(|c| c.name())
        })
    }

    fn email_domains_of(&self, id: &str) -> &[String] {
        match self.redirect(id) {
            Some(c) => c.email_domains(),
            None => self
                .form(Some(id))
                .map(|c| c.email_domains())
                .unwrap_or(&[]),
        }
    }

    /// A route to connector `id`: its redirect, or its own form.
    fn to(&self, id: &str) -> Route {
        if self.redirect(id).is_some() {
            Route::Connector(id.to_string())
        } else {
            Route::Form(id.to_string())
        }
    }

    fn password_offered(&self) -> bool {
        self.password.as_ref().is_some_and(|p| p.offered())
    }

    /// The redirect connectors a client may use (in order), and whether the password form
    /// is among its choices. `allowed` empty: every one.
    pub fn choices(&self, allowed: &[String]) -> (Vec<String>, bool) {
        let permitted = |id: &str| allowed.is_empty() || allowed.iter().any(|a| a == id);
        let ids = self
            .redirect
            .iter()
            .map(|c| c.id())
            .chain(self.directories.iter().map(|c| c.id()))
            .filter(|id| permitted(id))
            .map(str::to_string)
            .collect();
        (ids, self.password_offered() && permitted(PASSWORD_CHOICE))
    }

    /// `connector_id`, then a `login_hint` in a connector's `email_domains`, then the only
    /// connector when the password form is not offered; otherwise the chooser (or, with no
    /// redirect connectors, the password form).
    pub fn route(
        &self,
        allowed: &[String],
        connector_id: Option<&str>,
        login_hint: Option<&str>,
    ) -> Result<Route, UnknownConnector> {
        let (ids, password) = self.choices(allowed);
        if let Some(wanted) = connector_id {
            return if wanted == PASSWORD_CHOICE && password {
                Ok(Route::Password)
            } else if ids.iter().any(|id| id == wanted) {
                Ok(self.to(wanted))
            } else {
                Err(UnknownConnector)
            };
        }
        let domain = login_hint
            .and_then(|h| h.rsplit_once('@'))
            .map(|(_, d)| d.to_lowercase());
        if let Some(domain) = domain
            && let Some(id) = ids
                .iter()
                .find(|id| self.email_domains_of(id).contains(&domain))
        {
            return Ok(self.to(id));
        }
        Ok(match (ids.len(), password) {
            (0, _) => Route::Password,
            (1, false) => self.to(&ids[0]),
            _ => Route::Chooser(ids),
        })
    }

    /// An identity to sign in with no page, if a connector has one for this request, and
    /// that connector's id.
    pub fn silent_login(
        &self,
        login_hint: Option<&str>,
        client_id: &str,
    ) -> Option<(&str, Identity)> {
        let connector = self.silent.as_ref()?;
        Some((
            connector.id(),
            connector.silent_login(login_hint, client_id)?,
        ))
    }

    /// The current identity behind `sub`, where a connector keeps it (local users).
    pub fn lookup(&self, sub: &str) -> Option<Identity> {
        self.lookup.as_ref()?.lookup(sub)
    }

    /// Whether `identity` still holds, and what it is now, asked of the connector that
    /// issued it.
    pub async fn refresh(&self, identity: &Identity) -> Result<Refreshed, ConnectorError> {
        let refresher = if identity.local {
            self.password_refresh.as_ref()
        } else if let Some(session) = &identity.upstream_session {
            match self.upstream_refresh.get(&session.connector) {
                Some(r) => Some(r),
                None => {
                    return Err(ConnectorError::Upstream(UpstreamError::Refused(
                        "the connector is gone".into(),
                    )));
                }
            }
        } else {
            self.other_refresh.as_ref()
        };
        match refresher {
            Some(r) => r.refresh(identity).await,
            None if identity.local => Ok(Refreshed::Gone),
            None => Ok(Refreshed::Unchanged),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::connector::PendingUpstream;
    use async_trait::async_trait;

    struct Up(&'static str, Vec<String>);

    #[async_trait]
    impl RedirectConnector for Up {
        fn id(&self) -> &str {
            self.0
        }
        fn name(&self) -> &str {
            self.0
        }
        fn email_domains(&self) -> &[String] {
            &self.1
        }
        async fn start(
            &self,
            _: String,
            _: Option<&str>,
        ) -> Result<(String, PendingUpstream), UpstreamError> {
            Err(UpstreamError::Unavailable("test".into()))
        }
        async fn accepts_issuer(&self, _: Option<&str>) -> bool {
            false
        }
        async fn finish(&self, _: &str, _: &PendingUpstream) -> Result<Identity, ConnectorError> {
            Err(ConnectorError::Identity("test".into()))
        }
    }

    #[async_trait]
    impl RefreshConnector for Up {
        async fn refresh(&self, _: &Identity) -> Result<Refreshed, ConnectorError> {
            Ok(Refreshed::Gone)
        }
    }

    fn two() -> ConnectorRegistry {
        let mut r = ConnectorRegistry::new();
        r.add_upstream(Arc::new(Up("okta", vec!["acme.com".into()])));
        r.add_upstream(Arc::new(Up("entra", vec!["contoso.com".into()])));
        r
    }

    #[test]
    fn routes_by_id_then_domain_then_the_only_choice() {
        let r = two();
        assert_eq!(
            r.route(&[], Some("entra"), None),
            Ok(Route::Connector("entra".into()))
        );
        assert_eq!(r.route(&[], Some("nope"), None), Err(UnknownConnector));
        assert_eq!(
            r.route(&["okta".into()], Some("entra"), None),
            Err(UnknownConnector),
            "not among the client's allowed connectors"
        );
        assert_eq!(
            r.route(&[], None, Some("bob@Contoso.COM")),
            Ok(Route::Connector("entra".into()))
        );
        assert_eq!(
            r.route(&[], None, None),
            Ok(Route::Chooser(vec!["okta".into(), "entra".into()]))
        );
        assert_eq!(
            r.route(&["entra".into()], None, None),
            Ok(Route::Connector("entra".into()))
        );
        assert_eq!(
            ConnectorRegistry::new().route(&[], None, None),
            Ok(Route::Password),
            "no redirect connectors: the form"
        );
        assert_eq!(
            ConnectorRegistry::new().route(&[], Some("local"), None),
            Err(UnknownConnector),
            "no password form offered either"
        );
    }

    #[tokio::test]
    async fn refresh_goes_to_the_connector_that_signed_in() {
        let r = two();
        let mut id = Identity::default();
        assert!(matches!(r.refresh(&id).await, Ok(Refreshed::Unchanged)));
        id.upstream_session = Some(crate::federation::UpstreamSession {
            connector: "okta".into(),
            refresh_token: None,
            fetched_at: 0,
        });
        assert!(matches!(r.refresh(&id).await, Ok(Refreshed::Gone)));
        id.upstream_session.as_mut().expect("session").connector = "gone".into();
        assert!(r.refresh(&id).await.is_err(), "a removed connector refuses");
        let local = Identity {
            local: true,
            ..Identity::default()
        };
        assert!(
            matches!(r.refresh(&local).await, Ok(Refreshed::Gone)),
            "no password connector: a local identity cannot stand"
        );
    }
}
