//! The picture in ARCHITECTURE.md, checked against the code: no import cycle between source
//! files, none of the arrows that must never exist, and no OP or federation file that names
//! the mock.
//!
//! Dependencies are read from the text: `use` items (braces expanded), qualified
//! `crate::…`/`super::…` paths, and paths through a child module a file declares. Each is
//! resolved to the deepest source file it names. Comments, strings and `#[cfg(test)]`
//! modules are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A source file, as a module path (`oidc::authorize` for src/oidc/authorize/mod.rs).
type Module = String;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn modules() -> BTreeMap<Module, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read src") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&src(), &mut files);
    files
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(src()).ok()?.with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|l| l == "mod") {
                parts.pop();
            }
            let name = parts.join("::");
            match name.as_str() {
                "lib" => Some(("crate".to_string(), p)),
                "main" => Some(("main".to_string(), p)),
                _ => Some((name, p)),
            }
        })
        .collect()
}

/// The code of a file without comments, string contents, and `#[cfg(test)]` modules.
fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"#[cfg(test)]") {
            // A test module (or test item) until the end of its braces.
            if let Some(open) = text[i..].find('{') {
                let mut depth = 0;
                let mut j = i + open;
                while j < b.len() {
                    match b[j] {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                i = j + 1;
                continue;
            }
        }
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if b[i..].starts_with(b"/*") {
            i += text[i..].find("*/").map_or(b.len() - i, |e| e + 2);
            continue;
        }
        if b[i] == b'r' && b.get(i + 1) == Some(&b'#') && b.get(i + 2) == Some(&b'"') {
            i += text[i + 3..].find("\"#").map_or(b.len() - i, |e| e + 5);
            out.push_str("\"\"");
            continue;
        }
        if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
            continue;
        }
        if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            i += 3;
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// `use a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    fn go(prefix: &str, t: &str, out: &mut Vec<String>) {
        let t = t.trim();
        let Some(open) = t.find('{') else {
            // `path as alias`: the path.
            let path = t.split(' ').next().unwrap_or(t);
            out.push(format!("{prefix}{path}"));
            return;
        };
        let head = t[..open].trim();
        let inner = &t[open + 1..t.rfind('}').unwrap_or(t.len())];
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    go(&format!("{prefix}{head}"), &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        if start < inner.len() {
            go(&format!("{prefix}{head}"), &inner[start..], out);
        }
    }
    let mut out = Vec::new();
    go("", &tree, &mut out);
    out.retain(|p| !p.is_empty() && !p.ends_with("::"));
    out
}

/// The module a `super`/`self`/`crate` path starts from, for a file at `module`.
fn absolute(module: &str, path: &str) -> Option<Vec<String>> {
    let mut parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    let mut base: Vec<String> = if module == "crate" {
        Vec::new()
    } else {
        module.split("::").map(str::to_string).collect()
    };
    match parts.first().copied() {
        Some("crate") => {
            base.clear();
            parts.remove(0);
        }
        Some("self") => {
            parts.remove(0);
        }
        Some("super") => {
            // `super` from a.rs (module a) is the parent; from a/mod.rs too.
            while parts.first() == Some(&"super") {
                parts.remove(0);
                base.pop()?;
            }
        }
        _ => return None,
    }
    base.extend(parts.iter().map(|s| s.to_string()));
    Some(base)
}

fn resolve(all: &BTreeMap<Module, PathBuf>, mut path: Vec<String>) -> Option<Module> {
    while !path.is_empty() {
        let name = path.join("::");
        if all.contains_key(&name) {
            return Some(name);
        }
        path.pop();
    }
    None
}

/// Every file each file depends on.
fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let all = modules();
    let path_re =
        regex::Regex::new(r"\b(?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+").expect("regex");
    let use_re = regex::Regex::new(r"(?s)\buse\s+([^;]+);").expect("regex");
    let mod_re = regex::Regex::new(r"\bmod\s+([a-z_][a-z0-9_]*)\s*;").expect("regex");
    let mut g = BTreeMap::new();
    for (module, file) in &all {
        if module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read");
        let body = code(&text);
        let mut deps = BTreeSet::new();
        let mut add = |p: Vec<String>| {
            if let Some(m) = resolve(&all, p)
                && m != *module
            {
                deps.insert(m);
            }
        };
        for cap in use_re.captures_iter(&body) {
            for p in expand(&cap[1]) {
                if let Some(abs) = absolute(module, &p) {
                    add(abs);
                }
            }
        }
        for m in path_re.find_iter(&body) {
            if let Some(abs) = absolute(module, m.as_str()) {
                add(abs);
            }
        }
        // Paths through a child module this file declares: `child::item`.
        let here = if module == "crate" {
            String::new()
        } else {
            format!("{module}::")
        };
        for cap in mod_re.captures_iter(&body) {
            let child = &cap[1];
            let re = regex::Regex::new(&format!(r"(?:^|[^:A-Za-z0-9_]){child}::[A-Za-z_{{]"))
                .expect("regex");
            if re.is_match(&body.replace(&format!("mod {child};"), "")) {
                add(format!("{here}{child}")
                    .split("::")
                    .map(str::to_string)
                    .collect());
            }
        }
        g.insert(module.clone(), deps);
    }
    g
}

/// Strongly connected components with more than one file (Tarjan).
fn cycles(g: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct T<'a> {
        g: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        n: usize,
        out: Vec<Vec<Module>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        t.index.insert(v, t.n);
        t.low.insert(v, t.n);
        t.n += 1;
        t.stack.push(v);
        t.on.insert(v);
        let g = t.g;
        for w in g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(lw));
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(iw));
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        n: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// The part (ARCHITECTURE.md) a file belongs to.
fn part(module: &str) -> &'static str {
    let top = module.split("::").next().unwrap_or(module);
    match top {
        "crate" | "cli" | "main" => "Entry",
        "app" => "App",
        "config" => "Config",
        "oidc" => "Oidc",
        "federation" => "Federation",
        "mock" => "Mock",
        "testkit" => "Testkit",
        "web" => "Web",
        "keys" => "Keys",
        "storage" => "Storage",
        "model" | "clock" | "secret" | "protocol" => "Model",
        "server" | "password" | "ops" | "metrics" | "audit" => "Support",
        _ => "Unknown",
    }
}

/// Arrows that must never exist (ARCHITECTURE.md), as (from, to, why).
const NEVER: &[(&str, &str, &str)] = &[
    ("Storage", "Oidc", "storage knows no protocol flow"),
    ("Storage", "Web", "storage knows no page"),
    ("Storage", "Mock", "storage never depends on the mock"),
    ("Storage", "Federation", "storage knows no connector"),
    ("Keys", "Oidc", "the signer knows no endpoint"),
    ("Keys", "Mock", "the signer knows no mock"),
    (
        "Federation",
        "Oidc",
        "connectors hand back identities; they do not call OP handlers",
    ),
    (
        "Federation",
        "Mock",
        "production connectors never depend on the mock",
    ),
    ("Oidc", "Mock", "the OP never depends on the mock"),
    ("Model", "Storage", "records are plain data"),
    ("Model", "Oidc", "records are plain data"),
    ("Oidc", "App", "nothing below the app imports the app"),
    ("Federation", "App", "nothing below the app imports the app"),
    ("Mock", "App", "nothing below the app imports the app"),
    ("Keys", "App", "nothing below the app imports the app"),
    ("Storage", "App", "nothing below the app imports the app"),
    ("Web", "App", "nothing below the app imports the app"),
    ("Support", "App", "nothing below the app imports the app"),
    (
        "Support",
        "Oidc",
        "the listener, hasher and probes know no endpoint",
    ),
    (
        "Support",
        "Mock",
        "the listener, hasher and probes know no mock",
    ),
];

#[test]
fn no_source_file_is_part_of_an_import_cycle() {
    let found = cycles(&graph());
    assert!(
        found.is_empty(),
        "import cycles between source files:\n{}",
        found
            .iter()
            .map(|c| format!("  {}", c.join(" <-> ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn no_arrow_runs_where_the_architecture_forbids_it() {
    let mut broken = Vec::new();
    for (from, deps) in graph() {
        for to in deps {
            let (a, b) = (part(&from), part(&to));
            if let Some((_, _, why)) = NEVER.iter().find(|(x, y, _)| *x == a && *y == b) {
                broken.push(format!("  {from} -> {to} ({a} -> {b}: {why})"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "forbidden arrows:\n{}",
        broken.join("\n")
    );
}

#[test]
fn every_source_file_belongs_to_a_part() {
    let unknown: Vec<Module> = modules()
        .into_keys()
        .filter(|m| part(m) == "Unknown")
        .collect();
    assert!(
        unknown.is_empty(),
        "add these to ARCHITECTURE.md and part(): {unknown:?}"
    );
}

#[test]
fn the_op_and_federation_never_name_the_mock() {
    let re = regex::Regex::new(r"\bmock::|crate::mock\b").expect("regex");
    let mut named = Vec::new();
    for (module, file) in modules() {
        if !matches!(part(&module), "Oidc" | "Federation") {
            continue;
        }
        let body = code(&std::fs::read_to_string(&file).expect("read"));
        for (i, line) in body.lines().enumerate() {
            if re.is_match(line) {
                named.push(format!("  {}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        named.is_empty(),
        "the mock is named in:\n{}",
        named.join("\n")
    );
}

#[test]
fn the_dependency_reader_sees_what_it_should() {
    // The checks above mean something only if the reader finds dependencies at all.
    let g = graph();
    assert!(
        g["oidc::token"].contains("oidc::grants"),
        "{:?}",
        g["oidc::token"]
    );
    assert!(g["app::build"].iter().any(|m| m.starts_with("oidc")));
    assert_eq!(
        expand("super::{a, b::{c, d as e}}"),
        ["super::a", "super::b::c", "super::b::d"]
    );
    assert_eq!(
        code("let x = \"crate::mock\"; // crate::mock\n"),
        "let x = \"\"; \n"
    );
}

fn architecture_md() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
        .expect("ARCHITECTURE.md")
}

/// The lines of the section `## {title}`.
fn section(md: &str, title: &str) -> Vec<String> {
    md.lines()
        .skip_while(|l| l.trim() != format!("## {title}"))
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .map(str::to_string)
        .collect()
}

/// The "Never" list of ARCHITECTURE.md, as (from, to) pairs.
fn documented_never(md: &str) -> BTreeSet<(String, String)> {
    let mut bullets: Vec<String> = Vec::new();
    for line in section(md, "Never") {
        if let Some(b) = line.strip_prefix("- ") {
            bullets.push(b.to_string());
        } else if line.starts_with("  ")
            && let Some(last) = bullets.last_mut()
        {
            last.push(' ');
            last.push_str(line.trim());
        } else if !line.trim().is_empty() {
            bullets.push(String::new());
        }
    }
    let mut out = BTreeSet::new();
    for b in bullets.iter().filter(|b| !b.is_empty()) {
        let arrows = b.split_once(": ").map_or(b.as_str(), |(a, _)| a);
        for arrow in arrows.split(", ") {
            if let Some((from, to)) = arrow.split_once(" → ") {
                out.insert((from.trim().to_string(), to.trim().to_string()));
            }
        }
    }
    out
}

/// The "Arrows" table: what each part may use (`*`: anything).
fn documented_arrows(md: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for line in section(md, "Arrows") {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, from, uses, ..] = cells.as_slice() else {
            continue;
        };
        if from.is_empty() || *from == "from" || from.starts_with('-') {
            continue;
        }
        let parts: BTreeSet<String> = if uses.contains("everything") {
            ["*".to_string()].into()
        } else {
            uses.split(", ")
                .filter_map(|u| u.split_whitespace().next())
                .map(str::to_string)
                .collect()
        };
        out.insert(from.to_string(), parts);
    }
    out
}

#[test]
fn architecture_md_lists_the_arrows_the_test_forbids() {
    let documented = documented_never(&architecture_md());
    let enforced: BTreeSet<(String, String)> = NEVER
        .iter()
        .map(|(a, b, _)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(
        documented, enforced,
        "the Never list of ARCHITECTURE.md and NEVER here must say the same"
    );
}

#[test]
fn every_arrow_in_the_code_is_drawn_in_architecture_md() {
    let allowed = documented_arrows(&architecture_md());
    assert!(allowed.contains_key("Oidc"), "the Arrows table is read");
    let mut undrawn = BTreeSet::new();
    for (from, deps) in graph() {
        for to in deps {
            let (a, b) = (part(&from), part(&to));
            if a == b || b == "Model" {
                continue;
            }
            let ok = allowed
                .get(a)
                .is_some_and(|uses| uses.contains("*") || uses.contains(b));
            if !ok {
                undrawn.insert(format!("  {a} → {b} ({from} -> {to})"));
            }
        }
    }
    assert!(
        undrawn.is_empty(),
        "arrows ARCHITECTURE.md does not draw (add them there, or remove them here):\n{}",
        undrawn.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// Lines of a file before its `#[cfg(test)]` module.
fn non_test_lines(text: &str) -> Vec<&str> {
    text.lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .collect()
}

#[test]
fn no_source_file_is_over_500_lines() {
    let long: Vec<String> = modules()
        .into_values()
        .filter_map(|file| {
            let text = std::fs::read_to_string(&file).expect("read");
            let n = non_test_lines(&text).len();
            (n > 500).then(|| format!("  {}: {n}", file.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these files (STYLE: past about 500 lines):\n{}",
        long.join("\n")
    );
}

/// Functions of `text` (outside its test module) longer than `max` lines, by name.
fn long_functions(text: &str, max: usize) -> Vec<(String, usize)> {
    let re = regex::Regex::new(r"^(\s*)(?:pub(?:\([a-z]+\))? )?(?:async )?fn (\w+)").expect("re");
    let lines = non_test_lines(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if let Some(c) = re.captures(lines[i]) {
            let close = format!("{}}}", &c[1]);
            let end = (i..lines.len())
                .find(|&j| lines[j] == close)
                .unwrap_or(lines.len() - 1);
            if end - i + 1 > max {
                out.push((c[2].to_string(), end - i + 1));
            }
            i = end;
        }
        i += 1;
    }
    out
}

#[test]
fn no_function_of_the_op_or_federation_is_over_80_lines() {
    let mut long = Vec::new();
    for (module, file) in modules() {
        if !matches!(part(&module), "Oidc" | "Federation") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        for (name, n) in long_functions(&text, 80) {
            long.push(format!("  {}: {name} ({n} lines)", file.display()));
        }
    }
    assert!(
        long.is_empty(),
        "handlers are adapters (STYLE): shorten these:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_size_checks_can_fail() {
    let long_fn = format!("fn f() {{\n{}}}\n", "    x();\n".repeat(81));
    assert_eq!(long_functions(&long_fn, 80), [("f".to_string(), 83)]);
    assert!(long_functions("fn g() {\n}\n", 80).is_empty());
    let md = "## Never\n\n- A → B: why\n- C → D, E → D: why\n  more\n\n## Arrows\n\n| from | uses |\n|---|---|\n| A | B (note), C |\n| App | everything below it |\n";
    assert_eq!(documented_never(md).len(), 3);
    let arrows = documented_arrows(md);
    assert_eq!(arrows["A"], ["B".to_string(), "C".to_string()].into());
    assert!(arrows["App"].contains("*"));
}
