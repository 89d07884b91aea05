//! The audit log: one JSON line per security event, to stdout or a file (`audit.output`),
//! apart from the debug log (which goes to stderr). The schema is stable and documented in
//! the README ("Audit log"): every line has the same keys, `null` where one does not apply,
//! and event-specific facts under `details`. Nothing secret is ever written: no passwords,
//! no tokens, no client secrets (a token is named by a hash of its id, a secret by its id).
//!
//! The request id and the client address come from the request being served
//! ([`RequestContext`], set by the middleware in [`scope`]), so callers name only what they
//! know.

use std::future::Future;
use std::io::Write;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::clock::Clock;
use crate::config::AuditOutput;

/// The request an event happened in.
#[derive(Debug)]
pub struct RequestContext {
    pub id: String,
    pub ip: Option<IpAddr>,
    /// The id of the client secret the request authenticated with.
    secret: OnceLock<String>,
}

impl RequestContext {
    pub fn new(id: String, ip: Option<IpAddr>) -> Arc<Self> {
        Arc::new(Self {
            id,
            ip,
            secret: OnceLock::new(),
        })
    }
}

tokio::task_local! {
    static REQUEST: Arc<RequestContext>;
}

/// The current request authenticated its client with secret `id`: its events say so
/// (`details.secret`), so an operator sees when a rotated-out secret is no longer used.
pub fn note_client_secret(id: &str) {
    let _ = REQUEST.try_with(|c| c.secret.set(id.to_owned()));
}

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Middleware: gives every request an id (a well-formed incoming `X-Request-Id` is kept, so
/// a proxy's id carries through; otherwise a new one), answers with it, and serves the
/// request inside its [`RequestContext`]. Runs after the client address is resolved.
pub async fn scope(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| well_formed(s))
        .map(str::to_owned)
        .unwrap_or_else(|| crate::secret::random_token(12));
    let ip = req
        .extensions()
        .get::<crate::server::ClientAddr>()
        .map(|a| a.0);
    if let Ok(v) = HeaderValue::from_str(&id) {
        req.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    let ctx = RequestContext::new(id.clone(), ip);
    let mut resp = REQUEST.scope(ctx, next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    resp
}

/// Runs `f` as part of a request that has no HTTP context (a signal, a background task):
/// events in it carry `request_id` but no address.
pub async fn within<F: Future>(id: String, f: F) -> F::Output {
    REQUEST.scope(RequestContext::new(id, None), f).await
}

/// The current request's id, if any.
pub fn request_id() -> Option<String> {
    REQUEST.try_with(|c| c.id.clone()).ok()
}

fn well_formed(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

enum Sink {
    Off,
    Stdout,
    File(Mutex<std::fs::File>),
}

/// The audit log of one server.
pub struct Audit {
    sink: Sink,
    clock: Arc<dyn Clock>,
}

/// What happened: the `event` field. Each has its own row in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Login,
    Consent,
    ClientAuth,
    TokenIssued,
    RefreshReuse,
    Revocation,
    Logout,
    KeyRotation,
    AdminChange,
    ConfigReload,
    /// RFC 8693: a token traded for another audience (subject and actor named).
    TokenExchanged,
    /// RFC 8628: a device request approved or denied by its person.
    DeviceAuthorization,
    /// A logout token sent to a client's back-channel logout URI.
    BackchannelLogout,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::Consent => "consent",
            Kind::ClientAuth => "client_auth",
            Kind::TokenIssued => "token_issued",
            Kind::RefreshReuse => "refresh_reuse",
            Kind::Revocation => "revocation",
            Kind::Logout => "logout",
            Kind::KeyRotation => "key_rotation",
            Kind::AdminChange => "admin_change",
            Kind::ConfigReload => "config_reload",
            Kind::TokenExchanged => "token_exchanged",
            Kind::DeviceAuthorization => "device_authorization",
            Kind::BackchannelLogout => "backchannel_logout",
        }
    }
}

/// One event, built by its emitter and written by [`Audit::record`].
#[derive(Debug, Clone)]
pub struct Event {
    kind: Kind,
    outcome: &'static str,
    client: Option<String>,
    sub: Option<String>,
    connector: Option<String>,
    details: Map<String, Value>,
}

impl Event {
    /// `outcome` is one of a few fixed words: `success`, `failure`, `denied`, `refused`,
    /// `busy`, `throttled`.
    pub fn new(kind: Kind, outcome: &'static str) -> Self {
        Self {
            kind,
            outcome,
            client: None,
            sub: None,
            connector: None,
            details: Map::new(),
        }
    }

    pub fn client(mut self, id: impl Into<String>) -> Self {
        self.client = Some(id.into());
        self
    }

    pub fn subject(mut self, sub: impl Into<String>) -> Self {
        self.sub = Some(sub.into());
        self
    }

    pub fn connector(mut self, id: impl Into<String>) -> Self {
        self.connector = Some(id.into());
        self
    }

    /// An event-specific fact (never a secret or a token).
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    fn line(&self, time: String, ctx: Option<&RequestContext>) -> String {
        let (request_id, ip) = match ctx {
            Some(c) => (Some(c.id.clone()), c.ip.map(|ip| ip.to_string())),
            None => (None, None),
        };
        let mut details = self.details.clone();
        if let Some(secret) = ctx.and_then(|c| c.secret.get()) {
            details
                .entry("secret")
                .or_insert_with(|| Value::String(secret.clone()));
        }
        let v = json!({
            "event": self.kind.as_str(),
            "time": time,
            "outcome": self.outcome,
            "client": self.client,
            "sub": self.sub,
            "connector": self.connector,
            "ip": ip,
            "request_id": request_id,
            "details": details,
        });
        let mut s = v.to_string();
        s.push('\n');
        s
    }
}

impl Audit {
    /// Opens the output (a file is created if missing and appended to). `None`: events are
    /// dropped.
    pub fn open(output: Option<&AuditOutput>, clock: Arc<dyn Clock>) -> std::io::Result<Self> {
        let sink = match output {
            None => Sink::Off,
            Some(AuditOutput::Stdout) => Sink::Stdout,
            Some(AuditOutput::File(path)) => Sink::File(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )),
        };
        Ok(Self { sink, clock })
    }

    /// Writes one line (a single `write` call, so lines from concurrent requests and from
    /// several processes appending to one file never interleave). A failed write is logged
    /// and does not fail the request.
    pub fn record(&self, event: Event) {
        if matches!(self.sink, Sink::Off) {
            return;
        }
        let time = time::OffsetDateTime::from_unix_timestamp(self.clock.now())
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        let ctx = REQUEST.try_with(Clone::clone).ok();
        let line = event.line(time, ctx.as_deref());
        let written = match &self.sink {
            Sink::Off => Ok(()),
            Sink::Stdout => std::io::stdout().lock().write_all(line.as_bytes()),
            Sink::File(f) => match f.lock() {
                Ok(mut f) => f.write_all(line.as_bytes()),
                Err(poisoned) => poisoned.into_inner().write_all(line.as_bytes()),
            },
        };
        if let Err(e) = written {
            tracing::error!(error = %e, event = event.kind.as_str(), "audit line not written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_has_the_same_keys_and_nulls_where_nothing_applies() {
        let e = Event::new(Kind::Login, "failure")
            .connector("local")
            .detail("reason", "wrong_credentials");
        let ctx = RequestContext::new("r1".into(), Some("192.0.2.1".parse().expect("ip")));
        let line = e.line("2026-12-01T00:00:00Z".into(), Some(&ctx));
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        let v: Value = serde_json::from_str(&line).expect("json");
        let keys: Vec<&str> = v
            .as_object()
            .expect("obj")
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut want = vec![
            "client",
            "connector",
            "details",
            "event",
            "ip",
            "outcome",
            "request_id",
            "sub",
            "time",
        ];
        want.sort();
        let mut got = keys.clone();
        got.sort();
        assert_eq!(got, want);
        assert_eq!(v["client"], Value::Null);
        assert_eq!(v["ip"], "192.0.2.1");
        assert_eq!(v["details"]["reason"], "wrong_credentials");
    }

    #[test]
    fn only_well_formed_request_ids_are_kept() {
        assert!(well_formed("abc-123_x.y"));
        assert!(!well_formed(""));
        assert!(!well_formed("a b"));
        assert!(!well_formed(&"a".repeat(65)));
        assert!(!well_formed("x\ny"));
    }
}
