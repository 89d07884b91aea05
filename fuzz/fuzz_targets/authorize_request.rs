//! Authorization request parsing: the form/query parser, the client and redirect URI
//! check, every parameter rule (PKCE, prompt, max_age, the `claims` parameter, the caps).
#![no_main]

use std::sync::{Arc, LazyLock};

use oidc_bridge::oidc::authorize::request;
use oidc_bridge::oidc::clients::{Client, ClientRegistry};
use oidc_bridge::oidc::params::Params;
use oidc_bridge::secret::ClientSecretKey;

static CLIENTS: LazyLock<ClientRegistry> = LazyLock::new(|| {
    let yaml = r#"
clients:
  - { id: web, secret: web-secret-0123456789, scopes: [openid, profile],
      redirect_uris: [https://app.example.com/cb, "http://127.0.0.1/cb"] }
  - { id: pub, redirect_uris: ["http://[::1]/cb"], token_endpoint_auth_method: none }
"#;
    let config = oidc_bridge::config::from_yaml_str(yaml, &|_| None).expect("config");
    let key = ClientSecretKey::new([7; 32]);
    let registry = ClientRegistry::new(key.clone());
    for c in config.clients {
        registry.insert(Client::new(c, Vec::new(), key.clone()));
    }
    registry
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(params) = Params::parse(data) else {
        return;
    };
    let _ = params.total_len();
    if let Ok((client, target)) = request::trusted_target(&params, &CLIENTS) {
        let client: Arc<Client> = client;
        for any_claim in [false, true] {
            if let Ok(req) = request::parse(
                &params,
                &client,
                &target,
                |t| Some(t.to_string()),
                any_claim,
            ) {
                let _ = oidc_bridge::oidc::authorize::consent_items(&req);
                let _ = serde_json::to_string(&req);
            }
        }
    }
});
