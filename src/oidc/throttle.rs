//! Failure budgets: how many failed attempts a key (a username, a client address, a
//! device) may make in a window, with the attempt reserved *before* the expensive check, so
//! that concurrent guesses cannot all pass a check made before any of them failed.
//!
//! Kept in memory per node and capped in size: an attacker spreading attempts over N nodes
//! gets N times the budget, which still bounds guessing to a handful of tries a minute.
//! The policies built on it are in `login.rs` and `client_auth.rs`, and in the README's
//! "Security model".

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::UnixTime;

/// Entries kept at most; past it, expired windows are dropped, then the oldest.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// When the window of the counted failures began.
    start: UnixTime,
    failures: u32,
    /// Attempts reserved and not yet settled.
    in_flight: u32,
}

/// One rule: at most `limit` failures per `window` seconds for each key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub window: i64,
    pub limit: u32,
}

/// A set of failure counters.
#[derive(Default)]
pub struct Budgets {
    entries: Mutex<HashMap<String, Entry>>,
}

/// What an attempt reserved; settle it with [`Budgets::settle`].
#[derive(Debug)]
#[must_use = "a reservation must be settled"]
pub struct Reservation {
    keys: Vec<(String, Rule)>,
}

impl Budgets {
    /// Reserves one attempt under every `(key, rule)` at once. `Err(seconds)` when any key's
    /// failures plus attempts in flight have reached its limit: how long until its window
    /// ends.
    pub fn reserve(&self, keys: Vec<(String, Rule)>, now: UnixTime) -> Result<Reservation, i64> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = None::<i64>;
        for (k, rule) in &keys {
            if let Some(e) = entries.get_mut(k) {
                if now >= e.start + rule.window {
                    e.start = now;
                    e.failures = 0;
                }
                if e.failures + e.in_flight >= rule.limit {
                    let w = (e.start + rule.window - now).max(1);
                    wait = Some(wait.map_or(w, |x| x.max(w)));
                }
            }
        }
        if let Some(w) = wait {
            return Err(w);
        }
        if entries.len() + keys.len() > MAX_ENTRIES {
            Self::shrink(&mut entries, now);
        }
        for (k, _) in &keys {
            let e = entries.entry(k.clone()).or_insert(Entry {
                start: now,
                failures: 0,
                in_flight: 0,
            });
            e.in_flight += 1;
        }
        Ok(Reservation { keys })
    }

    /// Ends an attempt: a failure counts against every key; a success clears the keys in
    /// `clear_on_success` and frees the others' reservation.
    pub fn settle(&self, r: Reservation, failed: bool, clear_on_success: &[&str], now: UnixTime) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for (k, rule) in &r.keys {
            let Some(e) = entries.get_mut(k) else {
                continue;
            };
            e.in_flight = e.in_flight.saturating_sub(1);
            if failed {
                if now >= e.start + rule.window {
                    e.start = now;
                    e.failures = 0;
                }
                e.failures += 1;
            } else if clear_on_success.contains(&k.as_str()) {
                e.failures = 0;
            }
            if e.failures == 0 && e.in_flight == 0 {
                entries.remove(k);
            }
        }
    }

    /// Counts a failure that reserved nothing (a cheap check that failed).
    pub fn record_failure(&self, keys: Vec<(String, Rule)>, now: UnixTime) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() + keys.len() > MAX_ENTRIES {
            Self::shrink(&mut entries, now);
        }
        for (k, rule) in keys {
            let e = entries.entry(k).or_insert(Entry {
                start: now,
                failures: 0,
                in_flight: 0,
            });
            if now >= e.start + rule.window {
                e.start = now;
                e.failures = 0;
            }
            e.failures += 1;
        }
    }

    /// Seconds until `key` may fail again under `rule`, if it is exhausted now.
    pub fn exhausted(&self, key: &str, rule: Rule, now: UnixTime) -> Option<i64> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let e = entries.get(key)?;
        (now < e.start + rule.window && e.failures + e.in_flight >= rule.limit)
            .then(|| (e.start + rule.window - now).max(1))
    }

    fn shrink(entries: &mut HashMap<String, Entry>, now: UnixTime) {
        // Windows are at most a day long; anything older is over.
        entries.retain(|_, e| e.in_flight > 0 || now < e.start + 86_400);
        if entries.len() >= MAX_ENTRIES {
            let mut starts: Vec<UnixTime> = entries.values().map(|e| e.start).collect();
            starts.sort_unstable();
            let cutoff = starts[starts.len() / 2];
            entries.retain(|_, e| e.in_flight > 0 || e.start > cutoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE: Rule = Rule {
        window: 300,
        limit: 5,
    };

    #[test]
    fn concurrent_attempts_cannot_exceed_the_limit() {
        let b = Budgets::default();
        // Twenty attempts reserved before any has failed: only five may proceed.
        let mut held = Vec::new();
        for _ in 0..20 {
            if let Ok(r) = b.reserve(vec![("u:bob".into(), FIVE)], 100) {
                held.push(r);
            }
        }
        assert_eq!(held.len(), 5);
        for r in held {
            b.settle(r, true, &[], 101);
        }
        assert_eq!(
            b.reserve(vec![("u:bob".into(), FIVE)], 102).err(),
            Some(298)
        );
        // The window ends; the budget is back.
        assert!(b.reserve(vec![("u:bob".into(), FIVE)], 400).is_ok());
    }

    #[test]
    fn success_clears_only_the_named_keys() {
        let b = Budgets::default();
        for _ in 0..4 {
            let r = b
                .reserve(vec![("a".into(), FIVE), ("b".into(), FIVE)], 10)
                .expect("allowed");
            b.settle(r, true, &[], 10);
        }
        let r = b
            .reserve(vec![("a".into(), FIVE), ("b".into(), FIVE)], 10)
            .expect("allowed");
        b.settle(r, false, &["a"], 10);
        assert_eq!(b.exhausted("a", FIVE, 10), None);
        let r = b.reserve(vec![("b".into(), FIVE)], 10).expect("one left");
        b.settle(r, true, &[], 10);
        assert!(b.exhausted("b", FIVE, 11).is_some());
    }
}
