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
    fn reads_one_cookie_among_many() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        h.append(header::COOKIE, HeaderValue::from_static("c=3"));
        assert_eq!(read_cookie(&h, "b"), Some("2"));
        assert_eq!(read_cookie(&h, "c"), Some("3"));
        assert_eq!(read_cookie(&h, "d"), None);
    }
}
