//! YAML text to [`Config`]: parse, expand `${ENV}`, read the typed tree, validate.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

use serde_json::Value;

use super::tree::{Obj, Problem, Problems, Reader, index, join};
use super::*;

const TOP: &[&str] = &[
    "issuer",
    "listen",
    "database",
    "signing",
    "tokens",
    "clients",
    "users",
    "connectors",
    "mock",
];
const SIGNING: &[&str] = &[
    "algorithm",
    "rotation_period",
    "publish_ahead",
    "encryption_key",
];
const TOKENS: &[&str] = &[
    "access_token",
    "id_token",
    "authorization_code",
    "refresh_token_idle",
    "refresh_token_absolute",
    "refresh_reuse_grace",
    "session",
];
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
];
const USER: &[&str] = &[
    "username",
    "password_hash",
    "password",
    "email",
    "email_verified",
    "name",
    "groups",
];

/// Reads and validates a config file, expanding `${VAR}` from the process environment.
pub fn load_file(path: &Path) -> Result<Config, Problems> {
    load_file_with_env(path, &|k| std::env::var(k).ok())
}

pub fn load_file_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Problems> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Problems(vec![Problem {
            path: String::new(),
            message: format!("cannot read {}: {e}", path.display()),
        }])
    })?;
    let mut config = from_yaml_str(&text, env)?;
    config.source = Some(path.to_path_buf());
    Ok(config)
}

/// Parses YAML text into a validated [`Config`], or every problem found.
pub fn from_yaml_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Problems> {
    let mut root: Value = if text.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        serde_norway::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
                .unwrap_or_default();
            Problems(vec![Problem {
                path: String::new(),
                message: format!("not valid YAML{at}: {e}"),
            }])
        })?
    };
    let mut r = Reader::default();
    super::tree::expand_env(&mut root, "", env, &mut r);
    let config = read_config(&mut r, &root);
    if r.problems.is_empty() {
        Ok(config)
    } else {
        Err(Problems(r.problems))
    }
}

fn read_config(r: &mut Reader, root: &Value) -> Config {
    let top = r.obj(Some(root), "", TOP);
    if !matches!(root, Value::Object(_) | Value::Null) {
        return fallback_config();
    }

    let listen = match r.string(&top, "listen") {
        Some(s) => s.parse::<SocketAddr>().unwrap_or_else(|_| {
            r.problem(
                "listen",
                format!("`{s}` is not an address such as 127.0.0.1:8080"),
            );
            default_listen()
        }),
        None => default_listen(),
    };
    let issuer = match r.string(&top, "issuer") {
        Some(s) => {
            check_issuer(r, &s);
            s
        }
        None => format!("http://{listen}"),
    };
    let database = match r.string(&top, "database") {
        Some(s) => {
            check_database(r, &s);
            DatabaseUrl::new(s)
        }
        None => DatabaseUrl::new("sqlite://oidc-bridge.db"),
    };
    let signing = read_signing(r, top.get("signing"));
    if database.kind() == DatabaseKind::Postgres && signing.encryption_key.is_none() {
        r.problem(
            "signing.encryption_key",
            "is required with PostgreSQL: every node must decrypt the same signing keys \
             (32 random bytes, base64; e.g. `openssl rand -base64 32`)",
        );
    }
    let tokens = read_tokens(r, top.get("tokens"));

    let mut clients = Vec::new();
    let mut ids = HashSet::new();
    for (i, v) in r.list(top.get("clients"), "clients").iter().enumerate() {
        let path = index("clients", i);
        if let Some(c) = read_client(r, v, &path) {
            if !ids.insert(c.id.clone()) {
                r.problem(join(&path, "id"), format!("duplicate client id `{}`", c.id));
            }
            clients.push(c);
        }
    }

    let mut users = Vec::new();
    let mut names = HashSet::new();
    for (i, v) in r.list(top.get("users"), "users").iter().enumerate() {
        let path = index("users", i);
        if let Some(u) = read_user(r, v, &path) {
            if !names.insert(u.username.clone()) {
                r.problem(
                    join(&path, "username"),
                    format!("duplicate username `{}`", u.username),
                );
            }
            users.push(u);
        }
    }

    let mut connectors = Vec::new();
    let mut connector_ids = HashSet::new();
    for (i, v) in r
        .list(top.get("connectors"), "connectors")
        .iter()
        .enumerate()
    {
        let path = index("connectors", i);
        if let Some(c) = read_connector(r, v, &path) {
            if !connector_ids.insert(c.id.clone()) {
                r.problem(
                    join(&path, "id"),
                    format!("duplicate connector id `{}`", c.id),
                );
            }
            connectors.push(c);
        }
    }
    for (i, c) in clients.iter().enumerate() {
        for (j, id) in c.allowed_connectors.iter().enumerate() {
            if id != "local" && !connector_ids.contains(id) {
                r.problem(
                    index(&join(&index("clients", i), "allowed_connectors"), j),
                    format!("no connector has id `{id}` (use a connector id or `local`)"),
                );
            }
        }
    }

    Config {
        issuer,
        listen,
        database,
        signing,
        tokens,
        clients,
        users,
        connectors,
        mock: read_mock(r, top.get("mock")),
        source: None,
    }
}

const MOCK: &[&str] = &[
    "control_api",
    "admin_token",
    "auto_login",
    "users",
    "issuers",
];
const MOCK_ISSUER: &[&str] = &["id", "persona", "path", "tenant", "overage_limit", "users"];
const MOCK_USER: &[&str] = &["username", "name", "email", "groups", "roles", "claims"];

fn read_mock(r: &mut Reader, v: Option<&Value>) -> MockConfig {
    let o = r.obj(v, "mock", MOCK);
    let control_api = r.bool(&o, "control_api").unwrap_or(false);
    let admin_token = r.string(&o, "admin_token").map(SecretString::new);
    if control_api && admin_token.as_ref().is_none_or(|t| t.expose().len() < 16) {
        r.problem(
            "mock.admin_token",
            "is required (at least 16 characters) when mock.control_api is true",
        );
    }
    let mut issuers = Vec::new();
    let mut seen = HashSet::new();
    for (i, item) in r.list(o.get("issuers"), "mock.issuers").iter().enumerate() {
        let path = index("mock.issuers", i);
        let io = r.obj(Some(item), &path, MOCK_ISSUER);
        let Some(id) = r.required_string(&io, "id") else {
            continue;
        };
        if !seen.insert(id.clone()) {
            r.problem(io.key_path("id"), format!("duplicate issuer id `{id}`"));
        }
        let persona = match r.string(&io, "persona").as_deref() {
            None | Some("plain") => PersonaKind::Plain,
            Some("okta") => PersonaKind::Okta,
            Some("azure") => PersonaKind::Azure,
            Some(other) => {
                r.problem(
                    io.key_path("persona"),
                    format!("`{other}` is not one of plain, okta, azure"),
                );
                PersonaKind::Plain
            }
        };
        let mount = r.string(&io, "path").unwrap_or_else(|| format!("/{id}"));
        if !mount.starts_with('/') || mount.ends_with('/') || mount.contains("//") {
            r.problem(
                io.key_path("path"),
                "must start with `/` and not end with one",
            );
        }
        let users = read_mock_users(r, io.get("users"), &io.key_path("users"));
        issuers.push(MockIssuerConfig {
            id,
            persona,
            path: mount,
            tenant: r.string(&io, "tenant"),
            overage_limit: r.u64(&io, "overage_limit").unwrap_or(200) as usize,
            users,
        });
    }
    MockConfig {
        control_api,
        admin_token,
        auto_login: r.bool(&o, "auto_login").unwrap_or(true),
        users: read_mock_users(r, o.get("users"), "mock.users"),
        issuers,
    }
}

fn read_mock_users(r: &mut Reader, v: Option<&Value>, path: &str) -> Vec<MockUserConfig> {
    let mut users = Vec::new();
    for (j, u) in r.list(v, path).iter().enumerate() {
        let upath = index(path, j);
        let uo = r.obj(Some(u), &upath, MOCK_USER);
        let Some(username) = r.required_string(&uo, "username") else {
            continue;
        };
        let claims = match uo.get("claims") {
            None => Default::default(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                r.problem(
                    uo.key_path("claims"),
                    "must be a mapping of claim names to values",
                );
                Default::default()
            }
        };
        users.push(MockUserConfig {
            username,
            name: r.string(&uo, "name"),
            email: r.string(&uo, "email"),
            groups: r.strings(&uo, "groups").unwrap_or_default(),
            roles: r.strings(&uo, "roles").unwrap_or_default(),
            claims,
        });
    }
    users
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn fallback_config() -> Config {
    Config {
        issuer: "http://127.0.0.1:8080".into(),
        listen: default_listen(),
        database: DatabaseUrl::new("sqlite://oidc-bridge.db"),
        signing: read_signing(&mut Reader::default(), None),
        tokens: read_tokens(&mut Reader::default(), None),
        clients: Vec::new(),
        users: Vec::new(),
        connectors: Vec::new(),
        mock: MockConfig::default(),
        source: None,
    }
}

/// True for hosts that never leave the machine, where plain `http` is acceptable.
pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check_issuer(r: &mut Reader, s: &str) {
    let Ok(url) = url::Url::parse(s) else {
        r.problem("issuer", format!("`{s}` is not an absolute URL"));
        return;
    };
    if url.query().is_some() || url.fragment().is_some() {
        r.problem(
            "issuer",
            "must not have a query or fragment (OIDC Discovery §3)",
        );
    }
    if s.ends_with('/') {
        r.problem(
            "issuer",
            "must not end with `/`: it is used as `iss` byte for byte",
        );
    }
    match url.scheme() {
        "https" => {}
        "http" if url.host_str().is_some_and(is_loopback_host) => {}
        "http" => r.problem(
            "issuer",
            "must use https; plain http is allowed only for 127.0.0.1, ::1 and localhost",
        ),
        other => r.problem("issuer", format!("scheme `{other}` is not http or https")),
    }
}

fn check_database(r: &mut Reader, s: &str) {
    let ok =
        s.starts_with("sqlite:") || s.starts_with("postgres://") || s.starts_with("postgresql://");
    if !ok {
        r.problem(
            "database",
            "must be sqlite://FILE, sqlite::memory: or postgres://USER:PASS@HOST/DB",
        );
    }
}

fn read_signing(r: &mut Reader, v: Option<&Value>) -> SigningConfig {
    let o = r.obj(v, "signing", SIGNING);
    let algorithm = match r.string(&o, "algorithm") {
        Some(s) => SigningAlgorithm::parse(&s).unwrap_or_else(|| {
            r.problem(
                "signing.algorithm",
                format!("`{s}` is not one of RS256, PS256, ES256, EdDSA"),
            );
            SigningAlgorithm::RS256
        }),
        None => SigningAlgorithm::RS256,
    };
    let rotation_period = r
        .duration(&o, "rotation_period")
        .unwrap_or(Seconds::days(30));
    let publish_ahead = r.duration(&o, "publish_ahead").unwrap_or(Seconds::hours(1));
    if rotation_period.get() < 3600 {
        r.problem("signing.rotation_period", "must be at least 1h");
    } else if publish_ahead >= rotation_period {
        r.problem(
            "signing.publish_ahead",
            format!("must be shorter than signing.rotation_period ({rotation_period})"),
        );
    }
    let encryption_key = r.string(&o, "encryption_key").and_then(|s| {
        let key = EncryptionKey::parse(&s);
        if key.is_none() {
            r.problem(
                "signing.encryption_key",
                "must be 32 bytes written as base64 or hex (e.g. `openssl rand -base64 32`)",
            );
        }
        key
    });
    SigningConfig {
        algorithm,
        rotation_period,
        publish_ahead,
        encryption_key,
    }
}

fn positive(r: &mut Reader, o: &Obj<'_>, key: &str, default: Seconds) -> Seconds {
    match r.duration(o, key) {
        Some(d) if d.get() <= 0 => {
            r.problem(o.key_path(key), "must be longer than 0s");
            default
        }
        Some(d) => d,
        None => default,
    }
}

fn read_tokens(r: &mut Reader, v: Option<&Value>) -> TokenLifetimes {
    let o = r.obj(v, "tokens", TOKENS);
    let t = TokenLifetimes {
        access_token: positive(r, &o, "access_token", Seconds::hours(1)),
        id_token: positive(r, &o, "id_token", Seconds::hours(1)),
        authorization_code: positive(r, &o, "authorization_code", Seconds(60)),
        refresh_token_idle: positive(r, &o, "refresh_token_idle", Seconds::days(7)),
        refresh_token_absolute: positive(r, &o, "refresh_token_absolute", Seconds::days(30)),
        refresh_reuse_grace: r.duration(&o, "refresh_reuse_grace").unwrap_or(Seconds(5)),
        session: positive(r, &o, "session", Seconds::hours(12)),
    };
    if t.refresh_token_idle > t.refresh_token_absolute {
        r.problem(
            "tokens.refresh_token_idle",
            "must not be longer than tokens.refresh_token_absolute",
        );
    }
    t
}

fn check_uri(r: &mut Reader, path: String, uri: &str) {
    match url::Url::parse(uri) {
        Ok(u) if u.fragment().is_some() => {
            r.problem(path, "must not contain a fragment (RFC 6749 §3.1.2)")
        }
        Ok(u) if u.scheme() == "http" && !u.host_str().is_some_and(is_loopback_host) => {
            r.problem(path, "uses plain http on a non-loopback host; use https")
        }
        Ok(_) => {}
        Err(_) => r.problem(path, format!("`{uri}` is not an absolute URI")),
    }
}

fn read_client(r: &mut Reader, v: &Value, path: &str) -> Option<ClientConfig> {
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
    // A client is confidential when it has either.
    let secret = secret.or_else(|| secret_hash.as_ref().map(|_| SecretString::new("")));
    if let Some(s) = &secret
        && s.expose().len() < 16
        && secret_hash.is_none()
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
                            "`{g}` is not one of authorization_code, refresh_token, client_credentials"
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
            _ => None,
        };
        if parsed.is_none() {
            r.problem(
                o.key_path("token_endpoint_auth_method"),
                format!("`{m}` is not one of client_secret_basic, client_secret_post, none"),
            );
        }
        parsed
    });
    match (&secret, token_endpoint_auth_method) {
        (Some(_), Some(AuthMethod::None)) => r.problem(
            o.key_path("token_endpoint_auth_method"),
            "is `none` but the client has a secret",
        ),
        (None, Some(m)) if m != AuthMethod::None => r.problem(
            o.key_path("secret"),
            format!("is required for token_endpoint_auth_method {}", m.as_str()),
        ),
        _ => {}
    }
    if secret.is_none() && grant_types.contains(&GrantType::ClientCredentials) {
        r.problem(
            o.key_path("grant_types"),
            "client_credentials needs a confidential client: add `secret`",
        );
    }
    if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        r.problem(
            o.key_path("redirect_uris"),
            "is required for the authorization_code grant",
        );
    }
    let require_pkce = r.bool(&o, "require_pkce").unwrap_or(true);
    if !require_pkce && secret.is_none() {
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
    Some(ClientConfig {
        id: id?,
        name: r.string(&o, "name"),
        secret,
        secret_hash,
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

const CONNECTOR: &[&str] = &[
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
    }
}

fn read_connector(r: &mut Reader, v: &Value, path: &str) -> Option<ConnectorConfig> {
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
        Some(t) => {
            r.problem(
                o.key_path("type"),
                format!("`{t}` is not one of oidc, okta, azure, mock"),
            );
            ConnectorKind::Oidc
        }
        None => ConnectorKind::Oidc,
    };
    let tenant = r.string(&o, "tenant");
    let issuer = match (r.string(&o, "issuer"), kind, &tenant) {
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
        r.problem(
            o.key_path("issuer"),
            format!("`{i}` is not an absolute URL"),
        );
    }
    let client_id = r.required_string(&o, "client_id");
    let client_secret = r
        .required_string(&o, "client_secret")
        .map(SecretString::new);
    let default_scopes: &[&str] = match kind {
        ConnectorKind::Okta => &["openid", "profile", "email", "groups", "offline_access"],
        ConnectorKind::Azure => &[
            "openid",
            "profile",
            "email",
            "offline_access",
            "https://graph.microsoft.com/GroupMember.Read.All",
        ],
        _ => &["openid", "profile", "email", "groups", "offline_access"],
    };
    let scopes = r
        .strings(&o, "scopes")
        .unwrap_or_else(|| default_scopes.iter().map(|s| s.to_string()).collect());
    if !scopes.iter().any(|s| s == "openid") {
        r.problem(o.key_path("scopes"), "must include openid");
    }
    let auth = match r.string(&o, "token_endpoint_auth_method").as_deref() {
        None | Some("client_secret_basic") => AuthMethod::ClientSecretBasic,
        Some("client_secret_post") => AuthMethod::ClientSecretPost,
        Some(other) => {
            r.problem(
                o.key_path("token_endpoint_auth_method"),
                format!("`{other}` is not client_secret_basic or client_secret_post"),
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
    let id = id?;
    Some(ConnectorConfig {
        name: r.string(&o, "name").unwrap_or_else(|| id.clone()),
        id,
        kind,
        issuer: issuer?,
        client_id: client_id?,
        client_secret: client_secret?,
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
        verified_email_domains: r
            .strings(&o, "verified_email_domains")
            .unwrap_or_default()
            .into_iter()
            .map(|d| d.to_lowercase())
            .collect(),
    })
}

fn read_user(r: &mut Reader, v: &Value, path: &str) -> Option<UserConfig> {
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn empty_config_gives_documented_defaults() {
        let c = from_yaml_str("", &no_env).expect("valid");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database.expose(), "sqlite://oidc-bridge.db");
        assert_eq!(c.issuer, "http://127.0.0.1:8080");
        assert_eq!(c.signing.algorithm, SigningAlgorithm::RS256);
        assert_eq!(c.signing.rotation_period, Seconds::days(30));
        assert_eq!(c.signing.publish_ahead, Seconds::hours(1));
    }

    #[test]
    fn three_mistakes_are_all_reported_with_key_paths() {
        let yaml = "
issuer: https://id.example.com/
signing:
  rotation_period: 30 days
clients:
  - id: web
    secret: a-long-enough-secret
    redirect_uris: [https://app.example.com/cb]
    grant_types: [authorization_code, password]
";
        let err = from_yaml_str(yaml, &no_env).expect_err("invalid");
        let paths: Vec<&str> = err.0.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "issuer",
                "signing.rotation_period",
                "clients[0].grant_types[1]"
            ],
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_named() {
        let yaml =
            "listen: nowhere\ntokenz: {}\nusers:\n  - username: bob\n    password_hash: plain\n";
        let err = from_yaml_str(yaml, &no_env).expect_err("invalid");
        let text = err.to_string();
        assert!(text.contains("listen: `nowhere`"), "{text}");
        assert!(text.contains("tokenz: unknown key"), "{text}");
        assert!(
            text.contains("users[0].password_hash: is not an argon2id"),
            "{text}"
        );
    }

    #[test]
    fn env_values_are_expanded() {
        let env = |k: &str| (k == "SECRET").then(|| "from-the-environment".to_string());
        let yaml =
            "clients:\n  - id: svc\n    secret: ${SECRET}\n    grant_types: [client_credentials]\n";
        let c = from_yaml_str(yaml, &env).expect("valid");
        assert_eq!(
            c.clients[0].secret.as_ref().map(|s| s.expose()),
            Some("from-the-environment")
        );
    }

    #[test]
    fn postgres_requires_an_encryption_key() {
        let err =
            from_yaml_str("database: postgres://u:p@localhost/db\n", &no_env).expect_err("invalid");
        assert_eq!(err.0[0].path, "signing.encryption_key");
    }

    #[test]
    fn database_url_debug_hides_password() {
        let dbg = format!("{:?}", DatabaseUrl::new("postgres://user:hunter2@host/db"));
        assert!(!dbg.contains("hunter2"), "{dbg}");
    }
}
