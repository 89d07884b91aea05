//! Who the provider deals with: clients, upstream connectors, local users, and the mock
//! section.

use super::connector_kinds::{ConnectorKind, KindSettings};
use super::duration::Seconds;
use super::okta_section::OktaGroupsApi;
use crate::secret::SecretString;

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
    /// RFC 8628.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
    /// RFC 8693.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

impl GrantType {
    pub const ALL: [GrantType; 5] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::ClientCredentials,
        Self::DeviceCode,
        Self::TokenExchange,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            Self::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
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
    /// RFC 7523 §2.2, OIDC Core §9.
    PrivateKeyJwt,
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
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
    /// `secrets:`, several secrets each with an optional end (rotation with overlap),
    /// instead of `secret` / `secret_hash`. Never serialised.
    #[serde(skip)]
    pub secrets: Vec<ConfigSecret>,
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
    /// Only people in at least one of these groups (names as the group pipeline makes
    /// them) may sign in to this client; empty: anyone.
    #[serde(default)]
    pub require_groups: Vec<String>,
    /// Nobody in any of these groups may sign in to this client.
    #[serde(default)]
    pub deny_groups: Vec<String>,
    /// Fixed claims in every ID token, userinfo answer and access token of this client.
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// What of the person goes into this client's JWT access tokens (RFC 9068 §2.2.3.1).
    #[serde(default)]
    pub access_token_claims: Vec<AccessTokenClaim>,
    /// At most this many values per claim in an access token; past it the claim is left
    /// out and named as a distributed claim at userinfo (OIDC Core §5.6.2).
    #[serde(default = "default_access_token_claims_max")]
    pub access_token_claims_max: usize,
    /// Resource indicators, token exchange, `private_key_jwt` keys, back-channel logout.
    #[serde(flatten)]
    pub agents: super::client_agents::ClientAgents,
}

/// A person's attribute a client may have in its access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessTokenClaim {
    Groups,
    Roles,
}

impl AccessTokenClaim {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Groups => "groups",
            Self::Roles => "roles",
        }
    }
}

/// The default of `access_token_claims_max`: Entra ID's limit for groups in a JWT.
pub const ACCESS_TOKEN_CLAIMS_MAX: usize = 200;

fn default_access_token_claims_max() -> usize {
    ACCESS_TOKEN_CLAIMS_MAX
}

/// One entry of a client's `secrets:` list.
#[derive(Debug, Clone, Default)]
pub struct ConfigSecret {
    /// A name for it in metrics and the audit log; a fingerprint of the hash when absent.
    pub id: Option<String>,
    /// An argon2id PHC string.
    pub hash: Option<String>,
    /// The secret itself (for `${ENV}`), kept as a keyed digest.
    pub secret: Option<crate::secret::SecretString>,
    /// When it stops working (`expires: 2027-01-01T00:00:00Z`).
    pub expires: Option<crate::clock::UnixTime>,
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
    /// `private_key_jwt` towards the upstream: the key assertions are signed with.
    pub client_key: Option<super::upstream_key::UpstreamClientKey>,
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
    /// Upstream claims mapped to named claims (`department: "hr.department"`): a dotted
    /// path into the ID token and userinfo claims.
    pub claims: std::collections::BTreeMap<String, String>,
    /// Claim paths holding the person's roles (`roles`, `realm_access.roles`).
    pub roles_claims: Vec<String>,
    /// okta: read the Groups API when the token's groups may be cut at Okta's 100.
    pub groups_api: Option<OktaGroupsApi>,
    /// What only this connector's type has (Google, GitHub, LDAP).
    pub settings: KindSettings,
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
    /// As written; the top-level `groups:` rules make the names clients see.
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    /// Values of claims the top-level `scopes:` define (`department: Platform`).
    pub claims: serde_json::Map<String, serde_json::Value>,
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
    Google,
    Github,
    Gitlab,
}

/// google persona: a Directory API group (`mock.issuers[].directory_groups`).
#[derive(Debug, Clone, Default)]
pub struct MockDirectoryGroup {
    /// The group's `name` (default: its e-mail's local part).
    pub name: Option<String>,
    /// Groups (by e-mail) this group is a member of.
    pub member_of: Vec<String>,
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
    /// okta: the API token its Groups API accepts (`SSWS …`).
    pub api_token: String,
    /// google: the Workspace domain (the `hd` claim); default each user's e-mail domain.
    pub hosted_domain: Option<String>,
    /// google: Directory API groups by e-mail, with their names and the groups they are in.
    pub directory_groups: std::collections::BTreeMap<String, MockDirectoryGroup>,
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
