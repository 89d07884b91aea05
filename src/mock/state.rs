//! The state of one mock issuer: its clock, faults, recorded requests, queued logins and
//! fixed users.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::faults::Faults;
use super::persona::Persona;
use crate::clock::AdjustableClock;
use crate::config::{ClientTokenLifetimes, MockUserConfig, Seconds};
use crate::federation::Identity;
use crate::keys::KeyManager;
use crate::oidc::clients::ClientRegistry;
use crate::oidc::grants::Grants;
use crate::storage::Storage;

/// An identity queued by `POST /mock/next-login` for the next login that matches.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueuedLogin {
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub claims: Map<String, Value>,
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    /// Matches a request whose `login_hint` is this.
    #[serde(default)]
    pub login_hint: Option<String>,
    /// Matches a request from this client.
    #[serde(default)]
    pub client_id: Option<String>,
}

/// One recorded request, secrets redacted, every value cut to [`MAX_RECORDED_VALUE`].
#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    pub time: i64,
    pub method: String,
    pub path: String,
    pub endpoint: String,
    pub client_id: Option<String>,
    pub params: Map<String, Value>,
}

/// What the control API may touch: the mock's own state, and narrow handles on the
/// issuer's keys, clients, storage and issuance.
pub struct Control {
    pub mock: Arc<MockState>,
    pub keys: Arc<KeyManager>,
    pub clients: Arc<ClientRegistry>,
    pub storage: Arc<dyn Storage>,
    pub grants: Arc<Grants>,
    /// Tells the clients of the sessions `sessions/revoke` ends.
    pub backchannel: Arc<crate::oidc::backchannel::Backchannel>,
    pub publish_ahead: Seconds,
}

pub struct MockState {
    /// The issuer this state belongs to, and its path (routes are under it).
    pub issuer: String,
    pub base: String,
    pub clock: Arc<AdjustableClock>,
    pub faults: Faults,
    pub requests: Mutex<RequestLog>,
    pub next_logins: Mutex<Vec<QueuedLogin>>,
    pub users: std::sync::RwLock<HashMap<String, MockUserConfig>>,
    pub auto_login: bool,
    /// Mock login pages (any username, no password). Off for `serve` with the control API.
    pub mock_login: bool,
    pub persona: Persona,
    /// Client lifetimes as configured, restored by `/mock/reset`.
    pub initial_lifetimes: HashMap<String, ClientTokenLifetimes>,
    /// Required as a Bearer token on the control API (`serve` with `mock.control_api`).
    pub admin_token: Option<String>,
}

/// How many requests are kept for `GET /mock/requests`, and how many bytes they may hold
/// together; the oldest go first.
pub const REQUEST_LOG_SIZE: usize = 1000;
pub const REQUEST_LOG_BYTES: usize = 2 * 1024 * 1024;
/// Recorded values (and paths) longer than this are cut, marked with `…`.
pub const MAX_RECORDED_VALUE: usize = 256;

/// The recorded requests, bounded in count and in bytes.
#[derive(Debug, Default)]
pub struct RequestLog {
    entries: VecDeque<(usize, RecordedRequest)>,
    bytes: usize,
}

impl RequestLog {
    pub fn push(&mut self, r: RecordedRequest) {
        let size = r.size();
        while !self.entries.is_empty()
            && (self.entries.len() >= REQUEST_LOG_SIZE || self.bytes + size > REQUEST_LOG_BYTES)
        {
            if let Some((s, _)) = self.entries.pop_front() {
                self.bytes -= s;
            }
        }
        self.bytes += size;
        self.entries.push_back((size, r));
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &RecordedRequest> {
        self.entries.iter().map(|(_, r)| r)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

/// `s` cut to at most [`MAX_RECORDED_VALUE`] bytes, on a character boundary.
pub fn truncate_value(s: &str) -> String {
    if s.len() <= MAX_RECORDED_VALUE {
        return s.to_string();
    }
    let mut end = MAX_RECORDED_VALUE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl RecordedRequest {
    fn size(&self) -> usize {
        let params: usize = self
            .params
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(8, str::len))
            .sum();
        64 + self.method.len()
            + self.path.len()
            + self.endpoint.len()
            + self.client_id.as_ref().map_or(0, String::len)
            + params
    }
}

impl MockState {
    /// The control API under `serve` (`mock.control_api`): no mock login, an admin token,
    /// an adjustable clock.
    pub fn for_serve(config: &crate::config::Config) -> Arc<Self> {
        Arc::new(Self {
            issuer: config.issuer.clone(),
            base: config.issuer_path(),
            clock: AdjustableClock::new(),
            faults: Faults::default(),
            requests: Mutex::new(RequestLog::default()),
            next_logins: Mutex::new(Vec::new()),
            users: std::sync::RwLock::new(HashMap::new()),
            auto_login: false,
            mock_login: false,
            persona: Persona::Plain,
            initial_lifetimes: config
                .clients
                .iter()
                .map(|c| (c.id.clone(), c.tokens.clone()))
                .collect(),
            admin_token: config
                .mock
                .admin_token
                .as_ref()
                .map(|t| t.expose().to_string()),
        })
    }

    pub fn record(&self, r: RecordedRequest) {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(r);
    }

    /// Takes the first queued login that matches `login_hint` or `client_id` (a queued login
    /// with neither matches anything).
    pub fn take_queued(&self, login_hint: Option<&str>, client_id: &str) -> Option<QueuedLogin> {
        let mut q = self.next_logins.lock().unwrap_or_else(|e| e.into_inner());
        let i = q.iter().position(|l| match (&l.login_hint, &l.client_id) {
            (Some(h), _) => Some(h.as_str()) == login_hint,
            (None, Some(c)) => c == client_id,
            (None, None) => true,
        })?;
        Some(q.remove(i))
    }

    /// The identity of a mock login: a configured user's fixed claims, or one made up from
    /// the username, with `groups` and `claims` given on the form or queued.
    pub fn identity(
        &self,
        username: &str,
        groups: Option<Vec<String>>,
        claims: &Map<String, Value>,
    ) -> Identity {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        let fixed = users.get(username);
        let email = fixed
            .and_then(|u| u.email.clone())
            .or_else(|| username.contains('@').then(|| username.to_string()))
            .unwrap_or_else(|| format!("{username}@example.com"));
        let mut id = Identity {
            sub: self.persona.subject_for(username).into(),
            preferred_username: Some(username.to_string()),
            name: Some(
                fixed
                    .and_then(|u| u.name.clone())
                    .unwrap_or_else(|| username.to_string()),
            ),
            email: Some(email),
            email_verified: Some(true),
            groups: groups
                .or_else(|| fixed.map(|u| u.groups.clone()))
                .unwrap_or_default(),
            roles: fixed.map(|u| u.roles.clone()).unwrap_or_default(),
            amr: vec!["pwd".into()],
            local: false,
            upstream_session: None,
            extra: fixed.map(|u| u.claims.clone()).unwrap_or_default(),
        };
        if let Some(u) = fixed
            && !u.roles.is_empty()
        {
            id.extra.insert("roles".into(), json!(u.roles));
        }
        for (k, v) in claims {
            match (k.as_str(), v) {
                ("sub", Value::String(s)) => id.sub = s.as_str().into(),
                ("name", Value::String(s)) => id.name = Some(s.clone()),
                ("email", Value::String(s)) => id.email = Some(s.clone()),
                ("email_verified", Value::Bool(b)) => id.email_verified = Some(*b),
                ("preferred_username", Value::String(s)) => id.preferred_username = Some(s.clone()),
                _ => {
                    id.extra.insert(k.clone(), v.clone());
                }
            }
        }
        id
    }

    /// The identity for a queued login.
    pub fn queued_identity(&self, q: &QueuedLogin, fallback_user: &str) -> Identity {
        let username = q
            .claims
            .get("preferred_username")
            .and_then(Value::as_str)
            .unwrap_or(fallback_user)
            .to_string();
        let mut id = self.identity(&username, q.groups.clone(), &q.claims);
        if let Some(sub) = &q.sub {
            id.sub = sub.as_str().into();
        }
        id
    }
}
