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
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }
}
