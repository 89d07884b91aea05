//! GitHub's side of a `github` connector: plain OAuth 2.0 (no discovery, no ID token) at
//! `{base_url}/login/oauth/access_token`, and the REST API at `api_url` with the user's
//! token, paged by `Link: <…>; rel="next"` (followed only within `api_url`'s origin, so the
//! token goes nowhere else). Every API call sends `X-GitHub-Api-Version: 2022-11-28`.

use serde_json::Value;

use super::error::UpstreamError;
use super::http::json_answer;
use super::okta::next_link;
use super::{Upstream, unavailable};

/// The REST API version every call asks for.
const API_VERSION: &str = "2022-11-28";
/// At most this many pages of one listing.
const MAX_PAGES: usize = 50;

/// The tokens of a GitHub sign-in. OAuth Apps' tokens do not expire; GitHub Apps' user
/// tokens do, with a refresh token.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GithubTokens {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the access token expires (Unix seconds), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl Upstream {
    /// `POST {base_url}/login/oauth/access_token` with `params` (a code and its PKCE
    /// verifier, or a refresh token). GitHub answers an OAuth error with 200 and `error`.
    pub async fn github_token(
        &self,
        params: &[(&str, &str)],
    ) -> Result<GithubTokens, UpstreamError> {
        let url = format!("{}/login/oauth/access_token", self.config.issuer);
        let mut form = vec![
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", self.config.client_secret.expose()),
        ];
        form.extend_from_slice(params);
        let request = async {
            let resp = self
                .http
                .0
                .post(&url)
                .header("Accept", "application/json")
                .form(&form)
                .send()
                .await
                .map_err(unavailable)?;
            let body = read_json(resp, "the token endpoint").await?;
            if let Some(error) = body["error"].as_str() {
                return Err(UpstreamError::Refused(error.to_string()));
            }
            let access_token = body["access_token"]
                .as_str()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| UpstreamError::Invalid("no access_token from GitHub".into()))?;
            Ok(GithubTokens {
                access_token: access_token.to_string(),
                refresh_token: body["refresh_token"].as_str().map(str::to_string),
                expires_at: body["expires_in"]
                    .as_i64()
                    .map(|s| self.clock.now().saturating_add(s)),
            })
        };
        self.observed("token", request).await
    }

    /// `GET {api_url}{path}` with the user's token: the body, and the next page's URL.
    async fn github_get(
        &self,
        url: &str,
        token: &str,
    ) -> Result<(reqwest::StatusCode, Value, Option<String>), UpstreamError> {
        let resp = self
            .http
            .0
            .get(url)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .header("User-Agent", "oidc-bridge")
            .bearer_auth(token)
            .send()
            .await
            .map_err(unavailable)?;
        let status = resp.status();
        // A rate limit is GitHub being busy, not the person being refused.
        let limited = status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || (status == reqwest::StatusCode::FORBIDDEN
                && resp
                    .headers()
                    .get("x-ratelimit-remaining")
                    .is_some_and(|v| v.as_bytes() == b"0"));
        if limited {
            return Err(UpstreamError::Unavailable(format!(
                "GitHub's rate limit ({status})"
            )));
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(UpstreamError::Refused(
                "GitHub no longer accepts the token (the app was revoked or the token expired)"
                    .into(),
            ));
        }
        if status == reqwest::StatusCode::NO_CONTENT
            || status == reqwest::StatusCode::NOT_FOUND
            || status.is_redirection()
        {
            return Ok((status, Value::Null, None));
        }
        let next = resp
            .headers()
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(next_link);
        let body = read_json(resp, "the GitHub API").await?;
        Ok((status, body, next))
    }

    /// One object from the API (`/user`).
    pub async fn github_object(&self, path: &str, token: &str) -> Result<Value, UpstreamError> {
        let url = self.github_url(path)?;
        let (status, body, _) = self.observed("api", self.github_get(&url, token)).await?;
        if !status.is_success() || !body.is_object() {
            return Err(UpstreamError::Invalid(format!(
                "GitHub {path} answered {status}"
            )));
        }
        Ok(body)
    }

    /// Every item of a listing (`/user/teams`), page by page.
    pub async fn github_list(&self, path: &str, token: &str) -> Result<Vec<Value>, UpstreamError> {
        let origin = url::Url::parse(&self.github_url("/")?)
            .map(|u| u.origin())
            .map_err(|e| UpstreamError::Invalid(format!("api_url: {e}")))?;
        let mut url = self.github_url(&format!("{path}?per_page=100"))?;
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let (status, body, next) = self.observed("api", self.github_get(&url, token)).await?;
            let Value::Array(items) = body else {
                return Err(UpstreamError::Invalid(format!(
                    "GitHub {path} answered {status}"
                )));
            };
            out.extend(items);
            match next {
                Some(n) if url::Url::parse(&n).is_ok_and(|u| u.origin() == origin) => url = n,
                Some(_) => {
                    return Err(UpstreamError::Invalid(
                        "GitHub's next page is outside api_url".into(),
                    ));
                }
                None => return Ok(out),
            }
        }
        Err(UpstreamError::Invalid(format!(
            "GitHub {path} has more than {MAX_PAGES} pages"
        )))
    }

    /// Whether `login` is a member of `org` (204; 404 or 302: not, or the app may not see).
    pub async fn github_member(
        &self,
        org: &str,
        login: &str,
        token: &str,
    ) -> Result<bool, UpstreamError> {
        let url = self.github_segments(&["orgs", org, "members", login])?;
        let (status, _, _) = self
            .observed("api", self.github_get(url.as_str(), token))
            .await?;
        Ok(status == reqwest::StatusCode::NO_CONTENT)
    }

    /// The numeric id of `org` if the person is an active member of it
    /// (`/user/memberships/orgs/{org}`); a moved (renamed) org's old name: `None`.
    pub async fn github_membership_id(
        &self,
        org: &str,
        token: &str,
    ) -> Result<Option<u64>, UpstreamError> {
        let url = self.github_segments(&["user", "memberships", "orgs", org])?;
        let (status, body, _) = self
            .observed("api", self.github_get(url.as_str(), token))
            .await?;
        if status.is_redirection() {
            tracing::warn!(connector = %self.config.id, %org, "GitHub moved this org (renamed?): nobody is admitted through its old name");
        }
        Ok((status.is_success() && body["state"] == "active")
            .then(|| body["organization"]["id"].as_u64())
            .flatten())
    }

    /// `api_url` with these path segments, each percent-encoded (an org or login never
    /// reaches another path).
    fn github_segments(&self, segments: &[&str]) -> Result<url::Url, UpstreamError> {
        let mut url = url::Url::parse(&self.github_url("/")?)
            .map_err(|e| UpstreamError::Invalid(format!("api_url: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| UpstreamError::Invalid("api_url cannot have a path".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn github_url(&self, path: &str) -> Result<String, UpstreamError> {
        match &self.config.settings {
            crate::config::KindSettings::Github(g) => Ok(format!("{}{path}", g.api_url)),
            _ => Err(UpstreamError::Invalid("not a github connector".into())),
        }
    }
}

/// A JSON answer that must be a success.
async fn read_json(resp: reqwest::Response, what: &str) -> Result<Value, UpstreamError> {
    let (status, body) = json_answer(resp, what).await?;
    if !status.is_success() {
        return Err(UpstreamError::Invalid(format!("{what} answered {status}")));
    }
    Ok(body)
}
