//! The security review's findings (`shared/reference/security-review.md`), each tried the
//! way the review tried it against the real server, and each now refused. One module per
//! area; test names start with the finding's id. Storage-backed attacks run on SQLite and on
//! PostgreSQL.

mod common;
mod credentials;
mod faults;
mod linking;
mod requests;
mod server;
mod tokens;
