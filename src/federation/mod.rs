//! The federation broker: whoever vouches for a person, behind one seam. Connectors (the
//! local users, generic OIDC, Okta, Entra ID) implement the small traits of `connector.rs`;
//! the registry routes a login to them and asks them at refresh. One group-normalization
//! pipeline and one subject scheme for every upstream.
//!
//! Nothing here knows an endpoint of the OP or the mock: connectors hand back an
//! [`Identity`] and the OP does the rest.

pub mod connector;
pub mod github;
pub mod google;
pub mod groups;
pub mod identity;
pub mod ldap;
pub mod local;
pub mod oidc_connector;
pub mod policy;
pub mod registry;
pub mod upstream;

pub use connector::{
    ConnectorError, FormField, Identity, IdentityLookup, LoginFailure, LoginForm,
    PasswordConnector, PasswordPrompt, PendingUpstream, RedirectConnector, RefreshConnector,
    Refreshed, SilentLogin, TokenIdentity, UpstreamSession,
};
pub use local::LocalConnector;
pub use oidc_connector::OidcConnector;
pub use registry::{ConnectorRegistry, Route, UnknownConnector};
