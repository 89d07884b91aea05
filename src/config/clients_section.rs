//! The `clients` and `users` sections.

use serde_json::Value;

use super::checks::check_uri;
use super::claims_section::{read_access_token_claims, read_claim_values};
use super::parties::*;
use super::tree::{Reader, index};
use crate::secret::SecretString;

const CLIENT_TOKENS: &[&str] = &[
    "access_token",
    "id_token",
    "refresh_token_idle",
    "refresh_token_absolute",
];
const CLIENT: &[&str] = &[
    "id",
    "name",
    "secret",
    "secret_hash",
    "secrets",
    "redirect_uris",
    "post_logout_redirect_uris",
    "grant_types",
    "token_endpoint_auth_method",
    "scopes",
    "audience",
    "require_pkce",
    "skip_consent",
    "tokens",
    "allowed_connectors",
    "groups",
    "logout_revokes_session",
    "resource_server_for",
    "require_groups",
    "deny_groups",
    "claims",
    "access_token_claims",
    "access_token_claims_max",
    "resources",
    "token_exchange",
    "jwks",
    "jwks_uri",
    "token_endpoint_auth_signing_alg",
    "backchannel_logout_uri",
    "backchannel_logout_session_required",
];
const USER: &[&str] = &[
    "username",
    "password_hash",
    "password",
    "email",
    "email_verified",
    "name",
    "groups",
    "roles",
    "claims",
];

pub(super) fn read_client(r: &mut Reader, v: &Value, path: &str) -> Option<ClientConfig> {
    let o = r.obj(Some(v), path, CLIENT);
    if !o.is_present() {
        return None;
    }
    let id = r.required_string(&o, "id");
    let secret = r.string(&o, "secret").map(SecretString::new);
    let secret_hash = r.string(&o, "secret_hash");
    if let Some(h) = &secret_hash
        && !crate::secret::is_argon2id_phc(h)
    {
        r.problem(
            o.key_path("secret_hash"),
            "is not an argon2id PHC string; make one with `oidc-bridge hash-password`",
        );
    }
    if secret.is_some() && secret_hash.is_some() {
        r.problem(
            o.key_path("secret_hash"),
            "give `secret` or `secret_hash`, not both",
        );
    }
    let secrets = read_secrets(r, o.get("secrets"), &o.key_path("secrets"));
    if !secrets.is_empty() && (secret.is_some() || secret_hash.is_some()) {
        r.problem(
            o.key_path("secrets"),
            "give `secrets` or `secret` / `secret_hash`, not both",
        );
    }
    // A client is confidential when it has any.
    let secret = secret
        .or_else(|| (secret_hash.is_some() || !secrets.is_empty()).then(|| SecretString::new("")));
    if let Some(s) = &secret
        && s.expose().len() < 16
        && secret_hash.is_none()
        && secrets.is_empty()
    {
        r.problem(o.key_path("secret"), "must be at least 16 characters");
    }
    let redirect_uris = r.strings(&o, "redirect_uris").unwrap_or_default();
    for (i, u) in redirect_uris.iter().enumerate() {
        check_uri(r, index(&o.key_path("redirect_uris"), i), u);
    }
    let post_logout_redirect_uris = r
        .strings(&o, "post_logout_redirect_uris")
        .unwrap_or_default();
    for (i, u) in post_logout_redirect_uris.iter().enumerate() {
        check_uri(r, index(&o.key_path("post_logout_redirect_uris"), i), u);
    }
    let grant_types = match r.strings(&o, "grant_types") {
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(i, g)| {
                let parsed = GrantType::parse(g);
                if parsed.is_none() {
                    r.problem(
                        index(&o.key_path("grant_types"), i),
                        format!(
                            "`{g}` is not one of {}",
                            GrantType::ALL.map(GrantType::as_str).join(", ")
                        ),
                    );
                }
                parsed
            })
            .collect(),
        None => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
    };
    let token_endpoint_auth_method = r.string(&o, "token_endpoint_auth_method").and_then(|m| {
        let parsed = match m.as_str() {
            "client_secret_basic" => Some(AuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(AuthMethod::ClientSecretPost),
            "none" => Some(AuthMethod::None),
            "private_key_jwt" => Some(AuthMethod::PrivateKeyJwt),
            _ => None,
        };
        if parsed.is_none() {
            r.problem(
                o.key_path("token_endpoint_auth_method"),
                format!("`{m}` is not one of client_secret_basic, client_secret_post, private_key_jwt, none"),
            );
        }
        parsed
    });
    match (&secret, token_endpoint_auth_method) {
        (Some(_), Some(AuthMethod::None)) => r.problem(
            o.key_path("token_endpoint_auth_method"),
            "is `none` but the client has a secret",
        ),
        (None, Some(m)) if m != AuthMethod::None && m != AuthMethod::PrivateKeyJwt => r.problem(
            o.key_path("secret"),
            format!("is required for token_endpoint_auth_method {}", m.as_str()),
        ),
        _ => {}
    }
    let confidential =
        secret.is_some() || token_endpoint_auth_method == Some(AuthMethod::PrivateKeyJwt);
    for g in [GrantType::ClientCredentials, GrantType::TokenExchange] {
        if !confidential && grant_types.contains(&g) {
            r.problem(
                o.key_path("grant_types"),
                format!(
                    "{} needs a confidential client: add `secret` or private_key_jwt keys",
                    g.as_str()
                ),
            );
        }
    }
    if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        r.problem(
            o.key_path("redirect_uris"),
            "is required for the authorization_code grant",
        );
    }
    let require_pkce = r.bool(&o, "require_pkce").unwrap_or(true);
    if !require_pkce && !confidential {
        r.problem(
            o.key_path("require_pkce"),
            "may be false only for confidential clients (those with a secret)",
        );
    }
    let t = r.obj(o.get("tokens"), &o.key_path("tokens"), CLIENT_TOKENS);
    let tokens = ClientTokenLifetimes {
        access_token: r.duration(&t, "access_token"),
        id_token: r.duration(&t, "id_token"),
        refresh_token_idle: r.duration(&t, "refresh_token_idle"),
        refresh_token_absolute: r.duration(&t, "refresh_token_absolute"),
    };
    let agents = super::agents_section::read_agents(
        r,
        &o,
        &super::agents_section::ClientFacts {
            method: token_endpoint_auth_method,
            has_secret: secret.is_some(),
            grant_types: &grant_types,
        },
    );
    Some(ClientConfig {
        agents,
        id: id?,
        name: r.string(&o, "name"),
        secret,
        secret_hash,
        secrets,
        any_redirect_uri: false,
        redirect_uris,
        post_logout_redirect_uris,
        grant_types,
        token_endpoint_auth_method,
        scopes: r.strings(&o, "scopes"),
        audience: r.strings(&o, "audience").unwrap_or_default(),
        require_pkce,
        skip_consent: r.bool(&o, "skip_consent").unwrap_or(false),
        tokens,
        allowed_connectors: r.strings(&o, "allowed_connectors").unwrap_or_default(),
        groups: read_client_groups(r, o.get("groups"), &o.key_path("groups")),
        logout_revokes_session: r.bool(&o, "logout_revokes_session").unwrap_or(true),
        resource_server_for: r.strings(&o, "resource_server_for").unwrap_or_default(),
        require_groups: r.strings(&o, "require_groups").unwrap_or_default(),
        deny_groups: r.strings(&o, "deny_groups").unwrap_or_default(),
        claims: read_claim_values(r, &o),
        access_token_claims: read_access_token_claims(r, &o),
        access_token_claims_max: match r.u64(&o, "access_token_claims_max") {
            Some(0) => {
                r.problem(o.key_path("access_token_claims_max"), "must be at least 1");
                ACCESS_TOKEN_CLAIMS_MAX
            }
            Some(n) => n as usize,
            None => ACCESS_TOKEN_CLAIMS_MAX,
        },
    })
}

/// At most this many secrets per client: each argon2id one costs a verification when a
/// wrong secret is presented.
pub const MAX_SECRETS: usize = 5;
const SECRET: &[&str] = &["id", "hash", "secret", "expires"];

fn read_secrets(r: &mut Reader, v: Option<&Value>, path: &str) -> Vec<ConfigSecret> {
    let items = r.list(v, path);
    if items.len() > MAX_SECRETS {
        r.problem(path, format!("holds at most {MAX_SECRETS} secrets"));
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = index(path, i);
        let o = r.obj(Some(item), &at, SECRET);
        let hash = r.string(&o, "hash");
        let secret = r.string(&o, "secret").map(SecretString::new);
        match (&hash, &secret) {
            (Some(h), None) if !crate::secret::is_argon2id_phc(h) => r.problem(
                o.key_path("hash"),
                "is not an argon2id PHC string; make one with `oidc-bridge hash-password`",
            ),
            (None, Some(s)) if s.expose().len() < 16 => {
                r.problem(o.key_path("secret"), "must be at least 16 characters")
            }
            (Some(_), Some(_)) => r.problem(&at, "give `hash` or `secret`, not both"),
            (None, None) => r.problem(o.key_path("hash"), "is required (or `secret`)"),
            _ => {}
        }
        let expires = r.string(&o, "expires").and_then(|t| {
            let parsed =
                time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339);
            if parsed.is_err() {
                r.problem(
                    o.key_path("expires"),
                    format!("`{t}` is not an RFC 3339 time such as 2027-01-01T00:00:00Z"),
                );
            }
            parsed.ok().map(|t| t.unix_timestamp())
        });
        out.push(ConfigSecret {
            id: r.string(&o, "id"),
            hash,
            secret,
            expires,
        });
    }
    out
}

pub(super) fn read_user(r: &mut Reader, v: &Value, path: &str) -> Option<UserConfig> {
    let o = r.obj(Some(v), path, USER);
    if !o.is_present() {
        return None;
    }
    let username = r.required_string(&o, "username");
    if let Some(u) = &username
        && (u.len() > 255 || !u.bytes().all(|b| (0x21..=0x7e).contains(&b)))
    {
        r.problem(
            o.key_path("username"),
            "must be at most 255 printable ASCII characters without spaces: it becomes the ID token `sub`",
        );
    }
    let password_hash = r.string(&o, "password_hash");
    if let Some(h) = &password_hash
        && !crate::secret::is_argon2id_phc(h)
    {
        r.problem(
            o.key_path("password_hash"),
            "is not an argon2id PHC string; make one with `oidc-bridge hash-password`",
        );
    }
    let password = r.string(&o, "password").map(SecretString::new);
    if password_hash.is_none() && password.is_none() {
        r.problem(
            o.key_path("password_hash"),
            "is required (or `password`, for development only)",
        );
    }
    Some(UserConfig {
        username: username?,
        password_hash,
        password,
        email: r.string(&o, "email"),
        email_verified: r.bool(&o, "email_verified").unwrap_or(true),
        name: r.string(&o, "name"),
        groups: r.strings(&o, "groups").unwrap_or_default(),
        roles: r.strings(&o, "roles").unwrap_or_default(),
        claims: read_claim_values(r, &o),
    })
}

fn read_client_groups(r: &mut Reader, v: Option<&Value>, path: &str) -> ClientGroups {
    let o = r.obj(v, path, &["include", "max", "always"]);
    let include = r.strings(&o, "include").unwrap_or_default();
    for (i, re) in include.iter().enumerate() {
        if let Err(e) = regex::Regex::new(re) {
            r.problem(
                index(&o.key_path("include"), i),
                format!("not a valid regex: {e}"),
            );
        }
    }
    ClientGroups {
        include,
        max: r.u64(&o, "max").unwrap_or(0) as usize,
        always: r.bool(&o, "always").unwrap_or(false),
    }
}
