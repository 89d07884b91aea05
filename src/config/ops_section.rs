//! The `audit` and `admin` sections.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;

use super::settings::{AdminConfig, AuditConfig, AuditOutput};
use super::tree::Reader;
use crate::secret::SecretString;

const AUDIT: &[&str] = &["output"];
const ADMIN: &[&str] = &["token", "token_hash", "listen"];

/// `audit.output`: `stdout`, or a file path (relative to the working directory).
pub(super) fn read_audit(r: &mut Reader, v: Option<&Value>) -> AuditConfig {
    let o = r.obj(v, "audit", AUDIT);
    let output = r.string(&o, "output").and_then(|s| match s.as_str() {
        "" => {
            r.problem("audit.output", "must be `stdout` or a file path");
            None
        }
        "stdout" | "-" => Some(AuditOutput::Stdout),
        path => Some(AuditOutput::File(PathBuf::from(path))),
    });
    AuditConfig { output }
}

/// `admin`: the bearer token (plain, for `${ENV}`; or its argon2id hash) and an optional
/// listener of its own.
pub(super) fn read_admin(r: &mut Reader, v: Option<&Value>) -> AdminConfig {
    let o = r.obj(v, "admin", ADMIN);
    let token = r.string(&o, "token").map(SecretString::new);
    let token_hash = r.string(&o, "token_hash");
    if let Some(t) = &token
        && t.expose().len() < 32
    {
        r.problem(
            "admin.token",
            "must be at least 32 characters (make one with `openssl rand -base64 32`)",
        );
    }
    if let Some(h) = &token_hash
        && !crate::secret::is_argon2id_phc(h)
    {
        r.problem(
            "admin.token_hash",
            "is not an argon2id PHC string; make one with `oidc-bridge hash-password`",
        );
    }
    if token.is_some() && token_hash.is_some() {
        r.problem("admin.token_hash", "give `token` or `token_hash`, not both");
    }
    let listen = r.string(&o, "listen").and_then(|s| {
        let parsed = s.parse::<SocketAddr>();
        if parsed.is_err() {
            r.problem(
                "admin.listen",
                format!("`{s}` is not an address such as 127.0.0.1:9091"),
            );
        }
        parsed.ok()
    });
    if listen.is_some() && token.is_none() && token_hash.is_none() {
        r.problem(
            "admin.listen",
            "is set but the admin API is off: set `admin.token` or `admin.token_hash`",
        );
    }
    AdminConfig {
        token,
        token_hash,
        listen,
    }
}
