//! What the directory said of one person (their entry, each group and how it was reached)
//! as one JSON document, and the pure functions that make raw groups and claims of it:
//! shared by sign-in, refresh and `groups explain`.

use std::collections::HashMap;

use ldap3::SearchEntry;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{ConnectorConfig, KindSettings, LdapSettings};
use crate::federation::groups::RawGroup;

/// One group the directory returned, and through which group it was reached (nested).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoundGroup {
    pub dn: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// What the directory said of one person: their entry and their groups.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Answers {
    pub dn: String,
    /// Attribute → values, as read.
    pub attributes: HashMap<String, Vec<String>>,
    #[serde(default)]
    pub groups: Vec<FoundGroup>,
}

/// Attributes whose values are bytes, whatever they look like (Active Directory's ids).
pub fn is_binary(attr: &str) -> bool {
    ["objectGUID", "objectSid"]
        .iter()
        .any(|b| b.eq_ignore_ascii_case(attr))
}

pub fn answers(entry: SearchEntry, groups: Vec<FoundGroup>) -> Answers {
    let mut attributes = entry.attrs;
    // A binary id whose bytes happen to be UTF-8 arrives as text: base64url it all the same.
    for (_, vals) in attributes.iter_mut().filter(|(k, _)| is_binary(k)) {
        for v in vals.iter_mut() {
            *v = crate::secret::b64url(v.as_bytes());
        }
    }
    for (k, vals) in entry.bin_attrs {
        // Binary values (Active Directory's objectGUID): base64url.
        attributes.insert(k, vals.iter().map(|v| crate::secret::b64url(v)).collect());
    }
    Answers {
        dn: entry.dn,
        attributes,
        groups,
    }
}

fn first<'a>(a: &'a Answers, attr: &str) -> Option<&'a str> {
    if attr == "dn" {
        return Some(&a.dn);
    }
    // Attribute names are case-insensitive.
    a.attributes
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .and_then(|(_, v)| v.first())
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

/// The groups as the directory gave them, each with how it was found.
pub fn raw_groups(config: &ConnectorConfig, a: &Answers) -> Vec<RawGroup> {
    let attr = match &config.settings {
        KindSettings::Ldap(l) => l.group_search.as_ref().map(|g| g.group_attr.clone()),
        _ => None,
    }
    .unwrap_or_else(|| "member".into());
    a.groups
        .iter()
        .map(|g| RawGroup {
            value: g.name.clone(),
            source: match &g.via {
                None => format!("ldap:{attr} {}", g.dn),
                Some(via) => format!("ldap:{attr} {} (nested, via {via})", g.dn),
            },
            display_name: None,
        })
        .collect()
}

/// The entry as claims: `sub` (the immutable id), `preferred_username`, `email`, `name`,
/// and each mapped claim's attribute (one value: a string; several: a list).
pub fn claims_of(ldap: &LdapSettings, config: &ConnectorConfig, a: &Answers) -> Option<Value> {
    let u = &ldap.user_search;
    let mut claims = json!({
        "sub": first(a, &u.id_attr)?,
        "dn": a.dn,
    });
    for (claim, attr) in [
        ("preferred_username", &u.username_attr),
        ("email", &u.email_attr),
        ("name", &u.name_attr),
    ] {
        if let Some(v) = first(a, attr) {
            claims[claim] = json!(v);
        }
    }
    for attr in config.claims.values() {
        if let Some((_, vals)) = a
            .attributes
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        {
            claims[attr.as_str()] = match vals.as_slice() {
                [one] => json!(one),
                many => json!(many),
            };
        }
    }
    Some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector(yaml: &str) -> ConnectorConfig {
        crate::config::from_yaml_str(yaml, &|_| None)
            .expect("config")
            .connectors
            .remove(0)
    }

    const YAML: &str = "connectors: [{id: corp, type: ldap, url: 'ldaps://ldap.example', user_search: {base_dn: 'ou=people,dc=x'}, group_search: {base_dn: 'ou=groups,dc=x', nested: true}, claims: {department: departmentNumber}}]";

    #[test]
    fn nested_groups_say_how_they_were_reached() {
        let c = connector(YAML);
        let a = Answers {
            dn: "uid=a,ou=people,dc=x".into(),
            attributes: HashMap::new(),
            groups: vec![
                FoundGroup {
                    dn: "cn=platform,ou=groups,dc=x".into(),
                    name: "platform".into(),
                    via: None,
                },
                FoundGroup {
                    dn: "cn=eng,ou=groups,dc=x".into(),
                    name: "eng".into(),
                    via: Some("platform".into()),
                },
            ],
        };
        let raw = raw_groups(&c, &a);
        assert_eq!(raw[0].value, "platform");
        assert_eq!(raw[0].source, "ldap:member cn=platform,ou=groups,dc=x");
        assert_eq!(
            raw[1].source,
            "ldap:member cn=eng,ou=groups,dc=x (nested, via platform)"
        );
    }

    #[test]
    fn claims_come_from_the_configured_attributes_whatever_their_case() {
        let c = connector(YAML);
        let KindSettings::Ldap(l) = &c.settings else {
            panic!("ldap")
        };
        let mut attributes = HashMap::new();
        attributes.insert("entryUUID".to_string(), vec!["u-1".to_string()]);
        attributes.insert("Mail".to_string(), vec!["a@x.com".to_string()]);
        attributes.insert(
            "departmentNumber".to_string(),
            vec!["42".to_string(), "43".to_string()],
        );
        let a = Answers {
            dn: "uid=a,dc=x".into(),
            attributes,
            groups: vec![],
        };
        let claims = claims_of(l, &c, &a).expect("an id");
        assert_eq!(claims["sub"], "u-1");
        assert_eq!(claims["email"], "a@x.com");
        assert_eq!(claims["departmentNumber"], json!(["42", "43"]));
        let no_id = Answers {
            attributes: HashMap::new(),
            ..a
        };
        assert!(
            claims_of(l, &c, &no_id).is_none(),
            "no entryUUID: no identity"
        );
    }

    #[test]
    fn plain_ldap_needs_start_tls_or_an_explicit_insecure_flag() {
        let err = crate::config::from_yaml_str(
            "connectors: [{id: corp, type: ldap, url: 'ldap://ldap.example', user_search: {base_dn: 'dc=x'}}]",
            &|_| None,
        )
        .expect_err("clear-text LDAP refused");
        assert!(err.to_string().contains("connectors[0].url"), "{err}");
    }
}
