//! Throttling of failed logins, per username and per client IP, in fixed windows.
//!
//! Kept in memory per node: an attacker spreading attempts over N nodes gets N times the
//! budget, which still bounds a guessing attack to a handful of tries a minute.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::UnixTime;

pub struct Throttle {
    window: i64,
    per_user: u32,
    per_ip: u32,
    counts: Mutex<HashMap<String, (UnixTime, u32)>>,
}

impl Throttle {
    pub fn new(window: i64, per_user: u32, per_ip: u32) -> Self {
        Self {
            window,
            per_user,
            per_ip,
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn keys(username: &str, ip: &str) -> [(String, bool); 2] {
        [
            (format!("u:{}", username.to_lowercase()), true),
            (format!("ip:{ip}"), false),
        ]
    }

    /// Seconds to wait before another attempt is allowed, or `None` if one is allowed now.
    pub fn blocked_for(&self, username: &str, ip: &str, now: UnixTime) -> Option<i64> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        Self::keys(username, ip).iter().find_map(|(k, is_user)| {
            let limit = if *is_user { self.per_user } else { self.per_ip };
            match counts.get(k) {
                Some((start, n)) if *n >= limit && now < start + self.window => {
                    Some(start + self.window - now)
                }
                _ => None,
            }
        })
    }

    pub fn record_failure(&self, username: &str, ip: &str, now: UnixTime) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() > 100_000 {
            counts.retain(|_, (start, _)| now < *start + self.window);
        }
        for (k, _) in Self::keys(username, ip) {
            let e = counts.entry(k).or_insert((now, 0));
            if now >= e.0 + self.window {
                *e = (now, 0);
            }
            e.1 += 1;
        }
    }

    pub fn record_success(&self, username: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.remove(&format!("u:{}", username.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let t = Throttle::new(300, 3, 10);
        for _ in 0..3 {
            assert_eq!(t.blocked_for("Alice", "1.2.3.4", 100), None);
            t.record_failure("alice", "1.2.3.4", 100);
        }
        assert_eq!(t.blocked_for("ALICE", "9.9.9.9", 110), Some(290));
        assert_eq!(
            t.blocked_for("bob", "1.2.3.4", 110),
            None,
            "ip budget is larger"
        );
        assert_eq!(t.blocked_for("alice", "1.2.3.4", 400), None);
        for i in 0..10 {
            t.record_failure(&format!("u{i}"), "5.5.5.5", 500);
        }
        assert!(
            t.blocked_for("fresh", "5.5.5.5", 501).is_some(),
            "per-IP limit"
        );
    }
}
