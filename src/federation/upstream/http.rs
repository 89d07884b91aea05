//! Upstream HTTP: every answer read through a size cap, and the client the `openidconnect`
//! crate's token requests go through.

/// The largest upstream answer read: discovery, JWKS, token and userinfo responses.
pub const MAX_RESPONSE: usize = 1024 * 1024;

/// Why an upstream HTTP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the answer cannot be read: {0}")]
    Http(String),
    /// A 5xx: the upstream is down or overloaded, whatever its body says.
    #[error("the identity provider answered {0}")]
    ServerError(u16),
}

/// A response body, read through a size cap (the `Content-Length` is not trusted alone).
pub(super) async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, HttpError> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(HttpError::TooLarge(cap));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Err(HttpError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The HTTP client the `openidconnect` crate uses for token requests: the connector's
/// client (timeout, no redirects), with the answer read through [`MAX_RESPONSE`].
pub struct CappedHttp(pub(super) reqwest::Client);

impl<'c> openidconnect::AsyncHttpClient<'c> for CappedHttp {
    type Error = HttpError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, HttpError>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request: reqwest::Request = request
                .try_into()
                .map_err(|e: reqwest::Error| HttpError::Http(e.to_string()))?;
            let resp = self.0.execute(request).await?;
            if resp.status().is_server_error() {
                return Err(HttpError::ServerError(resp.status().as_u16()));
            }
            let mut builder = openidconnect::http::Response::builder().status(resp.status());
            for (name, value) in resp.headers() {
                builder = builder.header(name, value);
            }
            let body = read_capped(resp, MAX_RESPONSE).await?;
            builder
                .body(body)
                .map_err(|e| HttpError::Http(e.to_string()))
        })
    }
}

/// How long an answer may be cached (`Cache-Control`); `no-store` and `no-cache`: not at all.
pub(super) fn max_age(headers: &reqwest::header::HeaderMap) -> Option<i64> {
    let cc = headers.get(reqwest::header::CACHE_CONTROL)?.to_str().ok()?;
    if cc.contains("no-store") || cc.contains("no-cache") {
        return Some(0);
    }
    cc.split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|v| v.parse().ok())
}

/// A JSON answer, read through [`MAX_RESPONSE`]: a 5xx or a broken transfer is
/// `Unavailable`, an answer too large or not JSON is `Invalid`. The status is the caller's
/// to judge.
pub(super) async fn json_answer(
    resp: reqwest::Response,
    what: &str,
) -> Result<(reqwest::StatusCode, serde_json::Value), super::error::UpstreamError> {
    use super::error::UpstreamError;
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
    let body = serde_json::from_slice(&bytes)
        .map_err(|e| UpstreamError::Invalid(format!("{what} ({status}): not JSON ({e})")))?;
    Ok((status, body))
}
