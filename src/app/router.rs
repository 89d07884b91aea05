//! The route table: the OP's endpoints under the issuer's path, the upstream callback and
//! chooser, probes at the root, and the layers every request passes (client address, body
//! caps, request log, panic guard). It reads like a table; the handlers live in `oidc/`.

use axum::Router;
use axum::routing::{get, post};

use super::ops;
use super::state::AppState;
use crate::config::Config;
use crate::oidc::authorize::error::{PageContext, render_pages};
use crate::oidc::{
    authorize, consent, device, discovery, error::OAuthError, introspect, login, logout, revoke,
    token, userinfo,
};

/// The OP's routes, relative to the issuer's path.
fn oidc_routes() -> Router<AppState> {
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
        .route(
            discovery::DEVICE_AUTHORIZATION_PATH,
            post(device::authorize),
        )
        .route(discovery::DEVICE_PATH, get(device::page).post(device::post))
        .route("/device/done", get(device::done))
        .route("/login", post(login::post))
        .route("/consent", post(consent::post))
        .route(
            discovery::USERINFO_PATH,
            get(userinfo::handle).post(userinfo::handle),
        )
        .route(discovery::LOGOUT_PATH, get(logout::get).post(logout::post))
        .route("/assets/style.css", get(crate::web::stylesheet))
        .route("/connector", post(authorize::upstream::choose))
        .route(
            "/callback/{connector_id}",
            get(authorize::upstream::callback),
        )
}

/// The router: OIDC routes under the issuer's path, probes at the root.
pub fn router(config: &Config, state: AppState) -> Router {
    finish(issuer_routes(config, state.clone()), state)
}

/// One issuer's routes, under its path, with its state applied.
pub fn issuer_routes(config: &Config, state: AppState) -> Router {
    let oidc = oidc_routes().method_not_allowed_fallback(ops::method_not_allowed);
    let path = config.issuer_path();
    let pages = PageContext {
        issuer: config.issuer.as_str().into(),
        assets: path.as_str().into(),
    };
    let oidc = oidc.layer(axum::middleware::map_response_with_state(
        pages,
        render_pages,
    ));
    let routes = if path.is_empty() {
        oidc
    } else {
        Router::new().nest(&path, oidc)
    };
    routes.with_state(state)
}

/// The metrics listener's routes: `/metrics` only.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(ops::metrics))
        .fallback(ops::not_found)
        .with_state(state)
}

/// The largest body any endpoint's extractor reads (forms cap themselves lower).
pub const MAX_BODY: usize = 1024 * 1024;

/// The whole server: `routes` (one or more issuers), probes at the root answered from
/// `probe_state`, JSON for unknown paths, request logging, the client address, body caps,
/// and a panic guard.
pub fn finish(routes: Router, probe_state: AppState) -> Router {
    let trusted = probe_state.trusted_proxies.clone();
    let metrics = probe_state.metrics.clone();
    let probes = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .with_state(probe_state);
    routes
        .merge(probes)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .fallback(ops::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            ops::log_requests,
        ))
        .layer(axum::middleware::from_fn(crate::audit::scope))
        .layer(axum::middleware::from_fn_with_state(
            trusted,
            crate::server::resolve_client,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                axum::response::IntoResponse::into_response(OAuthError::internal(
                    &"a request handler panicked",
                ))
            },
        ))
}
