//! Mock IdP mode: a connector (`connector.rs`: the any-username form, silent logins, refresh
//! from the latest stored claims), a token shape (`persona.rs`: Okta and Entra ID), and a
//! control plane under `{issuer}/mock/` (clock, faults, queued logins, minting). The app
//! assembles it (`app/mock_mode.rs`); the OP never names it.

pub mod connector;
pub mod control;
pub mod device;
pub mod error;
pub mod faults;
pub mod github_api;
pub mod google_api;
pub mod graph;
pub mod inspect;
pub mod mint;
pub mod okta_api;
pub mod okta_app;
pub mod persona;
pub mod state;

/// The client every mock issuer has: it accepts any redirect URI.
pub const BUILTIN_CLIENT_ID: &str = "mock-client";
pub const BUILTIN_CLIENT_SECRET: &str = "mock-secret";
