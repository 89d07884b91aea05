//! HTML pages (askama views, one struct per template) and the headers every page carries:
//! a strict CSP with `frame-ancestors 'none'`, `X-Frame-Options: DENY`,
//! `Referrer-Policy: no-referrer` and `Cache-Control: no-store`.

use std::sync::LazyLock;

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The only script we serve: it submits a `response_mode=form_post` form.
pub const FORM_POST_SCRIPT: &str = "document.forms[0].submit();";

/// The page policy; `form_action` is where forms may post (`'self'` for our own forms).
fn csp(form_action: &str) -> String {
    let hash = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        crate::secret::sha256(FORM_POST_SCRIPT.as_bytes()),
    );
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'sha256-{hash}'; \
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
}

static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    HeaderValue::from_str(&csp("'self'"))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"))
});

/// The `form_post` response page may post only to the client's redirect URI: its origin
/// (or, for a private-use scheme, the scheme).
pub fn render_form_post(view: &FormPostView<'_>) -> Response {
    let mut resp = render(StatusCode::OK, view);
    let policy = match csp_source(view.action) {
        Some(t) => csp(&t),
        None => csp("'none'"),
    };
    if let Ok(v) = HeaderValue::from_str(&policy) {
        resp.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

/// The origin a form's answer may lead to, as a CSP source (`https://rp.example:8443`, or
/// `com.example.app:` for a private-use scheme); `None` for what cannot be one.
fn csp_source(uri: &str) -> Option<String> {
    let u = url::Url::parse(uri).ok()?;
    let s = match u.origin() {
        url::Origin::Tuple(..) => u.origin().ascii_serialization(),
        url::Origin::Opaque(_) => format!("{}:", u.scheme()),
    };
    (!s.contains([';', ',', ' ', '\'', '"'])).then_some(s)
}

/// Widens a page's `form-action` from `'self'` to where its forms' answers redirect:
/// Chromium applies `form-action` to the whole redirect chain of a submission, so a
/// consent form whose answer is a redirect to the client must name the client's origin.
/// `None`: the targets cannot be listed (a client allowed any redirect URI), so no
/// `form-action` at all.
pub fn allow_form_targets(resp: &mut Response, targets: Option<&[String]>) {
    let policy = match targets {
        None => {
            let p = csp("'self'");
            p.replace("form-action 'self'; ", "")
        }
        Some(list) => {
            let mut sources = vec!["'self'".to_string()];
            for s in list.iter().filter_map(|t| csp_source(t)) {
                if !sources.contains(&s) {
                    sources.push(s);
                }
            }
            csp(&sources.join(" "))
        }
    };
    if let Ok(v) = HeaderValue::from_str(&policy) {
        resp.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
}

pub static STYLE: &str = include_str!("../assets/style.css");

/// Adds the page security headers.
pub fn secure_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, CSP.clone());
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// Renders a view as an HTML response with the security headers.
pub fn render(status: StatusCode, view: &impl Template) -> Response {
    let mut resp = match view.render() {
        Ok(html) => (status, axum::response::Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "page rendering failed").into_response()
        }
    };
    secure_headers(&mut resp);
    resp
}

pub async fn stylesheet() -> Response {
    let mut resp = ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    resp
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginView<'a> {
    pub assets: &'a str,
    pub action: String,
    pub client_name: &'a str,
    pub error: Option<String>,
    pub request_id: &'a str,
    pub csrf: &'a str,
    pub username: &'a str,
    /// The directory connector the form signs in with (none: the local users).
    pub connector: Option<&'a str>,
    /// What the form signs in to (a directory connector's name).
    pub connector_name: Option<&'a str>,
    /// A line above the form (the mock: any username signs in).
    pub note: Option<&'static str>,
    pub password_required: bool,
    /// More inputs the password connector asks for.
    pub fields: Vec<LoginField>,
}

/// One more text input on the login form.
pub struct LoginField {
    pub name: &'static str,
    pub label: &'static str,
    pub hint: Option<&'static str>,
    pub placeholder: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "connectors.html")]
pub struct ChooserView<'a> {
    pub assets: &'a str,
    pub action: String,
    pub client_name: &'a str,
    pub error: Option<String>,
    /// (connector id, display name); `local` for the username and password form.
    pub options: Vec<(String, String)>,
    pub request_id: &'a str,
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentView<'a> {
    pub assets: &'a str,
    pub action: String,
    pub client_name: &'a str,
    pub username: &'a str,
    pub scopes: Vec<String>,
    /// Claims the application asked for by name beyond what the scopes release.
    pub claims: Vec<String>,
    pub request_id: &'a str,
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutView<'a> {
    pub assets: &'a str,
    pub action: String,
    pub csrf: &'a str,
    pub client_name: Option<&'a str>,
    pub username: Option<&'a str>,
    pub id_token_hint: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub post_logout_redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
}

/// `/device`: the code form (no `client_name`), or the confirmation of one code.
#[derive(Template)]
#[template(path = "device.html")]
pub struct DeviceView<'a> {
    pub assets: &'a str,
    pub action: String,
    pub user_code: &'a str,
    pub error: Option<&'a str>,
    pub client_name: Option<&'a str>,
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessageView<'a> {
    pub assets: &'a str,
    pub title: &'a str,
    pub message: &'a str,
    pub is_error: bool,
}

/// "Not allowed": why, and the way back to the client, which gets `access_denied`: a link
/// (`link`, query mode) or a form posting `fields` to `action` (form_post).
#[derive(Template)]
#[template(path = "denied.html")]
pub struct DeniedView<'a> {
    pub assets: &'a str,
    pub app: &'a str,
    pub message: &'a str,
    pub link: Option<String>,
    pub action: &'a str,
    pub fields: Vec<(&'a str, &'a str)>,
}

#[derive(Template)]
#[template(path = "form_post.html")]
pub struct FormPostView<'a> {
    pub action: &'a str,
    pub fields: Vec<(&'a str, &'a str)>,
    pub script: &'static str,
}

/// A full-page message (an error the user must see, or "you are signed out").
pub fn message(status: StatusCode, assets: &str, title: &str, message: &str) -> Response {
    render(
        status,
        &MessageView {
            assets,
            title,
            message,
            is_error: status.is_client_error() || status.is_server_error(),
        },
    )
}

/// How each scope is described on the consent page.
/// Each names the claims the scope releases (OIDC Core §5.4), so a person sees what is
/// shared.
pub fn describe_scope(scope: &str) -> &'static str {
    match scope {
        "openid" => "Know who you are (a user identifier: sub)",
        "profile" => {
            "See your name and username (name, preferred_username and other profile claims)"
        }
        "email" => "See your e-mail address (email, email_verified)",
        "address" => "See your postal address (address)",
        "phone" => "See your phone number (phone_number, phone_number_verified)",
        "groups" => "See the groups you belong to (groups)",
        "offline_access" => "Stay signed in when you are away (a refresh token)",
        _ => "Use an additional permission",
    }
}
