//! What a `google` connector adds to OIDC: the `hd` check (a Workspace domain the connector
//! names, never a consumer account when it names any) and groups from the Directory API,
//! named as `group_name` says. Pure functions of what Google answered, shared with
//! `groups explain` (whose claims file may hold `directory_groups`, as a sign-in reads them).

use serde_json::Value;

use super::groups::RawGroup;
use super::upstream::google::DirectoryGroup;
use crate::config::{GoogleGroupName, GoogleSettings};

/// `Err`: the ID token's `hd` is not one of `hosted_domains` (absent: a consumer account).
pub fn check_hosted_domain(google: &GoogleSettings, claims: &Value) -> Result<(), String> {
    if google.hosted_domains.is_empty() {
        return Ok(());
    }
    match claims["hd"].as_str() {
        Some(hd)
            if google
                .hosted_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(hd)) =>
        {
            Ok(())
        }
        Some(hd) => Err(format!(
            "the Google Workspace domain {hd} is not allowed here"
        )),
        None => Err("a Google account outside the allowed Workspace domains".into()),
    }
}

/// The Directory's groups as raw groups, named per `group_name`. The local part names only
/// groups of the person's own Workspace domain `hd`; another domain's keeps its address
/// (`admins@labs.example.com` is not `admins@example.com`).
pub fn raw_groups(google: &GoogleSettings, hd: &str, found: &[DirectoryGroup]) -> Vec<RawGroup> {
    found
        .iter()
        .map(|g| RawGroup {
            value: match google.group_name {
                GoogleGroupName::Email => g.email.clone(),
                GoogleGroupName::Name if !g.name.is_empty() => g.name.clone(),
                GoogleGroupName::Name => g.email.clone(),
                GoogleGroupName::EmailLocalPart => match g.email.rsplit_once('@') {
                    Some((local, domain)) if domain.eq_ignore_ascii_case(hd) => local.to_string(),
                    _ => g.email.clone(),
                },
            },
            source: match &g.via {
                None => format!("google:directory {}", g.email),
                Some(via) => format!("google:directory {} (transitive, via {via})", g.email),
            },
            display_name: None,
        })
        .collect()
}

/// `directory_groups` in a claims file (`groups explain`).
pub fn from_claims(claims: &Value) -> Vec<DirectoryGroup> {
    serde_json::from_value(claims["directory_groups"].clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn google(extra: &str) -> GoogleSettings {
        let c = crate::config::from_yaml_str(
            &format!("connectors: [{{id: g, type: google, client_id: a, client_secret: b, hosted_domains: [example.com]{extra}}}]"),
            &|_| None,
        )
        .expect("config")
        .connectors
        .remove(0);
        match c.settings {
            crate::config::KindSettings::Google(g) => g,
            _ => panic!("google"),
        }
    }

    #[test]
    fn only_the_named_workspace_domains_sign_in() {
        let g = google("");
        assert!(check_hosted_domain(&g, &json!({"hd": "example.com"})).is_ok());
        assert!(check_hosted_domain(&g, &json!({"hd": "evil.com"})).is_err());
        assert!(
            check_hosted_domain(&g, &json!({})).is_err(),
            "a gmail.com account has no hd"
        );
    }

    #[test]
    fn group_names_follow_group_name() {
        let found = vec![DirectoryGroup {
            email: "eng@example.com".into(),
            name: "Engineering".into(),
            via: Some("platform@example.com".into()),
        }];
        let hd = "example.com";
        assert_eq!(
            raw_groups(&google(""), hd, &found)[0].value,
            "eng@example.com"
        );
        assert_eq!(
            raw_groups(&google(", group_name: name"), hd, &found)[0].value,
            "Engineering"
        );
        assert_eq!(
            raw_groups(&google(", group_name: email_local_part"), hd, &found)[0].value,
            "eng"
        );
        assert_eq!(
            raw_groups(
                &google(", group_name: email_local_part"),
                "labs.example.com",
                &found
            )[0]
            .value,
            "eng@example.com",
            "another domain's group keeps its address"
        );
        assert_eq!(
            raw_groups(&google(""), hd, &found)[0].source,
            "google:directory eng@example.com (transitive, via platform@example.com)"
        );
    }
}
