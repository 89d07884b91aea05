//! Time, as the rest of the crate sees it.
//!
//! Nothing outside this module reads the wall clock (`clippy.toml` enforces it). Every
//! issuance and every expiry check asks a [`Clock`], which is what lets tests and the mock
//! IdP move time without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch.
pub type UnixTime = i64;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> UnixTime;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned read of the wall clock
    fn now(&self) -> UnixTime {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// A clock that follows the system clock shifted by an offset, or stands frozen.
///
/// Used by tests and by mock mode's `/mock/clock`.
#[derive(Debug)]
pub struct AdjustableClock {
    offset: AtomicI64,
    /// `i64::MIN` means "not frozen".
    frozen_at: AtomicI64,
}

impl Default for AdjustableClock {
    fn default() -> Self {
        Self {
            offset: AtomicI64::new(0),
            frozen_at: AtomicI64::new(i64::MIN),
        }
    }
}

impl AdjustableClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Moves time forward (or back, with a negative value) by `seconds`.
    pub fn advance(&self, seconds: i64) {
        if self.frozen_at.load(Ordering::SeqCst) != i64::MIN {
            self.frozen_at.fetch_add(seconds, Ordering::SeqCst);
        } else {
            self.offset.fetch_add(seconds, Ordering::SeqCst);
        }
    }

    pub fn set_offset(&self, seconds: i64) {
        self.frozen_at.store(i64::MIN, Ordering::SeqCst);
        self.offset.store(seconds, Ordering::SeqCst);
    }

    pub fn freeze_at(&self, at: UnixTime) {
        self.frozen_at.store(at, Ordering::SeqCst);
    }

    pub fn offset(&self) -> i64 {
        self.offset.load(Ordering::SeqCst)
    }

    /// The current virtual time: `Clock::now` without importing the trait.
    pub fn current(&self) -> UnixTime {
        Clock::now(self)
    }

    pub fn frozen_at(&self) -> Option<UnixTime> {
        match self.frozen_at.load(Ordering::SeqCst) {
            i64::MIN => None,
            t => Some(t),
        }
    }
}

impl Clock for AdjustableClock {
    fn now(&self) -> UnixTime {
        match self.frozen_at() {
            Some(t) => t,
            None => SystemClock.now() + self.offset(),
        }
    }
}

/// Formats a Unix time as RFC 3339 (UTC), for humans and JSON.
pub fn rfc3339(t: UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjustable_clock_moves_and_freezes() {
        let clock = AdjustableClock::new();
        let real = SystemClock.now();
        clock.advance(3600);
        assert!(clock.now() >= real + 3600);
        clock.freeze_at(1_000);
        clock.advance(5);
        assert_eq!(clock.now(), 1_005);
        clock.set_offset(0);
        assert!(clock.now() >= real);
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
