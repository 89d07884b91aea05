//! Pending requests: a request that needs a page is stored (`auth_requests`) with a CSRF
//! token and bound to the browser by a cookie, charged to the address that started it.

use axum::http::{HeaderMap, HeaderValue, StatusCode};

use super::error::AuthorizeError;
use super::flows::Flows;
use super::request::AuthRequest;
use crate::model::AuthRequestRecord;
use crate::oidc::params::Params;
use crate::oidc::session::{hash_value, new_secret, read_cookie};
use crate::oidc::throttle::Rule;
use crate::secret::{ct_eq, random_token};
use crate::server::ClientAddr;

/// How long a login or consent page stays usable.
const PENDING_LIFETIME: i64 = 900;

/// How long the pending-request budget's window is: `server.pending_requests_per_minute`
/// per address in it. With requests capped at 16 KiB (a stored row holds under 8 KiB) and
/// rows purged 15 minutes after they were created (at most 5 more until the purge runs),
/// one address can hold at most 20 × that many rows: 120 a minute ≈ 19 MB.
pub const PENDING_WINDOW: i64 = 60;

impl Flows {
    /// Counts a request that may store a pending row against its address's budget.
    fn charge_pending(&self, addr: ClientAddr) -> Result<(), AuthorizeError> {
        let now = self.clock.now();
        let key = format!("pending:{}", addr.budget_key());
        let rule = Rule {
            window: PENDING_WINDOW,
            limit: self.pending_per_minute,
        };
        if let Some(wait) = self.pending_budgets.exhausted(&key, rule, now) {
            tracing::info!(ip = %addr, retry_after = wait, "authorization requests throttled");
            return Err(AuthorizeError::page_with(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-in attempts from your network. Wait a minute and try again.",
            ));
        }
        self.pending_budgets.record_failure(vec![(key, rule)], now);
        Ok(())
    }

    /// The stored form of a pending request, created or updated, plus a binding cookie to
    /// set. A new one is charged to `charge`'s budget first.
    pub(crate) fn pending(
        &self,
        headers: &HeaderMap,
        req: &AuthRequest,
        existing: Option<AuthRequestRecord>,
        session_id: Option<String>,
        charge: Option<ClientAddr>,
    ) -> Result<(AuthRequestRecord, Option<HeaderValue>), AuthorizeError> {
        let json = serde_json::to_string(req).map_err(|e| AuthorizeError::internal(&e))?;
        let now = self.clock.now();
        if let Some(mut r) = existing {
            r.request = json;
            r.session_id = session_id.or(r.session_id);
            return Ok((r, None));
        }
        if let Some(addr) = charge {
            self.charge_pending(addr)?;
        }
        let (binding_hash, cookie) = match read_cookie(headers, &self.cookies.binding) {
            Some(v) => (hash_value(v), None),
            None => {
                let (v, h) = new_secret();
                (h, Some(self.cookies.set_binding(&v)))
            }
        };
        Ok((
            AuthRequestRecord {
                id: random_token(16),
                client_id: req.client_id.to_string(),
                request: json,
                csrf: random_token(24),
                binding_hash,
                session_id,
                created_at: now,
                expires_at: now + PENDING_LIFETIME,
            },
            cookie,
        ))
    }

    /// Loads a pending request posted back by a form, checking expiry, CSRF token and the
    /// browser-binding cookie.
    pub async fn load_pending(
        &self,
        headers: &HeaderMap,
        form: &Params,
    ) -> Result<(AuthRequestRecord, AuthRequest), AuthorizeError> {
        let expired = || {
            AuthorizeError::titled(
                StatusCode::BAD_REQUEST,
                "Sign-in expired",
                "This sign-in page has expired. Go back to the application and start again.",
            )
        };
        let id = form.get("request").ok_or_else(expired)?;
        let record = match self.storage.get_auth_request(id).await? {
            Some(r) if r.expires_at > self.clock.now() => r,
            _ => return Err(expired()),
        };
        let csrf_ok = form
            .get("csrf")
            .is_some_and(|c| ct_eq(c.as_bytes(), record.csrf.as_bytes()));
        let bound = read_cookie(headers, &self.cookies.binding)
            .is_some_and(|v| ct_eq(hash_value(v).as_bytes(), record.binding_hash.as_bytes()));
        if !csrf_ok || !bound {
            return Err(AuthorizeError::titled(
                StatusCode::FORBIDDEN,
                "Sign-in refused",
                "The form could not be verified (missing or wrong CSRF token). Go back to the application and start again.",
            ));
        }
        let req: AuthRequest =
            serde_json::from_str(&record.request).map_err(|e| AuthorizeError::internal(&e))?;
        Ok((record, req))
    }
}
