//! The OpenID Provider's endpoints, one module per endpoint or flow, and the router that
//! lists them.

pub mod client_auth;
pub mod clients;
pub mod discovery;
pub mod error;
pub mod grants;
pub mod introspect;
pub mod params;
pub mod revoke;
pub mod token;
pub mod tokens;

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;

/// Routes relative to the issuer's path.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery::get))
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::get),
        )
        .route(discovery::JWKS_PATH, get(discovery::jwks))
        .route(discovery::TOKEN_PATH, post(token::post))
        .route(discovery::INTROSPECT_PATH, post(introspect::post))
        .route(discovery::REVOKE_PATH, post(revoke::post))
}
