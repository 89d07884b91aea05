//! Private keys at rest: AES-256-GCM under the configured encryption key.
//!
//! Layout: version byte `1`, 12-byte nonce, ciphertext, 16-byte tag. The key id is the
//! associated data, so a sealed key cannot be moved onto another row.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};

use crate::config::{Config, DatabaseKind, EncryptionKey};
use crate::secret::random_bytes;

const VERSION: u8 = 1;

#[derive(Clone)]
pub struct Sealer {
    key: EncryptionKey,
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "cannot decrypt signing key `{0}`: the encryption key differs from the one that sealed it"
    )]
    WrongKey(String),
    #[error("encryption failed: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

impl Sealer {
    pub fn new(key: EncryptionKey) -> Self {
        Self { key }
    }

    /// A key for `purpose`, derived from the encryption key (HMAC-SHA256), so that every
    /// node sharing the encryption key derives the same one.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        crate::secret::derive_key(&self.key.0, purpose)
    }

    pub fn seal(&self, plain: &[u8], kid: &str) -> Result<Vec<u8>, SealError> {
        let nonce = random_bytes(12);
        let mut tag = [0u8; 16];
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key.0,
            Some(&nonce),
            kid.as_bytes(),
            plain,
            &mut tag,
        )?;
        let mut out = Vec::with_capacity(1 + 12 + ct.len() + 16);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8], kid: &str) -> Result<Vec<u8>, SealError> {
        let wrong = || SealError::WrongKey(kid.to_string());
        if sealed.len() < 1 + 12 + 16 || sealed[0] != VERSION {
            return Err(wrong());
        }
        let (nonce, rest) = sealed[1..].split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key.0,
            Some(nonce),
            kid.as_bytes(),
            ct,
            tag,
        )
        .map_err(|_| wrong())
    }
}

/// Where the encryption key came from, for the start-up log.
#[derive(Debug, PartialEq, Eq)]
pub enum KeySource {
    Config,
    Environment,
    /// Generated beside the SQLite file (`true` when created just now).
    File(PathBuf, bool),
    /// In-memory database: a key that lives as long as the process.
    Ephemeral,
}

pub const ENV_VAR: &str = "OIDC_BRIDGE_ENCRYPTION_KEY";

/// Finds the key that seals private signing keys: `signing.encryption_key`, else
/// `$OIDC_BRIDGE_ENCRYPTION_KEY`, else (SQLite file only) `<database>.key`, created with mode
/// 0600 when absent.
pub fn resolve_key(config: &Config) -> Result<(EncryptionKey, KeySource), String> {
    if let Some(k) = &config.signing.encryption_key {
        return Ok((k.clone(), KeySource::Config));
    }
    if let Ok(text) = std::env::var(ENV_VAR) {
        let key = EncryptionKey::parse(&text)
            .ok_or_else(|| format!("{ENV_VAR} must be 32 bytes written as base64 or hex"))?;
        return Ok((key, KeySource::Environment));
    }
    if config.database.kind() == DatabaseKind::Postgres {
        return Err(format!(
            "PostgreSQL needs signing.encryption_key (or {ENV_VAR}) shared by every node"
        ));
    }
    match config.database.sqlite_file() {
        None => Ok((EncryptionKey(random_array()), KeySource::Ephemeral)),
        Some(db) => {
            let path = key_file_for(&db);
            let (key, created) = read_or_create_key_file(&path)?;
            Ok((key, KeySource::File(path, created)))
        }
    }
}

fn random_array() -> [u8; 32] {
    let mut k = [0u8; 32];
    k.copy_from_slice(&random_bytes(32));
    k
}

pub fn key_file_for(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

fn read_or_create_key_file(path: &Path) -> Result<(EncryptionKey, bool), String> {
    match std::fs::read_to_string(path) {
        Ok(text) => EncryptionKey::parse(&text)
            .map(|k| (k, false))
            .ok_or_else(|| format!("{} does not hold a 32-byte base64 key", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = random_array();
            let text = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key);
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts
                .open(path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            writeln!(f, "{text}").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok((EncryptionKey(key), true))
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_binds_kid_and_key() {
        let s = Sealer::new(EncryptionKey([7; 32]));
        let sealed = s.seal(b"private", "kid-1").expect("seal");
        assert_eq!(s.open(&sealed, "kid-1").expect("open"), b"private");
        assert!(s.open(&sealed, "kid-2").is_err(), "moved to another kid");
        let other = Sealer::new(EncryptionKey([8; 32]));
        assert!(other.open(&sealed, "kid-1").is_err(), "another key");
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite.key");
        let (k1, created) = read_or_create_key_file(&path).expect("create");
        assert!(created);
        let (k2, created) = read_or_create_key_file(&path).expect("read");
        assert!(!created);
        assert_eq!(k1, k2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
