//! oidc-bridge: an OpenID Connect provider, federation broker and mock IdP in one binary.
//!
//! See DESIGN.md for the product and README.md for how to run it.

pub mod app;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod federation;
pub mod keys;
pub mod metrics;
pub mod mock;
pub mod model;
pub mod oidc;
pub mod password;
pub mod protocol;
pub mod secret;
pub mod server;
pub mod storage;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod web;
