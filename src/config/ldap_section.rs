//! `type: ldap`: the directory's URL and TLS, the search account, how the password is
//! checked, and the user and group searches.

use serde_json::Value;

use super::tree::{Obj, Reader};
use crate::secret::SecretString;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdapScope {
    Sub,
    One,
    /// The entry itself (a DN looked up again; not a config value).
    Base,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    /// Bind as the user with the password (what a directory's lockout policy sees).
    Bind,
    /// Compare `userPassword` as the service account.
    Compare,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NestedGroups {
    Off,
    /// Search again for groups holding each group found, with a visited set.
    Recursive,
    /// Active Directory's `LDAP_MATCHING_RULE_IN_CHAIN` (1.2.840.113556.1.4.1941): one search.
    InChain,
}

#[derive(Debug, Clone)]
pub struct LdapUserSearch {
    pub base_dn: String,
    /// `{username}` is replaced by the escaped username (RFC 4515).
    pub filter: String,
    pub scope: LdapScope,
    /// The immutable id (`entryUUID`; AD: `objectGUID`); `dn` names the entry's DN.
    pub id_attr: String,
    pub username_attr: String,
    pub email_attr: String,
    pub name_attr: String,
}

#[derive(Debug, Clone)]
pub struct LdapGroupSearch {
    pub base_dn: String,
    /// ANDed with the membership match (default `(objectClass=*)`).
    pub filter: String,
    pub scope: LdapScope,
    /// The user's attribute a group lists (`dn`, `uid`).
    pub user_attr: String,
    /// The group's attribute listing members (`member`, `memberUid`).
    pub group_attr: String,
    pub name_attr: String,
    pub nested: NestedGroups,
}

#[derive(Debug, Clone)]
pub struct LdapSettings {
    pub url: String,
    pub start_tls: bool,
    /// PEM CA certificates trusted for the server (else the system's).
    pub ca_file: Option<String>,
    /// `ldap://` without StartTLS: passwords cross the network in clear.
    pub insecure_no_tls: bool,
    /// The search account; none: anonymous searches.
    pub bind_dn: Option<String>,
    pub bind_password: Option<SecretString>,
    pub user_search: LdapUserSearch,
    pub group_search: Option<LdapGroupSearch>,
    pub password_check: PasswordCheck,
}

fn scope(r: &mut Reader, o: &Obj<'_>) -> LdapScope {
    match r.string(o, "scope").as_deref() {
        None | Some("sub") => LdapScope::Sub,
        Some("one") => LdapScope::One,
        Some(other) => {
            r.problem(o.key_path("scope"), format!("`{other}` is not sub or one"));
            LdapScope::Sub
        }
    }
}

const USER_SEARCH: &[&str] = &[
    "base_dn",
    "filter",
    "scope",
    "id_attr",
    "username_attr",
    "email_attr",
    "name_attr",
];
const GROUP_SEARCH: &[&str] = &[
    "base_dn",
    "filter",
    "scope",
    "user_attr",
    "group_attr",
    "name_attr",
    "nested",
];

fn read_user_search(r: &mut Reader, o: &Obj<'_>) -> Option<LdapUserSearch> {
    let u = r.obj(
        o.get("user_search"),
        &o.key_path("user_search"),
        USER_SEARCH,
    );
    if !u.is_present() {
        r.problem(o.key_path("user_search"), "is required");
        return None;
    }
    let filter = r
        .string(&u, "filter")
        .unwrap_or_else(|| "(uid={username})".into());
    if !filter.contains("{username}") {
        r.problem(u.key_path("filter"), "must contain {username}");
    }
    if !(filter.starts_with('(') && filter.ends_with(')')) {
        r.problem(
            u.key_path("filter"),
            "must be an LDAP filter in parentheses",
        );
    }
    let attr = |r: &mut Reader, key: &str, default: &str| {
        r.string(&u, key).unwrap_or_else(|| default.to_string())
    };
    Some(LdapUserSearch {
        base_dn: r.required_string(&u, "base_dn")?,
        filter,
        scope: scope(r, &u),
        id_attr: attr(r, "id_attr", "entryUUID"),
        username_attr: attr(r, "username_attr", "uid"),
        email_attr: attr(r, "email_attr", "mail"),
        name_attr: attr(r, "name_attr", "cn"),
    })
}

fn read_group_search(r: &mut Reader, o: &Obj<'_>) -> Option<LdapGroupSearch> {
    o.get("group_search")?;
    let g = r.obj(
        o.get("group_search"),
        &o.key_path("group_search"),
        GROUP_SEARCH,
    );
    let nested = match g.get("nested") {
        None | Some(Value::Bool(false)) => NestedGroups::Off,
        Some(Value::Bool(true)) => NestedGroups::Recursive,
        Some(Value::String(s)) if s == "recursive" => NestedGroups::Recursive,
        Some(Value::String(s)) if s == "in_chain" => NestedGroups::InChain,
        Some(_) => {
            r.problem(
                g.key_path("nested"),
                "must be true, false, recursive or in_chain (Active Directory's matching rule)",
            );
            NestedGroups::Off
        }
    };
    let filter = r
        .string(&g, "filter")
        .unwrap_or_else(|| "(objectClass=*)".into());
    if !(filter.starts_with('(') && filter.ends_with(')')) {
        r.problem(
            g.key_path("filter"),
            "must be an LDAP filter in parentheses",
        );
    }
    let attr = |r: &mut Reader, key: &str, default: &str| {
        r.string(&g, key).unwrap_or_else(|| default.to_string())
    };
    let user_attr = attr(r, "user_attr", "dn");
    if nested != NestedGroups::Off && user_attr != "dn" {
        r.problem(
            g.key_path("nested"),
            "nested groups list their members by DN: needs user_attr: dn",
        );
    }
    Some(LdapGroupSearch {
        base_dn: r.required_string(&g, "base_dn")?,
        filter,
        scope: scope(r, &g),
        user_attr,
        group_attr: attr(r, "group_attr", "member"),
        name_attr: attr(r, "name_attr", "cn"),
        nested,
    })
}

pub fn read_ldap(r: &mut Reader, o: &Obj<'_>) -> Option<LdapSettings> {
    let url = r.required_string(o, "url")?;
    let scheme = url::Url::parse(&url).map(|u| u.scheme().to_string());
    let start_tls = r.bool(o, "start_tls").unwrap_or(false);
    let insecure_no_tls = r.bool(o, "insecure_no_tls").unwrap_or(false);
    match scheme.as_deref() {
        Ok("ldaps") if start_tls => r.problem(
            o.key_path("start_tls"),
            "is for ldap:// URLs (ldaps:// is TLS from the start)",
        ),
        Ok("ldaps") => {}
        Ok("ldap") if !start_tls && !insecure_no_tls => r.problem(
            o.key_path("url"),
            "ldap:// sends passwords in clear: set start_tls: true, use ldaps://, or (tests only) insecure_no_tls: true",
        ),
        Ok("ldap") => {}
        _ => r.problem(
            o.key_path("url"),
            format!("`{url}` is not an ldap:// or ldaps:// URL"),
        ),
    }
    let bind_dn = r.string(o, "bind_dn");
    let bind_password = r.string(o, "bind_password").map(SecretString::new);
    if bind_dn.is_some() != bind_password.is_some() {
        r.problem(
            o.key_path("bind_password"),
            "bind_dn and bind_password go together",
        );
    }
    // An empty password (an unset variable, say) would make an unauthenticated bind.
    if bind_password
        .as_ref()
        .is_some_and(|p| p.expose().is_empty())
    {
        r.problem(o.key_path("bind_password"), "must not be empty");
    }
    let password_check = match r.string(o, "password_check").as_deref() {
        None | Some("bind") => PasswordCheck::Bind,
        Some("compare") => PasswordCheck::Compare,
        Some(other) => {
            r.problem(
                o.key_path("password_check"),
                format!("`{other}` is not bind or compare"),
            );
            PasswordCheck::Bind
        }
    };
    if password_check == PasswordCheck::Compare && bind_dn.is_none() {
        r.problem(
            o.key_path("password_check"),
            "compare runs as the search account: needs bind_dn",
        );
    }
    let ca_file = r.string(o, "ca_file");
    if let Some(f) = &ca_file
        && let Err(e) = std::fs::metadata(f)
    {
        r.problem(o.key_path("ca_file"), format!("cannot read `{f}`: {e}"));
    }
    let user_search = read_user_search(r, o);
    let group_search = read_group_search(r, o);
    Some(LdapSettings {
        url,
        start_tls,
        ca_file,
        insecure_no_tls,
        bind_dn,
        bind_password,
        user_search: user_search?,
        group_search,
        password_check,
    })
}
