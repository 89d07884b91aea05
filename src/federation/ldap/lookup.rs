//! The LDAP connector without a password: what the directory says of a person now, as the
//! search account (at refresh, and for `groups explain --lookup`).

use std::time::Instant;

use async_trait::async_trait;
use ldap3::ldap_escape;

use super::LdapConnector;
use super::answers::{Answers, answers};
use super::failure::LdapFailure;
use crate::config::LdapScope;
use crate::federation::connector::{ConnectorError, Identity, RefreshConnector, Refreshed};

impl LdapConnector {
    /// What the directory says of `username` now, as the search account (no password):
    /// `groups explain --lookup`.
    pub async fn lookup_username(&self, username: &str) -> Result<Option<Answers>, String> {
        let mut ldap = self.connect().await.map_err(|e| e.to_string())?;
        let filter = self
            .ldap
            .user_search
            .filter
            .replace("{username}", &ldap_escape(username));
        let Some(entry) = self
            .find_user(&mut ldap, &filter)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let groups = self
            .find_groups(&mut ldap, &entry)
            .await
            .map_err(|e| e.to_string())?;
        let _ = ldap.unbind().await;
        Ok(Some(answers(entry, groups)))
    }

    /// What the directory says of the person with immutable id `id` now (no password).
    async fn look_up(&self, id: &str) -> Result<Option<Answers>, LdapFailure> {
        let mut ldap = self.connect().await?;
        let u = &self.ldap.user_search;
        let entry = if u.id_attr == "dn" {
            let found = self
                .search(
                    &mut ldap,
                    id,
                    LdapScope::Sub,
                    "(objectClass=*)",
                    self.attributes(),
                )
                .await;
            match found {
                Ok(mut v) if v.len() == 1 => v.pop(),
                Ok(_) | Err(LdapFailure::Refused(_)) => None,
                Err(e) => return Err(e),
            }
        } else {
            let filter = format!("({}={})", u.id_attr, ldap_escape(id));
            self.find_user(&mut ldap, &filter).await?
        };
        let Some(entry) = entry else {
            return Ok(None);
        };
        let groups = self.find_groups(&mut ldap, &entry).await?;
        let _ = ldap.unbind().await;
        Ok(Some(answers(entry, groups)))
    }
}

#[async_trait]
impl RefreshConnector for LdapConnector {
    /// Past `groups_max_staleness`, the entry and its groups are read again as the search
    /// account: gone from the directory, the refresh is refused.
    async fn refresh(&self, identity: &Identity) -> Result<Refreshed, ConnectorError> {
        let Some(session) = &identity.upstream_session else {
            return Ok(Refreshed::Unchanged);
        };
        if self.clock.now() - session.fetched_at <= self.config.groups_max_staleness.get() {
            return Ok(Refreshed::Unchanged);
        }
        let Some(id) = identity
            .extra
            .get("upstream")
            .and_then(|u| u["sub"].as_str())
        else {
            return Err(ConnectorError::ReauthenticationRequired);
        };
        let started = Instant::now();
        let found = self.look_up(id).await;
        self.observe("search", started, &found);
        match found {
            Ok(Some(answers)) => {
                let mut fresh = self.identity(&answers)?;
                fresh.sub = identity.sub.clone();
                fresh.amr = identity.amr.clone();
                Ok(Refreshed::Renewed(fresh))
            }
            Ok(None) => Ok(Refreshed::Gone),
            Err(e) => Err(ConnectorError::Unavailable(e.to_string())),
        }
    }
}
