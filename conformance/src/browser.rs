//! A browser for the tests: keeps cookies per host, follows redirects to other servers when
//! asked, and fills in the login, consent and upstream IdP forms it meets.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::{HeaderMap, PASSWORD, USER, http_client};

/// Where an authorization request ended.
#[derive(Debug)]
pub enum Outcome {
    /// Redirected to the client: the callback URL's query.
    Callback(HashMap<String, String>),
    /// A form_post page: its action and fields.
    FormPost(String, HashMap<String, String>),
    /// A page for the person (an error, a login form with an error, a logout page).
    Page(u16, String),
}

impl Outcome {
    pub fn callback(self) -> HashMap<String, String> {
        match self {
            Outcome::Callback(q) => q,
            other => panic!("expected a redirect to the client, got {other:?}"),
        }
    }

    pub fn code(self) -> String {
        let q = self.callback();
        q.get("code")
            .unwrap_or_else(|| panic!("no code in callback: {q:?}"))
            .clone()
    }
}

/// A browser: keeps cookies, follows our own redirects, fills in forms.
pub struct Browser {
    http: reqwest::Client,
    /// Cookies by host, then name (ports share cookies, as in browsers).
    jar: Mutex<HashMap<String, HashMap<String, String>>>,
    /// Follow redirects until one starts with this (the client's redirect URI).
    stop_at: Mutex<Option<String>>,
    /// Credentials typed into a login form; `None` means the test expects no login form.
    login: Mutex<Option<(String, String)>>,
    /// Answer to a consent page.
    pub allow_consent: bool,
    pub pages_seen: Mutex<Vec<&'static str>>,
    /// The consent pages met, as served.
    pub consent_pages: Mutex<Vec<String>>,
    /// Origin of the last request, against which form actions (paths) resolve.
    origin: Mutex<String>,
    /// Sent with every request (`X-Forwarded-For`, say).
    headers: Mutex<Vec<(String, String)>>,
}

pub struct Response {
    pub status: u16,
    pub location: Option<String>,
    pub headers: HeaderMap,
    pub body: String,
}

/// The value of a hidden input, as rendered by our templates.
pub fn hidden(body: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = body.find(&needle)? + needle.len();
    let end = body[start..].find('"')?;
    Some(html_unescape(&body[start..start + end]))
}

pub fn form_action(body: &str) -> Option<String> {
    let start = body.find("<form method=\"post\" action=\"")? + 28;
    let end = body[start..].find('"')?;
    Some(html_unescape(&body[start..start + end]))
}

fn html_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        let end = after.find(';').unwrap_or(0);
        let entity = &after[1..end.max(1)];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) if end > 0 => {
                out.push(c);
                rest = &after[end + 1..];
            }
            _ => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Self {
            http: http_client(),
            jar: Mutex::new(HashMap::new()),
            stop_at: Mutex::new(None),
            login: Mutex::new(Some((USER.into(), PASSWORD.into()))),
            allow_consent: true,
            pages_seen: Mutex::new(Vec::new()),
            consent_pages: Mutex::new(Vec::new()),
            origin: Mutex::new(String::new()),
            headers: Mutex::new(Vec::new()),
        }
    }

    /// Sends `name: value` with every request from now on (replacing an earlier value).
    pub fn set_header(&self, name: &str, value: &str) {
        let mut h = self.headers.lock().unwrap();
        h.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        h.push((name.to_string(), value.to_string()));
    }

    /// From now on a login form ends the flow (as a `Page`) instead of being filled in.
    pub fn expect_no_login(&self) {
        *self.login.lock().unwrap() = None;
    }

    pub fn set_login(&self, user: &str, password: &str) {
        *self.login.lock().unwrap() = Some((user.into(), password.into()));
    }

    /// A browser that follows redirects until one goes to `prefix`.
    pub fn new_following(prefix: &str) -> Self {
        let b = Self::new();
        b.follow_until(prefix);
        b
    }

    /// Follow redirects (to other servers: an upstream IdP) until one goes to `prefix`.
    pub fn follow_until(&self, prefix: &str) {
        *self.stop_at.lock().unwrap() = Some(prefix.to_string());
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar
            .lock()
            .unwrap()
            .values()
            .find_map(|m| m.get(name).cloned())
    }

    pub fn forget_cookies(&self) {
        self.jar.lock().unwrap().clear();
    }

    pub async fn request(
        &self,
        method: &str,
        url: &str,
        form: Option<&[(String, String)]>,
    ) -> Response {
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let cookie = {
            let jar = self.jar.lock().unwrap();
            jar.get(&host)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default()
        };
        let mut req = match method {
            "POST" => self.http.post(url),
            _ => self.http.get(url),
        };
        if !cookie.is_empty() {
            req = req.header("Cookie", cookie);
        }
        for (k, v) in self.headers.lock().unwrap().iter() {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(f) = form {
            req = req.form(f);
        }
        if let Ok(u) = url::Url::parse(url) {
            *self.origin.lock().unwrap() = u.origin().ascii_serialization();
        }
        let resp = req.send().await.expect("browser request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        {
            let mut all = self.jar.lock().unwrap();
            let jar = all.entry(host.clone()).or_default();
            for sc in headers.get_all("set-cookie") {
                let sc = sc.to_str().unwrap_or("");
                let first = sc.split(';').next().unwrap_or("");
                if let Some((k, v)) = first.split_once('=') {
                    if v.is_empty() || sc.contains("Max-Age=0") {
                        jar.remove(k);
                    } else {
                        jar.insert(k.to_string(), v.to_string());
                    }
                }
            }
        }
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.text().await.unwrap_or_default();
        Response {
            status,
            location,
            headers,
            body,
        }
    }

    /// Runs an authorization request to its end, signing in and consenting as configured.
    pub async fn authorize(&self, url: &str) -> Outcome {
        let first = self.request("GET", url, None).await;
        self.drive(first).await
    }

    /// `POST` to the authorization endpoint with the query of `url` as the form body.
    pub async fn authorize_post(&self, url: &str) -> Outcome {
        let parsed = url::Url::parse(url).expect("url");
        let form: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        let endpoint = format!(
            "{}://{}{}",
            parsed.scheme(),
            parsed
                .host_str()
                .map(|h| format!("{h}:{}", parsed.port().unwrap_or(80)))
                .unwrap_or_default(),
            parsed.path()
        );
        let first = self.request("POST", &endpoint, Some(&form)).await;
        self.drive(first).await
    }

    /// `POST` `form` to `url` (a page's form the test fills in itself, such as a connector
    /// chooser's), then go on as [`Self::authorize`] does.
    pub async fn submit(&self, url: &str, form: &[(String, String)]) -> Outcome {
        let first = self.request("POST", url, Some(form)).await;
        self.drive(first).await
    }

    async fn drive(&self, mut resp: Response) -> Outcome {
        for _ in 0..20 {
            if let Some(loc) = resp.location.clone() {
                let stop = self.stop_at.lock().unwrap().clone();
                let absolute = if loc.starts_with('/') {
                    format!("{}{loc}", self.origin.lock().unwrap())
                } else {
                    loc.clone()
                };
                if let Some(prefix) = stop
                    && !absolute.starts_with(&prefix)
                {
                    resp = self.request("GET", &absolute, None).await;
                    continue;
                }
                let u = url::Url::parse(&absolute).expect("redirect URL");
                return Outcome::Callback(u.query_pairs().into_owned().collect());
            }
            let body = resp.body.clone();
            let is_login = body.contains("name=\"password\"");
            let is_consent = body.contains("name=\"decision\"");
            if resp.status == 200 && body.contains("document.forms[0].submit()") {
                let action = form_action(&body).expect("form_post action");
                let mut fields = HashMap::new();
                for part in body.split("<input type=\"hidden\" name=\"").skip(1) {
                    let name = part.split('"').next().unwrap_or("").to_string();
                    if let Some(v) = hidden(&body, &name) {
                        fields.insert(name, v);
                    }
                }
                return Outcome::FormPost(action, fields);
            }
            let base = self.origin.lock().unwrap().clone();
            // node-oidc-provider's development pages (a third-party upstream IdP).
            if resp.status == 200 && body.contains("/interaction/") && body.contains("<form") {
                let start = body.find("action=\"").expect("action") + 8;
                let end = body[start..].find('"').expect("quote") + start;
                let action = html_unescape(&body[start..end]);
                let action = if action.starts_with('/') {
                    format!("{base}{action}")
                } else {
                    action
                };
                let mut form: Vec<(String, String)> = Vec::new();
                for part in body.split("type=\"hidden\" name=\"").skip(1) {
                    let name = part.split('"').next().unwrap_or("").to_string();
                    if let Some(v) = part
                        .split("value=\"")
                        .nth(1)
                        .and_then(|v| v.split('"').next())
                    {
                        form.push((name, html_unescape(v)));
                    }
                }
                if body.contains("name=\"login\"") {
                    self.pages_seen.lock().unwrap().push("upstream-login");
                    form.push(("login".into(), "alice".into()));
                    form.push(("password".into(), "anything".into()));
                } else {
                    self.pages_seen.lock().unwrap().push("upstream-consent");
                }
                resp = self.request("POST", &action, Some(&form)).await;
                continue;
            }
            if is_login && resp.status == 200 {
                self.pages_seen.lock().unwrap().push("login");
                let Some((user, pass)) = self.login.lock().unwrap().clone() else {
                    return Outcome::Page(resp.status, body);
                };
                let mut form = vec![
                    (
                        "request".to_string(),
                        hidden(&body, "request").expect("request id"),
                    ),
                    ("csrf".to_string(), hidden(&body, "csrf").expect("csrf")),
                    ("username".to_string(), user),
                    ("password".to_string(), pass),
                ];
                // A directory's form names its connector, as a real browser would send.
                if let Some(c) = hidden(&body, "connector") {
                    form.push(("connector".to_string(), c));
                }
                let action = form_action(&body).expect("action");
                resp = self
                    .request("POST", &format!("{base}{action}"), Some(&form))
                    .await;
                continue;
            }
            if is_consent && resp.status == 200 {
                self.pages_seen.lock().unwrap().push("consent");
                self.consent_pages.lock().unwrap().push(body.clone());
                let form = vec![
                    (
                        "request".to_string(),
                        hidden(&body, "request").expect("request id"),
                    ),
                    ("csrf".to_string(), hidden(&body, "csrf").expect("csrf")),
                    (
                        "decision".to_string(),
                        if self.allow_consent { "allow" } else { "deny" }.to_string(),
                    ),
                ];
                let action = form_action(&body).expect("action");
                resp = self
                    .request("POST", &format!("{base}{action}"), Some(&form))
                    .await;
                continue;
            }
            return Outcome::Page(resp.status, body);
        }
        panic!("too many steps");
    }
}
