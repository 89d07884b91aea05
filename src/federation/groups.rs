//! One group-normalization pipeline for every connector (`connectors[].groups`), with a
//! trace that explains what happened to each upstream group.
//!
//! Per group, in order: `map` (GUID or name → name; an Azure GUID with no name is dropped or
//! kept per `unmapped`), `case`, `slugify` (Backstage-safe
//! `^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$`, at most 63 characters), `include` / `exclude`
//! (regexes on that normalized name), then `prefix` + `prefix_separator`. The result is
//! deduplicated and sorted; groups that collide after normalization are reported, not
//! silently merged.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::config::{ClientGroups, GroupCase, GroupRules, Unmapped};

/// An upstream group as found: its value, where it came from, and (Azure, from Graph) its
/// display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawGroup {
    pub value: String,
    pub source: String,
    pub display_name: Option<String>,
}

/// What happened to one upstream group.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Step {
    pub input: String,
    pub source: String,
    /// The final name, when kept.
    pub output: Option<String>,
    /// How it got there, or why it was dropped.
    pub why: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Collision {
    pub group: String,
    pub inputs: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Outcome {
    pub groups: Vec<String>,
    pub steps: Vec<Step>,
    pub collisions: Vec<Collision>,
}

/// Reads the group claims named by `paths` (dotted, e.g. `realm_access.roles`): a string or
/// an array of strings each.
pub fn extract(claims: &Value, paths: &[String]) -> Vec<RawGroup> {
    let mut out = Vec::new();
    for path in paths {
        let mut v = claims;
        for part in path.split('.') {
            v = &v[part];
        }
        let values: Vec<&str> = match v {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for value in values {
            out.push(RawGroup {
                value: value.to_string(),
                source: path.clone(),
                display_name: None,
            });
        }
    }
    out
}

pub fn looks_like_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Lowercase; every run of characters outside `[a-z0-9_.-]` becomes `-`; repeated `-`
/// collapse; the ends are trimmed to letters and digits; at most 63 characters.
pub fn slugify(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.to_lowercase().chars() {
        let keep = c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.' || c == '-';
        let c = if keep { c } else { '-' };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    let trimmed: &str = out.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let mut t: String = trimmed.chars().take(63).collect();
    while t.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        t.pop();
    }
    t
}

pub fn normalize(rules: &GroupRules, raw: &[RawGroup]) -> Outcome {
    let mut steps = Vec::new();
    let mut finals: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for g in raw {
        let mut why = Vec::new();
        let output = normalize_one(rules, g, &mut why);
        if let Some(name) = &output {
            finals
                .entry(name.clone())
                .or_default()
                .push(g.value.clone());
        }
        steps.push(Step {
            input: g.value.clone(),
            source: g.source.clone(),
            output,
            why,
        });
    }
    let collisions = collisions(&finals);
    Outcome {
        groups: finals.into_keys().collect(),
        steps,
        collisions,
    }
}

/// One upstream group through the pipeline: its final name, or `None` when a step dropped
/// it. Each step that changed something says so in `why`.
fn normalize_one(rules: &GroupRules, g: &RawGroup, why: &mut Vec<String>) -> Option<String> {
    let mut name = match (rules.map.get(&g.value), &g.display_name) {
        (Some(mapped), _) => {
            why.push(format!("mapped to \"{mapped}\""));
            mapped.clone()
        }
        (None, Some(display)) if rules.trust_display_names => {
            why.push(format!("named \"{display}\" by Graph"));
            display.clone()
        }
        (None, _) if looks_like_guid(&g.value) => match rules.unmapped {
            Unmapped::Drop => {
                why.push("dropped: a GUID with no name in `map` (unmapped: drop)".into());
                return None;
            }
            Unmapped::Keep => {
                why.push("a GUID with no name, kept (unmapped: keep)".into());
                g.value.clone()
            }
        },
        (None, _) => g.value.clone(),
    };
    if rules.case == GroupCase::Lower && name != name.to_lowercase() {
        name = name.to_lowercase();
        why.push("lowercased".into());
    }
    if rules.slugify {
        let slug = slugify(&name);
        if slug != name {
            why.push(format!("slugified to \"{slug}\""));
        }
        name = slug;
        if name.is_empty() {
            why.push("dropped: nothing left after slugify".into());
            return None;
        }
    }
    if !rules.include.is_empty() {
        match rules.include.iter().find(|re| re.is_match(&name)) {
            Some(re) => why.push(format!("included by /{}/", re.as_str())),
            None => {
                why.push("dropped: matches no `include` pattern".into());
                return None;
            }
        }
    }
    if let Some(re) = rules.exclude.iter().find(|re| re.is_match(&name)) {
        why.push(format!("dropped: excluded by /{}/", re.as_str()));
        return None;
    }
    if let Some(prefix) = &rules.prefix {
        name = format!("{prefix}{}{name}", rules.prefix_separator);
        why.push(format!(
            "prefixed with \"{prefix}{}\"",
            rules.prefix_separator
        ));
    }
    if why.is_empty() {
        why.push("kept as is".into());
    }
    Some(name)
}

/// Final names more than one distinct upstream group became.
fn collisions(finals: &BTreeMap<String, Vec<String>>) -> Vec<Collision> {
    let mut out = Vec::new();
    for (group, inputs) in finals {
        let mut distinct = inputs.clone();
        distinct.sort();
        distinct.dedup();
        if distinct.len() > 1 {
            tracing::warn!(
                group = %group,
                inputs = ?distinct,
                "different upstream groups normalize to one name; map them apart with groups.map"
            );
            out.push(Collision {
                group: group.clone(),
                inputs: distinct,
            });
        }
    }
    out
}

/// What one client sees: its `include` patterns, then its size cap.
pub fn for_client(groups: &[String], view: &ClientGroups) -> Vec<String> {
    let patterns: Vec<regex::Regex> = view
        .include
        .iter()
        .filter_map(|p| regex::Regex::new(p).ok())
        .collect();
    let mut out: Vec<String> = groups
        .iter()
        .filter(|g| patterns.is_empty() || patterns.iter().any(|re| re.is_match(g)))
        .cloned()
        .collect();
    if view.max > 0 && out.len() > view.max {
        tracing::warn!(
            kept = view.max,
            had = out.len(),
            "groups capped for a client"
        );
        out.truncate(view.max);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> GroupRules {
        GroupRules {
            claims: vec!["groups".into()],
            map: BTreeMap::from([(
                "7a3e6f1c-0000-4000-8000-000000000001".to_string(),
                "Platform Team".to_string(),
            )]),
            unmapped: Unmapped::Drop,
            include: Vec::new(),
            exclude: vec![regex::Regex::new("^everyone$").expect("re")],
            case: GroupCase::Lower,
            slugify: true,
            prefix: None,
            prefix_separator: ":".into(),
            required: false,
            trust_display_names: true,
            shared_namespace: false,
        }
    }

    fn raw(values: &[&str]) -> Vec<RawGroup> {
        values
            .iter()
            .map(|v| RawGroup {
                value: v.to_string(),
                source: "groups".into(),
                display_name: None,
            })
            .collect()
    }

    #[test]
    fn map_slugify_exclude_dedupe_sort() {
        let out = normalize(
            &rules(),
            &raw(&[
                "7a3e6f1c-0000-4000-8000-000000000001",
                "11111111-2222-4333-8444-555555555555",
                "Everyone",
                "Dev/Ops: EU",
                "dev-ops-eu",
            ]),
        );
        assert_eq!(out.groups, ["dev-ops-eu", "platform-team"]);
        assert_eq!(
            out.collisions.len(),
            1,
            "Dev/Ops: EU and dev-ops-eu collide"
        );
        assert!(out.steps[1].why[0].contains("unmapped: drop"));
        assert!(out.steps[2].why.last().expect("why").contains("excluded"));
    }

    #[test]
    fn slugs_are_backstage_safe() {
        let re = regex::Regex::new("^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$").expect("re");
        for s in [
            "Ünïcode Grüppe",
            "--a--",
            "A.B_C",
            "x".repeat(100).as_str(),
            "ok",
        ] {
            let slug = slugify(s);
            assert!(slug.is_empty() || re.is_match(&slug), "{s:?} -> {slug:?}");
            assert!(slug.len() <= 63);
        }
        assert_eq!(slugify("Dev/Ops: EU"), "dev-ops-eu");
    }

    #[test]
    fn paths_reach_nested_claims() {
        let claims = serde_json::json!({"realm_access": {"roles": ["a", "b"]}, "groups": "c"});
        let got: Vec<String> = extract(&claims, &["realm_access.roles".into(), "groups".into()])
            .into_iter()
            .map(|g| g.value)
            .collect();
        assert_eq!(got, ["a", "b", "c"]);
    }

    #[test]
    fn prefix_and_client_view() {
        let mut r = rules();
        r.prefix = Some("okta".into());
        let out = normalize(&r, &raw(&["Eng", "Ops"]));
        assert_eq!(out.groups, ["okta:eng", "okta:ops"]);
        let view = ClientGroups {
            include: vec!["^okta:e".into()],
            max: 1,
            always: false,
        };
        assert_eq!(for_client(&out.groups, &view), ["okta:eng"]);
    }
}
