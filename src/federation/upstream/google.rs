//! Google Workspace groups from the Admin SDK Directory API, for a `google` connector
//! (Google's ID tokens carry none): a service account acting as a domain admin
//! (domain-wide delegation) gets an access token with an RS256 JWT-bearer assertion
//! (RFC 7523) signed through OpenSSL (josekit), cached until a minute before it expires,
//! one per admin; then `GET {api_url}/admin/directory/v1/groups?userKey=…`, every page.
//! With `transitive`, each group's own groups are read too, with a visited set.

use std::collections::{BTreeSet, HashMap, VecDeque};

use josekit::jws::{JwsHeader, JwsSigner, RS256};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::UpstreamError;
use super::http::json_answer;
use super::{Upstream, unavailable};
use crate::config::{DIRECTORY_GROUP_SCOPE, DIRECTORY_USER_SCOPE, GoogleDirectory};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// At most this many groups are followed for one person.
const MAX_GROUPS: usize = 2000;
/// At most this many pages of one listing.
const MAX_PAGES: usize = 50;

/// One group the Directory API listed, and the group through which it was reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectoryGroup {
    pub email: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// The service account, its signer (parsed once), and the access tokens it holds.
pub struct Directory {
    settings: GoogleDirectory,
    signer: Box<dyn JwsSigner>,
    /// admin → (access token, expires at).
    tokens: tokio::sync::Mutex<HashMap<String, (String, i64)>>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("client_email", &self.settings.key.client_email)
            .finish_non_exhaustive()
    }
}

impl Directory {
    pub fn new(settings: &GoogleDirectory) -> Result<Self, UpstreamError> {
        let mut signer = RS256
            .signer_from_pem(settings.key.private_key.expose().as_bytes())
            .map_err(|e| {
                UpstreamError::Invalid(format!("the service-account key cannot sign: {e}"))
            })?;
        if let Some(kid) = &settings.key.private_key_id {
            signer.set_key_id(kid);
        }
        Ok(Self {
            settings: settings.clone(),
            signer: Box::new(signer),
            tokens: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    pub fn transitive(&self) -> bool {
        self.settings.transitive
    }

    /// The admin acting for the Workspace `hd` (or the `*` one).
    pub fn admin_for(&self, hd: &str) -> Option<&str> {
        self.settings
            .admins
            .get(&hd.to_lowercase())
            .or_else(|| self.settings.admins.get("*"))
            .map(String::as_str)
    }

    fn assertion(&self, admin: &str, now: i64) -> Result<String, UpstreamError> {
        let claims = json!({
            "iss": self.settings.key.client_email,
            "sub": admin,
            "scope": format!("{DIRECTORY_GROUP_SCOPE} {DIRECTORY_USER_SCOPE}"),
            "aud": self.settings.key.token_uri,
            "iat": now,
            "exp": now.saturating_add(3600),
        });
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        let payload = serde_json::to_vec(&claims)
            .map_err(|e| UpstreamError::Invalid(format!("assertion: {e}")))?;
        josekit::jws::serialize_compact(&payload, &header, &*self.signer)
            .map_err(|e| UpstreamError::Invalid(format!("cannot sign the assertion: {e}")))
    }
}

impl Upstream {
    /// An access token for the Directory API as `admin`: the cached one, or a new one.
    async fn directory_token(&self, dir: &Directory, admin: &str) -> Result<String, UpstreamError> {
        let now = self.clock.now();
        let mut cache = dir.tokens.lock().await;
        if let Some((token, expires)) = cache.get(admin)
            && now < expires.saturating_sub(60)
        {
            return Ok(token.clone());
        }
        let assertion = dir.assertion(admin, now)?;
        let url = dir.settings.key.token_uri.clone();
        let request = async {
            let resp = self
                .http
                .0
                .post(&url)
                .header("Accept", "application/json")
                .form(&[
                    ("grant_type", JWT_BEARER),
                    ("assertion", assertion.as_str()),
                ])
                .send()
                .await
                .map_err(unavailable)?;
            let status = resp.status();
            let body: Value = read_body(resp, "the service-account token endpoint").await?;
            if !status.is_success() {
                let why = body["error_description"]
                    .as_str()
                    .or(body["error"].as_str())
                    .unwrap_or("no reason given");
                return Err(UpstreamError::Invalid(format!(
                    "the service account got no Directory token ({status}: {why})"
                )));
            }
            let token = body["access_token"]
                .as_str()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    UpstreamError::Invalid("no access_token for the service account".into())
                })?
                .to_string();
            Ok((
                token,
                now.saturating_add(body["expires_in"].as_i64().unwrap_or(3600)),
            ))
        };
        let (token, expires) = self.observed("directory_token", request).await?;
        cache.insert(admin.to_string(), (token.clone(), expires));
        Ok(token)
    }

    /// Every group `user_key` (a person's or a group's e-mail) is directly in; `None` when
    /// the Directory does not show it to this admin (unknown, or another domain's).
    async fn direct_groups(
        &self,
        dir: &Directory,
        admin: &str,
        user_key: &str,
    ) -> Result<Option<Vec<(String, String)>>, UpstreamError> {
        let mut out = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut url = url::Url::parse(&format!(
                "{}/admin/directory/v1/groups",
                dir.settings.api_url
            ))
            .map_err(|e| UpstreamError::Invalid(format!("directory.api_url: {e}")))?;
            url.query_pairs_mut()
                .append_pair("userKey", user_key)
                .append_pair("maxResults", "200");
            if let Some(p) = &page_token {
                url.query_pairs_mut().append_pair("pageToken", p);
            }
            let Some(page) = self.directory_get(dir, admin, url.as_str()).await? else {
                return Ok(None);
            };
            for g in page["groups"].as_array().into_iter().flatten() {
                if let Some(email) = g["email"].as_str() {
                    let name = g["name"].as_str().unwrap_or_default();
                    out.push((email.to_lowercase(), name.to_string()));
                }
            }
            match page["nextPageToken"].as_str().filter(|t| !t.is_empty()) {
                Some(t) => page_token = Some(t.to_string()),
                None => return Ok(Some(out)),
            }
        }
        Err(UpstreamError::Invalid(format!(
            "the Directory API has more than {MAX_PAGES} pages of groups"
        )))
    }

    /// The groups of the person `email`: direct, and with `transitive` every group those are
    /// in, each listed once with the group it was reached through.
    pub async fn google_groups(
        &self,
        dir: &Directory,
        email: &str,
        hd: &str,
    ) -> Result<Vec<DirectoryGroup>, UpstreamError> {
        // A Workspace with no admin here: no Directory this service account reads.
        let Some(admin) = dir.admin_for(hd) else {
            tracing::info!(connector = %self.config.id, %hd, "no directory admin for this Workspace: no Directory groups");
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::new();
        // A Workspace this admin does not run (no hosted_domains, the `*` admin): no groups.
        let Some(direct) = self.direct_groups(dir, admin, email).await? else {
            tracing::warn!(connector = %self.config.id, %hd, "the Directory does not show this person to its admin: no Directory groups");
            return Ok(Vec::new());
        };
        for (e, name) in direct {
            if seen.insert(e.clone()) {
                queue.push_back(e.clone());
                out.push(DirectoryGroup {
                    email: e,
                    name,
                    via: None,
                });
            }
        }
        if !dir.transitive() {
            return Ok(out);
        }
        while let Some(group) = queue.pop_front() {
            if out.len() >= MAX_GROUPS {
                tracing::warn!(connector = %self.config.id, "transitive groups stop at {MAX_GROUPS}");
                break;
            }
            // A group the admin cannot see (another domain's) has no groups here.
            let Some(parents) = self.direct_groups(dir, admin, &group).await? else {
                tracing::info!(connector = %self.config.id, %group, "the Directory does not show this group: its own groups are not followed");
                continue;
            };
            for (e, name) in parents {
                if seen.insert(e.clone()) {
                    queue.push_back(e.clone());
                    out.push(DirectoryGroup {
                        email: e,
                        name,
                        via: Some(group.clone()),
                    });
                }
            }
        }
        Ok(out)
    }
}

impl Upstream {
    /// `GET url` on the Directory as `admin`: the answer, or `None` when the Directory does
    /// not show the key (404, or 403 for another domain's). A rate limit is `Unavailable`; a
    /// refused token is dropped from the cache (the next call gets a new one).
    async fn directory_get(
        &self,
        dir: &Directory,
        admin: &str,
        url: &str,
    ) -> Result<Option<Value>, UpstreamError> {
        let token = self.directory_token(dir, admin).await?;
        let request = async {
            let resp = self
                .http
                .0
                .get(url)
                .header("Accept", "application/json")
                .bearer_auth(&token)
                .send()
                .await
                .map_err(unavailable)?;
            let status = resp.status();
            let body = read_body(resp, "the Directory API").await?;
            let why = body["error"]["message"]
                .as_str()
                .unwrap_or("no reason given");
            let reason = body["error"]["errors"][0]["reason"]
                .as_str()
                .unwrap_or_default();
            match status.as_u16() {
                200..=299 => Ok(Some(body)),
                404 => Ok(None),
                429 => Err(UpstreamError::Unavailable(format!(
                    "the Directory API: {why}"
                ))),
                403 if reason.contains("RateLimit") || reason.contains("quota") => Err(
                    UpstreamError::Unavailable(format!("the Directory API: {why}")),
                ),
                403 => Ok(None),
                401 => {
                    dir.tokens.lock().await.remove(admin);
                    Err(UpstreamError::Unavailable(format!(
                        "the Directory API refused its token ({why}); a new one is fetched next time"
                    )))
                }
                _ => Err(UpstreamError::Invalid(format!(
                    "the Directory API answered {status}: {why}"
                ))),
            }
        };
        self.observed("directory", request).await
    }

    /// Whether the person `email` is active in the Directory (`users.get`: neither suspended
    /// nor archived, and there at all).
    pub async fn google_user_active(
        &self,
        dir: &Directory,
        email: &str,
        hd: &str,
    ) -> Result<bool, UpstreamError> {
        let Some(admin) = dir.admin_for(hd) else {
            return Ok(true);
        };
        let mut url = url::Url::parse(&format!(
            "{}/admin/directory/v1/users",
            dir.settings.api_url
        ))
        .map_err(|e| UpstreamError::Invalid(format!("directory.api_url: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| UpstreamError::Invalid("directory.api_url cannot have a path".into()))?
            .push(email);
        url.set_query(Some("fields=primaryEmail,suspended,archived"));
        Ok(match self.directory_get(dir, admin, url.as_str()).await? {
            None => false,
            Some(u) => u["suspended"] != Value::Bool(true) && u["archived"] != Value::Bool(true),
        })
    }
}

async fn read_body(resp: reqwest::Response, what: &str) -> Result<Value, UpstreamError> {
    Ok(json_answer(resp, what).await?.1)
}
