//! The github persona's GitHub look, in GitHub Enterprise's layout (web at `{mount}`, REST
//! API at `{mount}/api/v3`), for a bridge's `type: github` connector: what Dex's connector
//! calls (`../shared/reference/connector-notes.md` §2.3).
//!
//! * `GET {mount}/login/oauth/authorize`: redirected to the issuer's own `/authorize`, with
//!   `openid profile email` for GitHub's scopes and `login` as `login_hint`;
//! * `POST {mount}/login/oauth/access_token`: forwarded to the issuer's own `/token` and
//!   answered as GitHub does: JSON or a form by `Accept`, errors with HTTP 200;
//! * `GET {mount}/api/v3/user`, `/user/emails`, `/user/teams`, `/user/orgs` and
//!   `/orgs/{org}/members/{username}`, authorized by the issuer's access tokens (`Bearer …`
//!   or `token …`), the lists paged with `per_page`, `page` and a `Link` header.
//!
//! A mock user's `groups` are their memberships: `acme` is the org `acme`, and
//! `acme/Platform Team` the team `platform-team` in it (and so the org too).

pub mod memberships;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::persona::{Persona, numeric};
use crate::federation::Identity;
use crate::oidc::shape::TokenShape;
use crate::oidc::tokens::TokenService;
use crate::server::ClientAddr;
use crate::storage::Storage;

pub struct GithubApi {
    pub tokens: Arc<TokenService>,
    pub storage: Arc<dyn Storage>,
    pub persona: Persona,
    /// The issuer's own routes (its /authorize and /token), to forward the OAuth calls to.
    pub issuer: Router,
    /// Public URL of the mount (`http://127.0.0.1:PORT/github`), for redirects and `Link`.
    pub base: String,
}

type Api = State<Arc<GithubApi>>;
type PageQuery = Query<HashMap<String, String>>;
/// A handler's answer; GitHub's error answers are the `Err`s.
type Answer = Result<Response, Response>;

const ACCESS_TOKEN_PATH: &str = "/login/oauth/access_token";
const API_DOCS: &str = "https://docs.github.com/rest";
const TOKEN_ERROR_DOCS: &str = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/";
/// What GitHub says it granted: the scopes a GitHub connector asks for.
const GRANTED_SCOPES: &str = "read:org,user:email";
/// A GitHub App's expiring user token lives 8 hours, its refresh token six months.
const EXPIRES_IN: u64 = 28_800;
const REFRESH_TOKEN_EXPIRES_IN: u64 = 15_897_600;
/// Largest token request, and token answer, read.
const MAX_TOKEN_BODY: usize = 1 << 20;
const JSON_UTF8: &str = "application/json; charset=utf-8";

/// Routes at `{mount}/login/oauth/...` and `{mount}/api/v3/...` (org membership checks:
/// `memberships::routes`).
pub fn routes(mount: &str, api: Arc<GithubApi>) -> Router {
    let v3 = format!("{mount}/api/v3");
    Router::new()
        .route(&format!("{mount}/login/oauth/authorize"), get(authorize))
        .route(&format!("{mount}{ACCESS_TOKEN_PATH}"), post(access_token))
        .route(&format!("{v3}/user"), get(user))
        .route(&format!("{v3}/user/emails"), get(emails))
        .route(&format!("{v3}/user/teams"), get(teams))
        .route(&format!("{v3}/user/orgs"), get(orgs))
        .with_state(api)
}

async fn authorize(State(api): Api, Query(q): PageQuery) -> Response {
    match authorize_url(&api.base, &q) {
        Some(url) => (StatusCode::FOUND, [(header::LOCATION, url)]).into_response(),
        None => (StatusCode::BAD_REQUEST, "client_id is required").into_response(),
    }
}

/// The issuer's authorization request for GitHub's `q`; `None` without a `client_id`.
fn authorize_url(base: &str, q: &HashMap<String, String>) -> Option<String> {
    let client_id = q.get("client_id").filter(|c| !c.is_empty())?;
    let mut ser = form_urlencoded::Serializer::new(String::new());
    ser.append_pair("response_type", "code");
    ser.append_pair("client_id", client_id);
    // GitHub's scopes (`user:email read:org`) mean nothing to the OP.
    ser.append_pair("scope", "openid profile email");
    for (from, to) in [
        ("redirect_uri", "redirect_uri"),
        ("state", "state"),
        ("code_challenge", "code_challenge"),
        ("code_challenge_method", "code_challenge_method"),
        ("login", "login_hint"),
    ] {
        if let Some(v) = q.get(from).filter(|v| !v.is_empty()) {
            ser.append_pair(to, v);
        }
    }
    Some(format!("{base}/authorize?{}", ser.finish()))
}

async fn access_token(State(api): Api, req: Request) -> Answer {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_TOKEN_BODY)
        .await
        .map_err(|_| api_error(StatusCode::PAYLOAD_TOO_LARGE, "Body too large"))?;
    let mut form: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
    let refresh = form
        .iter()
        .any(|(k, v)| k == "grant_type" && v == "refresh_token");
    if !form.iter().any(|(k, _)| k == "grant_type") {
        form.push(("grant_type".into(), "authorization_code".into()));
    }
    // The issuer's token endpoint is `/token` under the same mount.
    let mount = parts.uri.path().strip_suffix(ACCESS_TOKEN_PATH);
    let token_path = format!("{}/token", mount.unwrap_or_default());
    let (status, op) = forward(&api, &parts, &token_path, &form).await?;
    let (status, fields) = github_token_answer(status, &op, refresh);
    Ok(token_reply(wants_json(&parts.headers), status, fields))
}

/// GitHub answers JSON only to `Accept: application/json`, else a form.
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.to_ascii_lowercase().contains("application/json"))
}

/// Posts `form` to the issuer's token endpoint at `path`, with the caller's client
/// authentication and address; its status and JSON answer.
async fn forward(
    api: &GithubApi,
    parts: &Parts,
    path: &str,
    form: &[(String, String)],
) -> Result<(StatusCode, Map<String, Value>), Response> {
    let failed = || api_error(StatusCode::BAD_GATEWAY, "Server Error");
    let body = {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in form {
            ser.append_pair(k, v);
        }
        ser.finish()
    };
    let mut req = axum::http::Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json");
    if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
        req = req.header(header::AUTHORIZATION, auth.clone());
    }
    if let Some(addr) = parts.extensions.get::<ClientAddr>() {
        req = req.extension(*addr);
    }
    let req = req.body(Body::from(body)).map_err(|_| failed())?;
    let mut svc = api.issuer.clone();
    let Ok(resp) = tower_service::Service::call(&mut svc, req).await;
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), MAX_TOKEN_BODY)
        .await
        .map_err(|_| failed())?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(op)) => Ok((status, op)),
        _ => Err(failed()),
    }
}

/// The OP's token answer in GitHub's shape. An OAuth error is an HTTP 200, as at GitHub
/// (only an overloaded or failing OP keeps its status).
fn github_token_answer(
    status: StatusCode,
    op: &Map<String, Value>,
    refresh: bool,
) -> (StatusCode, Vec<(&'static str, Value)>) {
    let text = |k: &str| op.get(k).and_then(Value::as_str);
    if status.is_success()
        && let Some(token) = text("access_token")
    {
        let mut fields = vec![("access_token", json!(token))];
        // Only a GitHub App with expiring user tokens gets a refresh token and lifetimes.
        if let Some(rt) = text("refresh_token") {
            let expires = op.get("expires_in").and_then(Value::as_u64);
            fields.extend([
                ("expires_in", json!(expires.unwrap_or(EXPIRES_IN))),
                ("refresh_token", json!(rt)),
                ("refresh_token_expires_in", json!(REFRESH_TOKEN_EXPIRES_IN)),
            ]);
        }
        fields.extend([
            ("scope", json!(GRANTED_SCOPES)),
            ("token_type", json!("bearer")),
        ]);
        return (StatusCode::OK, fields);
    }
    let (error, known) = github_error(text("error").unwrap_or("server_error"), refresh);
    let description = known.or(text("error_description")).unwrap_or_default();
    let kept = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
    let uri = format!("{TOKEN_ERROR_DOCS}#{}", error.replace('_', "-"));
    let fields = vec![
        ("error", json!(error)),
        ("error_description", json!(description)),
        ("error_uri", json!(uri)),
    ];
    (if kept { status } else { StatusCode::OK }, fields)
}

const BAD_REFRESH: &str = "The refresh token passed is incorrect or expired.";
const BAD_CODE: &str = "The code passed is incorrect or expired.";
const BAD_CLIENT: &str = "The client_id and/or client_secret passed are incorrect.";

/// GitHub's name for an OP's token error, and GitHub's description of it.
fn github_error(code: &str, refresh: bool) -> (&str, Option<&'static str>) {
    match code {
        "invalid_grant" if refresh => ("bad_refresh_token", Some(BAD_REFRESH)),
        "invalid_grant" => ("bad_verification_code", Some(BAD_CODE)),
        "invalid_client" => ("incorrect_client_credentials", Some(BAD_CLIENT)),
        other => (other, None),
    }
}

fn token_reply(json_reply: bool, status: StatusCode, fields: Vec<(&str, Value)>) -> Response {
    if json_reply {
        let body = fields.into_iter().map(|(k, v)| (k.to_string(), v));
        return github_json(status, Value::Object(body.collect()));
    }
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &fields {
        let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
        ser.append_pair(k, &text);
    }
    let form = "application/x-www-form-urlencoded; charset=utf-8";
    (status, [(header::CONTENT_TYPE, form)], ser.finish()).into_response()
}

fn github_json(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    let json = HeaderValue::from_static(JSON_UTF8);
    resp.headers_mut().insert(header::CONTENT_TYPE, json);
    resp
}

fn api_error(status: StatusCode, message: &str) -> Response {
    let code = status.as_u16().to_string();
    let body = json!({"message": message, "documentation_url": API_DOCS, "status": code});
    github_json(status, body)
}

/// The token of `Authorization: Bearer …` or `Authorization: token …`.
fn presented_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    let known = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token");
    (known && !token.is_empty()).then_some(token)
}

/// The person a request's token (one of the issuer's access tokens) is for; or GitHub's
/// error answer.
async fn signed_in(api: &GithubApi, headers: &HeaderMap) -> Result<Identity, Response> {
    let bad_credentials = || api_error(StatusCode::UNAUTHORIZED, "Bad credentials");
    let unavailable = || api_error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(presented_token)
        .ok_or_else(bad_credentials)?;
    let claims = match api.tokens.validate_access_token(token).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(bad_credentials()),
        Err(_) => return Err(unavailable()),
    };
    let key = api.persona.identity_key(&claims.sub, &claims.extra);
    match api.storage.get_identity(key).await {
        Ok(found) => found
            .and_then(|j| serde_json::from_str::<Identity>(&j).ok())
            .ok_or_else(bad_credentials),
        Err(_) => Err(unavailable()),
    }
}

/// A stable number from `seed`, for org and team ids.
fn numeric_id(seed: &str) -> u64 {
    numeric(seed, 7).parse().unwrap_or(0)
}

fn login_of(identity: &Identity) -> String {
    match identity.preferred_username.as_deref() {
        Some(u) if !u.is_empty() => u.to_string(),
        _ => identity.sub.to_string(),
    }
}

/// The persona's subjects are numeric user ids; any other subject gets a stable number.
fn user_id(identity: &Identity) -> u64 {
    let made_up = || numeric(&format!("github-user:{}", identity.sub), 8);
    identity
        .sub
        .parse()
        .unwrap_or_else(|_| made_up().parse().unwrap_or(0))
}

fn user_json(base: &str, identity: &Identity) -> Value {
    let login = login_of(identity);
    let id = user_id(identity);
    json!({
        "login": login,
        "id": id,
        "node_id": format!("U_kgDO{id}"),
        "html_url": format!("{base}/{login}"),
        "type": "User",
        "site_admin": false,
        "name": identity.name,
        // As for a user who keeps their address private: a connector must ask /user/emails.
        "email": null,
    })
}

/// The user's addresses: `extra.github_emails` (`[{email, primary, verified}]`) when
/// given, else their e-mail, primary and verified.
fn emails_json(identity: &Identity) -> Value {
    let Some(Value::Array(given)) = identity.extra.get("github_emails") else {
        return match &identity.email {
            Some(e) => json!([{"email": e, "primary": true, "verified": true, "visibility": null}]),
            None => json!([]),
        };
    };
    let flag = |e: &Value, k: &str| e.get(k).and_then(Value::as_bool).unwrap_or(false);
    let list = given.iter().filter_map(|e| {
        let email = e.get("email")?.as_str()?;
        let visibility = e.get("visibility").cloned().unwrap_or(Value::Null);
        Some(json!({
            "email": email,
            "primary": flag(e, "primary"),
            "verified": flag(e, "verified"),
            "visibility": visibility,
        }))
    });
    Value::Array(list.collect())
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Team {
    org: String,
    name: String,
    slug: String,
}

/// Orgs and teams, in the order first named, each once (org logins case-insensitively).
#[derive(Debug, Default, PartialEq, Eq)]
struct Memberships {
    orgs: Vec<String>,
    teams: Vec<Team>,
}

/// A mock user's groups as GitHub memberships: `org` or `org/Team Name`.
fn memberships(groups: &[String]) -> Memberships {
    let mut m = Memberships::default();
    for g in groups {
        let (org, team) = match g.split_once('/') {
            Some((o, t)) => (o.trim(), t.trim()),
            None => (g.trim(), ""),
        };
        if org.is_empty() {
            continue;
        }
        if !m.orgs.iter().any(|o| o.eq_ignore_ascii_case(org)) {
            m.orgs.push(org.to_string());
        }
        let slug = slug(team);
        let known = |t: &Team| t.org.eq_ignore_ascii_case(org) && t.slug == slug;
        if slug.is_empty() || m.teams.iter().any(known) {
            continue;
        }
        let (org, name) = (org.to_string(), team.to_string());
        m.teams.push(Team { org, name, slug });
    }
    m
}

/// A team's slug: lowercase, each run of other characters than ASCII letters and digits
/// one `-`, none at either end.
fn slug(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let words = lower.split(|c: char| !c.is_ascii_alphanumeric());
    let words: Vec<&str> = words.filter(|w| !w.is_empty()).collect();
    words.join("-")
}

fn org_json(org: &str) -> Value {
    let id = numeric_id(&format!("github-org:{org}"));
    json!({"login": org, "id": id, "node_id": format!("O_kgDO{id}")})
}

fn team_json(base: &str, t: &Team) -> Value {
    let id = numeric_id(&format!("github-team:{}/{}", t.org, t.slug));
    json!({
        "id": id,
        "node_id": format!("T_kwDO{id}"),
        "name": t.name,
        "slug": t.slug,
        "html_url": format!("{base}/orgs/{}/teams/{}", t.org, t.slug),
        "organization": org_json(&t.org),
    })
}

/// One page of a list: `per_page` (default 30, at most 100) items from page `page`
/// (from 1); `last` is the last page there is (1 for an empty list).
#[derive(Debug, PartialEq, Eq)]
struct Page {
    per_page: usize,
    page: usize,
    last: usize,
    start: usize,
    end: usize,
}

fn page_of(total: usize, per_page: Option<&str>, page: Option<&str>) -> Page {
    let number = |v: Option<&str>| v.and_then(|s| s.trim().parse::<usize>().ok());
    let per_page = number(per_page).filter(|n| *n > 0).unwrap_or(30).min(100);
    let page = number(page).filter(|n| *n > 0).unwrap_or(1);
    let start = (page - 1).saturating_mul(per_page).min(total);
    Page {
        per_page,
        page,
        last: total.div_ceil(per_page).max(1),
        start,
        end: start.saturating_add(per_page).min(total),
    }
}

/// GitHub's `Link` header for page `p` of the list at `url`, when a next page exists.
fn link_header(url: &str, p: &Page) -> Option<String> {
    if p.page >= p.last {
        return None;
    }
    let at = |n: usize| format!("<{url}?per_page={}&page={n}>", p.per_page);
    let (next, last) = (at(p.page + 1), at(p.last));
    Some(format!("{next}; rel=\"next\", {last}; rel=\"last\""))
}

fn paged(base: &str, path: &str, q: &HashMap<String, String>, items: Vec<Value>) -> Response {
    let param = |k: &str| q.get(k).map(String::as_str);
    let p = page_of(items.len(), param("per_page"), param("page"));
    let count = p.end.saturating_sub(p.start);
    let body: Vec<Value> = items.into_iter().skip(p.start).take(count).collect();
    let mut resp = github_json(StatusCode::OK, Value::Array(body));
    if let Some(link) = link_header(&format!("{base}/api/v3{path}"), &p)
        && let Ok(v) = HeaderValue::from_str(&link)
    {
        resp.headers_mut().insert(header::LINK, v);
    }
    resp
}

async fn user(State(api): Api, headers: HeaderMap) -> Answer {
    let identity = signed_in(&api, &headers).await?;
    Ok(github_json(StatusCode::OK, user_json(&api.base, &identity)))
}

async fn emails(State(api): Api, headers: HeaderMap) -> Answer {
    let identity = signed_in(&api, &headers).await?;
    Ok(github_json(StatusCode::OK, emails_json(&identity)))
}

async fn teams(State(api): Api, headers: HeaderMap, Query(q): PageQuery) -> Answer {
    let m = memberships(&signed_in(&api, &headers).await?.groups);
    let items = m.teams.iter().map(|t| team_json(&api.base, t)).collect();
    Ok(paged(&api.base, "/user/teams", &q, items))
}

async fn orgs(State(api): Api, headers: HeaderMap, Query(q): PageQuery) -> Answer {
    let m = memberships(&signed_in(&api, &headers).await?.groups);
    let items = m.orgs.iter().map(String::as_str).map(org_json).collect();
    Ok(paged(&api.base, "/user/orgs", &q, items))
}

#[cfg(test)]
mod tests;
