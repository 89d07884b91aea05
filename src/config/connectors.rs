//! `connectors:` (upstream IdPs and their group pipelines) and a client's view of groups.

use serde_json::Value;

use super::connector_kinds::*;
use super::duration::Seconds;
use super::ldap_section::read_ldap;
use super::okta_section::read_groups_api;
use super::parties::*;
use super::tree::{Obj, Reader, index, join};
use crate::secret::SecretString;

const CONNECTOR: &[&str] = &[
    "private_key_file",
    "private_key",
    "private_key_id",
    "certificate_file",
    "certificate",
    "id",
    "type",
    "name",
    "issuer",
    "client_id",
    "client_secret",
    "scopes",
    "email_domains",
    "groups",
    "get_userinfo",
    "token_endpoint_auth_method",
    "timeout",
    "groups_max_staleness",
    "link_by_email",
    "tenant",
    "allowed_tenants",
    "graph_url",
    "verified_email_domains",
    "claims",
    "roles_claims",
    "groups_api",
    "hosted_domains",
    "group_name",
    "directory",
    "base_url",
    "api_url",
    "orgs",
    "team_separator",
    "preferred_email_domain",
    "use_login_as_id",
    "url",
    "start_tls",
    "ca_file",
    "insecure_no_tls",
    "bind_dn",
    "bind_password",
    "user_search",
    "group_search",
    "password_check",
];
const GROUPS: &[&str] = &[
    "claims",
    "map",
    "unmapped",
    "include",
    "exclude",
    "case",
    "slugify",
    "prefix",
    "prefix_separator",
    "required",
    "trust_display_names",
    "shared_namespace",
];

fn regexes(r: &mut Reader, o: &Obj<'_>, key: &str) -> Vec<regex::Regex> {
    let list = r.strings(o, key).unwrap_or_default();
    let mut out = Vec::new();
    for (i, text) in list.iter().enumerate() {
        match regex::Regex::new(text) {
            Ok(re) => out.push(re),
            Err(e) => r.problem(
                index(&o.key_path(key), i),
                format!("not a valid regex: {e}"),
            ),
        }
    }
    out
}

pub fn read_group_rules(
    r: &mut Reader,
    v: Option<&Value>,
    path: &str,
    kind: ConnectorKind,
) -> GroupRules {
    let o = r.obj(v, path, GROUPS);
    let claims = r
        .strings(&o, "claims")
        .unwrap_or_else(|| vec!["groups".into()]);
    let mut map = std::collections::BTreeMap::new();
    match o.get("map") {
        None => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                match v {
                    Value::String(name) => {
                        map.insert(k.clone(), name.clone());
                    }
                    _ => r.problem(
                        join(&o.key_path("map"), k),
                        "must be a group name (a string)",
                    ),
                }
            }
        }
        Some(_) => r.problem(
            o.key_path("map"),
            "must be a mapping of GUID or name to name",
        ),
    }
    let unmapped = match r.string(&o, "unmapped").as_deref() {
        None | Some("drop") => Unmapped::Drop,
        Some("keep") => Unmapped::Keep,
        Some(other) => {
            r.problem(
                o.key_path("unmapped"),
                format!("`{other}` is not drop or keep"),
            );
            Unmapped::Drop
        }
    };
    let _ = kind;
    let case = match r.string(&o, "case").as_deref() {
        None | Some("lower") => GroupCase::Lower,
        Some("preserve") => GroupCase::Preserve,
        Some(other) => {
            r.problem(
                o.key_path("case"),
                format!("`{other}` is not lower or preserve"),
            );
            GroupCase::Lower
        }
    };
    GroupRules {
        claims,
        map,
        unmapped,
        include: regexes(r, &o, "include"),
        exclude: regexes(r, &o, "exclude"),
        case,
        slugify: r.bool(&o, "slugify").unwrap_or(true),
        prefix: r.string(&o, "prefix").filter(|p| !p.is_empty()),
        prefix_separator: r
            .string(&o, "prefix_separator")
            .unwrap_or_else(|| ":".into()),
        required: r.bool(&o, "required").unwrap_or(false),
        trust_display_names: r.bool(&o, "trust_display_names").unwrap_or(false),
        shared_namespace: r.bool(&o, "shared_namespace").unwrap_or(false),
    }
}

/// The tenant id in a single-tenant Entra ID issuer (`…/{tenant}/v2.0`).
pub fn issuer_tenant(issuer: &str) -> Option<String> {
    let path = url::Url::parse(issuer)
        .ok()?
        .path()
        .trim_end_matches('/')
        .to_string();
    let mut parts = path.rsplit('/');
    let last = parts.next()?;
    let tenant = if last == "v2.0" { parts.next()? } else { last };
    let multi = ["common", "organizations", "consumers", "{tenantid}"].contains(&tenant);
    (!tenant.is_empty() && !multi).then(|| tenant.to_string())
}

/// `verified_email_domains`: a list of domains, or (azure) a mapping of domain to the
/// tenant id that owns it.
fn read_verified_domains(
    r: &mut Reader,
    o: &Obj<'_>,
    kind: ConnectorKind,
    issuer: Option<&str>,
) -> Vec<VerifiedDomain> {
    let path = o.key_path("verified_email_domains");
    let own_tenant = issuer.and_then(issuer_tenant);
    let mut out = Vec::new();
    match o.get("verified_email_domains") {
        None => {}
        Some(Value::Object(m)) => {
            if kind != ConnectorKind::Azure {
                r.problem(
                    &path,
                    "must be a list of domains (the domain: tenant form is for azure)",
                );
            }
            for (domain, tenant) in m {
                match tenant {
                    Value::String(t) if !t.is_empty() => out.push(VerifiedDomain {
                        domain: domain.to_lowercase(),
                        tenant: Some(t.clone()),
                    }),
                    _ => r.problem(
                        join(&path, domain),
                        "must be the tenant id owning the domain",
                    ),
                }
            }
        }
        Some(_) => {
            for (i, d) in r
                .strings(o, "verified_email_domains")
                .unwrap_or_default()
                .into_iter()
                .enumerate()
            {
                if kind == ConnectorKind::Azure && own_tenant.is_none() {
                    r.problem(
                        index(&path, i),
                        "a multi-tenant Entra ID connector must say which tenant owns each domain: write verified_email_domains as a mapping, domain: tenant id",
                    );
                }
                out.push(VerifiedDomain {
                    domain: d.to_lowercase(),
                    tenant: (kind == ConnectorKind::Azure)
                        .then(|| own_tenant.clone())
                        .flatten(),
                });
            }
        }
    }
    out
}

pub(super) fn read_connector(r: &mut Reader, v: &Value, path: &str) -> Option<ConnectorConfig> {
    let o = r.obj(Some(v), path, CONNECTOR);
    if !o.is_present() {
        return None;
    }
    let id = r.required_string(&o, "id");
    if let Some(id) = &id
        && (id == "local"
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        r.problem(
            o.key_path("id"),
            "must be letters, digits, `-` or `_` (and not `local`)",
        );
    }
    let kind = match r.required_string(&o, "type").as_deref() {
        Some("oidc") => ConnectorKind::Oidc,
        Some("okta") => ConnectorKind::Okta,
        Some("azure") => ConnectorKind::Azure,
        Some("mock") => ConnectorKind::Mock,
        Some("google") => ConnectorKind::Google,
        Some("github") => ConnectorKind::Github,
        Some("ldap") => ConnectorKind::Ldap,
        Some(t) => {
            r.problem(
                o.key_path("type"),
                format!("`{t}` is not one of oidc, okta, azure, google, github, ldap, mock"),
            );
            ConnectorKind::Oidc
        }
        None => ConnectorKind::Oidc,
    };
    if let Some(t) = r.string(&o, "type") {
        check_kind_keys(r, &o, kind, &t);
    }
    let tenant = r.string(&o, "tenant");
    let issuer = match (r.string(&o, "issuer"), kind, &tenant) {
        (_, ConnectorKind::Github, _) => Some(
            r.string(&o, "base_url")
                .unwrap_or_else(|| "https://github.com".into())
                .trim_end_matches('/')
                .to_string(),
        ),
        (_, ConnectorKind::Ldap, _) => r.string(&o, "url"),
        (None, ConnectorKind::Google, _) => Some("https://accounts.google.com".into()),
        (Some(i), _, _) => Some(i),
        (None, ConnectorKind::Azure, Some(t)) => {
            Some(format!("https://login.microsoftonline.com/{t}/v2.0"))
        }
        (None, ConnectorKind::Azure, None) => {
            r.problem(
                o.key_path("tenant"),
                "is required for azure (or give `issuer`)",
            );
            None
        }
        (None, _, _) => {
            r.problem(o.key_path("issuer"), "is required");
            None
        }
    };
    if let Some(i) = &issuer
        && url::Url::parse(i).is_err()
    {
        let key = if kind == ConnectorKind::Github {
            "base_url"
        } else {
            "issuer"
        };
        r.problem(o.key_path(key), format!("`{i}` is not an absolute URL"));
    }
    let method = r.string(&o, "token_endpoint_auth_method");
    let by_key = method.as_deref() == Some("private_key_jwt");
    let client_key = super::upstream_key::read_upstream_key(r, &o, kind, by_key);
    let (client_id, client_secret) = if kind == ConnectorKind::Ldap {
        (Some(String::new()), Some(SecretString::new("")))
    } else if by_key {
        if o.get("client_secret").is_some() {
            r.problem(
                o.key_path("client_secret"),
                "is not used with private_key_jwt: remove it",
            );
        }
        (
            r.required_string(&o, "client_id"),
            Some(SecretString::new("")),
        )
    } else {
        (
            r.required_string(&o, "client_id"),
            r.required_string(&o, "client_secret")
                .map(SecretString::new),
        )
    };
    let default_scopes: &[&str] = match kind {
        ConnectorKind::Okta => &["openid", "profile", "email", "groups", "offline_access"],
        ConnectorKind::Azure => &[
            "openid",
            "profile",
            "email",
            "offline_access",
            "https://graph.microsoft.com/GroupMember.Read.All",
        ],
        // Google refuses `groups` and `offline_access` (it takes `access_type=offline`).
        ConnectorKind::Google => &["openid", "profile", "email"],
        ConnectorKind::Github => &["read:user", "user:email", "read:org"],
        ConnectorKind::Ldap => &[],
        _ => &["openid", "profile", "email", "groups", "offline_access"],
    };
    let scopes = r
        .strings(&o, "scopes")
        .unwrap_or_else(|| default_scopes.iter().map(|s| s.to_string()).collect());
    let oidc = !matches!(kind, ConnectorKind::Github | ConnectorKind::Ldap);
    if oidc && !scopes.iter().any(|s| s == "openid") {
        r.problem(o.key_path("scopes"), "must include openid");
    }
    let auth = match method.as_deref() {
        None | Some("client_secret_basic") => AuthMethod::ClientSecretBasic,
        Some("client_secret_post") => AuthMethod::ClientSecretPost,
        Some("private_key_jwt") => AuthMethod::PrivateKeyJwt,
        Some(other) => {
            r.problem(
                o.key_path("token_endpoint_auth_method"),
                format!(
                    "`{other}` is not client_secret_basic, client_secret_post or private_key_jwt"
                ),
            );
            AuthMethod::ClientSecretBasic
        }
    };
    let groups = read_group_rules(r, o.get("groups"), &o.key_path("groups"), kind);
    let allowed_tenants = r.strings(&o, "allowed_tenants").unwrap_or_default();
    if kind == ConnectorKind::Azure
        && issuer.as_deref().is_some_and(|i| {
            ["/common/", "/organizations/", "/consumers/"]
                .iter()
                .any(|t| i.contains(t))
        })
        && allowed_tenants.is_empty()
    {
        r.problem(
            o.key_path("allowed_tenants"),
            "is required for a multi-tenant (common/organizations) Entra ID connector: list the tenant ids you accept",
        );
    }
    let verified_email_domains = read_verified_domains(r, &o, kind, issuer.as_deref());
    let claims = super::claims_section::read_mapped_claims(r, &o);
    let groups_api = read_groups_api(r, &o, kind, issuer.as_deref());
    let settings = match kind {
        ConnectorKind::Google => KindSettings::Google(read_google(r, &o)),
        ConnectorKind::Github => KindSettings::Github(read_github(
            r,
            &o,
            issuer.as_deref().unwrap_or("https://github.com"),
        )),
        ConnectorKind::Ldap => match read_ldap(r, &o) {
            Some(l) => KindSettings::Ldap(l),
            None => return None,
        },
        _ => KindSettings::None,
    };
    for (name, path) in &claims {
        let Some(graph) = path.strip_prefix("graph.") else {
            continue;
        };
        let field = graph.split('.').next().unwrap_or_default();
        if kind != ConnectorKind::Azure {
            r.problem(
                join(&o.key_path("claims"), name),
                "`graph.` paths read Microsoft Graph, which only an azure connector has",
            );
        } else if field.is_empty()
            || !field
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            r.problem(
                join(&o.key_path("claims"), name),
                format!("`{field}` is not a Graph user property name (letters, digits, _)"),
            );
        }
    }
    let id = id?;
    Some(ConnectorConfig {
        name: r.string(&o, "name").unwrap_or_else(|| id.clone()),
        id,
        kind,
        issuer: issuer?,
        client_id: client_id?,
        client_secret: client_secret?,
        client_key,
        scopes,
        email_domains: r
            .strings(&o, "email_domains")
            .unwrap_or_default()
            .into_iter()
            .map(|d| d.to_lowercase())
            .collect(),
        groups,
        get_userinfo: r.bool(&o, "get_userinfo").unwrap_or(false),
        token_endpoint_auth_method: auth,
        timeout: r.duration(&o, "timeout").unwrap_or(Seconds(10)),
        groups_max_staleness: r
            .duration(&o, "groups_max_staleness")
            .unwrap_or(Seconds::minutes(15)),
        link_by_email: r.bool(&o, "link_by_email").unwrap_or(false),
        allowed_tenants,
        graph_url: r
            .string(&o, "graph_url")
            .unwrap_or_else(|| "https://graph.microsoft.com".into())
            .trim_end_matches('/')
            .to_string(),
        verified_email_domains,
        claims,
        groups_api,
        roles_claims: r
            .strings(&o, "roles_claims")
            .unwrap_or_else(|| vec!["roles".into()]),
        settings,
    })
}
