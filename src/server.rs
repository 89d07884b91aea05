//! The listener: HTTP/1.1 through hyper with the limits a public endpoint needs, and the
//! client's address as the rest of the server sees it.
//!
//! Limits (`server:` in the config): at most `max_connections` open connections (further
//! ones wait in the kernel's accept queue), and `max_connections_per_address` from one
//! client address (an IPv6 /64; trusted proxies are exempt; more are closed at once); `header_read_timeout` for a request's headers,
//! which hyper also applies to an idle keep-alive connection waiting for its next request
//! (slowloris and silent connections are closed); `request_timeout` for the body and the
//! answer. Bodies are capped per endpoint by the extractors (64 KiB for forms).
//!
//! The client address is the TCP peer, unless the peer is in `server.trusted_proxies`: then
//! `Forwarded` (RFC 7239) or else `X-Forwarded-For` is read right to left, skipping trusted
//! hops, and the first untrusted address is the client. Headers from anyone else are
//! ignored, so they cannot be spoofed.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

pub use crate::config::ForwardedHeader;
use crate::config::ServerConfig;

/// The listener's limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// Per client address (an IPv6 /64); peers in `exempt` (the trusted proxies) have none.
    pub max_connections_per_address: usize,
    pub exempt: TrustedProxies,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
}

impl From<&ServerConfig> for Limits {
    fn from(c: &ServerConfig) -> Self {
        Self {
            max_connections: c.max_connections,
            max_connections_per_address: c.max_connections_per_address,
            exempt: TrustedProxies::with_header(c.trusted_proxies.clone(), c.forwarded_header),
            header_read_timeout: Duration::from_secs(c.header_read_timeout.get().max(1) as u64),
            request_timeout: Duration::from_secs(c.request_timeout.get().max(1) as u64),
        }
    }
}

/// Open connections per client address.
#[derive(Default)]
struct PerAddress(std::sync::Mutex<std::collections::HashMap<String, usize>>);

/// One connection counted against its address; uncounted when dropped.
struct Slot {
    table: Arc<PerAddress>,
    key: String,
}

impl PerAddress {
    fn take(self: &Arc<Self>, key: String, cap: usize) -> Option<Slot> {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = t.entry(key.clone()).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(Slot {
            table: self.clone(),
            key,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = t.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                t.remove(&self.key);
            }
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::from(&ServerConfig::default())
    }
}

/// A router that can be replaced while serving (a config reload): each request runs on the
/// router current when it arrived and finishes there, so a swap drops nothing in flight.
#[derive(Clone)]
pub struct LiveRouter(Arc<std::sync::RwLock<Router>>);

impl LiveRouter {
    pub fn new(router: Router) -> Self {
        Self(Arc::new(std::sync::RwLock::new(router)))
    }

    /// From the next request on, `router` answers.
    pub fn set(&self, router: Router) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = router;
    }

    pub fn current(&self) -> Router {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl From<Router> for LiveRouter {
    fn from(r: Router) -> Self {
        Self::new(r)
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open requests
/// finish.
pub async fn serve(
    listener: TcpListener,
    router: impl Into<LiveRouter>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let live: LiveRouter = router.into();
    let timeout = limits.request_timeout;
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let per_address = Arc::new(PerAddress::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors, say: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let peer_ip = peer.ip().to_canonical();
        let slot = if limits.exempt.trusts(peer_ip) {
            None
        } else {
            match per_address.take(
                ClientAddr(peer_ip).budget_key(),
                limits.max_connections_per_address.max(1),
            ) {
                Some(slot) => Some(slot),
                None => {
                    // Over its share: closed at once, so one host cannot hold every slot.
                    drop(stream);
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let live = live.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let mut svc = tower_http::timeout::Timeout::with_status_code(
                    live.current(),
                    StatusCode::REQUEST_TIMEOUT,
                    timeout,
                );
                async move {
                    use tower_service::Service as _;
                    let resp: Result<Response, Infallible> =
                        svc.call(req.map(axum::body::Body::new)).await;
                    resp
                }
            });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Where a request comes from, after `server.trusted_proxies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ClientAddr {
    /// What budgets and caps count by: an IPv4 address, or an IPv6 address's /64 (one
    /// subscriber or host gets a whole /64, so counting single addresses would hand an
    /// attacker 2^64 budgets).
    pub fn budget_key(&self) -> String {
        match self.0 {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(a) = parts.extensions.get::<ClientAddr>() {
            return Ok(*a);
        }
        // Served without the middleware (a test building its own router): the peer.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_canonical())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Ok(ClientAddr(peer))
    }
}

/// The proxies whose forwarding header is believed, and which header they write.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Arc<Vec<ipnet::IpNet>>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    pub fn new(nets: Vec<ipnet::IpNet>) -> Self {
        Self::with_header(nets, ForwardedHeader::XForwardedFor)
    }

    /// Only `header` is read: a proxy that appends to `X-Forwarded-For` passes a client's own
    /// `Forwarded` through untouched, so reading both would let the client choose.
    pub fn with_header(nets: Vec<ipnet::IpNet>, header: ForwardedHeader) -> Self {
        Self {
            nets: Arc::new(nets),
            header,
        }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client address for a request from `peer` carrying `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops = forwarded_hops(headers, self.header);
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                Some(ip) => {
                    client = *ip;
                    if !self.trusts(*ip) {
                        break;
                    }
                }
                // Unknown or obfuscated: nothing further left can be believed.
                None => break,
            }
        }
        client
    }
}

/// Hops in order (client first) from `header`. `None` for a hop that is not an IP address.
fn forwarded_hops(headers: &HeaderMap, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    if header == ForwardedHeader::Forwarded {
        let forwarded: Vec<&str> = headers
            .get_all("forwarded")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let mut hops = Vec::new();
        for element in forwarded.iter().flat_map(|v| v.split(',')) {
            let hop = element
                .split(';')
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                .map(|(_, v)| parse_node(v.trim().trim_matches('"')));
            if let Some(hop) = hop {
                hops.push(hop);
            }
        }
        return hops;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| parse_node(s.trim()))
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:8080`, `[2001:db8::1]`, `[2001:db8::1]:4711` or `2001:db8::1`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let inner = rest.split(']').next()?;
        return inner.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    }
    s.parse::<SocketAddr>().ok().map(|a| a.ip().to_canonical())
}

/// Middleware: resolves the [`ClientAddr`] of every request once.
pub async fn resolve_client(
    axum::extract::State(trusted): axum::extract::State<TrustedProxies>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let client = trusted.client(peer, req.headers());
    req.extensions_mut().insert(ClientAddr(client));
    next.run(req).await
}

/// A `429` page or JSON body is built by the caller; this is the `Retry-After` value.
pub fn retry_after(seconds: i64) -> (axum::http::HeaderName, String) {
    (
        axum::http::header::RETRY_AFTER,
        seconds.clamp(1, 86_400).to_string(),
    )
}

/// A plain `503` for when the server is shedding load.
pub fn overloaded() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [retry_after(1)],
        "overloaded",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().expect("cidr")).collect())
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let a = ClientAddr("2001:db8:1:2:aaaa::1".parse().expect("ip"));
        let b = ClientAddr("2001:db8:1:2:bbbb::9".parse().expect("ip"));
        let c = ClientAddr("2001:db8:1:3::1".parse().expect("ip"));
        assert_eq!(a.budget_key(), b.budget_key());
        assert_ne!(a.budget_key(), c.budget_key());
        assert_eq!(
            ClientAddr("192.0.2.1".parse().expect("ip")).budget_key(),
            "192.0.2.1"
        );
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_peers() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(
            t.client(ip("203.0.113.9"), &h),
            ip("203.0.113.9"),
            "untrusted peer"
        );
        assert_eq!(t.client(ip("10.1.2.3"), &h), ip("198.51.100.7"));
        assert_eq!(t.client(ip("10.1.2.3"), &HeaderMap::new()), ip("10.1.2.3"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let nets = || {
            ["10.0.0.0/8", "2001:db8::/32"]
                .iter()
                .map(|n| n.parse().expect("cidr"))
                .collect()
        };
        let t = TrustedProxies::new(nets());
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        // The client forged the first entry; the proxies appended the real ones.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.0.0.5")]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        // A `Forwarded` the client sent itself is not read by an X-Forwarded-For set-up.
        let h2 = headers(&[
            ("forwarded", "for=6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(t.client(ip("10.0.0.1"), &h2), ip("198.51.100.7"));
        let t = TrustedProxies::with_header(nets(), ForwardedHeader::Forwarded);
        let h = headers(&[(
            "forwarded",
            r#"for=1.1.1.1, for="[2001:db8:cafe::17]:4711";proto=https, for=192.0.2.60:80;by=10.0.0.1"#,
        )]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("192.0.2.60"));
        // An obfuscated hop stops the walk at the last address we could believe.
        let h = headers(&[("forwarded", "for=1.1.1.1, for=_hidden, for=10.0.0.9")]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("10.0.0.9"));
        // IPv4-mapped peers are compared as IPv4.
        let t = TrustedProxies::new(nets());
        let h = headers(&[("x-forwarded-for", "198.51.100.8")]);
        assert_eq!(t.client(ip("::ffff:10.0.0.1"), &h), ip("198.51.100.8"));
    }
}
