//! What only one connector type has: Google Workspace (`hosted_domains`, `group_name`,
//! `directory`), GitHub (`base_url`, `api_url`, `orgs`, …) and LDAP (`url`, the binds, the
//! user and group searches). Read into [`KindSettings`]; keys of another type are refused.

use std::collections::BTreeMap;

use serde_json::Value;

use super::tree::{Obj, Reader, index, join};
use crate::secret::SecretString;

/// The settings of one connector type.
#[derive(Debug, Clone, Default)]
pub enum KindSettings {
    #[default]
    None,
    Google(GoogleSettings),
    Github(GithubSettings),
    Ldap(super::ldap_section::LdapSettings),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorKind {
    Oidc,
    Okta,
    Azure,
    Google,
    Github,
    Ldap,
    Mock,
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

/// The Directory API scopes the service account is granted: groups, and users (whether a
/// person was suspended, at a refresh).
pub const DIRECTORY_GROUP_SCOPE: &str =
    "https://www.googleapis.com/auth/admin.directory.group.readonly";
pub const DIRECTORY_USER_SCOPE: &str =
    "https://www.googleapis.com/auth/admin.directory.user.readonly";

#[derive(Debug, Clone)]
pub struct GithubOrg {
    pub name: String,
    /// The org's numeric id: membership is checked against it, so a renamed org's old name,
    /// registered by someone else, admits nobody.
    pub id: Option<u64>,
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

/// The OIDC connector types (they have an issuer and read ID tokens).
const OIDC_KINDS: &[ConnectorKind] = &[
    ConnectorKind::Oidc,
    ConnectorKind::Okta,
    ConnectorKind::Azure,
    ConnectorKind::Google,
    ConnectorKind::Mock,
];
/// The types registered as an OAuth client upstream.
const CLIENT_KINDS: &[ConnectorKind] = &[
    ConnectorKind::Oidc,
    ConnectorKind::Okta,
    ConnectorKind::Azure,
    ConnectorKind::Google,
    ConnectorKind::Github,
    ConnectorKind::Mock,
];

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
    ("issuer", OIDC_KINDS),
    ("get_userinfo", OIDC_KINDS),
    ("client_id", CLIENT_KINDS),
    ("client_secret", CLIENT_KINDS),
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
                id: None,
                teams: Vec::new(),
            });
            continue;
        }
        let org = r.obj(Some(item), &path, &["name", "id", "teams"]);
        if let Some(name) = r.required_string(&org, "name") {
            orgs.push(GithubOrg {
                name,
                id: r.u64(&org, "id"),
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
        team_separator: team_separator(r, o, &orgs),
        orgs,
        preferred_email_domain: preferred_email_domain.map(|d| d.to_lowercase()),
        use_login_as_id: r.bool(o, "use_login_as_id").unwrap_or(false),
    }
}

/// Between org and team in a group name. `-` (`acme-platform`) when `orgs` names the orgs,
/// `.` when any GitHub user may sign in: org names and team slugs hold `-` but never `.`, so
/// with `-` someone could create the org `acme-platform` and get the group of acme's
/// platform team. Configured orgs that could meet that way are refused.
fn team_separator(r: &mut Reader, o: &Obj<'_>, orgs: &[GithubOrg]) -> String {
    let default = if orgs.is_empty() { "." } else { "-" };
    let sep = r
        .string(o, "team_separator")
        .unwrap_or_else(|| default.to_string());
    if sep.is_empty() || sep.bytes().any(|b| b.is_ascii_alphanumeric()) {
        r.problem(
            o.key_path("team_separator"),
            "must be punctuation that org names and team slugs cannot hold (`.`, or `-` with orgs whose names cannot meet)",
        );
        return sep;
    }
    if sep.contains('-') {
        for a in orgs {
            for b in orgs {
                let prefix = format!("{}{sep}", a.name.to_lowercase());
                if a.name != b.name && b.name.to_lowercase().starts_with(&prefix) {
                    r.problem(
                        o.key_path("team_separator"),
                        format!(
                            "orgs `{}` and `{}` make the same group names with `{sep}` (a team of {} could be the org {}): set team_separator: \".\"",
                            a.name, b.name, a.name, b.name
                        ),
                    );
                }
            }
        }
    }
    sep
}
