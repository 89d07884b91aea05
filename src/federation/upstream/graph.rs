//! Entra ID's groups from Microsoft Graph, for overage users (more groups than fit in the ID
//! token): every page of `transitiveMemberOf`, the bearer token sent to Graph only; and the
//! user's profile attributes that mapped claims name (`graph.department`).

use super::error::UpstreamError;
use super::{MAX_GRAPH_PAGE, Upstream};

impl Upstream {
    /// azure: every group of the signed-in user from Graph's `transitiveMemberOf`, following
    /// `@odata.nextLink`, keeping `#microsoft.graph.group` entries: (id, displayName).
    pub async fn graph_groups(
        &self,
        access_token: &str,
    ) -> Result<Vec<(String, Option<String>)>, UpstreamError> {
        let mut url = format!(
            "{}/v1.0/me/transitiveMemberOf?$select=id,displayName",
            self.config.graph_url
        );
        let graph_origin = url::Url::parse(&self.config.graph_url)
            .map(|u| u.origin())
            .map_err(|e| UpstreamError::Invalid(format!("graph_url: {e}")))?;
        let mut out = Vec::new();
        for _ in 0..100 {
            let (page, _) = self
                .observed(
                    "graph",
                    self.get_json_capped(&url, Some(access_token), MAX_GRAPH_PAGE),
                )
                .await?;
            for item in page["value"].as_array().into_iter().flatten() {
                if item["@odata.type"] == "#microsoft.graph.group"
                    && let Some(id) = item["id"].as_str()
                {
                    out.push((
                        id.to_string(),
                        item["displayName"].as_str().map(str::to_string),
                    ));
                }
            }
            match page["@odata.nextLink"].as_str() {
                // The bearer token goes to Graph and nowhere else.
                Some(next) if url::Url::parse(next).is_ok_and(|u| u.origin() == graph_origin) => {
                    url = next.to_string()
                }
                Some(_) => {
                    return Err(UpstreamError::Invalid(
                        "Graph's @odata.nextLink points outside graph_url".into(),
                    ));
                }
                None => return Ok(out),
            }
        }
        Err(UpstreamError::Invalid("Graph paging did not end".into()))
    }

    /// azure: the signed-in user's profile from Graph's `/me`, only the `fields` asked for
    /// (`$select`, names as Graph spells them: `department`, `employeeId`).
    pub async fn graph_profile(
        &self,
        access_token: &str,
        fields: &[&str],
    ) -> Result<serde_json::Value, UpstreamError> {
        let url = format!(
            "{}/v1.0/me?$select={}",
            self.config.graph_url,
            fields.join(",")
        );
        let (profile, _) = self
            .observed(
                "graph",
                self.get_json_capped(&url, Some(access_token), MAX_GRAPH_PAGE),
            )
            .await?;
        Ok(profile)
    }
}
