//! Fault injection: rules as data. A rule matches an endpoint, optionally a client_id or
//! grant_type; its effect is an OAuth error, an HTTP status, a delay, or a dropped
//! connection; it holds for N matching requests or until cleared.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Effect {
    /// An OAuth error body (`{"error", "error_description"}`) with `status` (default 400).
    OauthError {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
        #[serde(default)]
        status: Option<u16>,
    },
    /// A bare HTTP status with an optional body.
    Status {
        status: u16,
        #[serde(default)]
        body: Option<String>,
    },
    /// Waits this long, then answers normally.
    DelayMs(u64),
    /// Closes the connection without a complete response.
    Drop,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub id: String,
    /// `token`, `authorize`, `userinfo`, `jwks`, `discovery`, `introspect`, `revoke`,
    /// `logout`, `login`, `consent`, `graph`, or `*`.
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_type: Option<String>,
    pub effect: Effect,
    /// How many matching requests it hits; absent: until cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    /// How many it has hit.
    #[serde(default)]
    pub hits: u32,
}

pub const ENDPOINTS: &[&str] = &[
    "token",
    "authorize",
    "userinfo",
    "jwks",
    "discovery",
    "introspect",
    "revoke",
    "logout",
    "login",
    "consent",
    "graph",
    "*",
];

#[derive(Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
}

impl Faults {
    pub fn add(&self, mut rule: Rule) -> Result<Rule, String> {
        if !ENDPOINTS.contains(&rule.endpoint.as_str()) {
            return Err(format!(
                "endpoint `{}` is not one of {}",
                rule.endpoint,
                ENDPOINTS.join(", ")
            ));
        }
        if rule.times == Some(0) {
            return Err(
                "times must be at least 1 (omit it for a rule that holds until cleared)".into(),
            );
        }
        if let Effect::Status { status, .. }
        | Effect::OauthError {
            status: Some(status),
            ..
        } = &rule.effect
            && !(200..=599).contains(status)
        {
            // 1xx are interim answers, not something a fault can end a request with.
            return Err(format!(
                "status {status} is not a final HTTP status (200 to 599)"
            ));
        }
        rule.hits = 0;
        if rule.id.is_empty() {
            rule.id = crate::secret::random_token(6);
        }
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(rule.clone());
        Ok(rule)
    }

    pub fn list(&self) -> Vec<Rule> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub fn remove(&self, id: &str) -> bool {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let before = rules.len();
        rules.retain(|r| r.id != id);
        rules.len() != before
    }

    /// The effect of the first rule that matches, counting the hit; spent rules go.
    pub fn take(
        &self,
        endpoint: &str,
        client_id: Option<&str>,
        grant_type: Option<&str>,
    ) -> Option<Rule> {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let i = rules.iter().position(|r| {
            (r.endpoint == "*" || r.endpoint == endpoint)
                && r.client_id.as_deref().is_none_or(|c| Some(c) == client_id)
                && r.grant_type
                    .as_deref()
                    .is_none_or(|g| Some(g) == grant_type)
        })?;
        rules[i].hits += 1;
        let hit = rules[i].clone();
        if rules[i].times.is_some_and(|t| rules[i].hits >= t) {
            rules.remove(i);
        }
        Some(hit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(endpoint: &str, times: Option<u32>) -> Rule {
        Rule {
            id: String::new(),
            endpoint: endpoint.into(),
            client_id: Some("a".into()),
            grant_type: None,
            effect: Effect::Status {
                status: 503,
                body: None,
            },
            times,
            hits: 0,
        }
    }

    #[test]
    fn a_one_shot_rule_hits_once_and_filters_apply() {
        let f = Faults::default();
        f.add(rule("token", Some(1))).expect("add");
        assert!(f.take("token", Some("b"), None).is_none(), "other client");
        assert!(
            f.take("userinfo", Some("a"), None).is_none(),
            "other endpoint"
        );
        assert!(f.take("token", Some("a"), None).is_some());
        assert!(f.take("token", Some("a"), None).is_none(), "spent");
        f.add(rule("*", None)).expect("add");
        for _ in 0..3 {
            assert!(
                f.take("jwks", Some("a"), None).is_some(),
                "holds until cleared"
            );
        }
        f.clear();
        assert!(f.take("jwks", Some("a"), None).is_none());
        assert!(f.add(rule("nowhere", None)).is_err());
    }
}
