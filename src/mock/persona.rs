//! Personas: what makes a mock issuer look like a real IdP, down to the claim shapes
//! (`../shared/reference/backstage-okta-azure.md`, B and C).
//!
//! * `okta`: an `/oauth2/default` issuer; subjects `00u…`; `ver: 1`, `idp`; access tokens
//!   with `cid`, `uid`, `scp`; `groups` (names) with the `groups` scope.
//! * `azure`: issuer `{base}/{tenant}/v2.0`; `tid`, `oid`, a `sub` that differs per client,
//!   `ver: "2.0"`, `preferred_username`; `groups` as object-id GUIDs, or `_claim_names` /
//!   `_claim_sources` past the overage limit, with a Graph-like `transitiveMemberOf`.
//!
//! The provider calls these hooks whatever the persona; `Plain` changes nothing.

use serde_json::{Map, Value, json};

use crate::federation::Identity;
use crate::oidc::shape::{Shaped, TokenShape};
use crate::secret::{b64url, sha256};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Persona {
    #[default]
    Plain,
    Okta {
        /// The org's id, in `idp`.
        org_id: String,
    },
    Azure {
        tenant: String,
        overage_limit: usize,
        /// Where the Graph-like API is served, e.g. `http://127.0.0.1:8080/azure/graph`.
        graph_url: String,
    },
    /// Google Workspace: numeric subjects, `hd`, `azp`, and never a `groups` claim (groups
    /// live in the Directory API).
    Google {
        /// The `hd` claim; `None`: each user's e-mail domain.
        hosted_domain: Option<String>,
    },
    /// GitHub: plain OAuth 2.0 and a REST API (no ID token reaches a GitHub connector);
    /// subjects are numeric user ids.
    Github,
    /// GitLab's OIDC: numeric subjects, `nickname`, groups (full paths) as `groups_direct` in
    /// the ID token and as `groups` only at userinfo.
    Gitlab,
}

/// A stable identifier derived from `seed`, in an alphabet of `[0-9A-Za-z]`.
fn base62(seed: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    sha256(seed.as_bytes())
        .iter()
        .take(len)
        .map(|b| ALPHABET[*b as usize % 62] as char)
        .collect()
}

/// A stable decimal number of `len` digits (no leading zero) derived from `seed`.
pub fn numeric(seed: &str, len: usize) -> String {
    let digits: String = sha256(seed.as_bytes())
        .iter()
        .cycle()
        .take(len)
        .map(|b| char::from(b'0' + b % 10))
        .collect();
    format!("1{}", &digits[1..])
}

/// A deterministic GUID (RFC 4122 layout, version 5 bits) from `seed`.
pub fn guid(seed: &str) -> String {
    let h = sha256(seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl Persona {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Okta { .. } => "okta",
            Self::Azure { .. } => "azure",
            Self::Google { .. } => "google",
            Self::Github => "github",
            Self::Gitlab => "gitlab",
        }
    }

    /// The subject under which an identity for `username` is known to this persona.
    pub fn subject_for(&self, username: &str) -> String {
        match self {
            Self::Plain => username.to_string(),
            Self::Okta { .. } => format!("00u{}", base62(&format!("okta-user:{username}"), 17)),
            Self::Azure { tenant, .. } => guid(&format!("azure-user:{tenant}:{username}")),
            Self::Google { .. } => numeric(&format!("google-user:{username}"), 21),
            Self::Github => numeric(&format!("github-user:{username}"), 8),
            Self::Gitlab => numeric(&format!("gitlab-user:{username}"), 8),
        }
    }

    /// An Azure group's object id.
    pub fn group_id(&self, name: &str) -> String {
        match self {
            Self::Azure { tenant, .. } => guid(&format!("azure-group:{tenant}:{name}")),
            _ => name.to_string(),
        }
    }
}

/// Keys of a mock identity's `extra` that are not the user's own claims (the persona puts
/// them where its IdP does, or they are the bridge's).
pub const NOT_USER_CLAIMS: &[&str] = &["roles", "xms_edov", "upstream"];

impl TokenShape for Persona {
    /// Claims for tokens issued to `client_id` for `identity` (whose `sub` is the persona's
    /// own key: the Okta user id, or the Azure object id).
    fn shape(&self, identity: &Identity, client_id: &str, scopes: &[String]) -> Shaped {
        let mut s = Shaped::plain(identity);
        if !matches!(self, Self::Plain) {
            // A configured user's own claims (`users[].claims`) are in the ID token, as an
            // authorization server's custom claims are at Okta and Entra ID.
            for (k, v) in &identity.extra {
                if !NOT_USER_CLAIMS.contains(&k.as_str()) {
                    s.id_token.insert(k.clone(), v.clone());
                }
            }
        }
        match self {
            Self::Plain => {}
            Self::Google { hosted_domain } => {
                // Google's ID tokens never carry groups, whatever the scopes.
                s.drop.push("groups");
                s.id_token.insert("azp".into(), json!(client_id));
                // `hd`: the Workspace of the address's domain; a consumer account has none.
                let domain = identity
                    .email
                    .as_ref()
                    .and_then(|e| e.rsplit_once('@'))
                    .map(|(_, d)| d.to_lowercase())
                    .filter(|d| !matches!(d.as_str(), "gmail.com" | "googlemail.com"))
                    .filter(|d| hosted_domain.as_ref().is_none_or(|h| h == d));
                if let Some(d) = domain {
                    s.id_token.insert("hd".into(), json!(d));
                }
                if let Some(n) = &identity.name {
                    s.id_token.insert("name".into(), json!(n));
                }
                if let Some(e) = &identity.email {
                    s.id_token.insert("email".into(), json!(e));
                    s.id_token.insert("email_verified".into(), json!(true));
                }
            }
            // GitHub issues no ID token; its access tokens are opaque to a client, and its
            // groups are teams read from the REST API.
            Self::Github => s.drop.push("groups"),
            Self::Gitlab => {
                // The ID token says `groups_direct`; `groups` is a userinfo claim at GitLab.
                s.drop.push("groups");
                s.id_token
                    .insert("groups_direct".into(), json!(identity.groups));
                if let Some(u) = &identity.preferred_username {
                    s.id_token.insert("nickname".into(), json!(u));
                }
            }
            Self::Okta { org_id } => {
                s.id_token.insert("ver".into(), json!(1));
                s.id_token.insert("idp".into(), json!(org_id));
                if let Some(u) = identity
                    .email
                    .as_ref()
                    .or(identity.preferred_username.as_ref())
                {
                    s.id_token.insert("preferred_username".into(), json!(u));
                }
                if let Some(n) = &identity.name {
                    s.id_token.insert("name".into(), json!(n));
                }
                if scopes.iter().any(|x| x == "email")
                    && let Some(e) = &identity.email
                {
                    s.id_token.insert("email".into(), json!(e));
                    s.id_token.insert(
                        "email_verified".into(),
                        json!(identity.email_verified.unwrap_or(false)),
                    );
                }
                // Okta puts at most 100 groups in a token and drops the rest, silently.
                if identity.groups.len() > crate::config::OKTA_TOKEN_GROUPS {
                    s.drop.push("groups");
                    s.id_token.insert(
                        "groups".into(),
                        json!(identity.groups[..crate::config::OKTA_TOKEN_GROUPS]),
                    );
                }
                s.access_token.insert("ver".into(), json!(1));
                s.access_token.insert("cid".into(), json!(client_id));
                s.access_token.insert("uid".into(), json!(identity.sub));
                s.access_token.insert("scp".into(), json!(scopes));
            }
            Self::Azure {
                tenant,
                overage_limit,
                graph_url,
            } => {
                let oid = identity.sub.clone();
                s.sub = b64url(&sha256(format!("{client_id}\n{tenant}\n{oid}").as_bytes()))[..43]
                    .into();
                for m in [&mut s.id_token, &mut s.access_token] {
                    m.insert("oid".into(), json!(oid));
                    m.insert("tid".into(), json!(tenant));
                    m.insert("ver".into(), json!("2.0"));
                }
                let upn = identity
                    .email
                    .clone()
                    .or(identity.preferred_username.clone())
                    .unwrap_or_default();
                s.id_token.insert("preferred_username".into(), json!(upn));
                if let Some(n) = &identity.name {
                    s.id_token.insert("name".into(), json!(n));
                }
                s.id_token
                    .insert("uti".into(), json!(crate::secret::random_token(16)));
                s.id_token.insert("rh".into(), json!("0.AAAA-mock."));
                if identity.groups.len() > *overage_limit {
                    s.drop.push("groups");
                    s.id_token
                        .insert("_claim_names".into(), json!({"groups": "src1"}));
                    s.id_token.insert(
                        "_claim_sources".into(),
                        json!({"src1": {"endpoint": format!("{graph_url}/v1.0/users/{oid}/getMemberObjects")}}),
                    );
                } else {
                    let ids: Vec<String> =
                        identity.groups.iter().map(|g| self.group_id(g)).collect();
                    s.id_token.insert("groups".into(), json!(ids));
                }
                if let Some(roles) = identity.extra.get("roles") {
                    s.id_token.insert("roles".into(), roles.clone());
                }
                // The optional claims `email` and `xms_edov` (e-mail domain owner verified),
                // as an app registration that asks for both gets them.
                if let Some(edov) = identity.extra.get("xms_edov") {
                    s.id_token.insert("xms_edov".into(), edov.clone());
                    if let Some(e) = &identity.email {
                        s.id_token.insert("email".into(), json!(e));
                    }
                }
                s.access_token.insert("scp".into(), json!(scopes.join(" ")));
            }
        }
        s
    }

    /// The identity key inside an access token: the Azure `oid`, else `sub`.
    fn identity_key<'a>(&self, sub: &'a str, extra: &'a Map<String, Value>) -> &'a str {
        match self {
            Self::Azure { .. } => extra.get("oid").and_then(Value::as_str).unwrap_or(sub),
            _ => sub,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity {
            sub: "oid-1".into(),
            email: Some("alice@contoso.com".into()),
            groups: vec!["a".into(), "b".into()],
            ..Identity::default()
        }
    }

    #[test]
    fn okta_subjects_look_like_okta_user_ids() {
        let p = Persona::Okta {
            org_id: "00o1".into(),
        };
        let sub = p.subject_for("alice");
        assert!(sub.starts_with("00u") && sub.len() == 20, "{sub}");
        assert_eq!(sub, p.subject_for("alice"), "stable");
    }

    #[test]
    fn azure_sub_differs_per_client_and_groups_are_guids_or_overage() {
        let p = Persona::Azure {
            tenant: "t".into(),
            overage_limit: 1,
            graph_url: "http://g".into(),
        };
        let a = p.shape(&alice(), "app-a", &[]);
        let b = p.shape(&alice(), "app-b", &[]);
        assert_ne!(a.sub, b.sub);
        assert_eq!(a.id_token["oid"], "oid-1");
        assert!(a.drop.contains(&"groups"), "two groups over a limit of one");
        assert_eq!(a.id_token["_claim_names"]["groups"], "src1");
        let p = Persona::Azure {
            tenant: "t".into(),
            overage_limit: 200,
            graph_url: "http://g".into(),
        };
        let s = p.shape(&alice(), "app-a", &[]);
        let g = s.id_token["groups"][0].as_str().expect("guid");
        assert_eq!(g.len(), 36);
        assert_eq!(&g[14..15], "5");
    }
}
