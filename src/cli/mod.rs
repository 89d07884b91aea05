//! The command line: `serve`, `mock`, `migrate`, `check-config`, and the tools in
//! `tools.rs` (`keys list|rotate`, `hash-password`, `groups explain`, `healthcheck`), and the
//! admin API's client in `clients.rs` (`clients ...`, `reload`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::app::{self, Application, Options};
use crate::config::{self, Config, Seconds};

mod clients;
mod explain;
mod tools;
use clients::ClientsCommand;
use tools::{hash_password, healthcheck, keys_list, keys_rotate};

#[derive(Parser)]
#[command(
    name = "oidc-bridge",
    version,
    about = "OpenID Connect provider, federation broker and mock IdP"
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "OIDC_BRIDGE_LOG_FORMAT")]
    log_format: LogFormat,
    /// Log filter, e.g. `info` or `oidc_bridge=debug` (RUST_LOG syntax).
    #[arg(long, global = true, default_value = "info", env = "OIDC_BRIDGE_LOG")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Args)]
struct ConfigArg {
    /// The YAML config file; without it, the built-in defaults.
    #[arg(long, short, env = "OIDC_BRIDGE_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the provider.
    Serve(ConfigArg),
    /// Run a mock IdP for tests and staging: no config needed, in-memory, control API on.
    Mock(MockArgs),
    /// Apply pending database migrations and exit.
    Migrate(ConfigArg),
    /// Check a config file; report every problem with its key path.
    CheckConfig {
        #[arg(long, short, env = "OIDC_BRIDGE_CONFIG")]
        config: PathBuf,
    },
    /// Inspect or rotate signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Read a password (stdin, or a prompt on a terminal) and print its argon2id PHC hash.
    HashPassword,
    /// Group normalization tools.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Manage clients through the admin API (`admin.token`).
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Ask a running server to reload its config (the admin API's `POST /admin/reload`;
    /// `kill -HUP` does the same).
    Reload(clients::AdminTarget),
    /// Exit 0 when the server is ready (`/readyz` answers 200), 1 otherwise: a container
    /// health check that needs no curl.
    Healthcheck {
        /// The server's base URL (then `/readyz` is asked) or the full URL to ask.
        #[arg(
            long,
            default_value = "http://127.0.0.1:8080",
            env = "OIDC_BRIDGE_HEALTHCHECK_URL"
        )]
        url: String,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
}

#[derive(Subcommand)]
enum GroupsCommand {
    /// Show each step from upstream claims (or a local user's groups) to the final
    /// `groups`: why each group was kept, renamed or dropped, the claims a connector maps,
    /// and whether a client's access policy admits the result.
    Explain {
        #[command(flatten)]
        config: ConfigArg,
        /// The connector whose rules apply.
        #[arg(long, required_unless_present = "user")]
        connector: Option<String>,
        /// A JSON file with what the upstream said: an ID token's claims (oidc, okta, azure;
        /// google adds `directory_groups`), GitHub's or an LDAP directory's answers (see the
        /// README's connector reference).
        #[arg(long, requires = "connector", conflicts_with = "lookup")]
        claims: Option<PathBuf>,
        /// An LDAP connector: ask the directory now for this username (as the search
        /// account; no password).
        #[arg(long, requires = "connector")]
        lookup: Option<String>,
        /// A local user instead: the top-level `groups:` rules on their `groups`.
        #[arg(long, conflicts_with_all = ["connector", "claims", "lookup"])]
        user: Option<String>,
        /// Also show what this client sees (its `groups.include` and `groups.max`) and
        /// whether its `require_groups` / `deny_groups` / `allowed_connectors` admit it.
        #[arg(long)]
        client: Option<String>,
    },
}

#[derive(Args)]
struct MockArgs {
    /// Adds clients, users, personas and extra issuers (`mock.issuers`).
    #[arg(long, short, env = "OIDC_BRIDGE_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// The issuer; default `http://{listen}`.
    #[arg(long)]
    issuer: Option<String>,
    /// Keep the signing key in this PEM file across runs (created on first use).
    #[arg(long)]
    key_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Show every key: kid, algorithm, state (next, active, retired) and dates.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a new key, published now and signing after the lead time.
    Rotate {
        #[command(flatten)]
        config: ConfigArg,
        /// Lead time before it signs (default: signing.publish_ahead). `0` signs at once.
        #[arg(long, value_parser = parse_seconds)]
        publish_ahead: Option<Seconds>,
    },
}

fn parse_seconds(s: &str) -> Result<Seconds, String> {
    Seconds::parse(s)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        None => Ok(Config::defaults()),
        Some(p) => config::load_file(p).map_err(|problems| anyhow::anyhow!("{problems}")),
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(c) => serve(load(c.config.as_deref())?).await,
        Command::Mock(args) => mock(args).await,
        Command::Migrate(c) => {
            let config = load(c.config.as_deref())?;
            app::open_storage(&config)
                .await
                .context("migration failed")?;
            println!("database is up to date");
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { config } => Ok(match config::load_file(&config) {
            Ok(c) => {
                for w in &c.warnings {
                    eprintln!("{}: warning: {w}", config.display());
                }
                println!(
                    "{}: OK ({} client(s), {} user(s), {} connector(s))",
                    config.display(),
                    c.clients.len(),
                    c.users.len(),
                    c.connectors.len()
                );
                ExitCode::SUCCESS
            }
            Err(problems) => {
                eprint!("{}: {problems}", config.display());
                ExitCode::from(2)
            }
        }),
        Command::Keys(KeysCommand::List { config, json }) => {
            keys_list(&load(config.config.as_deref())?, json).await
        }
        Command::Keys(KeysCommand::Rotate {
            config,
            publish_ahead,
        }) => keys_rotate(&load(config.config.as_deref())?, publish_ahead).await,
        Command::HashPassword => hash_password(),
        Command::Clients(c) => clients::run(c).await,
        Command::Reload(target) => {
            clients::call(&target, reqwest::Method::POST, "/admin/reload", None).await
        }
        Command::Healthcheck { url, timeout } => healthcheck(&url, timeout).await,
        Command::Groups(GroupsCommand::Explain {
            config,
            connector,
            claims,
            lookup,
            user,
            client,
        }) => {
            let source = match (connector, claims, lookup, user) {
                (Some(connector), Some(claims), _, _) => {
                    explain::Source::Connector { connector, claims }
                }
                (Some(connector), None, Some(username), _) => explain::Source::Lookup {
                    connector,
                    username,
                },
                (_, _, _, Some(user)) => explain::Source::User(user),
                _ => anyhow::bail!("give --connector with --claims or --lookup, or --user"),
            };
            explain::run(&load(config.config.as_deref())?, &source, client.as_deref()).await
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    // A fresh database gets its first signing key in the background: discovery answers at
    // once, and the first token waits for the key.
    let options = Options {
        keys_in_background: true,
        ..Options::default()
    };
    let app = Application::build(&config, options).await?;
    let addr = app.local_addr()?;
    app.reload_on_hangup().context("listening for SIGHUP")?;
    tracing::info!(issuer = %config.issuer, %addr, database = ?config.database, "oidc-bridge is serving");
    app.run_until(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn mock(args: MockArgs) -> anyhow::Result<ExitCode> {
    use crate::app::mock_mode::{MockOptions, MockServer, load_or_create_key_file};
    let mut config = load(args.config.as_deref())?;
    config.listen = args.listen;
    let key = match &args.key_file {
        Some(path) => Some((
            config.signing.algorithm,
            load_or_create_key_file(path, config.signing.algorithm).map_err(anyhow::Error::msg)?,
        )),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let server = MockServer::build(
        config,
        listener,
        MockOptions {
            issuer: args.issuer.clone(),
            key,
        },
    )
    .await?;
    tracing::warn!("MOCK IdP: any username signs in and the control API is open. For tests only.");
    // Written without println!, which would panic if stdout were closed (`| head -1`).
    let root = server.issuers[0].issuer.clone();
    let mut banner = String::from("oidc-bridge mock IdP (for tests only: any username signs in)\n");
    for i in &server.issuers {
        banner.push_str(&format!(
            "  issuer  {:<8} {}  ({} persona)\n",
            i.id,
            i.issuer,
            i.persona.name()
        ));
    }
    banner.push_str(&format!(
        "  client  {} / {}\n  control {root}/mock/\n\n",
        crate::mock::BUILTIN_CLIENT_ID,
        crate::mock::BUILTIN_CLIENT_SECRET
    ));
    banner.push_str(&format!(
        "  curl -s -X POST {root}/mock/tokens -H 'content-type: application/json' -d '{{\"sub\":\"alice\"}}'\n"
    ));
    banner.push_str(&format!(
        "  curl -s -u {}:{} -d grant_type=client_credentials {root}/token\n",
        crate::mock::BUILTIN_CLIENT_ID,
        crate::mock::BUILTIN_CLIENT_SECRET
    ));
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes());
        let _ = out.flush();
    }
    server.run_until(shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
