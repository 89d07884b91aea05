//! A connector's `private_key_jwt` towards its upstream (RFC 7523 §2.2): the key it signs
//! client assertions with, so that no upstream secret is stored. For Entra ID, the
//! certificate uploaded to the app registration (certificate credentials): its thumbprints
//! go in the assertion's header (`x5t#S256`, and `x5t` for older tenants).

use base64::Engine as _;

use super::connector_kinds::ConnectorKind;
use super::tree::{Obj, Reader};
use crate::secret::SecretString;

pub const UPSTREAM_KEY_KEYS: &[&str] = &[
    "private_key_file",
    "private_key",
    "private_key_id",
    "certificate_file",
    "certificate",
];

/// The key a connector signs its client assertions with.
#[derive(Debug, Clone)]
pub struct UpstreamClientKey {
    /// An RSA private key, PEM (PKCS#8 or PKCS#1); assertions are RS256.
    pub private_key: SecretString,
    /// The `kid` the upstream knows the key by (Okta, generic OIDC).
    pub key_id: Option<String>,
    /// azure: the certificate's SHA-1 and SHA-256 thumbprints, base64url.
    pub x5t: Option<String>,
    pub x5t_s256: Option<String>,
}

/// Reads the key when `token_endpoint_auth_method` is `private_key_jwt`; refuses key keys
/// otherwise, and the method on connectors whose upstream has no such thing.
pub fn read_upstream_key(
    r: &mut Reader,
    o: &Obj<'_>,
    kind: ConnectorKind,
    wanted: bool,
) -> Option<UpstreamClientKey> {
    if !wanted {
        for k in UPSTREAM_KEY_KEYS {
            if o.get(k).is_some() {
                r.problem(
                    o.key_path(k),
                    "is used only with token_endpoint_auth_method: private_key_jwt",
                );
            }
        }
        return None;
    }
    if !matches!(
        kind,
        ConnectorKind::Oidc | ConnectorKind::Okta | ConnectorKind::Azure
    ) {
        r.problem(
            o.key_path("token_endpoint_auth_method"),
            "private_key_jwt is offered for oidc, okta and azure connectors",
        );
        return None;
    }
    let pem = super::checks::read_pem(
        r,
        o,
        ("private_key_file", "private_key"),
        "private_key_jwt needs the connector's private key",
    )?;
    let key = match openssl::pkey::PKey::private_key_from_pem(pem.as_bytes()) {
        Ok(k) if k.rsa().is_ok() => k,
        _ => {
            r.problem(
                o.key_path("private_key_file"),
                "is not an RSA private key in PEM (PKCS#8 or PKCS#1)",
            );
            return None;
        }
    };
    let mut out = UpstreamClientKey {
        private_key: SecretString::new(pem),
        key_id: r.string(o, "private_key_id"),
        x5t: None,
        x5t_s256: None,
    };
    let has_cert = o.get("certificate_file").is_some() || o.get("certificate").is_some();
    if has_cert {
        let cert =
            super::checks::read_pem(r, o, ("certificate_file", "certificate"), "the certificate")?;
        let (x5t, x5t_s256) = thumbprints(r, o, &cert, &key)?;
        out.x5t = Some(x5t);
        out.x5t_s256 = Some(x5t_s256);
    } else if kind == ConnectorKind::Azure {
        r.problem(
            o.key_path("certificate_file"),
            "is required: Entra ID names the key by its certificate's thumbprint",
        );
    }
    Some(out)
}

/// The certificate's SHA-1 and SHA-256 thumbprints, once it is known to hold `key`'s
/// public half.
fn thumbprints(
    r: &mut Reader,
    o: &Obj<'_>,
    pem: &str,
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
) -> Option<(String, String)> {
    let path = o.key_path("certificate_file");
    let Ok(cert) = openssl::x509::X509::from_pem(pem.as_bytes()) else {
        r.problem(path, "is not a PEM certificate");
        return None;
    };
    if !cert.public_key().is_ok_and(|p| p.public_eq(key)) {
        r.problem(path, "does not hold the private key's public key");
        return None;
    }
    let b64 = |d: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d);
    let sha1 = cert.digest(openssl::hash::MessageDigest::sha1()).ok()?;
    let sha256 = cert.digest(openssl::hash::MessageDigest::sha256()).ok()?;
    Some((b64(&sha1), b64(&sha256)))
}
