//! Secrets that never print, random identifiers, and the hashing helpers built on OpenSSL.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A string that must never reach a log: `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used, never to print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `n` bytes from OpenSSL's CSPRNG.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    // OpenSSL's RNG only fails when it cannot be seeded, which leaves nothing safe to do.
    #[allow(clippy::expect_used)]
    openssl::rand::rand_bytes(&mut buf).expect("OpenSSL random generator failed");
    buf
}

/// A URL-safe random token carrying `bytes` bytes of entropy.
pub fn random_token(bytes: usize) -> String {
    b64url(&random_bytes(bytes))
}

pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    openssl::sha::sha256(data)
}

/// SHA-256, base64url: how opaque tokens and token ids are stored and logged.
pub fn sha256_b64url(data: &[u8]) -> String {
    b64url(&sha256(data))
}

/// Constant-time equality for equal-length inputs; unequal lengths compare false.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

/// HMAC-SHA256 (RFC 2104) over OpenSSL's SHA-256.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&sha256(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = openssl::sha::Sha256::new();
    inner.update(&k.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = openssl::sha::Sha256::new();
    outer.update(&k.map(|b| b ^ 0x5c));
    outer.update(&inner.finish());
    outer.finish()
}

/// A key derived for one purpose from the encryption key, so that no two uses share one.
pub fn derive_key(master: &[u8], purpose: &str) -> [u8; 32] {
    hmac_sha256(master, format!("oidc-bridge/v1/{purpose}").as_bytes())
}

/// How configured client secrets are stored: `hmac-sha256$` and a keyed digest.
///
/// A configured `secret` is in the config file in plain text already, so a memory-hard hash
/// of its database copy protects little, while it would cost ~60 ms of CPU and 19 MiB on
/// every authentication an attacker asks for. Keyed with a key derived from the encryption
/// key, the digest reveals nothing to someone who has the database alone, and checking it
/// costs microseconds. Operators who keep only a hash (`secret_hash`, argon2id) keep that.
#[derive(Clone)]
pub struct ClientSecretKey([u8; 32]);

pub const CLIENT_SECRET_TAG: &str = "hmac-sha256$";

impl fmt::Debug for ClientSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecretKey([redacted])")
    }
}

impl ClientSecretKey {
    /// From a key derived for this purpose (`Sealer::derive("client-secret")`).
    pub fn new(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// The stored form of `secret`.
    pub fn digest(&self, secret: &str) -> String {
        format!(
            "{CLIENT_SECRET_TAG}{}",
            b64url(&hmac_sha256(&self.0, secret.as_bytes()))
        )
    }

    /// Whether `stored` is a keyed digest (and not an argon2 PHC string).
    pub fn is_digest(stored: &str) -> bool {
        stored.starts_with(CLIENT_SECRET_TAG)
    }

    /// Constant-time check of `presented` against a stored digest.
    pub fn matches(&self, stored: &str, presented: &str) -> bool {
        ct_eq(self.digest(presented).as_bytes(), stored.as_bytes())
    }
}

/// argon2id with the crate's default parameters (m=19 MiB, t=2, p=1), as a PHC string.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    use argon2::PasswordHasher as _;
    use argon2::password_hash::SaltString;
    let salt = SaltString::encode_b64(&random_bytes(16))?;
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Verifies a password against a PHC string. A malformed hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::PasswordVerifier as _;
    match argon2::PasswordHash::new(phc) {
        Ok(hash) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// True when `phc` is an argon2id PHC string this crate can verify.
pub fn is_argon2id_phc(phc: &str) -> bool {
    argon2::PasswordHash::new(phc).is_ok_and(|h| h.algorithm.as_str() == "argon2id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = SecretString::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
    }

    #[test]
    fn password_round_trip() {
        let phc = hash_password("pa:ss+w%rd/").expect("hash");
        assert!(is_argon2id_phc(&phc));
        assert!(verify_password("pa:ss+w%rd/", &phc));
        assert!(!verify_password("pa:ss+w%rd", &phc));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn client_secret_digests_are_keyed() {
        let a = ClientSecretKey::new([1; 32]);
        let b = ClientSecretKey::new([2; 32]);
        let stored = a.digest("s3cret+with%odd:chars");
        assert!(ClientSecretKey::is_digest(&stored));
        assert!(a.matches(&stored, "s3cret+with%odd:chars"));
        assert!(!a.matches(&stored, "s3cret+with%odd:chars "));
        assert!(!b.matches(&stored, "s3cret+with%odd:chars"), "another key");
    }

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }
}
