//! The OpenID Provider's endpoints, one module per endpoint or flow. The route table that
//! lists them is the app's (`app/router.rs`).

pub mod authorize;
pub mod backchannel;
pub mod claims;
pub mod client_assertion;
pub mod client_auth;
pub mod client_keys;
pub mod client_sync;
pub mod clients;
pub mod consent;
pub mod device;
pub mod discovery;
pub mod error;
pub mod grant;
pub mod grants;
pub mod id_token;
pub mod introspect;
pub mod login;
pub mod logout;
pub mod params;
mod presented;
pub mod resource;
pub mod revoke;
pub mod session;
pub mod shape;
pub mod throttle;
pub mod token;
pub mod tokens;
pub mod userinfo;
