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
use super::http::{HttpError, MAX_RESPONSE, read_capped};
use super::{Upstream, unavailable};
use crate::config::{DIRECTORY_GROUP_SCOPE, GoogleDirectory};

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

    /// The admin acting for `email`'s domain (or the `*` one).
    pub fn admin_for(&self, email: &str) -> Option<&str> {
        let domain = email.rsplit_once('@').map(|(_, d)| d.to_lowercase())?;
        self.settings
            .admins
            .get(&domain)
            .or_else(|| self.settings.admins.get("*"))
            .map(String::as_str)
    }

    fn assertion(&self, admin: &str, now: i64) -> Result<String, UpstreamError> {
        let claims = json!({
            "iss": self.settings.key.client_email,
            "sub": admin,
            "scope": DIRECTORY_GROUP_SCOPE,
            "aud": self.settings.key.token_uri,
            "iat": now,
            "exp": now + 3600,
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
            && now < expires - 60
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
            Ok((token, now + body["expires_in"].as_i64().unwrap_or(3600)))
        };
        let (token, expires) = self.observed("directory_token", request).await?;
        cache.insert(admin.to_string(), (token.clone(), expires));
        Ok(token)
    }

    /// Every group `user_key` (a person's or a group's e-mail) is directly in.
    async fn direct_groups(
        &self,
        dir: &Directory,
        token: &str,
        user_key: &str,
    ) -> Result<Vec<(String, String)>, UpstreamError> {
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
            let Some(page) = self
                .observed("directory", self.directory_page(url.as_str(), token))
                .await?
            else {
                return Err(UpstreamError::Invalid(format!(
                    "the Directory API does not know {user_key}"
                )));
            };
            for g in page["groups"].as_array().into_iter().flatten() {
                if let Some(email) = g["email"].as_str() {
                    let name = g["name"].as_str().unwrap_or_default();
                    out.push((email.to_lowercase(), name.to_string()));
                }
            }
            match page["nextPageToken"].as_str().filter(|t| !t.is_empty()) {
                Some(t) => page_token = Some(t.to_string()),
                None => return Ok(out),
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
    ) -> Result<Vec<DirectoryGroup>, UpstreamError> {
        // Another domain's (or a consumer) account: no Workspace this service account reads.
        let Some(admin) = dir.admin_for(email) else {
            tracing::info!(connector = %self.config.id, "no directory admin for this account's domain: no Directory groups");
            return Ok(Vec::new());
        };
        let token = self.directory_token(dir, admin).await?;
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::new();
        for (e, name) in self.direct_groups(dir, &token, email).await? {
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
            let parents = match self.direct_groups(dir, &token, &group).await {
                Err(UpstreamError::Invalid(why)) if why.contains("does not know") => {
                    tracing::info!(connector = %self.config.id, %group, "the Directory does not know this group: its own groups are not followed");
                    Vec::new()
                }
                other => other?,
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
    /// One page of `groups.list`; `None` for a 404 (the key is unknown to the Directory).
    async fn directory_page(&self, url: &str, token: &str) -> Result<Option<Value>, UpstreamError> {
        let resp = self
            .http
            .0
            .get(url)
            .header("Accept", "application/json")
            .bearer_auth(token)
            .send()
            .await
            .map_err(unavailable)?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = read_body(resp, "the Directory API").await?;
        if !status.is_success() {
            let why = body["error"]["message"]
                .as_str()
                .unwrap_or("no reason given");
            return Err(UpstreamError::Invalid(format!(
                "the Directory API answered {status}: {why}"
            )));
        }
        Ok(Some(body))
    }
}

async fn read_body(resp: reqwest::Response, what: &str) -> Result<Value, UpstreamError> {
    let status = resp.status();
    if status.is_server_error() {
        return Err(UpstreamError::Unavailable(format!(
            "{what} answered {status}"
        )));
    }
    let bytes = read_capped(resp, MAX_RESPONSE).await.map_err(|e| match e {
        HttpError::Transport(e) => UpstreamError::Unavailable(e.to_string()),
        other => UpstreamError::Invalid(format!("{what}: {other}")),
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| UpstreamError::Invalid(format!("{what}: not JSON ({e})")))
}
