//! Prometheus metrics (OpenMetrics text), one registry per issuer, through the
//! `prometheus-client` crate. What flows record goes through the methods here; the gauges
//! that describe state (keys, the hash queue, the database pool) are set just before each
//! scrape by whoever serves `/metrics` (`app/ops.rs`).
//!
//! Labels are bounded: routes are the router's patterns (never raw paths), clients and
//! connectors are the configured ones, results are a few fixed words.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    connector: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    grant_type: String,
    client_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClientLabels {
    client_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClientAuthLabels {
    client_id: String,
    secret: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    connector: String,
    endpoint: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamTimeLabels {
    connector: String,
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabels {
    kid: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn request_buckets() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// How a sign-in attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResult {
    Success,
    /// Wrong credentials, or the upstream refused.
    Failure,
    /// Refused unchecked by a sign-in budget.
    Throttled,
    /// The password hasher was saturated.
    Busy,
    /// The upstream could not be reached or answered something unusable.
    Error,
    /// Signed in, but the client's access policy refused the person.
    Denied,
}

impl LoginResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Throttled => "throttled",
            Self::Busy => "busy",
            Self::Error => "error",
            Self::Denied => "denied",
        }
    }
}

/// What the scrape reports about state, gathered by the caller.
#[derive(Debug, Default)]
pub struct StateSnapshot {
    /// (kid, state, age in seconds) of every signing key.
    pub keys: Vec<(String, &'static str, i64)>,
    pub hash_queue: usize,
    /// Open and idle pool connections, and the pool's cap.
    pub pool: (u32, u32, u32),
}

pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Histograms<RouteLabels>,
    logins: Family<LoginLabels, Counter>,
    tokens: Family<TokenLabels, Counter>,
    refresh_reuse: Family<ClientLabels, Counter>,
    client_auth: Family<ClientAuthLabels, Counter>,
    upstream: Family<UpstreamLabels, Counter>,
    upstream_duration: Histograms<UpstreamTimeLabels>,
    key_age: Family<KeyLabels, Gauge>,
    keys: Family<StateLabels, Gauge>,
    hash_queue: Gauge,
    pool: Family<StateLabels, Gauge>,
    pool_max: Gauge,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("oidc_bridge");
        let m = Self {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(request_buckets),
            logins: Family::default(),
            tokens: Family::default(),
            refresh_reuse: Family::default(),
            client_auth: Family::default(),
            upstream: Family::default(),
            upstream_duration: Family::new_with_constructor(request_buckets),
            key_age: Family::default(),
            keys: Family::default(),
            hash_queue: Gauge::default(),
            pool: Family::default(),
            pool_max: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by route pattern, method and status",
            m.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route pattern and method",
            m.http_duration.clone(),
        );
        registry.register(
            "logins",
            "Sign-in attempts, by connector and result",
            m.logins.clone(),
        );
        registry.register(
            "tokens_issued",
            "Access tokens issued, by grant type and client",
            m.tokens.clone(),
        );
        registry.register(
            "refresh_token_reuse_detected",
            "Rotated refresh tokens presented again after the grace window, by client",
            m.refresh_reuse.clone(),
        );
        registry.register(
            "client_authentications",
            "Client secret checks, by client, the secret that matched, and result",
            m.client_auth.clone(),
        );
        registry.register(
            "upstream_requests",
            "Requests to upstream IdPs, by connector, endpoint and result",
            m.upstream.clone(),
        );
        registry.register(
            "upstream_request_duration_seconds",
            "Time upstream IdPs took to answer, by connector and endpoint",
            m.upstream_duration.clone(),
        );
        registry.register(
            "signing_key_age_seconds",
            "Age of each signing key, by kid and state",
            m.key_age.clone(),
        );
        registry.register(
            "signing_keys",
            "Signing keys, by state (next, active, retired)",
            m.keys.clone(),
        );
        registry.register(
            "password_hash_queue_depth",
            "Password verifications waiting for a worker",
            m.hash_queue.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database pool connections, by state (idle, in_use)",
            m.pool.clone(),
        );
        registry.register(
            "db_pool_max_connections",
            "The database pool's size limit",
            m.pool_max.clone(),
        );
        Arc::new(Self { registry, ..m })
    }

    /// One HTTP answer. `route` is the router's pattern (or `unmatched`).
    pub fn http(&self, route: &str, method: &str, status: u16, took: Duration) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_string(),
                method: method.to_string(),
                status: status.to_string(),
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels {
                route: route.to_string(),
                method: method.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn login(&self, connector: &str, result: LoginResult) {
        self.logins
            .get_or_create(&LoginLabels {
                connector: connector.to_string(),
                result: result.as_str().to_string(),
            })
            .inc();
    }

    pub fn token_issued(&self, grant_type: &str, client_id: &str) {
        self.tokens
            .get_or_create(&TokenLabels {
                grant_type: grant_type.to_string(),
                client_id: client_id.to_string(),
            })
            .inc();
    }

    /// A client presented a secret: `secret` is the id of the one that matched (`none`
    /// when none did), so an operator sees when a rotated-out secret stops being used.
    pub fn client_auth(&self, client_id: &str, matched: Option<&str>) {
        self.client_auth
            .get_or_create(&ClientAuthLabels {
                client_id: client_id.to_string(),
                secret: matched.unwrap_or("none").to_string(),
                result: if matched.is_some() {
                    "success"
                } else {
                    "failure"
                }
                .to_string(),
            })
            .inc();
    }

    pub fn refresh_reuse(&self, client_id: &str) {
        self.refresh_reuse
            .get_or_create(&ClientLabels {
                client_id: client_id.to_string(),
            })
            .inc();
    }

    /// One request to an upstream IdP: `endpoint` is `discovery`, `jwks`, `token`,
    /// `userinfo` or `graph`; `result` is `ok`, `unavailable`, `invalid` or `refused`.
    pub fn upstream(&self, connector: &str, endpoint: &str, result: &str, took: Duration) {
        self.upstream
            .get_or_create(&UpstreamLabels {
                connector: connector.to_string(),
                endpoint: endpoint.to_string(),
                result: result.to_string(),
            })
            .inc();
        self.upstream_duration
            .get_or_create(&UpstreamTimeLabels {
                connector: connector.to_string(),
                endpoint: endpoint.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// The exposition, with the state gauges set from `state` first.
    pub fn encode(&self, state: &StateSnapshot) -> String {
        self.key_age.clear();
        self.keys.clear();
        for (kid, key_state, age) in &state.keys {
            self.key_age
                .get_or_create(&KeyLabels {
                    kid: kid.clone(),
                    state: key_state.to_string(),
                })
                .set(*age);
            self.keys
                .get_or_create(&StateLabels {
                    state: key_state.to_string(),
                })
                .inc();
        }
        self.hash_queue
            .set(i64::try_from(state.hash_queue).unwrap_or(i64::MAX));
        let (size, idle, max) = state.pool;
        for (label, n) in [("idle", idle), ("in_use", size.saturating_sub(idle))] {
            self.pool
                .get_or_create(&StateLabels {
                    state: label.into(),
                })
                .set(i64::from(n));
        }
        self.pool_max.set(i64::from(max));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_recorded_is_exposed_with_its_labels() {
        let m = Metrics::new();
        m.login("okta", LoginResult::Failure);
        m.login("okta", LoginResult::Failure);
        m.token_issued("refresh_token", "web");
        m.http("/token", "POST", 200, Duration::from_millis(3));
        let text = m.encode(&StateSnapshot {
            keys: vec![("k1".into(), "active", 60)],
            hash_queue: 2,
            pool: (5, 3, 10),
        });
        assert!(
            text.contains(r#"oidc_bridge_logins_total{connector="okta",result="failure"} 2"#),
            "{text}"
        );
        assert!(text.contains(
            r#"oidc_bridge_tokens_issued_total{grant_type="refresh_token",client_id="web"} 1"#
        ));
        assert!(
            text.contains(r#"oidc_bridge_signing_key_age_seconds{kid="k1",state="active"} 60"#)
        );
        assert!(text.contains(r#"oidc_bridge_db_pool_connections{state="in_use"} 2"#));
        assert!(text.contains("oidc_bridge_password_hash_queue_depth 2"));
        assert!(text.ends_with("# EOF\n"));
    }
}
