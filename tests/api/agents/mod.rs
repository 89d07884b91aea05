//! The agent grants driven by a third-party client, openid-client v6 (`tests/agents/`), on
//! SQLite and on PostgreSQL: `private_key_jwt` and resource indicators (`keys`), token
//! exchange (`exchange`), the device authorization grant (`device`, in mock mode too).

mod device;
mod exchange;
mod keys;

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use base64::Engine as _;
use conformance::{Backend, Op};
use serde_json::{Value, json};

pub const ORDERS: &str = "https://api.example.test/orders";
pub const BILLING: &str = "https://api.example.test/billing";
pub const CATALOG: &str = "https://catalog.example.test";
pub const BACKSTAGE_SECRET: &str = "backstage-secret-0123456789";
pub const REDIRECT: &str = "http://localhost:7007/api/auth/oidc/handler/frame";

/// The clients: a public device CLI, Backstage (code flow, token exchange), an agent that
/// authenticates with `private_key_jwt`, and one whose access policy refuses alice.
const YAML: &str = r#"
tokens:
  device_poll_interval: 3s
clients:
  - id: cli
    name: Orders CLI
    token_endpoint_auth_method: none
    grant_types: [urn:ietf:params:oauth:grant-type:device_code, refresh_token]
    resources: [https://api.example.test/orders]
  - id: cli-admins
    name: Admin CLI
    token_endpoint_auth_method: none
    grant_types: [urn:ietf:params:oauth:grant-type:device_code]
    require_groups: [admins]
  - id: backstage
    name: Backstage
    secret: backstage-secret-0123456789
    redirect_uris: [http://localhost:7007/api/auth/oidc/handler/frame]
    grant_types: [authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:token-exchange]
    skip_consent: true
    resources: [https://api.example.test/orders, https://api.example.test/billing]
    access_token_claims: [groups]
    token_exchange:
      audiences: [https://catalog.example.test, https://api.example.test/orders]
  - id: agent
    token_endpoint_auth_method: private_key_jwt
    jwks: {"keys": [AGENT_JWK]}
    grant_types: [client_credentials, urn:ietf:params:oauth:grant-type:token-exchange]
    scopes: [read]
    resources: [https://api.example.test/orders]
    token_exchange:
      audiences: [https://catalog.example.test]
  - id: agent-remote
    token_endpoint_auth_method: private_key_jwt
    jwks_uri: REMOTE_JWKS_URI
    grant_types: [client_credentials]
users:
  - username: alice
    password: "correct horse battery staple"
    email: alice@example.com
    name: Alice Liddell
    groups: [platform]
"#;

/// The agent's RSA key (through OpenSSL): its PKCS#8 PEM and public JWK (`kid: agent-1`).
pub fn agent_key() -> &'static (String, Value) {
    static KEY: OnceLock<(String, Value)> = OnceLock::new();
    KEY.get_or_init(|| {
        let rsa = openssl::rsa::Rsa::generate(2048).expect("rsa");
        let b64 = |v: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let jwk = json!({
            "kty": "RSA", "kid": "agent-1", "use": "sig",
            "n": b64(rsa.n().to_vec()), "e": b64(rsa.e().to_vec()),
        });
        let pkey = openssl::pkey::PKey::from_rsa(rsa).expect("pkey");
        let pem = String::from_utf8(pkey.private_key_to_pem_pkcs8().expect("pem")).expect("utf8");
        (pem, jwk)
    })
}

/// [`YAML`] with the agent's key, and `jwks_uri` for `agent-remote`.
pub fn yaml(jwks_uri: &str) -> String {
    YAML.replace("AGENT_JWK", &agent_key().1.to_string())
        .replace("REMOTE_JWKS_URI", jwks_uri)
}

/// The provider with [`yaml`].
pub async fn start_with(backend: Backend, jwks_uri: &str) -> Option<Op> {
    Op::start_config(backend, &yaml(jwks_uri)).await
}

pub async fn start(backend: Backend) -> Option<Op> {
    start_with(backend, "http://127.0.0.1:9/jwks").await
}

fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/agents")
}

fn command(op: &Op, scenario: &str, env: &[(&str, String)]) -> Command {
    conformance::npm_ci(&project_dir(), "openid-client/package.json");
    let mut cmd = Command::new("node");
    cmd.arg("agents-client.mjs")
        .arg(scenario)
        .current_dir(project_dir())
        .env("ISSUER", &op.issuer);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs a scenario to its end; its JSON lines.
pub async fn node(op: &Op, scenario: &str, env: &[(&str, String)]) -> Vec<Value> {
    let mut cmd = command(op, scenario, env);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("node runs"))
        .await
        .expect("join");
    assert!(
        out.status.success(),
        "openid-client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// One line of a scenario that gives a single answer.
pub async fn node_one(op: &Op, scenario: &str, env: &[(&str, String)]) -> Value {
    let mut lines = node(op, scenario, env).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    lines.remove(0)
}

/// A scenario still running: its lines as they come.
pub struct Running {
    lines: tokio::sync::mpsc::UnboundedReceiver<Value>,
    child: std::process::Child,
}

impl Running {
    pub fn start(op: &Op, scenario: &str, env: &[(&str, String)]) -> Self {
        let mut child = command(op, scenario, env)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(serde_json::from_str(&line).expect("a JSON line"));
            }
        });
        Self { lines, child }
    }

    /// The next line (within two minutes: a bound, not a measurement).
    pub async fn next(&mut self) -> Value {
        tokio::time::timeout(std::time::Duration::from_secs(120), self.lines.recv())
            .await
            .expect("openid-client answers in time")
            .expect("openid-client printed a line")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Env for the agent's `private_key_jwt`.
pub fn agent_env() -> Vec<(&'static str, String)> {
    vec![
        ("CLIENT_ID", "agent".into()),
        ("PRIVATE_KEY_PEM", agent_key().0.clone()),
        ("KID", "agent-1".into()),
    ]
}

/// Env for Backstage's secret.
pub fn backstage_env() -> Vec<(&'static str, String)> {
    vec![
        ("CLIENT_ID", "backstage".into()),
        ("CLIENT_SECRET", BACKSTAGE_SECRET.into()),
    ]
}

/// Alice signs in to Backstage through openid-client; its answer lines.
pub async fn backstage_sign_in(op: &Op, extra: &[(&'static str, String)]) -> Vec<Value> {
    let mut env = backstage_env();
    env.extend([
        ("REDIRECT_URI", REDIRECT.to_string()),
        ("USERNAME", conformance::USER.to_string()),
        ("PASSWORD", conformance::PASSWORD.to_string()),
        ("SCOPE", "openid profile email".to_string()),
    ]);
    env.extend(extra.iter().cloned());
    node(op, "code", &env).await
}
