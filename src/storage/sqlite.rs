//! The SQLite backend: the embedded default, a file or `sqlite::memory:`. The statements are
//! shared with PostgreSQL ([`super::sql`]); here are only the connection, the file's
//! permissions and the rotation lock.

use std::str::FromStr;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::api::{PoolOptions, Result};
use crate::clock::UnixTime;
use crate::model::{
    AuthCodeRecord, AuthRequestRecord, ClientRecord, CodeIssuance, DeviceCodeRecord,
    DeviceDecision, Redemption, RefreshFamilyRecord, RefreshTokenRecord, SessionRecord,
    SigningKeyRecord,
};

pub struct SqliteStorage {
    pool: SqlitePool,
}

impl SqliteStorage {
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_options(url, &PoolOptions::default()).await
    }

    pub async fn connect_with_options(url: &str, pool: &PoolOptions) -> Result<Self> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        if !memory {
            restrict_file(url);
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(pool.acquire_timeout);
        // WAL, with every commit synced (`synchronous = FULL`): a power cut must not bring
        // back a refresh token that was rotated.
        let options = if memory {
            options
        } else {
            options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
        };
        // An in-memory database lives as long as its connections. A private one
        // (`sqlite::memory:`) has exactly one, forever; a shared-cache one
        // ([`super::shared_memory_url`]) keeps one open forever and may open a few more, so
        // that statements from several requests overlap.
        let shared = memory && url.contains("cache=shared");
        // Connections are in-process: no ping before each use (sqlx's default costs a trip
        // to the connection's thread per query).
        let pool = if memory {
            SqlitePoolOptions::new()
                .max_connections(if shared { 4 } else { 1 })
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .test_before_acquire(false)
                .acquire_timeout(pool.acquire_timeout)
        } else {
            SqlitePoolOptions::new()
                .max_connections(pool.max_connections.unwrap_or(8))
                .test_before_acquire(false)
                .acquire_timeout(pool.acquire_timeout)
        }
        .connect_with(options)
        .await?;
        Ok(Self { pool })
    }

    /// `BEGIN IMMEDIATE` takes the write lock up front, so the check and the insert of a
    /// signing-key rotation are one step even with other processes on the same file.
    async fn key_lock(&self) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// The database holds e-mail addresses, groups, sealed keys and pending PKCE verifiers:
/// it is created readable by its owner only (SQLite gives its `-wal` and `-shm` files the
/// same mode), and an existing file readable by others is tightened, with a warning.
fn restrict_file(url: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let Some(path) = crate::config::DatabaseUrl::new(url).sqlite_file() else {
            return;
        };
        match std::fs::metadata(&path) {
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
                        Ok(()) => tracing::warn!(
                            path = %path.display(),
                            old_mode = format!("{mode:o}"),
                            "the database file was readable by others: its mode is now 0600"
                        ),
                        Err(e) => tracing::warn!(
                            path = %path.display(),
                            error = %e,
                            "the database file is readable by others and could not be restricted"
                        ),
                    }
                    for suffix in ["-wal", "-shm"] {
                        let mut side = path.clone().into_os_string();
                        side.push(suffix);
                        let _ =
                            std::fs::set_permissions(&side, std::fs::Permissions::from_mode(0o600));
                    }
                }
            }
            Err(_) => {
                // Created here with 0600 before SQLite opens it.
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path);
            }
        }
    }
    #[cfg(not(unix))]
    let _ = url;
}

fn migrator() -> sqlx::migrate::Migrator {
    super::migrations::sqlite()
}

super::sql::shared_storage!(
    SqliteStorage,
    sqlx::Sqlite,
    sqlx::sqlite::SqliteRow,
    migrator
);
