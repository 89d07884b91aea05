//! Protocol identifiers as types, after the `openidconnect` crate: a client id, a subject,
//! an issuer and a redirect URI are different things even though each is a string. Each
//! compares as the exact string (OIDC Core §3.1.2.1 for redirect URIs, §2 for `iss`; no
//! normalisation), serialises as a plain JSON string (stored JSON is unchanged), and
//! dereferences to its `String` for reading.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Deref for $name {
            type Target = String;

            fn deref(&self) -> &String {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

identifier!(
    /// A client's `client_id` (RFC 6749 §2.2).
    ClientId
);
identifier!(
    /// A subject (`sub`): who a token is about.
    Subject
);
identifier!(
    /// An issuer identifier (`iss`): an https URL without query or fragment.
    Issuer
);
identifier!(
    /// A redirect URI as the client sent it; matched against registered ones exactly.
    RedirectUri
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_compare_exactly_and_serialise_as_strings() {
        let a = RedirectUri::new("https://rp.example/cb");
        assert_eq!(a, "https://rp.example/cb");
        assert_ne!(a, RedirectUri::new("https://rp.example/cb/"));
        assert_ne!(a, RedirectUri::new("HTTPS://rp.example/cb"));
        assert_eq!(
            serde_json::to_string(&ClientId::new("spa")).expect("json"),
            "\"spa\""
        );
        let s: Subject = serde_json::from_str("\"alice\"").expect("json");
        assert_eq!(s.as_str(), "alice");
        assert_eq!(format!("{s:?}"), "Subject(\"alice\")");
    }
}
