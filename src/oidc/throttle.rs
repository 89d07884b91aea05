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
#[derive(Debug, Default)]
pub struct Budgets {
    entries: Mutex<HashMap<String, Entry>>,
}

/// Why an attempt may not proceed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Seconds until it may.
    pub wait: i64,
    /// Only attempts still in flight stand in the way (not failures): a short wait.
    pub busy: bool,
}

/// What an attempt reserved. Settle it with [`Reservation::succeed`], [`Reservation::fail`]
/// or [`Reservation::release`]; dropped unsettled (the request was cancelled, the client
/// went away mid-check) it counts as a failure, so a budget can never leak.
#[derive(Debug)]
#[must_use = "a reservation must be settled"]
pub struct Reservation<'a> {
    budgets: &'a Budgets,
    keys: Vec<(String, Rule)>,
    at: UnixTime,
    settled: bool,
}

impl Reservation<'_> {
    /// A success: clears the keys in `clear`, frees the others.
    pub fn succeed(mut self, clear: &[&str], now: UnixTime) {
        self.settled = true;
        self.budgets
            .settle(&self.keys, Outcome::Success(clear), now);
    }

    /// A failure counts against every key.
    pub fn fail(mut self, now: UnixTime) {
        self.settled = true;
        self.budgets.settle(&self.keys, Outcome::Failure, now);
    }

    /// Neither (the check could not run): the reservation is simply freed.
    pub fn release(mut self) {
        self.settled = true;
        self.budgets.settle(&self.keys, Outcome::Released, self.at);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.budgets.settle(&self.keys, Outcome::Failure, self.at);
        }
    }
}

enum Outcome<'k> {
    Success(&'k [&'k str]),
    Failure,
    Released,
}

impl Budgets {
    /// Reserves one attempt under every `(key, rule)` at once, or says why not: a key whose
    /// failures plus attempts in flight have reached its limit.
    pub fn reserve(
        &self,
        keys: Vec<(String, Rule)>,
        now: UnixTime,
    ) -> Result<Reservation<'_>, Refusal> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut refusal = None::<Refusal>;
        for (k, rule) in &keys {
            if let Some(e) = entries.get_mut(k) {
                if now >= e.start + rule.window {
                    e.start = now;
                    e.failures = 0;
                }
                if e.failures + e.in_flight >= rule.limit {
                    let r = if e.failures >= rule.limit {
                        Refusal {
                            wait: (e.start + rule.window - now).max(1),
                            busy: false,
                        }
                    } else {
                        Refusal {
                            wait: 2,
                            busy: true,
                        }
                    };
                    refusal = Some(match refusal {
                        Some(old) if !old.busy && (r.busy || old.wait >= r.wait) => old,
                        _ => r,
                    });
                }
            }
        }
        if let Some(r) = refusal {
            return Err(r);
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
        Ok(Reservation {
            budgets: self,
            keys,
            at: now,
            settled: false,
        })
    }

    fn settle(&self, keys: &[(String, Rule)], outcome: Outcome<'_>, now: UnixTime) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for (k, rule) in keys {
            let Some(e) = entries.get_mut(k) else {
                continue;
            };
            e.in_flight = e.in_flight.saturating_sub(1);
            match outcome {
                Outcome::Failure => {
                    if now >= e.start + rule.window {
                        e.start = now;
                        e.failures = 0;
                    }
                    e.failures += 1;
                }
                Outcome::Success(clear) if clear.contains(&k.as_str()) => e.failures = 0,
                Outcome::Success(_) | Outcome::Released => {}
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
        let mut busy = 0;
        for _ in 0..20 {
            match b.reserve(vec![("u:bob".into(), FIVE)], 100) {
                Ok(r) => held.push(r),
                Err(Refusal {
                    busy: true,
                    wait: 2,
                }) => busy += 1,
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!((held.len(), busy), (5, 15), "in flight only: a short wait");
        for r in held {
            r.fail(101);
        }
        assert_eq!(
            b.reserve(vec![("u:bob".into(), FIVE)], 102).err(),
            Some(Refusal {
                wait: 298,
                busy: false
            })
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
            r.fail(10);
        }
        let r = b
            .reserve(vec![("a".into(), FIVE), ("b".into(), FIVE)], 10)
            .expect("allowed");
        r.succeed(&["a"], 10);
        assert_eq!(b.exhausted("a", FIVE, 10), None);
        let r = b.reserve(vec![("b".into(), FIVE)], 10).expect("one left");
        r.fail(10);
        assert!(b.exhausted("b", FIVE, 11).is_some());
    }

    #[test]
    fn a_cancelled_attempt_counts_and_never_holds_the_budget() {
        let b = Budgets::default();
        for _ in 0..5 {
            let r = b.reserve(vec![("u:al".into(), FIVE)], 10).expect("allowed");
            drop(r); // the request went away mid-check
        }
        assert_eq!(
            b.reserve(vec![("u:al".into(), FIVE)], 11).err(),
            Some(Refusal {
                wait: 299,
                busy: false
            }),
            "counted as failures, not left in flight"
        );
        assert!(
            b.reserve(vec![("u:al".into(), FIVE)], 311).is_ok(),
            "and the window ends"
        );
    }
}
