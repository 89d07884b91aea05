//! The container image, compose.yaml and the Helm chart, checked without Docker or Helm
//! (neither a daemon nor a Helm binary is on the development and CI machines): the files are
//! parsed, the config each one would hand the binary is written out, and the real binary's
//! `check-config` must accept it with the environment that deployment sets.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_oidc-bridge");
/// 32 bytes, base64: what `openssl rand -base64 32` gives.
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// The variables the image's own config reads (the Dockerfile's and deploy/README.md's list).
const IMAGE_ENV: [&str; 3] = [
    "OIDC_BRIDGE_ISSUER",
    "OIDC_BRIDGE_DATABASE_URL",
    "OIDC_BRIDGE_ENCRYPTION_KEY",
];

type Env = BTreeMap<String, String>;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

fn yaml(rel: &str) -> Value {
    serde_norway::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not YAML: {e}"))
}

fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|k| !k.is_empty())
        .try_fold(v, |v, k| v.get(k))
}

fn text_at(v: &Value, path: &str) -> String {
    match at(v, path) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        other => panic!("`{path}` is {other:?}, not a string or number"),
    }
}

/// The port of a config address such as `listen` or `server.metrics_listen`.
fn port_of(config: &Value, key: &str) -> u16 {
    let addr: SocketAddr = text_at(config, key)
        .parse()
        .unwrap_or_else(|e| panic!("{key}: {e}"));
    addr.port()
}

/// `check-config --config FILE` with exactly `env`: nothing is inherited from the test.
fn check_config(file: &Path, env: &Env) -> (i32, String) {
    let out = Command::new(BIN)
        .env_clear()
        .envs(env)
        .args(["check-config", "--config"])
        .arg(file)
        .output()
        .expect("binary runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// `${NAME}` references without a default in a config's values: what the environment must
/// provide.
fn required_vars(config: &Value) -> BTreeSet<String> {
    let re = Regex::new(r"\$\{([A-Za-z0-9_]+)\}").expect("regex");
    let mut out = BTreeSet::new();
    let mut stack = vec![config];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => out.extend(re.captures_iter(s).map(|c| c[1].to_string())),
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    out
}

// ---- Dockerfile ------------------------------------------------------------------------

struct Instruction {
    op: String,
    args: String,
}

/// The stages of a Dockerfile, each starting with its FROM; continuations joined, comments
/// and blank lines dropped.
fn dockerfile_stages(text: &str) -> Vec<Vec<Instruction>> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(part) => current.push_str(&format!("{} ", part.trim())),
            None => {
                current.push_str(t);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Vec<Instruction>> = Vec::new();
    for l in logical.into_iter().filter(|l| !l.is_empty()) {
        let (op, args) = l.split_once(char::is_whitespace).unwrap_or((&l, ""));
        let ins = Instruction {
            op: op.to_ascii_uppercase(),
            args: args.trim().to_string(),
        };
        if ins.op == "FROM" || stages.is_empty() {
            stages.push(Vec::new());
        }
        stages.last_mut().expect("a stage").push(ins);
    }
    stages
}

fn exec_form(what: &str, args: &str) -> Vec<String> {
    serde_json::from_str(args)
        .unwrap_or_else(|_| panic!("{what} must be in exec (JSON) form, there is no shell: {args}"))
}

fn last<'a>(stage: &'a [Instruction], op: &str) -> &'a str {
    stage
        .iter()
        .rev()
        .find(|i| i.op == op)
        .map(|i| i.args.as_str())
        .unwrap_or_else(|| panic!("the runtime stage has no {op}"))
}

/// `COPY [--from=X] SRC... DEST` of a stage: (from, sources, dest).
fn copies(stage: &[Instruction]) -> Vec<(Option<String>, Vec<String>, String)> {
    stage
        .iter()
        .filter(|i| i.op == "COPY")
        .map(|i| {
            let mut from = None;
            let mut words: Vec<String> = Vec::new();
            for w in i.args.split_whitespace() {
                match w.strip_prefix("--from=") {
                    Some(f) => from = Some(f.to_string()),
                    None if w.starts_with("--") => {}
                    None => words.push(w.to_string()),
                }
            }
            let dest = words.pop().expect("COPY has a destination");
            (from, words, dest)
        })
        .collect()
}

/// What the image's runtime stage says about itself.
struct Image {
    user: String,
    command: Vec<String>,
    config_path: String,
    healthcheck: Vec<String>,
    exposed: Vec<u16>,
    env: Env,
    runtime: Vec<Instruction>,
    builder_copies: Vec<String>,
}

fn image() -> Image {
    let stages = dockerfile_stages(&read("Dockerfile"));
    assert!(stages.len() >= 2, "a multi-stage build");
    let mut stages = stages.into_iter();
    let builder = stages.next().expect("builder");
    let runtime = stages.next_back().expect("runtime");
    let mut command = exec_form("ENTRYPOINT", last(&runtime, "ENTRYPOINT"));
    command.extend(exec_form("CMD", last(&runtime, "CMD")));
    let config_path = command
        .iter()
        .position(|a| a == "--config")
        .and_then(|i| command.get(i + 1))
        .expect("ENTRYPOINT + CMD pass --config")
        .clone();
    let hc = last(&runtime, "HEALTHCHECK");
    let (options, cmd) = hc.split_once("CMD ").expect("HEALTHCHECK ... CMD [...]");
    assert!(
        options.split_whitespace().all(|o| o.starts_with("--")),
        "HEALTHCHECK options: {options}"
    );
    let mut env = Env::new();
    for e in runtime.iter().filter(|i| i.op == "ENV") {
        let (k, v) = e.args.split_once('=').expect("ENV KEY=VALUE");
        env.insert(k.to_string(), v.trim_matches('"').to_string());
    }
    Image {
        user: last(&runtime, "USER").to_string(),
        exposed: last(&runtime, "EXPOSE")
            .split_whitespace()
            .map(|p| p.trim_end_matches("/tcp").parse().expect("a port"))
            .collect(),
        healthcheck: exec_form("HEALTHCHECK CMD", cmd),
        command,
        config_path,
        env,
        builder_copies: copies(&builder)
            .into_iter()
            .flat_map(|(_, sources, _)| sources)
            .collect(),
        runtime,
    }
}

#[test]
fn the_image_runs_as_nonroot_and_check_config_accepts_its_baked_config() {
    let img = image();
    let from = &img.runtime[0].args;
    assert!(
        from.contains("distroless") && !from.contains("debug"),
        "no shell at run time: {from}"
    );
    let uid = img.user.split(':').next().expect("user");
    assert!(
        uid.parse::<u32>().is_ok_and(|n| n != 0),
        "USER must be a numeric non-root uid (runAsNonRoot cannot check a name): {}",
        img.user
    );

    // The command runs the binary the builder made, on the config this repository ships.
    let copies = copies(&img.runtime);
    let binary = copies
        .iter()
        .find(|(from, _, _)| from.as_deref() == Some("builder"))
        .map(|(_, _, dest)| dest.clone())
        .expect("COPY --from=builder of the binary");
    assert_eq!(img.command[0], binary);
    assert_eq!(img.command[1], "serve");
    let (_, sources, _) = copies
        .iter()
        .find(|(from, _, dest)| from.is_none() && *dest == img.config_path)
        .unwrap_or_else(|| panic!("nothing is copied to {}", img.config_path));
    assert_eq!(sources, &["deploy/config.yaml"]);

    // The health check is the binary's own subcommand, on the port the config listens on.
    let config = yaml("deploy/config.yaml");
    let listen = port_of(&config, "listen");
    assert_eq!(img.healthcheck[..2], [binary.clone(), "healthcheck".into()]);
    let url = img
        .healthcheck
        .iter()
        .position(|a| a == "--url")
        .and_then(|i| img.healthcheck.get(i + 1))
        .expect("healthcheck --url");
    let url = url::Url::parse(url).expect("a URL");
    assert_eq!((url.port(), url.path()), (Some(listen), "/readyz"));
    let metrics = port_of(&config, "server.metrics_listen");
    for port in [listen, metrics] {
        assert!(img.exposed.contains(&port), "EXPOSE {port}");
    }

    // Without the operator's variables the config is refused, naming each; with them, it
    // is accepted.
    let file = repo("deploy/config.yaml");
    let (code, out) = check_config(&file, &img.env);
    assert_eq!(code, 2, "{out}");
    for var in IMAGE_ENV {
        assert!(out.contains(&format!("{var} is not set")), "{out}");
    }
    assert_eq!(
        required_vars(&config),
        BTreeSet::from(IMAGE_ENV.map(String::from))
    );
    let mut env = img.env.clone();
    env.insert(IMAGE_ENV[0].into(), "https://id.example.com".into());
    env.insert(
        IMAGE_ENV[1].into(),
        "postgres://oidc_bridge:secret@db:5432/oidc_bridge".into(),
    );
    env.insert(IMAGE_ENV[2].into(), KEY.into());
    let (code, out) = check_config(&file, &env);
    assert_eq!(code, 0, "{out}");
}

/// Every file the crate embeds at compile time (`include_str!`, askama's templates/) is in
/// the build context the builder stage copies, and not left out by .dockerignore.
#[test]
fn the_builder_stage_copies_everything_the_crate_embeds() {
    let img = image();
    let mut needed = vec!["src".to_string(), "templates".into(), "Cargo.lock".into()];
    let re = Regex::new(r#"include_(?:str|bytes)!\(\s*(?:concat!\(\s*)?"([^"]+)""#).expect("re");
    let mut stack = vec![repo("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            for c in re.captures_iter(&text) {
                let mut target = path.parent().expect("dir").to_path_buf();
                for part in Path::new(&c[1]).components() {
                    match part {
                        std::path::Component::ParentDir => {
                            target.pop();
                        }
                        other => target.push(other),
                    }
                }
                let rel = target
                    .strip_prefix(repo(""))
                    .expect("inside the repository");
                let top = rel.components().next().expect("a path");
                needed.push(top.as_os_str().to_string_lossy().into_owned());
            }
        }
    }
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches("**/")
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    for top in needed {
        assert!(
            img.builder_copies
                .iter()
                .any(|s| s == &top || s.starts_with(&format!("{top}/"))),
            "the builder stage does not COPY `{top}`, which the build needs"
        );
        assert!(!ignored.contains(&top), ".dockerignore leaves out `{top}`");
    }
    for source in &img.builder_copies {
        assert!(repo(source).exists(), "COPY {source}: no such file");
    }
    // The runtime stage has no shell to RUN anything with.
    assert!(
        img.runtime.iter().all(|i| i.op != "RUN"),
        "RUN in the runtime stage"
    );
    assert!(read("Dockerfile").contains("cargo build --release --locked"));
}

// ---- compose.yaml ----------------------------------------------------------------------

/// Compose's own interpolation of compose.yaml: `$$`, `${X}`, `${X:-default}`,
/// `${X-default}`, `${X:?error}`, `${X?error}`.
fn interpolate(s: &str, host: &Env) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or("unclosed ${")?;
            let expr = &body[..end];
            let split = expr.find([':', '-', '?']).unwrap_or(expr.len());
            let (name, op) = expr.split_at(split);
            let value = host
                .get(name)
                .filter(|v| !v.is_empty() || !op.starts_with(':'));
            let arg = op.trim_start_matches(':').get(1..).unwrap_or("");
            out.push_str(&match (value, op.trim_start_matches(':').chars().next()) {
                (Some(v), _) => v.clone(),
                (None, Some('-')) => arg.to_string(),
                (None, Some('?')) => return Err(format!("{name}: {arg}")),
                (None, _) => String::new(),
            });
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn service_env(service: &Value, host: &Env) -> Result<Env, String> {
    let mut env = Env::new();
    if let Some(map) = service.get("environment").and_then(Value::as_object) {
        for (k, v) in map {
            let raw = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            env.insert(k.clone(), interpolate(&raw, host)?);
        }
    }
    Ok(env)
}

#[test]
fn compose_runs_two_nodes_on_one_database_and_key_with_a_config_check_config_accepts() {
    let compose = yaml("compose.yaml");
    let services = compose["services"].as_object().expect("services");
    let nodes: Vec<(&String, &Value)> = services
        .iter()
        .filter(|(_, s)| s.get("build").is_some())
        .collect();
    assert_eq!(nodes.len(), 2, "two oidc-bridge nodes");
    let (db_name, db) = services
        .iter()
        .find(|(_, s)| {
            s["image"]
                .as_str()
                .is_some_and(|i| i.starts_with("postgres:"))
        })
        .expect("a postgres service");
    assert!(
        at(db, "healthcheck.test").is_some(),
        "postgres has a healthcheck"
    );

    // No encryption key is made up for you: compose refuses to start without one.
    let empty = Env::new();
    let err = service_env(nodes[0].1, &empty).expect_err("a key is required");
    assert!(err.contains("OIDC_BRIDGE_ENCRYPTION_KEY"), "{err}");
    let host = Env::from([("OIDC_BRIDGE_ENCRYPTION_KEY".to_string(), KEY.to_string())]);

    let img = image();
    let db_env = service_env(db, &host).expect("postgres env");
    let mut envs = Vec::new();
    let mut host_ports = Vec::new();
    for (name, node) in &nodes {
        assert_eq!(
            at(node, &format!("depends_on.{db_name}.condition")).and_then(Value::as_str),
            Some("service_healthy"),
            "{name} waits for a healthy database"
        );
        let mounts: Vec<&str> = node["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mount = mounts
            .iter()
            .find_map(|m| {
                let parts: Vec<&str> = m.split(':').collect();
                (parts.get(1) == Some(&img.config_path.as_str())).then_some(parts)
            })
            .unwrap_or_else(|| panic!("{name} mounts nothing at {}", img.config_path));
        assert_eq!(mount.get(2), Some(&"ro"), "{name}: the config is read-only");
        let source = mount[0].trim_start_matches("./").to_string();
        let config = yaml(&source);
        for p in node["ports"].as_array().expect("ports") {
            let p = p.as_str().expect("HOST:CONTAINER");
            let (h, c) = p.rsplit_once(':').expect("HOST:CONTAINER");
            assert_eq!(c.parse::<u16>(), Ok(port_of(&config, "listen")), "{p}");
            host_ports.push(h.to_string());
        }
        let env = service_env(node, &host).expect("node env");
        let (code, out) = check_config(&repo(&source), &env);
        assert_eq!(code, 0, "{name}: {out}");
        envs.push((source, env));
    }
    host_ports.sort();
    assert_eq!(host_ports, ["8081", "8082"]);
    assert_eq!(
        envs[0], envs[1],
        "both nodes: one config, database, key and issuer"
    );

    let url = url::Url::parse(&envs[0].1["OIDC_BRIDGE_DATABASE_URL"]).expect("a URL");
    assert_eq!(url.host_str(), Some(db_name.as_str()));
    assert_eq!(url.username(), db_env["POSTGRES_USER"]);
    assert_eq!(url.password(), Some(db_env["POSTGRES_PASSWORD"].as_str()));
    assert_eq!(url.path(), format!("/{}", db_env["POSTGRES_DB"]));
    assert_eq!(envs[0].1["OIDC_BRIDGE_ENCRYPTION_KEY"], KEY);
}

// ---- the Helm chart --------------------------------------------------------------------

const CHART: &str = "deploy/helm/oidc-bridge";

fn chart_file(rel: &str) -> String {
    read(&format!("{CHART}/{rel}"))
}

/// The container's environment as the deployment template sets it: `value:` lines rendered
/// from values.yaml, secrets (`valueFrom:`) given stand-ins by name.
fn deployment_env(template: &str, values: &Value) -> Env {
    let name_re = Regex::new(r"^\s*- name: ([A-Z][A-Z0-9_]*)\s*$").expect("re");
    let value_re =
        Regex::new(r"^\s*value: \{\{ \.Values\.([\w.]+)(?: \| quote)? \}\}\s*$").expect("re");
    let lines: Vec<&str> = template.lines().collect();
    let mut env = Env::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(c) = name_re.captures(line) else {
            continue;
        };
        let name = c[1].to_string();
        let next = lines.get(i + 1).copied().unwrap_or_default();
        let value = if let Some(v) = value_re.captures(next) {
            text_at(values, &v[1])
        } else if next.trim() == "valueFrom:" {
            match name.as_str() {
                "OIDC_BRIDGE_DATABASE_URL" => "postgres://oidc_bridge:pw@postgres:5432/db".into(),
                "OIDC_BRIDGE_ENCRYPTION_KEY" => KEY.into(),
                other => panic!("give the secret-fed {other} a stand-in in this test"),
            }
        } else {
            panic!("env {name}: `{next}` is neither a `value: {{{{ .Values.x }}}}` nor valueFrom")
        };
        env.insert(name, value);
    }
    env
}

/// The `key:` value of the first line after `after` that has one.
fn field_after<'a>(template: &'a str, after: &str, key: &str) -> &'a str {
    let start = template.find(after).unwrap_or_else(|| panic!("no {after}"));
    template[start..]
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} after {after}"))
        .trim()
}

#[test]
fn the_chart_config_passes_check_config_with_the_deployment_env() {
    let values = yaml(&format!("{CHART}/values.yaml"));
    let config = &values["config"];
    let text = serde_norway::to_string(config).expect("YAML");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, &text).expect("write");

    let deployment = chart_file("templates/deployment.yaml");
    let env = deployment_env(&deployment, &values);
    for var in required_vars(config) {
        assert!(
            env.contains_key(&var),
            "config reads ${{{var}}}: the deployment does not set it"
        );
    }
    let (code, out) = check_config(&file, &env);
    assert_eq!(code, 0, "{out}");

    // Probes, ports, and where the config file is.
    assert_eq!(
        field_after(&deployment, "livenessProbe:", "path"),
        "/healthz"
    );
    assert_eq!(
        field_after(&deployment, "readinessProbe:", "path"),
        "/readyz"
    );
    assert_eq!(field_after(&deployment, "livenessProbe:", "port"), "http");
    assert_eq!(field_after(&deployment, "readinessProbe:", "port"), "http");
    let port_re = Regex::new(r"^\{\{ \.Values\.([\w.]+) \}\}$").expect("re");
    for (name, key) in [("http", "listen"), ("metrics", "server.metrics_listen")] {
        let expr = field_after(&deployment, &format!("- name: {name}\n"), "containerPort");
        let path = &port_re.captures(expr).expect("containerPort from values")[1];
        assert_eq!(
            text_at(&values, path),
            port_of(config, key).to_string(),
            "{name} port vs config {key}"
        );
    }
    let args: Vec<String> =
        serde_norway::from_str(field_after(&deployment, "- name: oidc-bridge", "args"))
            .expect("args: [...]");
    assert_eq!(args, image().command[1..], "the image's own command");
    let config_path = Path::new(&args[2]);
    let mount = field_after(&deployment, "- name: config\n", "mountPath");
    assert_eq!(Path::new(mount), config_path.parent().expect("dir"));
    let configmap = chart_file("templates/configmap.yaml");
    let key = config_path.file_name().expect("name").to_string_lossy();
    assert!(
        configmap.contains(&format!(
            "  {key}: |\n    {{{{- toYaml .Values.config | nindent 4 }}}}"
        )),
        "the ConfigMap's {key} is values.config:\n{configmap}"
    );
    assert!(deployment.contains("checksum/config: {{ include (print $.Template.BasePath \"/configmap.yaml\") . | sha256sum }}"));

    // Secrets, security and replicas.
    for (var, secret) in [
        ("OIDC_BRIDGE_DATABASE_URL", "postgres"),
        ("OIDC_BRIDGE_ENCRYPTION_KEY", "encryptionKey"),
    ] {
        let block = &deployment[deployment.find(var).expect(var)..];
        assert_eq!(
            field_after(block, "secretKeyRef:", "name"),
            format!("{{{{ .Values.{secret}.existingSecret }}}}")
        );
        assert_eq!(
            field_after(block, "secretKeyRef:", "key"),
            format!("{{{{ .Values.{secret}.secretKey }}}}")
        );
    }
    let uid = image().user.split(':').next().expect("uid").to_string();
    assert_eq!(values["podSecurityContext"]["runAsNonRoot"], true);
    assert_eq!(text_at(&values, "podSecurityContext.runAsUser"), uid);
    assert_eq!(values["securityContext"]["readOnlyRootFilesystem"], true);
    assert!(values["replicaCount"].as_u64() >= Some(2), "HA by default");
    let chart = yaml(&format!("{CHART}/Chart.yaml"));
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(
        chart["appVersion"],
        env!("CARGO_PKG_VERSION"),
        "Chart.yaml appVersion"
    );
}

/// No Helm here to render the templates, so: every `.Values.x.y` they use is in
/// values.yaml, and their actions are balanced.
#[test]
fn every_value_the_chart_templates_use_is_in_values_yaml() {
    let values = yaml(&format!("{CHART}/values.yaml"));
    let uses = Regex::new(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)").expect("re");
    let opens = Regex::new(r"\{\{-?\s*(?:if|with|range|define|block)\b").expect("re");
    let ends = Regex::new(r"\{\{-?\s*end\s*-?\}\}").expect("re");
    let mut missing = Vec::new();
    let mut seen = 0;
    for entry in std::fs::read_dir(repo(&format!("{CHART}/templates"))).expect("templates") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).expect("read");
        for c in uses.captures_iter(&text) {
            seen += 1;
            if at(&values, &c[1]).is_none() {
                missing.push(format!("{name}: .Values{}", &c[1]));
            }
        }
        assert_eq!(
            text.matches("{{").count(),
            text.matches("}}").count(),
            "{name}: {{{{ vs }}}}"
        );
        assert_eq!(
            opens.find_iter(&text).count(),
            ends.find_iter(&text).count(),
            "{name}: if/with/range/define vs end"
        );
    }
    assert!(seen > 20, "only {seen} uses of .Values found");
    assert!(
        missing.is_empty(),
        "not in values.yaml:\n{}",
        missing.join("\n")
    );
    for t in ["deployment", "service", "configmap", "servicemonitor"] {
        assert!(
            repo(&format!("{CHART}/templates/{t}.yaml")).exists(),
            "{t}.yaml"
        );
    }
    assert_eq!(values["metrics"]["serviceMonitor"]["enabled"], false);
}
