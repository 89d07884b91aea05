//! What only one connector type has: Google Workspace (`hosted_domains`, `group_name`,
//! `directory`), GitHub (`base_url`, `api_url`, `orgs`, …) and LDAP (`url`, the binds, the
//! user and group searches). Read into [`KindSettings`]; keys of another type are refused.

use std::collections::BTreeMap;

use serde_json::Value;

use super::parties::ConnectorKind;
use super::tree::{Obj, Reader, index, join};
use crate::secret::SecretString;

/// The settings of one connector type.
#[derive(Debug, Clone, Default)]
pub enum KindSettings {
    #[default]
    None,
    Google(GoogleSettings),
    Github(GithubSettings),
    Ldap(LdapSettings),
}

/// How a Google group becomes a raw group name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoogleGroupName {
    /// `eng@example.com` (Dex's only choice).
    Email,
    /// The group's `name`, as an admin wrote it.
    Name,
    /// `eng` of `eng@example.com`.
    EmailLocalPart,
}

#[derive(Debug, Clone)]
pub struct GoogleSettings {
    /// Sent as `hd` (one domain, or `*`); the ID token's `hd` must be one of them.
    pub hosted_domains: Vec<String>,
    pub group_name: GoogleGroupName,
    /// Where groups come from (Google's ID tokens carry none).
    pub directory: Option<GoogleDirectory>,
}

/// A Google service-account key (Google's JSON key format), read at load.
#[derive(Clone)]
pub struct ServiceAccountKey {
    pub client_email: String,
    pub private_key_id: Option<String>,
    /// PKCS#8 PEM.
    pub private_key: SecretString,
    pub token_uri: String,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct GoogleDirectory {
    pub key: ServiceAccountKey,
    /// E-mail domain (or `*`) → the admin the service account acts as.
    pub admins: BTreeMap<String, String>,
    pub api_url: String,
    /// Follow groups' own memberships (with a visited set).
    pub transitive: bool,
}

/// The Directory API scope a group lookup needs.
pub const DIRECTORY_GROUP_SCOPE: &str =
    "https://www.googleapis.com/auth/admin.directory.group.readonly";

#[derive(Debug, Clone)]
pub struct GithubOrg {
    pub name: String,
    /// Only these teams (by slug or name) count; empty: membership in the org is enough.
    pub teams: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct GithubSettings {
    /// The REST API (`https://api.github.com`, or `https://HOST/api/v3`).
    pub api_url: String,
    /// Sign-ins need membership in one of these; empty: any GitHub user.
    pub orgs: Vec<GithubOrg>,
    /// Between an org and a team slug in a group name (`acme-platform`).
    pub team_separator: String,
    /// Only an address in this domain (verified) may be the e-mail, else the primary one.
    pub preferred_email_domain: Option<String>,
    /// The login as `sub` key instead of the numeric id (the login can be renamed).
    pub use_login_as_id: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdapScope {
    Sub,
    One,
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

/// Keys only some connector types take.
pub const KIND_KEYS: &[(&str, &[ConnectorKind])] = &[
    ("hosted_domains", &[ConnectorKind::Google]),
    ("group_name", &[ConnectorKind::Google]),
    ("directory", &[ConnectorKind::Google]),
    ("base_url", &[ConnectorKind::Github]),
    ("api_url", &[ConnectorKind::Github]),
    ("orgs", &[ConnectorKind::Github]),
    ("team_separator", &[ConnectorKind::Github]),
    ("preferred_email_domain", &[ConnectorKind::Github]),
    ("use_login_as_id", &[ConnectorKind::Github]),
    ("url", &[ConnectorKind::Ldap]),
    ("start_tls", &[ConnectorKind::Ldap]),
    ("ca_file", &[ConnectorKind::Ldap]),
    ("insecure_no_tls", &[ConnectorKind::Ldap]),
    ("bind_dn", &[ConnectorKind::Ldap]),
    ("bind_password", &[ConnectorKind::Ldap]),
    ("user_search", &[ConnectorKind::Ldap]),
    ("group_search", &[ConnectorKind::Ldap]),
    ("password_check", &[ConnectorKind::Ldap]),
    ("tenant", &[ConnectorKind::Azure]),
    ("allowed_tenants", &[ConnectorKind::Azure]),
    ("graph_url", &[ConnectorKind::Azure]),
    (
        "issuer",
        &[
            ConnectorKind::Oidc,
            ConnectorKind::Okta,
            ConnectorKind::Azure,
            ConnectorKind::Google,
            ConnectorKind::Mock,
        ],
    ),
    (
        "client_id",
        &[
            ConnectorKind::Oidc,
            ConnectorKind::Okta,
            ConnectorKind::Azure,
            ConnectorKind::Google,
            ConnectorKind::Github,
            ConnectorKind::Mock,
        ],
    ),
    (
        "client_secret",
        &[
            ConnectorKind::Oidc,
            ConnectorKind::Okta,
            ConnectorKind::Azure,
            ConnectorKind::Google,
            ConnectorKind::Github,
            ConnectorKind::Mock,
        ],
    ),
    (
        "get_userinfo",
        &[
            ConnectorKind::Oidc,
            ConnectorKind::Okta,
            ConnectorKind::Azure,
            ConnectorKind::Google,
        ],
    ),
];

/// Refuses keys of another connector type, each at its path.
pub fn check_kind_keys(r: &mut Reader, o: &Obj<'_>, kind: ConnectorKind, type_name: &str) {
    for (key, kinds) in KIND_KEYS {
        if o.get(key).is_some() && !kinds.contains(&kind) {
            r.problem(
                o.key_path(key),
                format!("is not a key of a `{type_name}` connector"),
            );
        }
    }
}

pub fn read_google(r: &mut Reader, o: &Obj<'_>) -> GoogleSettings {
    let hosted_domains: Vec<String> = r
        .strings(o, "hosted_domains")
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.to_lowercase())
        .collect();
    let group_name = match r.string(o, "group_name").as_deref() {
        None | Some("email") => GoogleGroupName::Email,
        Some("name") => GoogleGroupName::Name,
        Some("email_local_part") => GoogleGroupName::EmailLocalPart,
        Some(other) => {
            r.problem(
                o.key_path("group_name"),
                format!("`{other}` is not one of email, name, email_local_part"),
            );
            GoogleGroupName::Email
        }
    };
    let directory = o
        .get("directory")
        .and_then(|_| read_directory(r, o, &hosted_domains));
    GoogleSettings {
        hosted_domains,
        group_name,
        directory,
    }
}

const DIRECTORY: &[&str] = &[
    "service_account_key_file",
    "service_account_key",
    "admin_email",
    "domain_admins",
    "api_url",
    "transitive",
];

fn read_directory(
    r: &mut Reader,
    o: &Obj<'_>,
    hosted_domains: &[String],
) -> Option<GoogleDirectory> {
    let d = r.obj(o.get("directory"), &o.key_path("directory"), DIRECTORY);
    let key = match (
        r.string(&d, "service_account_key_file"),
        r.string(&d, "service_account_key"),
    ) {
        (Some(file), None) => match std::fs::read_to_string(&file) {
            Ok(text) => parse_key(r, &d.key_path("service_account_key_file"), &text),
            Err(e) => {
                r.problem(
                    d.key_path("service_account_key_file"),
                    format!("cannot read `{file}`: {e}"),
                );
                None
            }
        },
        (None, Some(text)) => parse_key(r, &d.key_path("service_account_key"), &text),
        (Some(_), Some(_)) => {
            r.problem(
                d.key_path("service_account_key"),
                "give service_account_key_file or service_account_key, not both",
            );
            None
        }
        (None, None) => {
            r.problem(
                d.key_path("service_account_key_file"),
                "is required (a Google service-account JSON key with domain-wide delegation)",
            );
            None
        }
    };
    let mut admins = BTreeMap::new();
    if let Some(admin) = r.string(&d, "admin_email") {
        admins.insert("*".to_string(), admin);
    }
    match d.get("domain_admins") {
        None => {}
        Some(Value::Object(m)) => {
            for (domain, admin) in m {
                match admin.as_str() {
                    Some(a) if a.contains('@') => {
                        admins.insert(domain.to_lowercase(), a.to_string());
                    }
                    _ => r.problem(
                        join(&d.key_path("domain_admins"), domain),
                        "must be the e-mail address of an admin of that domain",
                    ),
                }
            }
        }
        Some(_) => r.problem(
            d.key_path("domain_admins"),
            "must be a mapping of domain to admin e-mail",
        ),
    }
    if admins.is_empty() {
        r.problem(
            d.key_path("admin_email"),
            "is required (or domain_admins): the Directory API is read as an admin of the domain",
        );
    }
    for domain in admins.keys().filter(|k| *k != "*") {
        if !hosted_domains.is_empty() && !hosted_domains.contains(domain) {
            r.problem(
                join(&d.key_path("domain_admins"), domain),
                "is not one of hosted_domains",
            );
        }
    }
    let api_url = r
        .string(&d, "api_url")
        .unwrap_or_else(|| "https://admin.googleapis.com".into());
    check_url(r, &d, "api_url", &api_url);
    Some(GoogleDirectory {
        key: key?,
        admins,
        api_url: api_url.trim_end_matches('/').to_string(),
        transitive: r.bool(&d, "transitive").unwrap_or(false),
    })
}

/// Google's JSON key format: `type: service_account`, `client_email`, `private_key`,
/// `token_uri`.
fn parse_key(r: &mut Reader, path: &str, text: &str) -> Option<ServiceAccountKey> {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            r.problem(path, format!("is not a JSON service-account key: {e}"));
            return None;
        }
    };
    if v["type"] != "service_account" {
        r.problem(
            path,
            "is not a service-account key (`type: service_account`)",
        );
        return None;
    }
    let field = |k: &str| v[k].as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let (Some(client_email), Some(private_key)) = (field("client_email"), field("private_key"))
    else {
        r.problem(path, "has no client_email or private_key");
        return None;
    };
    if !private_key.contains("BEGIN PRIVATE KEY") {
        r.problem(path, "its private_key is not a PKCS#8 PEM key");
        return None;
    }
    let token_uri =
        field("token_uri").unwrap_or_else(|| "https://oauth2.googleapis.com/token".into());
    if url::Url::parse(&token_uri).is_err() {
        r.problem(path, format!("its token_uri `{token_uri}` is not a URL"));
        return None;
    }
    Some(ServiceAccountKey {
        client_email,
        private_key_id: field("private_key_id"),
        private_key: SecretString::new(private_key),
        token_uri,
    })
}

fn check_url(r: &mut Reader, o: &Obj<'_>, key: &str, value: &str) {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        _ => r.problem(o.key_path(key), format!("`{value}` is not an http(s) URL")),
    }
}

pub fn read_github(r: &mut Reader, o: &Obj<'_>, base_url: &str) -> GithubSettings {
    let api_url = r.string(o, "api_url").unwrap_or_else(|| {
        if base_url.trim_end_matches('/') == "https://github.com" {
            "https://api.github.com".into()
        } else {
            format!("{}/api/v3", base_url.trim_end_matches('/'))
        }
    });
    check_url(r, o, "api_url", &api_url);
    let mut orgs = Vec::new();
    for (i, item) in r
        .list(o.get("orgs"), &o.key_path("orgs"))
        .iter()
        .enumerate()
    {
        let path = index(&o.key_path("orgs"), i);
        if let Value::String(name) = item {
            orgs.push(GithubOrg {
                name: name.clone(),
                teams: Vec::new(),
            });
            continue;
        }
        let org = r.obj(Some(item), &path, &["name", "teams"]);
        if let Some(name) = r.required_string(&org, "name") {
            orgs.push(GithubOrg {
                name,
                teams: r.strings(&org, "teams").unwrap_or_default(),
            });
        }
    }
    let preferred_email_domain = r.string(o, "preferred_email_domain");
    if preferred_email_domain
        .as_deref()
        .is_some_and(|d| d.ends_with('*'))
    {
        r.problem(
            o.key_path("preferred_email_domain"),
            "may not end in `*` (it would match any top-level domain)",
        );
    }
    GithubSettings {
        api_url: api_url.trim_end_matches('/').to_string(),
        orgs,
        team_separator: r.string(o, "team_separator").unwrap_or_else(|| "-".into()),
        preferred_email_domain: preferred_email_domain.map(|d| d.to_lowercase()),
        use_login_as_id: r.bool(o, "use_login_as_id").unwrap_or(false),
    }
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

/// okta: `groups_api: {token, url, always, marker}`.
pub fn read_groups_api(
    r: &mut Reader,
    o: &Obj<'_>,
    kind: ConnectorKind,
    issuer: Option<&str>,
) -> Option<super::parties::OktaGroupsApi> {
    o.get("groups_api")?;
    let path = o.key_path("groups_api");
    if kind != ConnectorKind::Okta {
        r.problem(&path, "is Okta's Groups API: only an okta connector has it");
        return None;
    }
    let a = r.obj(
        o.get("groups_api"),
        &path,
        &["token", "url", "always", "marker"],
    );
    let token = r.required_string(&a, "token").map(SecretString::new);
    let url = r.string(&a, "url").or_else(|| {
        let i = issuer?;
        Some(match i.find("/oauth2/") {
            Some(at) => i[..at].to_string(),
            None => url::Url::parse(i).ok()?.origin().ascii_serialization(),
        })
    });
    if let Some(u) = &url
        && url::Url::parse(u).is_err()
    {
        r.problem(a.key_path("url"), format!("`{u}` is not a URL"));
    }
    Some(super::parties::OktaGroupsApi {
        token: token?,
        url: url?.trim_end_matches('/').to_string(),
        always: r.bool(&a, "always").unwrap_or(false),
        marker: r.string(&a, "marker").filter(|m| !m.is_empty()),
    })
}
