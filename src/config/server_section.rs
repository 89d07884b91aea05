//! The `database` and `server` sections.

use serde_json::Value;

use super::checks::{check_database, positive};
use super::duration::Seconds;
use super::settings::*;
use super::tree::{Reader, index};

const SERVER: &[&str] = &[
    "trusted_proxies",
    "forwarded_header",
    "max_connections_per_address",
    "max_connections",
    "header_read_timeout",
    "request_timeout",
    "pending_requests_per_minute",
    "metrics_listen",
];
const DATABASE: &[&str] = &["url", "acquire_timeout", "max_connections"];

/// `database`: a URL, or a mapping with `url`, `acquire_timeout` and `max_connections`.
pub(super) fn read_database(r: &mut Reader, v: Option<&Value>) -> (DatabaseUrl, DatabasePool) {
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

pub(super) fn read_server(r: &mut Reader, v: Option<&Value>) -> ServerConfig {
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
    let metrics_listen = r.string(&o, "metrics_listen").and_then(|s| {
        let parsed = s.parse::<std::net::SocketAddr>();
        if parsed.is_err() {
            r.problem(
                "server.metrics_listen",
                format!("`{s}` is not an address such as 127.0.0.1:9090"),
            );
        }
        parsed.ok()
    });
    ServerConfig {
        metrics_listen,
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
