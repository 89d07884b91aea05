//! Mock IdP mode: the same server, token code and storage as `serve`, with a mock login, a
//! control API under `{issuer}/mock/`, and personas that look like Okta and Entra ID.

pub mod control;
pub mod faults;
pub mod inspect;
pub mod mint;
pub mod persona;
pub mod state;

/// The client every mock issuer has: it accepts any redirect URI.
pub const BUILTIN_CLIENT_ID: &str = "mock-client";
pub const BUILTIN_CLIENT_SECRET: &str = "mock-secret";
pub mod graph;
