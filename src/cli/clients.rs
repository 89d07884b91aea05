//! `oidc-bridge clients list|show|create|update|delete|rotate-secret`: the admin API from
//! the command line (`--url` of the admin listener, the token from `--token` or
//! `OIDC_BRIDGE_ADMIN_TOKEN`). Answers are printed as JSON; a secret appears once, in the
//! answer that made it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::Value;

#[derive(Args)]
pub(super) struct AdminTarget {
    /// The admin API's base URL (`admin.listen`, or the main listener).
    #[arg(
        long,
        default_value = "http://127.0.0.1:8080",
        env = "OIDC_BRIDGE_ADMIN_URL"
    )]
    url: String,
    /// The admin bearer token (`admin.token`).
    #[arg(long, env = "OIDC_BRIDGE_ADMIN_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Subcommand)]
pub(super) enum ClientsCommand {
    /// Every client, from the config file and the API, with its secrets' ids and ends.
    List(AdminTarget),
    /// One client.
    Show {
        #[command(flatten)]
        target: AdminTarget,
        id: String,
    },
    /// Make a client from a YAML or JSON file holding one `clients:` entry (no secret: one
    /// is generated and printed once).
    Create {
        #[command(flatten)]
        target: AdminTarget,
        /// The client, as YAML or JSON; `-` for standard input.
        #[arg(long, short)]
        file: PathBuf,
    },
    /// Replace a client's settings (its secrets stay).
    Update {
        #[command(flatten)]
        target: AdminTarget,
        id: String,
        #[arg(long, short)]
        file: PathBuf,
    },
    /// Delete a client made through the API; its tokens stop working.
    Delete {
        #[command(flatten)]
        target: AdminTarget,
        id: String,
    },
    /// A new secret, printed once; the old ones keep working for `--overlap`.
    RotateSecret {
        #[command(flatten)]
        target: AdminTarget,
        id: String,
        /// How long the old secrets keep working, e.g. `7d`, `12h`, `0`.
        #[arg(long, default_value = "1d")]
        overlap: String,
    },
}

fn read_client_file(path: &PathBuf) -> anyhow::Result<Value> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    serde_norway::from_str(&text).with_context(|| format!("{} is not YAML or JSON", path.display()))
}

pub(super) async fn run(command: ClientsCommand) -> anyhow::Result<ExitCode> {
    use reqwest::Method;
    let (target, method, path, body) = match command {
        ClientsCommand::List(t) => (t, Method::GET, "/admin/clients".to_string(), None),
        ClientsCommand::Show { target, id } => (
            target,
            Method::GET,
            format!("/admin/clients/{}", seg(&id)),
            None,
        ),
        ClientsCommand::Create { target, file } => (
            target,
            Method::POST,
            "/admin/clients".to_string(),
            Some(read_client_file(&file)?),
        ),
        ClientsCommand::Update { target, id, file } => (
            target,
            Method::PUT,
            format!("/admin/clients/{}", seg(&id)),
            Some(read_client_file(&file)?),
        ),
        ClientsCommand::Delete { target, id } => (
            target,
            Method::DELETE,
            format!("/admin/clients/{}", seg(&id)),
            None,
        ),
        ClientsCommand::RotateSecret {
            target,
            id,
            overlap,
        } => (
            target,
            Method::POST,
            format!("/admin/clients/{}/rotate-secret", seg(&id)),
            Some(serde_json::json!({ "overlap": overlap })),
        ),
    };
    call(&target, method, &path, body).await
}

fn seg(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Sends one admin request; prints the answer; exit 0 on success, 1 otherwise.
pub(super) async fn call(
    target: &AdminTarget,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<ExitCode> {
    let url = format!("{}{path}", target.url.trim_end_matches('/'));
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the HTTP client")?;
    let mut req = http.request(method, &url).bearer_auth(&target.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("{url} cannot be reached"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let shown = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(text);
    if status.is_success() {
        if !shown.is_empty() {
            println!("{shown}");
        }
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{url} answered {}: {shown}", status.as_u16());
        Ok(ExitCode::FAILURE)
    }
}
