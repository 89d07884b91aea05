//! The config loader: YAML, `${ENV}` expansion, the typed tree and every validation.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let env = |k: &str| (k == "SET").then(|| "from-env".to_string());
        if let Ok(config) = oidc_bridge::config::from_yaml_str(text, &env) {
            // What start-up derives from a valid config must not panic either.
            let _ = config.longest_signed_token_lifetime();
            let _ = oidc_bridge::app::key_policy(&config);
            let _ = config.issuer_path();
            let _ = oidc_bridge::server::Limits::from(&config.server);
        }
    }
});
