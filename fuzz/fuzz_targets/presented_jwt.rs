//! JWTs presented to us: access tokens at userinfo and introspection, `id_token_hint` at
//! the authorization and logout endpoints. Signature against our keys (the `kid` chooses,
//! the key's own algorithm only), `typ`, then the claims.
#![no_main]

use std::sync::{Arc, LazyLock};

use oidc_bridge::clock::AdjustableClock;
use oidc_bridge::config::{EncryptionKey, Seconds, SigningAlgorithm};
use oidc_bridge::keys::{KeyManager, KeyPolicy, Sealer};
use oidc_bridge::oidc::tokens::TokenService;
use oidc_bridge::storage::{SqliteStorage, Storage};

static TOKENS: LazyLock<(TokenService, Arc<KeyManager>)> = LazyLock::new(|| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let storage: Arc<dyn Storage> =
            Arc::new(SqliteStorage::connect("sqlite::memory:").await.expect("db"));
        storage.migrate().await.expect("migrate");
        let clock = AdjustableClock::new();
        let policy = KeyPolicy {
            algorithm: SigningAlgorithm::EdDSA,
            rotation_period: Seconds::days(30),
            publish_ahead: Seconds::hours(1),
            retain_for: Seconds::hours(2),
        };
        let keys = KeyManager::start(
            storage.clone(),
            Sealer::new(EncryptionKey([3; 32])),
            clock.clone(),
            policy,
        )
        .await
        .expect("keys");
        let tokens = TokenService::new(
            "https://id.example.com".into(),
            keys.clone(),
            clock,
            storage,
            3600,
        );
        (tokens, keys)
    })
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let (tokens, keys) = &*TOKENS;
    let _ = tokens.decode_access_token(token);
    if let Some((payload, header)) = keys.verify(token) {
        let _ = header.token_type();
        let _ = serde_json::from_slice::<serde_json::Value>(&payload);
    }
});
