//! Integration tests: the real server over HTTP, real SQLite and PostgreSQL.

mod agents;
mod architecture;
mod backstage;
mod bad_input;
mod cli;
mod client_credentials;
mod deploy;
mod discovery;
mod helpers;
mod introspection;
mod keys;
mod reload;
mod storage;
