//! Who may sign in to a client: its `allowed_connectors`, `deny_groups` and
//! `require_groups` (any of), checked on the person's groups as the group pipeline made them
//! (before the client's own `groups.include` view), at sign-in, on an existing session, and
//! again at every refresh.

use super::connector::Identity;
use crate::config::ClientConfig;

/// The id the password form's identities count as in `allowed_connectors`.
const LOCAL: &str = "local";

/// Why a person may not use a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Signed in through a connector this client does not accept.
    Connector(String),
    /// In a group the client denies.
    DeniedGroup(String),
    /// In none of the groups the client requires.
    NotInRequiredGroup,
}

impl Refusal {
    /// A word for the audit log and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Connector(_) => "connector_not_allowed",
            Self::DeniedGroup(_) => "denied_group",
            Self::NotInRequiredGroup => "not_in_required_group",
        }
    }

    /// What the person reads on the page.
    pub fn message(&self, app: &str) -> String {
        match self {
            Self::Connector(c) => format!(
                "{app} does not accept accounts from `{c}`. Sign out, then sign in with an account it accepts."
            ),
            Self::DeniedGroup(g) => format!(
                "You are signed in, but members of the group `{g}` may not use {app}. Ask your administrator if you need access."
            ),
            Self::NotInRequiredGroup => format!(
                "You are signed in, but {app} is only for members of certain groups, and you are in none of them. Ask your administrator for access."
            ),
        }
    }

    /// The `error_description` the client gets with `access_denied`: the policy that refused,
    /// never the person's groups.
    pub fn description(&self) -> &'static str {
        match self {
            Self::Connector(_) => {
                "the user signed in through a connector this client does not accept"
            }
            Self::DeniedGroup(_) => "the user is in a group this client denies",
            Self::NotInRequiredGroup => "the user is in none of the groups this client requires",
        }
    }
}

/// The connector `identity` came through, as `allowed_connectors` names it.
pub fn connector_of(identity: &Identity) -> &str {
    identity
        .upstream_session
        .as_ref()
        .map(|s| s.connector.as_str())
        .unwrap_or(LOCAL)
}

/// Whether `client` admits `identity`: its connector allowed, no denied group, and (when the
/// client requires groups) one of them.
pub fn admits(client: &ClientConfig, identity: &Identity) -> Result<(), Refusal> {
    let connector = connector_of(identity);
    if !client.allowed_connectors.is_empty()
        && !client.allowed_connectors.iter().any(|c| c == connector)
    {
        return Err(Refusal::Connector(connector.to_string()));
    }
    if let Some(g) = identity
        .groups
        .iter()
        .find(|g| client.deny_groups.contains(g))
    {
        return Err(Refusal::DeniedGroup(g.clone()));
    }
    if !client.require_groups.is_empty()
        && !identity
            .groups
            .iter()
            .any(|g| client.require_groups.contains(g))
    {
        return Err(Refusal::NotInRequiredGroup);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::connector::UpstreamSession;

    fn client(yaml: &str) -> ClientConfig {
        let text = format!(
            "clients:\n  - id: app\n    secret: a-secret-of-16-chars\n    redirect_uris: [http://127.0.0.1/cb]\n{yaml}"
        );
        crate::config::from_yaml_str(&text, &|_| None)
            .expect("config")
            .clients
            .remove(0)
    }

    fn person(groups: &[&str], connector: Option<&str>) -> Identity {
        Identity {
            sub: "p".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            upstream_session: connector.map(|c| UpstreamSession {
                connector: c.into(),
                refresh_token: None,
                fetched_at: 0,
            }),
            ..Identity::default()
        }
    }

    #[test]
    fn required_groups_are_any_of_and_denied_groups_win() {
        let c = client("    require_groups: [platform, sre]\n    deny_groups: [contractors]\n");
        assert_eq!(admits(&c, &person(&["sre"], None)), Ok(()));
        assert_eq!(
            admits(&c, &person(&["dev"], None)),
            Err(Refusal::NotInRequiredGroup)
        );
        assert_eq!(
            admits(&c, &person(&["platform", "contractors"], None)),
            Err(Refusal::DeniedGroup("contractors".into()))
        );
        assert_eq!(admits(&client(""), &person(&[], None)), Ok(()));
    }

    #[test]
    fn an_identity_from_a_connector_the_client_does_not_allow_is_refused() {
        let yaml = "connectors:\n  - {id: okta, type: oidc, issuer: 'https://idp.example', client_id: x, client_secret: y}\nclients:\n  - id: app\n    secret: a-secret-of-16-chars\n    redirect_uris: [http://127.0.0.1/cb]\n    allowed_connectors: [okta]\n";
        let c = crate::config::from_yaml_str(yaml, &|_| None)
            .expect("config")
            .clients
            .remove(0);
        assert_eq!(admits(&c, &person(&[], Some("okta"))), Ok(()));
        assert_eq!(
            admits(&c, &person(&[], None)),
            Err(Refusal::Connector("local".into()))
        );
    }
}
