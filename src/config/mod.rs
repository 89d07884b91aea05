//! The configuration: a typed tree loaded once from YAML, with `${ENV}` expansion, validated
//! all at once so that every problem is reported together with its key path.
//!
//! The keys are the contract in DESIGN.md; the README's configuration reference lists them.

mod connectors;
mod duration;
mod load;
mod mock_section;
pub mod tree;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

pub use duration::Seconds;
pub use load::{from_yaml_str, load_file, load_file_with_env};
pub use tree::{Problem, Problems};

use crate::secret::SecretString;

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
    pub mock: MockConfig,
    /// Where the file was read from, for paths relative to it.
    pub source: Option<PathBuf>,
    /// Things that are allowed but probably not meant (`check-config` prints them, `serve`
    /// logs them).
    pub warnings: Vec<Problem>,
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
        }
    }
}

impl Config {
    /// The built-in defaults, as if the file were empty.
    pub fn defaults() -> Self {
        #[allow(clippy::expect_used)] // an empty document always loads
        from_yaml_str("{}", &|_| None).expect("empty config is valid")
    }

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
}

/// Per-client overrides of [`TokenLifetimes`].
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ClientTokenLifetimes {
    pub access_token: Option<Seconds>,
    pub id_token: Option<Seconds>,
    pub refresh_token_idle: Option<Seconds>,
    pub refresh_token_absolute: Option<Seconds>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub const ALL: [GrantType; 3] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::ClientCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }
}

/// A registered client. Stored as JSON (without its secret, which is stored hashed).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClientConfig {
    pub id: String,
    pub name: Option<String>,
    /// Absent for public clients. Never serialised.
    #[serde(skip)]
    pub secret: Option<SecretString>,
    /// An argon2id hash of the secret, given instead of it. Never serialised.
    #[serde(skip)]
    pub secret_hash: Option<String>,
    /// Mock mode's built-in client only: any absolute redirect URI is accepted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub any_redirect_uri: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    /// The one authentication method this client must use; `None` accepts both secret
    /// methods for confidential clients.
    pub token_endpoint_auth_method: Option<AuthMethod>,
    /// Scopes this client may ask for; `None` means the standard OpenID scopes.
    pub scopes: Option<Vec<String>>,
    /// `aud` of its access tokens; empty means the issuer.
    pub audience: Vec<String>,
    pub require_pkce: bool,
    pub skip_consent: bool,
    pub tokens: ClientTokenLifetimes,
    /// Connectors this client may use; empty: all.
    #[serde(default)]
    pub allowed_connectors: Vec<String>,
    /// What this client sees of `groups`.
    #[serde(default)]
    pub groups: ClientGroups,
    /// Revoking this client's refresh token (`POST /revoke`) ends the SSO session it came
    /// from too, and everything that session issued (Backstage signs out that way).
    #[serde(default = "yes")]
    pub logout_revokes_session: bool,
    /// Clients whose access tokens this client may introspect (RFC 7662 §4), as a resource
    /// server; `*` for every client. A client may always introspect its own tokens and
    /// tokens whose `aud` names it.
    #[serde(default)]
    pub resource_server_for: Vec<String>,
}

fn yes() -> bool {
    true
}

/// Per-client view of the normalized `groups` claim.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ClientGroups {
    /// Regexes; when set, only matching groups reach this client.
    pub include: Vec<String>,
    /// At most this many groups in its tokens (0: no cap).
    pub max: usize,
    /// Emit `groups` even without the `groups` scope.
    pub always: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorKind {
    Oidc,
    Okta,
    Azure,
    Mock,
}

/// An upstream identity provider (`connectors[]`).
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    pub id: String,
    pub kind: ConnectorKind,
    pub name: String,
    /// The upstream issuer; for `azure`, derived from `tenant` when absent.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub scopes: Vec<String>,
    /// A `login_hint` in one of these domains goes straight to this connector.
    pub email_domains: Vec<String>,
    pub groups: GroupRules,
    pub get_userinfo: bool,
    pub token_endpoint_auth_method: AuthMethod,
    pub timeout: Seconds,
    /// Re-resolve groups upstream when a refresh finds them older than this.
    pub groups_max_staleness: Seconds,
    /// Link identities from this connector by verified e-mail (off by default). Only
    /// addresses in `verified_email_domains`, which no other connector may list.
    pub link_by_email: bool,
    /// azure: `common`/`organizations` accept these tenants only.
    pub allowed_tenants: Vec<String>,
    /// azure: the Graph API base.
    pub graph_url: String,
    /// E-mail domains this connector is the authority for: an address there counts as
    /// verified unless the upstream says `email_verified: false`. For `azure`, each domain
    /// belongs to a tenant (`tid`), and an address counts only with `xms_edov: true`.
    pub verified_email_domains: Vec<VerifiedDomain>,
}

/// A domain a connector is authoritative for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDomain {
    /// Lowercased.
    pub domain: String,
    /// azure: the tenant that owns the domain (from the mapping form, or the connector's
    /// single-tenant issuer).
    pub tenant: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmapped {
    Drop,
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupCase {
    Lower,
    Preserve,
}

/// The group-normalization pipeline of one connector (`connectors[].groups`).
#[derive(Debug, Clone)]
pub struct GroupRules {
    /// Claim paths to read, e.g. `groups`, `roles`, `realm_access.roles`.
    pub claims: Vec<String>,
    /// GUID or name → name, applied first.
    pub map: std::collections::BTreeMap<String, String>,
    pub unmapped: Unmapped,
    pub include: Vec<regex::Regex>,
    pub exclude: Vec<regex::Regex>,
    pub case: GroupCase,
    pub slugify: bool,
    pub prefix: Option<String>,
    pub prefix_separator: String,
    pub required: bool,
    /// azure: name groups from Graph `displayName` (which any user may choose for a
    /// Microsoft 365 group). Off: object ids, or `map`.
    pub trust_display_names: bool,
    /// This connector's group names may coincide with another connector's on purpose.
    pub shared_namespace: bool,
}

#[derive(Debug, Clone)]
pub struct UserConfig {
    pub username: String,
    pub password_hash: Option<String>,
    /// Plain-text password: development only, warned about at start.
    pub password: Option<SecretString>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

/// The `mock:` section: mock IdP mode and the control API.
#[derive(Debug, Clone, Default)]
pub struct MockConfig {
    /// Under `serve`: expose the control API (staging only), guarded by `admin_token`.
    pub control_api: bool,
    pub admin_token: Option<SecretString>,
    /// Complete a login without a page when `login_hint` names a user (default: on).
    pub auto_login: bool,
    /// Fixed users of the root mock issuer (no passwords: mock login ignores them).
    pub users: Vec<MockUserConfig>,
    pub issuers: Vec<MockIssuerConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonaKind {
    Plain,
    Okta,
    Azure,
}

/// One extra issuer of mock mode, served under its own path.
#[derive(Debug, Clone)]
pub struct MockIssuerConfig {
    pub id: String,
    pub persona: PersonaKind,
    /// Mount path, e.g. `/okta`; the issuer is `{base}{path}`, then `/oauth2/default`
    /// (okta) or `/{tenant}/v2.0` (azure).
    pub path: String,
    pub tenant: Option<String>,
    pub overage_limit: usize,
    pub users: Vec<MockUserConfig>,
}

/// A mock user: fixed claims, so runs are deterministic.
#[derive(Debug, Clone, Default)]
pub struct MockUserConfig {
    pub username: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    pub claims: serde_json::Map<String, serde_json::Value>,
}
