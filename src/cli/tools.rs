//! The operator's tools: `keys list|rotate`, `hash-password`, and
//! `healthcheck` (for images without curl).

use std::io::{IsTerminal as _, Read as _};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};

use crate::app;
use crate::clock::{Clock as _, SystemClock, rfc3339};
use crate::config::{Config, Seconds};
use crate::keys::{KeyManager, describe};

pub(super) async fn keys_list(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let storage = app::open_storage(config).await?;
    let records = storage.list_signing_keys().await?;
    let metas: Vec<_> = records.iter().map(Into::into).collect();
    let infos = describe(
        &metas,
        SystemClock.now(),
        app::key_policy(config).retain_for,
    );
    if json {
        println!("{}", serde_json::to_string_pretty(&infos)?);
        return Ok(ExitCode::SUCCESS);
    }
    if infos.is_empty() {
        println!("no signing keys yet: the first is created when the server starts");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<18} {:<6} {:<8} {:<21} {:<21} {:<21}",
        "KID", "ALG", "STATE", "CREATED", "SIGNS FROM", "PUBLISHED UNTIL"
    );
    for k in infos {
        println!(
            "{:<18} {:<6} {:<8} {:<21} {:<21} {:<21}",
            k.kid,
            k.alg,
            k.state.as_str(),
            rfc3339(k.created_at),
            rfc3339(k.activates_at),
            k.published_until.map(rfc3339).unwrap_or_else(|| "-".into()),
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn keys_rotate(
    config: &Config,
    publish_ahead: Option<Seconds>,
) -> anyhow::Result<ExitCode> {
    let storage = app::open_storage(config).await?;
    let sealer = app::sealer(config)?;
    let keys = KeyManager::start(
        storage,
        sealer,
        Arc::new(SystemClock),
        app::key_policy(config),
    )
    .await?;
    let ahead = publish_ahead.unwrap_or(config.signing.publish_ahead);
    match keys.rotate(ahead).await? {
        Some(kid) => {
            println!(
                "created key {kid}: published now, signs from {}",
                rfc3339(SystemClock.now() + ahead.get())
            );
            println!("running servers pick it up within 30 seconds");
            Ok(ExitCode::SUCCESS)
        }
        None => bail!("another node rotated at the same moment; run `keys list` to see the result"),
    }
}

pub(super) fn hash_password() -> anyhow::Result<ExitCode> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Again: ")?;
        if first != second {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut text = String::new();
        stdin.lock().read_to_string(&mut text)?;
        text.strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text)
            .to_string()
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    println!(
        "{}",
        crate::secret::hash_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?
    );
    Ok(ExitCode::SUCCESS)
}

/// Asks `/readyz` (or `url` itself when it names a path) and says what it answered.
pub(super) async fn healthcheck(url: &str, timeout: u64) -> anyhow::Result<ExitCode> {
    let mut target = url::Url::parse(url).with_context(|| format!("`{url}` is not a URL"))?;
    if target.path() == "/" || target.path().is_empty() {
        target.set_path("/readyz");
    }
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(timeout.max(1)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the HTTP client")?;
    match http.get(target.clone()).send().await {
        Ok(resp) if resp.status().is_success() => {
            println!("ready: {target} answered {}", resp.status().as_u16());
            Ok(ExitCode::SUCCESS)
        }
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            eprintln!(
                "not ready: {target} answered {status}: {}",
                body.chars().take(512).collect::<String>()
            );
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("not ready: {target} cannot be reached: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
