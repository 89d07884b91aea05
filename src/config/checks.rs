//! Checks more than one section uses.

use super::duration::Seconds;
use super::tree::{Obj, Reader};

pub fn positive(r: &mut Reader, o: &Obj<'_>, key: &str, default: Seconds) -> Seconds {
    match r.duration(o, key) {
        Some(d) if d.get() <= 0 => {
            r.problem(o.key_path(key), "must be longer than 0s");
            default
        }
        Some(d) => d,
        None => default,
    }
}

/// True for hosts that never leave the machine, where plain `http` is acceptable.
pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub fn check_database(r: &mut Reader, path: &str, s: &str) {
    let ok =
        s.starts_with("sqlite:") || s.starts_with("postgres://") || s.starts_with("postgresql://");
    if !ok {
        r.problem(
            path,
            "must be sqlite://FILE, sqlite::memory: or postgres://USER:PASS@HOST/DB",
        );
    }
}

/// An absolute URI without a fragment, https unless on a loopback host.
pub(super) fn check_uri(r: &mut Reader, path: String, uri: &str) {
    match url::Url::parse(uri) {
        Ok(u) if u.fragment().is_some() => {
            r.problem(path, "must not contain a fragment (RFC 6749 §3.1.2)")
        }
        Ok(u) if u.scheme() == "http" && !u.host_str().is_some_and(is_loopback_host) => {
            r.problem(path, "uses plain http on a non-loopback host; use https")
        }
        Ok(_) => {}
        Err(_) => r.problem(path, format!("`{uri}` is not an absolute URI")),
    }
}

/// A PEM read from the file `file_key` names, or given inline under `inline_key` (one of
/// them); `needed` says what for, in the problem when neither is there.
pub(super) fn read_pem(
    r: &mut Reader,
    o: &Obj<'_>,
    (file_key, inline_key): (&str, &str),
    needed: &str,
) -> Option<String> {
    match (r.string(o, file_key), r.string(o, inline_key)) {
        (Some(file), None) => std::fs::read_to_string(&file)
            .map_err(|e| r.problem(o.key_path(file_key), format!("cannot read `{file}`: {e}")))
            .ok(),
        (None, Some(pem)) => Some(pem),
        _ => {
            r.problem(
                o.key_path(file_key),
                format!("{needed}: {file_key} or {inline_key} (one of them)"),
            );
            None
        }
    }
}
