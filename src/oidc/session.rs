//! The SSO session and the cookies of the login flow.
//!
//! The session cookie holds 256 random bits; storage keeps only their SHA-256. Cookies are
//! HttpOnly, SameSite=Lax, Path=/, without Domain. Over https they are `Secure` and carry the
//! `__Host-` prefix. For a plain-http loopback issuer (local development) they are not
//! `Secure`, and so cannot carry `__Host-` either: browsers refuse a `__Host-` cookie without
//! `Secure`.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::secret::{random_token, sha256_b64url};

#[derive(Debug, Clone)]
pub struct Cookies {
    pub secure: bool,
    pub session: String,
    pub binding: String,
    /// Marks a browser in which a user signed in before (see [`DeviceCookies`]).
    pub device: String,
    pub session_max_age: i64,
}

impl Cookies {
    pub fn new(issuer: &str, session_max_age: i64) -> Self {
        let secure = !issuer.starts_with("http://");
        let prefix = if secure { "__Host-" } else { "" };
        // Browsers scope cookies by host, not port: a suffix from the issuer keeps two
        // issuers on one host (a bridge and its mock upstream, say) from clobbering each
        // other's cookies.
        let tag = &crate::secret::sha256_b64url(issuer.as_bytes())[..6];
        Self {
            secure,
            session: format!("{prefix}oidc_bridge_session_{tag}"),
            binding: format!("{prefix}oidc_bridge_flow_{tag}"),
            device: format!("{prefix}oidc_bridge_device_{tag}"),
            session_max_age,
        }
    }

    fn cookie(&self, name: &str, value: &str, max_age: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
    }

    pub fn set_session(&self, value: &str) -> HeaderValue {
        self.cookie(&self.session, value, self.session_max_age)
    }

    pub fn clear_session(&self) -> HeaderValue {
        self.cookie(&self.session, "", 0)
    }

    pub fn set_binding(&self, value: &str) -> HeaderValue {
        self.cookie(&self.binding, value, 3600)
    }

    pub fn set_device(&self, value: &str) -> HeaderValue {
        self.cookie(&self.device, value, DEVICE_LIFETIME)
    }
}

/// How long a device cookie vouches for a browser.
pub const DEVICE_LIFETIME: i64 = 90 * 86_400;

/// Device cookies (OWASP's defence against lock-out): after a successful sign-in, the
/// browser gets a MAC'd cookie naming a random device id and (hashed) the username. A
/// sign-in attempt carrying a valid one for the same username is not subject to the
/// per-username and per-address lock-outs that an attacker can trigger; it has a small
/// budget of its own. So a person on a browser they used before can always sign in.
#[derive(Clone)]
pub struct DeviceCookies {
    key: [u8; 32],
}

impl std::fmt::Debug for DeviceCookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceCookies([redacted])")
    }
}

fn user_tag(username: &str) -> String {
    sha256_b64url(username.to_lowercase().as_bytes())[..16].to_string()
}

impl DeviceCookies {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, body: &str) -> String {
        crate::secret::b64url(&crate::secret::hmac_sha256(&self.key, body.as_bytes()))[..32]
            .to_string()
    }

    /// A new cookie value for `username`, issued at `now`.
    pub fn issue(&self, username: &str, now: i64) -> String {
        let body = format!("{}.{now}.{}", random_token(12), user_tag(username));
        format!("{body}.{}", self.mac(&body))
    }

    /// The device id of a valid, unexpired cookie issued for `username`.
    pub fn check(&self, value: &str, username: &str, now: i64) -> Option<String> {
        let (body, mac) = value.rsplit_once('.')?;
        if !crate::secret::ct_eq(self.mac(body).as_bytes(), mac.as_bytes()) {
            return None;
        }
        let mut parts = body.split('.');
        let (id, issued, tag) = (parts.next()?, parts.next()?, parts.next()?);
        let issued: i64 = issued.parse().ok()?;
        let fresh = issued <= now + 60 && now - issued < DEVICE_LIFETIME;
        (fresh && tag == user_tag(username)).then(|| id.to_string())
    }
}

/// The value of cookie `name` in the request, if sent once.
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// A fresh random cookie value and the hash under which storage keeps it.
pub fn new_secret() -> (String, String) {
    let value = random_token(32);
    let hash = sha256_b64url(value.as_bytes());
    (value, hash)
}

pub fn hash_value(value: &str) -> String {
    sha256_b64url(value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_cookies_are_host_prefixed_and_secure() {
        let c = Cookies::new("https://id.example.com", 60);
        let v = c.set_session("abc");
        let v = v.to_str().expect("ascii");
        assert!(v.starts_with("__Host-oidc_bridge_session_"), "{v}");
        assert!(v.contains("=abc; Path=/; HttpOnly; SameSite=Lax"), "{v}");
        assert_ne!(
            Cookies::new("https://a.example.com", 60).session,
            Cookies::new("https://b.example.com", 60).session
        );
        assert!(v.ends_with("; Secure"));
        assert!(!v.contains("Domain"));
        let c = Cookies::new("http://127.0.0.1:8080", 60);
        assert!(
            !c.set_session("abc")
                .to_str()
                .expect("ascii")
                .contains("Secure")
        );
    }

    #[test]
    fn device_cookies_vouch_for_one_user_and_expire() {
        let d = DeviceCookies::new([7; 32]);
        let v = d.issue("Alice", 1_000);
        assert!(d.check(&v, "alice", 2_000).is_some());
        assert!(d.check(&v, "bob", 2_000).is_none(), "another user");
        assert!(
            d.check(&v, "alice", 1_000 + DEVICE_LIFETIME).is_none(),
            "expired"
        );
        // The last character changed (to one it is not: it is `x` once in 64 values).
        let last = if v.ends_with('x') { 'y' } else { 'x' };
        let forged = format!("{}{last}", &v[..v.len() - 1]);
        assert!(d.check(&forged, "alice", 2_000).is_none(), "bad MAC");
        assert!(
            DeviceCookies::new([8; 32])
                .check(&v, "alice", 2_000)
                .is_none()
        );
    }

    #[test]
    fn reads_one_cookie_among_many() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        h.append(header::COOKIE, HeaderValue::from_static("c=3"));
        assert_eq!(read_cookie(&h, "b"), Some("2"));
        assert_eq!(read_cookie(&h, "c"), Some("3"));
        assert_eq!(read_cookie(&h, "d"), None);
    }
}
