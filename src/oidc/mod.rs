//! The OpenID Provider's endpoints, one module per endpoint or flow, and the router that
//! lists them.

pub mod authorize;
pub mod client_auth;
pub mod clients;
pub mod consent;
pub mod discovery;
pub mod error;
pub mod grants;
pub mod id_token;
pub mod identity;
pub mod introspect;
pub mod login;
pub mod logout;
pub mod params;
pub mod revoke;
pub mod session;
pub mod throttle;
pub mod token;
pub mod tokens;
pub mod userinfo;

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
        .route(
            discovery::AUTHORIZE_PATH,
            get(authorize::get).post(authorize::post),
        )
        .route("/login", post(login::post))
        .route("/consent", post(consent::post))
        .route(
            discovery::USERINFO_PATH,
            get(userinfo::handle).post(userinfo::handle),
        )
        .route(discovery::LOGOUT_PATH, get(logout::get).post(logout::post))
        .route("/assets/style.css", get(crate::web::stylesheet))
        .route("/connector", post(crate::federation::flow::choose))
        .route(
            "/callback/{connector_id}",
            get(crate::federation::flow::callback),
        )
}
