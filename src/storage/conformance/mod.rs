//! The storage conformance suite: every backend must pass every check here.
//!
//! `tests/storage.rs` runs it against SQLite (file and memory) and PostgreSQL. Each check
//! takes a freshly migrated, empty store.

use std::sync::Arc;

use super::api::Storage;

mod agents;
mod fixtures;
mod records;
mod tokens;

/// Every check, by name, for backends to run one by one.
pub const CHECKS: &[&str] = &[
    "clients_round_trip",
    "migrate_is_idempotent",
    "signing_key_add_is_compare_and_swap",
    "pending_keys_are_superseded",
    "concurrent_rotation_adds_one_key",
    "revocation_and_purge",
    "auth_requests_round_trip",
    "sessions_round_trip",
    "consents_round_trip",
    "auth_code_is_single_use_under_concurrency",
    "auth_code_of_another_client_is_left_untouched",
    "family_of_a_replayed_code_is_born_revoked",
    "refresh_token_rotates_once_under_concurrency",
    "failed_rotation_leaves_the_token_usable",
    "family_revocation_revokes_its_access_tokens",
    "ending_a_session_revokes_what_it_issued",
    "identities_round_trip",
    "duplicate_records_are_conflicts",
    "used_once_under_concurrency",
    "device_polls",
    "device_decisions",
    "session_clients",
];

/// Runs the named check. Panics (fails the test) on any deviation.
pub async fn run(name: &str, s: Arc<dyn Storage>) {
    match name {
        "clients_round_trip" => records::clients_round_trip(&*s).await,
        "migrate_is_idempotent" => records::migrate_is_idempotent(&*s).await,
        "signing_key_add_is_compare_and_swap" => {
            records::signing_key_add_is_compare_and_swap(&*s).await
        }
        "pending_keys_are_superseded" => records::pending_keys_are_superseded(&*s).await,
        "concurrent_rotation_adds_one_key" => records::concurrent_rotation_adds_one_key(s).await,
        "revocation_and_purge" => records::revocation_and_purge(&*s).await,
        "auth_requests_round_trip" => records::auth_requests_round_trip(&*s).await,
        "sessions_round_trip" => records::sessions_round_trip(&*s).await,
        "consents_round_trip" => records::consents_round_trip(&*s).await,
        "auth_code_is_single_use_under_concurrency" => tokens::auth_code_single_use(s).await,
        "auth_code_of_another_client_is_left_untouched" => tokens::auth_code_foreign(&*s).await,
        "family_of_a_replayed_code_is_born_revoked" => tokens::replayed_code_family(&*s).await,
        "refresh_token_rotates_once_under_concurrency" => tokens::refresh_rotates_once(s).await,
        "failed_rotation_leaves_the_token_usable" => tokens::failed_rotation(&*s).await,
        "family_revocation_revokes_its_access_tokens" => tokens::family_revocation(&*s).await,
        "ending_a_session_revokes_what_it_issued" => tokens::end_session(&*s).await,
        "identities_round_trip" => records::identities_round_trip(&*s).await,
        "duplicate_records_are_conflicts" => records::duplicate_records(&*s).await,
        "used_once_under_concurrency" => agents::used_once_under_concurrency(s).await,
        "device_polls" => agents::device_polls(&*s).await,
        "device_decisions" => agents::device_decisions(&*s).await,
        "session_clients" => agents::session_clients(&*s).await,
        other => panic!("unknown conformance check {other}"),
    }
}
