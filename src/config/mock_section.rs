//! The `mock:` section: mock mode's users and issuers, and the control API under `serve`.

use std::collections::HashSet;

use serde_json::Value;

use super::parties::*;
use super::tree::{Reader, index};
use crate::secret::SecretString;

const MOCK: &[&str] = &[
    "control_api",
    "admin_token",
    "auto_login",
    "users",
    "issuers",
];
const MOCK_ISSUER: &[&str] = &[
    "id",
    "persona",
    "path",
    "tenant",
    "overage_limit",
    "api_token",
    "hosted_domain",
    "directory_groups",
    "users",
];
const MOCK_USER: &[&str] = &["username", "name", "email", "groups", "roles", "claims"];

pub(super) fn read_mock(r: &mut Reader, v: Option<&Value>) -> MockConfig {
    let o = r.obj(v, "mock", MOCK);
    let control_api = r.bool(&o, "control_api").unwrap_or(false);
    let admin_token = r.string(&o, "admin_token").map(SecretString::new);
    if control_api && admin_token.as_ref().is_none_or(|t| t.expose().len() < 16) {
        r.problem(
            "mock.admin_token",
            "is required (at least 16 characters) when mock.control_api is true",
        );
    }
    let mut issuers = Vec::new();
    let mut seen = HashSet::new();
    for (i, item) in r.list(o.get("issuers"), "mock.issuers").iter().enumerate() {
        let path = index("mock.issuers", i);
        let io = r.obj(Some(item), &path, MOCK_ISSUER);
        let Some(id) = r.required_string(&io, "id") else {
            continue;
        };
        if !seen.insert(id.clone()) {
            r.problem(io.key_path("id"), format!("duplicate issuer id `{id}`"));
        }
        let persona = match r.string(&io, "persona").as_deref() {
            None | Some("plain") => PersonaKind::Plain,
            Some("okta") => PersonaKind::Okta,
            Some("azure") => PersonaKind::Azure,
            Some("google") => PersonaKind::Google,
            Some("github") => PersonaKind::Github,
            Some("gitlab") => PersonaKind::Gitlab,
            Some(other) => {
                r.problem(
                    io.key_path("persona"),
                    format!("`{other}` is not one of plain, okta, azure, google, github, gitlab"),
                );
                PersonaKind::Plain
            }
        };
        let mount = r.string(&io, "path").unwrap_or_else(|| format!("/{id}"));
        if !mount.starts_with('/') || mount.ends_with('/') || mount.contains("//") {
            r.problem(
                io.key_path("path"),
                "must start with `/` and not end with one",
            );
        }
        let users = read_mock_users(r, io.get("users"), &io.key_path("users"));
        issuers.push(MockIssuerConfig {
            id,
            persona,
            path: mount,
            tenant: r.string(&io, "tenant"),
            overage_limit: r.u64(&io, "overage_limit").unwrap_or(200) as usize,
            api_token: r
                .string(&io, "api_token")
                .unwrap_or_else(|| "mock-okta-api-token".into()),
            hosted_domain: r.string(&io, "hosted_domain").map(|d| d.to_lowercase()),
            directory_groups: read_directory_groups(
                r,
                io.get("directory_groups"),
                &io.key_path("directory_groups"),
            ),
            users,
        });
    }
    MockConfig {
        control_api,
        admin_token,
        auto_login: r.bool(&o, "auto_login").unwrap_or(true),
        users: read_mock_users(r, o.get("users"), "mock.users"),
        issuers,
    }
}

fn read_mock_users(r: &mut Reader, v: Option<&Value>, path: &str) -> Vec<MockUserConfig> {
    let mut users = Vec::new();
    for (j, u) in r.list(v, path).iter().enumerate() {
        let upath = index(path, j);
        let uo = r.obj(Some(u), &upath, MOCK_USER);
        let Some(username) = r.required_string(&uo, "username") else {
            continue;
        };
        let claims = match uo.get("claims") {
            None => Default::default(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                r.problem(
                    uo.key_path("claims"),
                    "must be a mapping of claim names to values",
                );
                Default::default()
            }
        };
        users.push(MockUserConfig {
            username,
            name: r.string(&uo, "name"),
            email: r.string(&uo, "email"),
            groups: r.strings(&uo, "groups").unwrap_or_default(),
            roles: r.strings(&uo, "roles").unwrap_or_default(),
            claims,
        });
    }
    users
}

/// google persona: `directory_groups: {eng@example.com: {name: Engineering, member_of: [...]}}`.
fn read_directory_groups(
    r: &mut Reader,
    v: Option<&Value>,
    path: &str,
) -> std::collections::BTreeMap<String, MockDirectoryGroup> {
    let mut out = std::collections::BTreeMap::new();
    match v {
        None => {}
        Some(Value::Object(m)) => {
            for (email, g) in m {
                let gpath = super::tree::join(path, email);
                if !email.contains('@') {
                    r.problem(&gpath, "a Directory group is named by its e-mail address");
                }
                let go = r.obj(Some(g), &gpath, &["name", "member_of"]);
                out.insert(
                    email.to_lowercase(),
                    MockDirectoryGroup {
                        name: r.string(&go, "name"),
                        member_of: r
                            .strings(&go, "member_of")
                            .unwrap_or_default()
                            .into_iter()
                            .map(|e| e.to_lowercase())
                            .collect(),
                    },
                );
            }
        }
        Some(_) => r.problem(
            path,
            "must be a mapping of group e-mail to {name, member_of}",
        ),
    }
    out
}
