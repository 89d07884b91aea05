//! Reading a YAML value tree into typed config while collecting every problem with its
//! key path, so `check-config` can report them all at once.

use std::fmt;

use serde_json::{Map, Value};

use super::duration::Seconds;

/// One thing wrong with the config, at `path` (e.g. `clients[0].redirect_uris[1]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "the configuration has {n} problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Collects problems while typed values are read out of the tree.
#[derive(Default)]
pub struct Reader {
    pub problems: Vec<Problem>,
}

/// An object being read: remembers which keys were consumed to flag unknown ones.
pub struct Obj<'a> {
    map: Option<&'a Map<String, Value>>,
    pub path: String,
    allowed: &'static [&'static str],
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

impl Reader {
    pub fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Opens a mapping, reporting keys outside `allowed`. An absent (`null`) value reads as
    /// an empty mapping.
    pub fn obj<'a>(
        &mut self,
        v: Option<&'a Value>,
        path: &str,
        allowed: &'static [&'static str],
    ) -> Obj<'a> {
        let map = match v {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => {
                for k in m.keys() {
                    if !allowed.contains(&k.as_str()) {
                        self.problem(
                            join(path, k),
                            format!("unknown key; expected one of: {}", allowed.join(", ")),
                        );
                    }
                }
                Some(m)
            }
            Some(other) => {
                self.problem(path, format!("must be a mapping, not {}", kind(other)));
                None
            }
        };
        Obj {
            map,
            path: path.to_string(),
            allowed,
        }
    }

    pub fn list<'a>(&mut self, v: Option<&'a Value>, path: &str) -> &'a [Value] {
        match v {
            None | Some(Value::Null) => &[],
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.problem(path, format!("must be a list, not {}", kind(other)));
                &[]
            }
        }
    }

    pub fn string(&mut self, o: &Obj<'_>, key: &str) -> Option<String> {
        let v = o.get(key)?;
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            other => {
                self.problem(
                    o.key_path(key),
                    format!("must be a string, not {}", kind(other)),
                );
                None
            }
        }
    }

    pub fn required_string(&mut self, o: &Obj<'_>, key: &str) -> Option<String> {
        match self.string(o, key) {
            Some(s) if !s.is_empty() => Some(s),
            Some(_) => {
                self.problem(o.key_path(key), "must not be empty");
                None
            }
            None => {
                if o.get(key).is_none() {
                    self.problem(o.key_path(key), "is required");
                }
                None
            }
        }
    }

    pub fn bool(&mut self, o: &Obj<'_>, key: &str) -> Option<bool> {
        match o.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s == "true" => Some(true),
            Value::String(s) if s == "false" => Some(false),
            other => {
                self.problem(
                    o.key_path(key),
                    format!("must be true or false, not {}", kind(other)),
                );
                None
            }
        }
    }

    pub fn u64(&mut self, o: &Obj<'_>, key: &str) -> Option<u64> {
        let v = o.get(key)?;
        let parsed = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.problem(o.key_path(key), "must be a whole number, 0 or more");
        }
        parsed
    }

    pub fn duration(&mut self, o: &Obj<'_>, key: &str) -> Option<Seconds> {
        let v = o.get(key)?;
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                self.problem(
                    o.key_path(key),
                    format!("must be a duration such as 30s or 12h, not {}", kind(other)),
                );
                return None;
            }
        };
        match Seconds::parse(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(o.key_path(key), e);
                None
            }
        }
    }

    /// A list of strings; a single string is accepted as a one-element list.
    pub fn strings(&mut self, o: &Obj<'_>, key: &str) -> Option<Vec<String>> {
        let v = o.get(key)?;
        let path = o.key_path(key);
        match v {
            Value::Null => Some(Vec::new()),
            Value::String(s) => Some(vec![s.clone()]),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        other => self.problem(
                            index(&path, i),
                            format!("must be a string, not {}", kind(other)),
                        ),
                    }
                }
                Some(out)
            }
            other => {
                self.problem(
                    path,
                    format!("must be a list of strings, not {}", kind(other)),
                );
                None
            }
        }
    }
}

impl<'a> Obj<'a> {
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        debug_assert!(self.allowed.contains(&key), "key {key} not declared");
        self.map?.get(key).filter(|v| !v.is_null())
    }

    pub fn key_path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    pub fn is_present(&self) -> bool {
        self.map.is_some()
    }
}

/// Replaces `${VAR}` (and `${VAR:-default}`) in every string value of the tree; `$${`
/// writes a literal `${`. A variable that is unset and has no default is a problem.
pub fn expand_env(
    v: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    r: &mut Reader,
) {
    match v {
        Value::String(s) if s.contains('$') => match expand_str(s, lookup) {
            Ok(expanded) => *s = expanded,
            Err(msg) => r.problem(path, msg),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_env(item, &index(path, i), lookup, r);
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                expand_env(item, &join(path, k), lookup, r);
            }
        }
        _ => {}
    }
}

fn expand_str(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(stripped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = stripped;
        } else if let Some(body) = after.strip_prefix("${") {
            let end = body
                .find('}')
                .ok_or_else(|| "has `${` without a closing `}`".to_string())?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`${{{expr}}}` is not a valid environment variable reference"
                ));
            }
            match (lookup(name), default) {
                (Some(val), None) => out.push_str(&val),
                (Some(val), Some(_)) if !val.is_empty() => out.push_str(&val),
                (_, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!("environment variable {name} is not set"));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SECRET" => Some("s3cr:et".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_defaults_and_escapes() {
        assert_eq!(
            expand_str("a-${SECRET}-b", &env).as_deref(),
            Ok("a-s3cr:et-b")
        );
        assert_eq!(expand_str("${NOPE:-dflt}", &env).as_deref(), Ok("dflt"));
        assert_eq!(expand_str("${EMPTY:-dflt}", &env).as_deref(), Ok("dflt"));
        assert_eq!(expand_str("$${SECRET}", &env).as_deref(), Ok("${SECRET}"));
        assert_eq!(expand_str("cost: $5", &env).as_deref(), Ok("cost: $5"));
        assert!(expand_str("${NOPE}", &env).is_err());
        assert!(expand_str("${SECRET", &env).is_err());
    }

    #[test]
    fn unset_variable_is_reported_at_its_key_path() {
        let mut v: Value = serde_json::json!({"clients": [{"secret": "${NOPE}"}]});
        let mut r = Reader::default();
        expand_env(&mut v, "", &env, &mut r);
        assert_eq!(r.problems.len(), 1);
        assert_eq!(r.problems[0].path, "clients[0].secret");
    }
}
