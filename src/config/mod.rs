//! The configuration: a typed tree loaded once from YAML, with `${ENV}` expansion, validated
//! all at once so that every problem is reported together with its key path.
//!
//! The keys are the contract in DESIGN.md; the README's configuration reference lists them.

mod agents_section;
mod checks;
mod claims_section;
mod client_agents;
mod clients_section;
mod connector_checks;
mod connector_kinds;
mod connectors;
mod duration;
mod ldap_section;
mod load;
mod mock_section;
mod okta_section;
mod ops_section;
mod parties;
mod server_section;
mod settings;
pub mod tree;
mod upstream_key;

pub use agents_section::*;
pub use claims_section::STANDARD_SCOPES;
pub use client_agents::*;
pub use connector_kinds::*;
pub use duration::Seconds;
pub use ldap_section::*;
pub use load::{client_from_json, from_yaml_str, load_file, load_file_with_env};
pub use okta_section::*;
pub use parties::*;
pub use settings::*;
pub use tree::{Problem, Problems};
pub use upstream_key::UpstreamClientKey;
