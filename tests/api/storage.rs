//! The storage conformance suite against every backend: one test per check and backend, each
//! on a freshly migrated, empty store.

use std::sync::Arc;

use oidc_bridge::storage::conformance::{CHECKS, run};
use oidc_bridge::storage::{SqliteStorage, Storage};

use crate::helpers::postgres_store;

async fn sqlite_memory() -> Arc<dyn Storage> {
    let s = SqliteStorage::connect("sqlite::memory:")
        .await
        .expect("open");
    s.migrate().await.expect("migrate");
    Arc::new(s)
}

/// A SQLite file in its own directory (kept until the test ends).
async fn sqlite_file() -> (Arc<dyn Storage>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let s = SqliteStorage::connect(&url).await.expect("open");
    s.migrate().await.expect("migrate");
    (Arc::new(s), dir)
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        const LISTED: &[&str] = &[$(stringify!($check)),*];

        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::run(stringify!($check), super::sqlite_memory().await).await;
                }
            )*
        }

        mod sqlite_file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    let (store, _dir) = super::sqlite_file().await;
                    super::run(stringify!($check), store).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    if let Some((store, _)) = super::postgres_store().await {
                        super::run(stringify!($check), store).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    clients_round_trip,
    migrate_is_idempotent,
    signing_key_add_is_compare_and_swap,
    pending_keys_are_superseded,
    concurrent_rotation_adds_one_key,
    revocation_and_purge,
    auth_requests_round_trip,
    sessions_round_trip,
    consents_round_trip,
    auth_code_is_single_use_under_concurrency,
    auth_code_of_another_client_is_left_untouched,
    family_of_a_replayed_code_is_born_revoked,
    refresh_token_rotates_once_under_concurrency,
    failed_rotation_leaves_the_token_usable,
    family_revocation_revokes_its_access_tokens,
    ending_a_session_revokes_what_it_issued,
    identities_round_trip,
    duplicate_records_are_conflicts,
    used_once_under_concurrency,
    device_polls,
    device_decisions,
    session_clients,
);

#[test]
fn every_conformance_check_runs_on_every_backend() {
    assert_eq!(
        LISTED, CHECKS,
        "list each check of storage::conformance::CHECKS in conformance!() above"
    );
}
