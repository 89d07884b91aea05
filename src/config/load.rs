//! YAML text to [`Config`]: parse, expand `${ENV}`, read the typed tree, validate.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

use serde_json::Value;

use super::connectors::{read_client_groups, read_connector};
use super::mock_section::read_mock;
use super::tree::{Obj, Problem, Problems, Reader, index, join};
use super::*;

const TOP: &[&str] = &[
    "issuer",
    "listen",
    "server",
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
    "logout_revokes_session",
    "resource_server_for",
];
const SERVER: &[&str] = &[
    "trusted_proxies",
    "forwarded_header",
    "max_connections_per_address",
    "max_connections",
    "header_read_timeout",
    "request_timeout",
    "pending_requests_per_minute",
];
const DATABASE: &[&str] = &["url", "acquire_timeout", "max_connections"];
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
    let (database, database_pool) = read_database(r, top.get("database"));
    let server = read_server(r, top.get("server"));
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

    let mut warnings = Vec::new();
    super::connectors::check_connectors(r, &mut warnings, &connectors);
    for (i, c) in clients.iter().enumerate() {
        let path = join(&index("clients", i), "id");
        if names.contains(&c.id) {
            r.problem(
                path,
                format!(
                    "`{}` is also a username: a client's own tokens (client_credentials) would have that user's `sub`",
                    c.id
                ),
            );
        } else if c.id.len() == 43
            && c.id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            r.problem(
                path,
                "43 base64url characters is the shape of a federated user's `sub`; choose another client id",
            );
        }
        for (j, other) in c.resource_server_for.iter().enumerate() {
            if other != "*" && !ids.contains(other) {
                r.problem(
                    index(&join(&index("clients", i), "resource_server_for"), j),
                    format!("no client has id `{other}` (use a client id or `*`)"),
                );
            }
        }
    }

    Config {
        issuer,
        listen,
        database,
        database_pool,
        server,
        signing,
        tokens,
        clients,
        users,
        connectors,
        mock: read_mock(r, top.get("mock")),
        source: None,
        warnings,
    }
}

/// `database`: a URL, or a mapping with `url`, `acquire_timeout` and `max_connections`.
fn read_database(r: &mut Reader, v: Option<&Value>) -> (DatabaseUrl, DatabasePool) {
    let default_url = || DatabaseUrl::new("sqlite://oidc-bridge.db");
    match v {
        None | Some(Value::Null) => (default_url(), DatabasePool::default()),
        Some(Value::String(s)) => {
            check_database(r, "database", s);
            (DatabaseUrl::new(s.clone()), DatabasePool::default())
        }
        Some(v) => {
            let o = r.obj(Some(v), "database", DATABASE);
            let url = match r.string(&o, "url") {
                Some(s) => {
                    check_database(r, "database.url", &s);
                    DatabaseUrl::new(s)
                }
                None => default_url(),
            };
            let acquire_timeout = match r.duration(&o, "acquire_timeout") {
                Some(d) if d.get() < 1 => {
                    r.problem("database.acquire_timeout", "must be at least 1s");
                    Seconds(2)
                }
                Some(d) => d,
                None => Seconds(2),
            };
            let max_connections = r.u64(&o, "max_connections").map(|n| {
                if !(1..=1000).contains(&n) {
                    r.problem("database.max_connections", "must be between 1 and 1000");
                }
                n.clamp(1, 1000) as u32
            });
            (
                url,
                DatabasePool {
                    acquire_timeout,
                    max_connections,
                },
            )
        }
    }
}

fn read_server(r: &mut Reader, v: Option<&Value>) -> ServerConfig {
    let o = r.obj(v, "server", SERVER);
    let d = ServerConfig::default();
    let mut trusted_proxies = Vec::new();
    for (i, text) in r
        .strings(&o, "trusted_proxies")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let parsed = text
            .parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            Ok(net) => trusted_proxies.push(net.trunc()),
            Err(_) => r.problem(
                index("server.trusted_proxies", i),
                format!("`{text}` is not an IP address or CIDR block such as 10.0.0.0/8"),
            ),
        }
    }
    let max_connections = match r.u64(&o, "max_connections") {
        Some(0) => {
            r.problem("server.max_connections", "must be at least 1");
            d.max_connections
        }
        Some(n) => n.min(1_000_000) as usize,
        None => d.max_connections,
    };
    let forwarded_header = match r.string(&o, "forwarded_header").as_deref() {
        None | Some("x-forwarded-for") => ForwardedHeader::XForwardedFor,
        Some("forwarded") => ForwardedHeader::Forwarded,
        Some(other) => {
            r.problem(
                "server.forwarded_header",
                format!("`{other}` is not x-forwarded-for or forwarded"),
            );
            ForwardedHeader::XForwardedFor
        }
    };
    let max_connections_per_address = match r.u64(&o, "max_connections_per_address") {
        Some(0) => {
            r.problem("server.max_connections_per_address", "must be at least 1");
            d.max_connections_per_address
        }
        Some(n) => n.min(1_000_000) as usize,
        None => d.max_connections_per_address,
    };
    ServerConfig {
        trusted_proxies,
        forwarded_header,
        max_connections_per_address,
        max_connections,
        header_read_timeout: positive(r, &o, "header_read_timeout", d.header_read_timeout),
        request_timeout: positive(r, &o, "request_timeout", d.request_timeout),
        pending_requests_per_minute: match r.u64(&o, "pending_requests_per_minute") {
            Some(0) => {
                r.problem("server.pending_requests_per_minute", "must be at least 1");
                d.pending_requests_per_minute
            }
            Some(n) => n.min(1_000_000) as u32,
            None => d.pending_requests_per_minute,
        },
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn fallback_config() -> Config {
    Config {
        issuer: "http://127.0.0.1:8080".into(),
        listen: default_listen(),
        database: DatabaseUrl::new("sqlite://oidc-bridge.db"),
        database_pool: DatabasePool::default(),
        server: ServerConfig::default(),
        signing: read_signing(&mut Reader::default(), None),
        tokens: read_tokens(&mut Reader::default(), None),
        clients: Vec::new(),
        users: Vec::new(),
        connectors: Vec::new(),
        mock: MockConfig::default(),
        source: None,
        warnings: Vec::new(),
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

fn check_database(r: &mut Reader, path: &str, s: &str) {
    let ok =
        s.starts_with("sqlite:") || s.starts_with("postgres://") || s.starts_with("postgresql://");
    if !ok {
        r.problem(
            path,
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
        logout_revokes_session: r.bool(&o, "logout_revokes_session").unwrap_or(true),
        resource_server_for: r.strings(&o, "resource_server_for").unwrap_or_default(),
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
