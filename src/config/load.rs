//! YAML text to [`Config`]: parse, expand `${ENV}`, read the typed tree, validate.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

use serde_json::Value;

use super::checks::{is_loopback_host, positive};
use super::clients_section::{read_client, read_user};
use super::connector_kinds::ConnectorKind;
use super::connectors::read_connector;
use super::duration::Seconds;
use super::mock_section::read_mock;
use super::ops_section::{read_admin, read_audit};
use super::parties::*;
use super::server_section::{read_database, read_server};
use super::settings::*;
use super::tree::{Problem, Problems, Reader, index, join};

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
    "audit",
    "admin",
    "groups",
    "scopes",
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
    "device_code",
    "device_poll_interval",
];

impl Config {
    /// The built-in defaults, as if the file were empty.
    pub fn defaults() -> Self {
        #[allow(clippy::expect_used)] // an empty document always loads
        from_yaml_str("{}", &|_| None).expect("empty config is valid")
    }
}

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
        let exchanged = c.agents.token_exchange.iter().flat_map(|t| &t.connectors);
        for (j, id) in exchanged.enumerate() {
            if !connector_ids.contains(id) {
                r.problem(
                    index(&join(&index("clients", i), "token_exchange.connectors"), j),
                    format!("no connector has id `{id}`"),
                );
            }
        }
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
    super::connector_checks::check_connectors(r, &mut warnings, &connectors);
    let local_groups =
        super::connectors::read_group_rules(r, top.get("groups"), "groups", ConnectorKind::Oidc);
    super::claims_section::local_group_warnings(top.get("groups"), &mut warnings);
    let scopes = super::claims_section::read_scopes(r, top.get("scopes"));
    super::claims_section::check_claims(
        r,
        &mut warnings,
        (&scopes, &clients, &users, &connectors),
        &local_groups,
    );
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
        groups: local_groups,
        scopes,
        mock: read_mock(r, top.get("mock")),
        audit: read_audit(r, top.get("audit")),
        admin: read_admin(r, top.get("admin")),
        source: None,
        warnings,
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
        groups: super::connectors::read_group_rules(
            &mut Reader::default(),
            None,
            "groups",
            ConnectorKind::Oidc,
        ),
        scopes: CustomScopes::new(),
        mock: MockConfig::default(),
        audit: AuditConfig::default(),
        admin: AdminConfig::default(),
        source: None,
        warnings: Vec::new(),
    }
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
        device_code: positive(r, &o, "device_code", Seconds(600)),
        device_poll_interval: positive(r, &o, "device_poll_interval", Seconds(5)),
    };
    if t.refresh_token_idle > t.refresh_token_absolute {
        r.problem(
            "tokens.refresh_token_idle",
            "must not be longer than tokens.refresh_token_absolute",
        );
    }
    t
}

/// One client as the admin API receives it (the keys of a `clients:` entry, as JSON),
/// checked as the config file's are; problems carry key paths such as `redirect_uris[0]`.
pub fn client_from_json(v: &Value) -> Result<ClientConfig, Problems> {
    let mut r = Reader::default();
    let client = read_client(&mut r, v, "");
    match client {
        Some(c) if r.problems.is_empty() => Ok(c),
        _ if !r.problems.is_empty() => Err(Problems(r.problems)),
        _ => Err(Problems(vec![Problem {
            path: String::new(),
            message: "must be a mapping with the keys of a `clients:` entry".into(),
        }])),
    }
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
