//! Okta's groups past the 100 its tokens carry: the Groups API
//! (`GET {org}/api/v1/users/{id}/groups`, paged by the `Link` header) with an API token
//! (`SSWS`) or a service app's access token (client credentials with `private_key_jwt` at
//! `{org}/oauth2/v1/token`, cached until a minute before it expires); either goes to the org's
//! origin and nowhere else.

use serde_json::Value;

use super::assertion::{ASSERTION_TYPE, ClientAssertion};
use super::error::UpstreamError;
use super::http::{HttpError, json_answer, read_capped};
use super::{MAX_GRAPH_PAGE, Upstream, unavailable};
use crate::config::{OktaApiAuth, OktaGroupsApi, OktaServiceApp};

/// A service app of the Okta API: its assertion signer (the key parsed once) and its access
/// token.
pub struct ServiceAppClient {
    app: OktaServiceApp,
    signer: ClientAssertion,
    token: tokio::sync::Mutex<Option<(String, i64)>>,
}

impl ServiceAppClient {
    /// `None` for an API token.
    pub fn new(api: &OktaGroupsApi) -> Result<Option<Self>, UpstreamError> {
        let OktaApiAuth::ServiceApp(app) = &api.auth else {
            return Ok(None);
        };
        let signer = ClientAssertion::new(
            &app.client_id,
            app.private_key.expose(),
            app.key_id.as_deref(),
            None,
        )
        .map_err(|e| UpstreamError::Invalid(format!("groups_api: {e}")))?;
        Ok(Some(Self {
            app: app.clone(),
            signer,
            token: tokio::sync::Mutex::new(None),
        }))
    }
}

impl Upstream {
    /// okta: the names (`profile.name`) of every group of user `user_id`, every page.
    pub async fn okta_groups(
        &self,
        api: &OktaGroupsApi,
        app: Option<&ServiceAppClient>,
        user_id: &str,
    ) -> Result<Vec<String>, UpstreamError> {
        let authorization = match (&api.auth, app) {
            (OktaApiAuth::Token(t), _) => format!("SSWS {}", t.expose()),
            (OktaApiAuth::ServiceApp(_), Some(app)) => {
                format!("Bearer {}", self.okta_app_token(app, &api.url).await?)
            }
            (OktaApiAuth::ServiceApp(_), None) => {
                return Err(UpstreamError::Invalid(
                    "groups_api: no service app client".into(),
                ));
            }
        };
        let origin = url::Url::parse(&api.url)
            .map(|u| u.origin())
            .map_err(|e| UpstreamError::Invalid(format!("groups_api.url: {e}")))?;
        let mut url = url::Url::parse(&api.url)
            .map_err(|e| UpstreamError::Invalid(format!("groups_api.url: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| UpstreamError::Invalid("groups_api.url cannot have a path".into()))?
            .pop_if_empty()
            .extend(["api", "v1", "users", user_id, "groups"]);
        url.set_query(Some("limit=200"));
        let mut url = url.to_string();
        let mut out = Vec::new();
        for _ in 0..100 {
            let (page, next) = self
                .observed("groups_api", self.okta_page(&url, &authorization))
                .await?;
            for g in page.as_array().into_iter().flatten() {
                if let Some(name) = g["profile"]["name"].as_str() {
                    out.push(name.to_string());
                }
            }
            match next {
                Some(n) if url::Url::parse(&n).is_ok_and(|u| u.origin() == origin) => url = n,
                Some(_) => {
                    return Err(UpstreamError::Invalid(
                        "the Groups API's next page is outside groups_api.url".into(),
                    ));
                }
                None => return Ok(out),
            }
        }
        Err(UpstreamError::Invalid(
            "the Groups API has more than 100 pages".into(),
        ))
    }

    /// The service app's access token: the cached one, or a new one.
    async fn okta_app_token(
        &self,
        app: &ServiceAppClient,
        org: &str,
    ) -> Result<String, UpstreamError> {
        let now = self.clock.now();
        let mut cached = app.token.lock().await;
        if let Some((token, expires)) = cached.as_ref()
            && now < expires.saturating_sub(60)
        {
            return Ok(token.clone());
        }
        let token_url = format!("{org}/oauth2/v1/token");
        let assertion = app.signer.sign(&token_url, now)?;
        let scope = app.app.scopes.join(" ");
        let request = async {
            let resp = self
                .http
                .0
                .post(&token_url)
                .header("Accept", "application/json")
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", scope.as_str()),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", assertion.as_str()),
                ])
                .send()
                .await
                .map_err(unavailable)?;
            let (status, body) = json_answer(resp, "Okta's token endpoint").await?;
            match body["access_token"]
                .as_str()
                .filter(|_| status.is_success())
            {
                Some(t) => Ok((
                    t.to_string(),
                    now.saturating_add(body["expires_in"].as_i64().unwrap_or(3600)),
                )),
                None => Err(UpstreamError::Invalid(format!(
                    "the service app got no token ({status}: {})",
                    body["error_description"]
                        .as_str()
                        .or(body["error"].as_str())
                        .unwrap_or("no reason given")
                ))),
            }
        };
        let (token, expires) = self.observed("groups_api_token", request).await?;
        *cached = Some((token.clone(), expires));
        Ok(token)
    }

    /// One page, and the `Link` header's `rel="next"` target.
    async fn okta_page(
        &self,
        url: &str,
        authorization: &str,
    ) -> Result<(Value, Option<String>), UpstreamError> {
        let resp = self
            .http
            .0
            .get(url)
            .header("Accept", "application/json")
            .header("Authorization", authorization)
            .send()
            .await
            .map_err(unavailable)?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(UpstreamError::Unavailable(format!(
                "the Groups API answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(UpstreamError::Invalid(format!(
                "the Groups API answered {status}"
            )));
        }
        let next = resp
            .headers()
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(next_link);
        let bytes = read_capped(resp, MAX_GRAPH_PAGE)
            .await
            .map_err(|e| match e {
                HttpError::Transport(e) => UpstreamError::Unavailable(e.to_string()),
                other => UpstreamError::Invalid(format!("the Groups API: {other}")),
            })?;
        let body = serde_json::from_slice(&bytes)
            .map_err(|e| UpstreamError::Invalid(format!("the Groups API: not JSON ({e})")))?;
        Ok((body, next))
    }
}

/// The target of one `Link` header entry if it is `rel="next"` (RFC 8288).
pub(super) fn next_link(entry: &str) -> Option<String> {
    let (target, params) = entry.trim().split_once(';')?;
    let is_next = params
        .split(';')
        .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
    let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
    is_next.then(|| target.to_string())
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn the_next_link_is_found_among_others() {
        assert_eq!(
            next_link(r#"<https://acme.okta.com/api/v1/users/u/groups?after=x>; rel="next""#),
            Some("https://acme.okta.com/api/v1/users/u/groups?after=x".into())
        );
        assert_eq!(next_link(r#" <https://a/x>; rel="self""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
