//! The LDAP connector without a password: what the directory says of a person now, as the
//! search account (at refresh, and for `groups explain --lookup`).

use std::time::Instant;

use async_trait::async_trait;
use ldap3::ldap_escape;

use super::LdapConnector;
use super::answers::{Answers, answers, is_binary};
use super::failure::LdapFailure;
use crate::config::LdapScope;
use crate::federation::connector::{ConnectorError, Identity, RefreshConnector, Refreshed};

impl LdapConnector {
    /// What the directory says of `username` now, as the search account (no password):
    /// `groups explain --lookup`.
    pub async fn lookup_username(&self, username: &str) -> Result<Option<Answers>, String> {
        let _turn = self.gate.acquire().await.map_err(|e| e.to_string())?;
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

    /// What the directory says of the person with immutable id `id` now (no password). The
    /// sign-in filter still applies, its `{username}` left open, so whatever else it asks
    /// (an enabled account, a group it requires) is asked again.
    async fn look_up(&self, id: &str) -> Result<Option<Answers>, LdapFailure> {
        let _turn = self
            .gate
            .acquire()
            .await
            .map_err(|_| LdapFailure::Unavailable("closing".into()))?;
        let mut ldap = self.connect().await?;
        let u = &self.ldap.user_search;
        let open = u.filter.replace("{username}", "*");
        let entry = if u.id_attr == "dn" {
            match self
                .search(&mut ldap, id, LdapScope::Base, &open, self.attributes())
                .await
            {
                Ok(mut v) if v.len() == 1 => v.pop(),
                Ok(_) | Err(LdapFailure::NoSuchObject) => None,
                Err(e) => return Err(e),
            }
        } else {
            let filter = format!("(&{open}({}={}))", u.id_attr, id_value(&u.id_attr, id));
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

/// `id` as a filter value for `attr`: a binary id (Active Directory's `objectGUID`, kept as
/// base64url) as escaped octets, anything else escaped as text (RFC 4515).
pub fn id_value(attr: &str, id: &str) -> String {
    use base64::Engine as _;
    if is_binary(attr)
        && let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(id)
    {
        return bytes.iter().map(|b| format!("\\{b:02x}")).collect();
    }
    ldap_escape(id).into_owned()
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

#[cfg(test)]
mod tests {
    use super::id_value;

    #[test]
    fn a_binary_guid_is_searched_as_escaped_octets() {
        // base64url of 0x01 0xff 0x28 (a `(` among them).
        assert_eq!(id_value("objectGUID", "Af8o"), "\\01\\ff\\28");
        assert_eq!(id_value("entryUUID", "a*b(c)"), "a\\2ab\\28c\\29");
    }
}
