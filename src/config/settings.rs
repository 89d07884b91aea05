//! The provider's own settings: where it listens, its database, signing and token
//! lifetimes, and the top-level [`Config`].

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::duration::Seconds;
use super::parties::*;
use super::tree::Problem;
use crate::secret::SecretString;

/// Scope name → the claims it releases (the top-level `scopes:`).
pub type CustomScopes = std::collections::BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone)]
pub struct Config {
    /// The exact string used as `iss`; no trailing slash.
    pub issuer: String,
    pub listen: SocketAddr,
    pub database: DatabaseUrl,
    /// `database.acquire_timeout` and `database.max_connections` (when `database` is a
    /// mapping).
    pub database_pool: DatabasePool,
    /// The listener and the client address (`server:`).
    pub server: ServerConfig,
    pub signing: SigningConfig,
    pub tokens: TokenLifetimes,
    pub clients: Vec<ClientConfig>,
    pub users: Vec<UserConfig>,
    /// Upstream identity providers.
    pub connectors: Vec<ConnectorConfig>,
    /// The group pipeline for local users (top-level `groups:`, a connector's keys).
    pub groups: GroupRules,
    /// Scopes of your own (`scopes:`) and the claims each releases.
    pub scopes: CustomScopes,
    pub mock: MockConfig,
    /// The audit log (`audit:`).
    pub audit: AuditConfig,
    /// The admin API (`admin:`); off unless a token is set.
    pub admin: AdminConfig,
    /// Where the file was read from, for paths relative to it.
    pub source: Option<PathBuf>,
    /// Things that are allowed but probably not meant (`check-config` prints them, `serve`
    /// logs them).
    pub warnings: Vec<Problem>,
}

/// Where audit lines go (`audit.output`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditOutput {
    Stdout,
    File(std::path::PathBuf),
}

#[derive(Debug, Clone, Default)]
pub struct AuditConfig {
    /// `None`: no audit log.
    pub output: Option<AuditOutput>,
}

#[derive(Debug, Clone, Default)]
pub struct AdminConfig {
    pub token: Option<crate::secret::SecretString>,
    /// argon2id PHC string of the token.
    pub token_hash: Option<String>,
    /// A listener of its own; otherwise `/admin/` is on the main one.
    pub listen: Option<SocketAddr>,
}

impl AdminConfig {
    pub fn enabled(&self) -> bool {
        self.token.is_some() || self.token_hash.is_some()
    }
}

/// How the database pool behaves.
#[derive(Debug, Clone)]
pub struct DatabasePool {
    /// A request waits at most this long for a connection (and, on SQLite, for a lock).
    pub acquire_timeout: Seconds,
    pub max_connections: Option<u32>,
}

impl Default for DatabasePool {
    fn default() -> Self {
        Self {
            acquire_timeout: Seconds(2),
            max_connections: None,
        }
    }
}

/// Which header the trusted proxies write the client address into.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (nginx, HAProxy, AWS ALB, GCP, Envoy, Traefik).
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239).
    Forwarded,
}

/// `server:`: limits of the listener and where client addresses come from.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Peers whose forwarding header is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The one header they write (`x-forwarded-for` or `forwarded`).
    pub forwarded_header: ForwardedHeader,
    /// Open connections one client address (an IPv6 /64) may hold; trusted proxies are
    /// exempt.
    pub max_connections_per_address: usize,
    /// Open connections at most; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// A connection must send a request's headers within this time, and an idle keep-alive
    /// connection its next request.
    pub header_read_timeout: Seconds,
    /// A request (its body and the answer) must complete within this time.
    pub request_timeout: Seconds,
    /// Pending authorization requests (stored rows) one client address may start a minute.
    pub pending_requests_per_minute: u32,
    /// Where `/metrics` is served, on a listener of its own; none unless set.
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::XForwardedFor,
            max_connections_per_address: 256,
            max_connections: 4096,
            header_read_timeout: Seconds(10),
            request_timeout: Seconds(60),
            pending_requests_per_minute: 120,
            metrics_listen: None,
        }
    }
}

impl Config {
    /// The issuer's path (`""` for an issuer at the root of its host): every route and asset
    /// is under it.
    pub fn issuer_path(&self) -> String {
        url::Url::parse(&self.issuer)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default()
    }

    /// The longest time any token we sign can stay valid: how long a retired key must stay
    /// in JWKS.
    pub fn longest_signed_token_lifetime(&self) -> Seconds {
        let mut longest = self.tokens.access_token.max(self.tokens.id_token);
        for c in &self.clients {
            for t in [c.tokens.access_token, c.tokens.id_token]
                .into_iter()
                .flatten()
            {
                longest = longest.max(t);
            }
        }
        longest
    }
}

/// A database URL; it may hold a password, so it never prints whole.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(pub SecretString);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(SecretString::new(url))
    }
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
    pub fn kind(&self) -> DatabaseKind {
        let u = self.expose();
        if u.starts_with("postgres://") || u.starts_with("postgresql://") {
            DatabaseKind::Postgres
        } else {
            DatabaseKind::Sqlite
        }
    }
    /// The file behind a `sqlite://path` URL; `None` for in-memory databases and PostgreSQL.
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        let u = self.expose();
        if u.contains(":memory:") || u.contains("mode=memory") {
            return None;
        }
        let rest = u
            .strip_prefix("sqlite://")
            .or_else(|| u.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty()).then(|| PathBuf::from(path))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            DatabaseKind::Sqlite => write!(f, "{}", self.expose()),
            DatabaseKind::Postgres => f.write_str("postgres://[redacted]"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    RS256,
    PS256,
    ES256,
    EdDSA,
}

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 4] = [Self::RS256, Self::PS256, Self::ES256, Self::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

#[derive(Debug, Clone)]
pub struct SigningConfig {
    pub algorithm: SigningAlgorithm,
    pub rotation_period: Seconds,
    pub publish_ahead: Seconds,
    /// 32 bytes that encrypt private keys at rest.
    pub encryption_key: Option<EncryptionKey>,
}

/// The key that encrypts signing keys at rest (AES-256-GCM).
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionKey(pub [u8; 32]);

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey([redacted])")
    }
}

impl EncryptionKey {
    /// Accepts 32 bytes written as base64 (standard or URL-safe, padded or not) or as hex.
    pub fn parse(text: &str) -> Option<Self> {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let t = text.trim();
        let bytes = if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&t[i * 2..i * 2 + 2], 16).ok())
                .collect::<Option<Vec<u8>>>()?
        } else {
            STANDARD
                .decode(t)
                .or_else(|_| URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')))
                .ok()?
        };
        Some(Self(bytes.try_into().ok()?))
    }
}

/// Lifetimes of what the provider issues.
#[derive(Debug, Clone)]
pub struct TokenLifetimes {
    pub access_token: Seconds,
    pub id_token: Seconds,
    pub authorization_code: Seconds,
    pub refresh_token_idle: Seconds,
    pub refresh_token_absolute: Seconds,
    pub refresh_reuse_grace: Seconds,
    pub session: Seconds,
    /// How long a device code (RFC 8628) waits for its person.
    pub device_code: Seconds,
    /// How often a device may poll (RFC 8628 §3.5); `slow_down` adds 5 seconds.
    pub device_poll_interval: Seconds,
}
