//! The google persona's wire helpers: a request's bearer token, the Directory's paging and
//! group resources.

use axum::http::{HeaderMap, header};
use serde_json::{Value, json};

use crate::secret::sha256;

/// The largest `maxResults`.
const MAX_PAGE: usize = 200;

/// The `Authorization: Bearer` token of a Directory call.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The entries `start..end` of `total` that a request asks for. The page token is the
/// offset of a page's first entry; `maxResults` is clamped to 1..=200.
pub fn page_window(total: usize, token: Option<&str>, max: Option<&str>) -> Option<(usize, usize)> {
    let max = max.map(str::trim).filter(|v| !v.is_empty());
    let token = token.map(str::trim).filter(|v| !v.is_empty());
    let size = match max.map(str::parse::<i64>) {
        None => MAX_PAGE,
        Some(Ok(n)) => usize::try_from(n.clamp(1, MAX_PAGE as i64)).unwrap_or(MAX_PAGE),
        Some(Err(_)) => return None,
    };
    let start = match token.map(str::parse::<usize>) {
        None => 0,
        Some(Ok(s)) if s <= total => s,
        Some(_) => return None,
    };
    Some((start, start.saturating_add(size).min(total)))
}

/// A Directory API group resource.
pub fn group_json(email: &str, name: &str) -> Value {
    json!({
        "kind": "admin#directory#group",
        "id": format!("0{}", hex(&sha256(email.as_bytes())[..7])),
        "etag": "\"mock\"",
        "email": email,
        "name": name,
        "directMembersCount": "0",
        "description": "",
        "adminCreated": true,
    })
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
