//! Why talking to the directory failed: unreachable (try again), wrong credentials, or an
//! answer that refused or broke the operation.

/// Why talking to the directory failed.
#[derive(Debug, thiserror::Error)]
pub enum LdapFailure {
    #[error("the directory cannot be reached: {0}")]
    Unavailable(String),
    #[error("wrong username or password")]
    WrongCredentials,
    #[error("{0}")]
    Refused(String),
    /// The base of a search is not there (`noSuchObject`, 32).
    #[error("no such entry")]
    NoSuchObject,
}

impl From<ldap3::LdapError> for LdapFailure {
    fn from(e: ldap3::LdapError) -> Self {
        match e {
            ldap3::LdapError::LdapResult { result } if result.rc == 32 => Self::NoSuchObject,
            ldap3::LdapError::LdapResult { result } => Self::Refused(format!(
                "the directory answered {}: {}",
                result.rc, result.text
            )),
            other => Self::Unavailable(other.to_string()),
        }
    }
}
