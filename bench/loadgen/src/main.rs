//! The benchmark's load generator (run by `bench/run`): `--connections` workers, each with
//! its own keep-alive connection and cookies, repeat one scenario for `--seconds`, then one
//! JSON line is printed: requests done, failures, rate, p50 and p99 in milliseconds.
//!
//! ```text
//! loadgen SCENARIO --base URL [--connections 8] [--seconds 5] [--client ID --secret S]
//!         [--user NAME --password P] [--redirect-uri URI] [--scope S] [--path P]
//! ```
//!
//! `--user bench{n}` gives worker `n` its own user (the sign-in throttle counts attempts in
//! flight per user and address, as a real crowd of people would not collide).
//!
//! ```text
//! ```
//!
//! Scenarios: `get` (`--path`), `client-credentials`, `refresh`, `login` (a full code + PKCE
//! login with the password form, then the code redeemed), `sso-login` (the same on an
//! existing session: authorize, redirect, code redeemed), `hint-login` (mock IdPs: authorize
//! with `login_hint` answers with a code at once, then it is redeemed), `introspect`,
//! `userinfo`. A login-based scenario counts one login per loop; `refresh`, `introspect` and
//! `userinfo` sign in once per worker first (not counted).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// RFC 7636, Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

#[derive(Clone, Debug)]
struct Args {
    scenario: String,
    base: String,
    connections: usize,
    seconds: f64,
    client: String,
    secret: String,
    user: String,
    password: String,
    redirect_uri: String,
    scope: String,
    path: String,
    /// The generator's own threads (1 leaves the most CPU to the server).
    threads: usize,
    /// The authorization endpoint (`/auth` for oidc-provider).
    authorize_path: String,
}

fn parse_args() -> Args {
    let mut a = Args {
        scenario: String::new(),
        base: "http://127.0.0.1:8080".into(),
        connections: 8,
        seconds: 5.0,
        client: "bench".into(),
        secret: "bench-secret-0123456789".into(),
        user: "alice".into(),
        password: "wonderland".into(),
        redirect_uri: "http://127.0.0.1:9/cb".into(),
        scope: "openid offline_access".into(),
        path: "/.well-known/openid-configuration".into(),
        threads: 1,
        authorize_path: "/authorize".into(),
    };
    let mut it = std::env::args().skip(1);
    a.scenario = it.next().unwrap_or_default();
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_default();
        match flag.as_str() {
            "--base" => a.base = v,
            "--connections" => a.connections = v.parse().expect("--connections"),
            "--seconds" => a.seconds = v.parse().expect("--seconds"),
            "--client" => a.client = v,
            "--secret" => a.secret = v,
            "--user" => a.user = v,
            "--password" => a.password = v,
            "--redirect-uri" => a.redirect_uri = v,
            "--scope" => a.scope = v,
            "--path" => a.path = v,
            "--threads" => a.threads = v.parse().expect("--threads"),
            "--authorize-path" => a.authorize_path = v,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// One worker's HTTP client and cookies (by name; one origin).
struct Worker {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
    a: Args,
    n: u64,
}

type R<T> = Result<T, String>;

fn hidden(body: &str, name: &str) -> Option<String> {
    let at = body.find(&format!("name=\"{name}\""))?;
    let rest = &body[at..];
    let v = rest.find("value=\"")? + 7;
    let end = rest[v..].find('"')?;
    Some(
        rest[v..v + end]
            .replace("&#x2B;", "+")
            .replace("&amp;", "&"),
    )
}

/// The first form on a page: its action and fields (hidden ones as given; `login`,
/// `username` and `password` filled in).
fn form_of(body: &str, user: &str, password: &str) -> Option<(String, Vec<(String, String)>)> {
    let at = body.find("<form")?;
    let form = &body[at..body[at..].find("</form>").map_or(body.len(), |e| at + e)];
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        let i = tag.find(&key)? + key.len();
        Some(tag[i..i + tag[i..].find('"')?].replace("&amp;", "&"))
    };
    let head = &form[..form.find('>')?];
    let action = attr(head, "action")?;
    let mut fields = Vec::new();
    let mut rest = form;
    while let Some(i) = rest.find("<input") {
        let tag = &rest[i..i + rest[i..].find('>').unwrap_or(rest.len() - i)];
        if let Some(name) = attr(tag, "name") {
            let value = match name.as_str() {
                "login" | "username" => user.to_string(),
                "password" => password.to_string(),
                _ => attr(tag, "value").unwrap_or_default(),
            };
            fields.push((name, value));
        }
        rest = &rest[i + 6..];
    }
    Some((action, fields))
}

impl Worker {
    fn new(a: &Args) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(1)
                .build()
                .expect("client"),
            cookies: HashMap::new(),
            a: a.clone(),
            n: 0,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all("set-cookie") {
            if let Ok(s) = v.to_str()
                && let Some((kv, _)) = s.split_once(';').or(Some((s, "")))
                && let Some((k, v)) = kv.split_once('=')
            {
                if v.is_empty() {
                    self.cookies.remove(k.trim());
                } else {
                    self.cookies.insert(k.trim().to_string(), v.to_string());
                }
            }
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> R<reqwest::Response> {
        let req = if self.cookies.is_empty() {
            req
        } else {
            req.header("cookie", self.cookie_header())
        };
        let resp = req.send().await.map_err(|e| e.to_string())?;
        self.keep_cookies(&resp);
        Ok(resp)
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.a.base)
        }
    }

    async fn token(&mut self, form: &[(&str, &str)]) -> R<Value> {
        let req = self
            .http
            .post(self.url("/token"))
            .basic_auth(&self.a.client, Some(&self.a.secret))
            .form(form);
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(format!("token: {}", resp.status()));
        }
        resp.json().await.map_err(|e| e.to_string())
    }

    fn authorize_url(&mut self, hint: bool) -> String {
        self.n += 1;
        let mut u = url::Url::parse(&self.url(&self.a.authorize_path)).expect("url");
        u.query_pairs_mut()
            .append_pair("client_id", &self.a.client)
            .append_pair("response_type", "code")
            .append_pair("scope", &self.a.scope)
            .append_pair("redirect_uri", &self.a.redirect_uri)
            .append_pair("state", &format!("s{}", self.n))
            .append_pair("nonce", &format!("n{}", self.n))
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256");
        if hint {
            u.query_pairs_mut().append_pair("login_hint", &self.a.user);
        }
        u.to_string()
    }

    /// The code in a redirect to the client.
    fn code_of(resp: &reqwest::Response) -> R<String> {
        let loc = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("no redirect: {}", resp.status()))?;
        let u = url::Url::parse(loc).map_err(|e| e.to_string())?;
        u.query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| format!("no code in {loc}"))
    }

    async fn redeem(&mut self, code: &str) -> R<Value> {
        let redirect = self.a.redirect_uri.clone();
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect),
            ("code_verifier", VERIFIER),
        ])
        .await
    }

    /// A full login with the password form (consent skipped by the client's config).
    async fn login(&mut self) -> R<Value> {
        self.cookies.clear();
        let url = self.authorize_url(false);
        let page = self.send(self.http.get(url)).await?;
        let body = page.text().await.map_err(|e| e.to_string())?;
        let request = hidden(&body, "request").ok_or("no login form")?;
        let csrf = hidden(&body, "csrf").ok_or("no csrf")?;
        let form = [
            ("request", request.as_str()),
            ("csrf", csrf.as_str()),
            ("username", self.a.user.as_str()),
            ("password", self.a.password.as_str()),
        ];
        let req = self.http.post(self.url("/login")).form(&form);
        let resp = self.send(req).await?;
        let code = Self::code_of(&resp)?;
        self.redeem(&code).await
    }

    /// A login through whatever pages the server shows (oidc-provider's interactions):
    /// redirects followed with cookies, each form submitted with its fields (`login` and
    /// `password` filled in), until the redirect to the client.
    async fn form_login(&mut self) -> R<Value> {
        self.cookies.clear();
        let mut next = (reqwest::Method::GET, self.authorize_url(false), Vec::new());
        for _ in 0..12 {
            let (method, url, form) = next;
            let req = self.http.request(method, &url);
            let req = if form.is_empty() {
                req
            } else {
                req.form(&form)
            };
            let resp = self.send(req).await?;
            if let Some(loc) = resp.headers().get("location").and_then(|v| v.to_str().ok()) {
                if loc.starts_with(&self.a.redirect_uri) {
                    let code = Self::code_of(&resp)?;
                    return self.redeem(&code).await;
                }
                let target = url::Url::parse(&url)
                    .and_then(|u| u.join(loc))
                    .map_err(|e| e.to_string())?;
                next = (reqwest::Method::GET, target.to_string(), Vec::new());
                continue;
            }
            let body = resp.text().await.map_err(|e| e.to_string())?;
            let (action, fields) = form_of(&body, &self.a.user, &self.a.password)
                .ok_or_else(|| format!("no form on {url}"))?;
            let target = url::Url::parse(&url)
                .and_then(|u| u.join(&action))
                .map_err(|e| e.to_string())?;
            next = (reqwest::Method::POST, target.to_string(), fields);
        }
        Err("too many steps".into())
    }

    /// A login on the session the worker has: authorize answers with a code at once.
    async fn quick_login(&mut self, hint: bool) -> R<Value> {
        let url = self.authorize_url(hint);
        let resp = self.send(self.http.get(url)).await?;
        let code = Self::code_of(&resp)?;
        self.redeem(&code).await
    }
}

async fn run_worker(
    index: usize,
    mut a: Args,
    stop: Arc<AtomicBool>,
) -> (Vec<Duration>, u64, Option<String>) {
    // `--user bench{n}`: each worker signs in as its own person.
    a.user = a.user.replace("{n}", &index.to_string());
    let mut w = Worker::new(&a);
    let mut times = Vec::new();
    let mut failures = 0u64;
    let mut last_error = None;
    // What a scenario needs before its loop.
    let mut refresh_token = String::new();
    let mut access_token = String::new();
    if matches!(
        a.scenario.as_str(),
        "refresh" | "introspect" | "userinfo" | "sso-login"
    ) {
        match w.login().await {
            Ok(t) => {
                refresh_token = t["refresh_token"].as_str().unwrap_or_default().to_string();
                access_token = t["access_token"].as_str().unwrap_or_default().to_string();
            }
            Err(e) => return (times, 1, Some(format!("setup login: {e}"))),
        }
    }
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let outcome: R<()> = match a.scenario.as_str() {
            "get" => {
                let url = w.url(&a.path);
                match w.send(w.http.get(url)).await {
                    Ok(r) if r.status().is_success() => {
                        r.bytes().await.map(|_| ()).map_err(|e| e.to_string())
                    }
                    Ok(r) => Err(format!("{}", r.status())),
                    Err(e) => Err(e),
                }
            }
            "client-credentials" => w
                .token(&[("grant_type", "client_credentials")])
                .await
                .map(|_| ()),
            "refresh" => match w
                .token(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh_token),
                ])
                .await
            {
                Ok(t) => {
                    refresh_token = t["refresh_token"].as_str().unwrap_or_default().to_string();
                    Ok(())
                }
                Err(e) => Err(e),
            },
            "login" => w.login().await.map(|_| ()),
            "form-login" => w.form_login().await.map(|_| ()),
            "sso-login" => w.quick_login(false).await.map(|_| ()),
            "hint-login" => w.quick_login(true).await.map(|_| ()),
            "introspect" => {
                let req = w
                    .http
                    .post(w.url("/introspect"))
                    .basic_auth(&a.client, Some(&a.secret))
                    .form(&[("token", access_token.as_str())]);
                match w.send(req).await {
                    Ok(r) if r.status().is_success() => {
                        r.bytes().await.map(|_| ()).map_err(|e| e.to_string())
                    }
                    Ok(r) => Err(format!("{}", r.status())),
                    Err(e) => Err(e),
                }
            }
            "userinfo" => {
                let req = w.http.get(w.url("/userinfo")).bearer_auth(&access_token);
                match w.send(req).await {
                    Ok(r) if r.status().is_success() => {
                        r.bytes().await.map(|_| ()).map_err(|e| e.to_string())
                    }
                    Ok(r) => Err(format!("{}", r.status())),
                    Err(e) => Err(e),
                }
            }
            other => panic!("unknown scenario {other}"),
        };
        match outcome {
            Ok(()) => times.push(started.elapsed()),
            Err(e) => {
                failures += 1;
                last_error = Some(e);
                if failures > 1000 && times.is_empty() {
                    break;
                }
            }
        }
    }
    (times, failures, last_error)
}

/// `argon2`: argon2id verifications at the server's parameters (m=19456 KiB, t=2, p=1), one
/// thread per `--connections`, each reusing one memory block as the server's workers do.
fn argon2_rate(a: &Args) {
    use argon2::{Algorithm, Argon2, Block, Params, Version};
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads: Vec<_> = (0..a.connections.max(1))
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let params = Params::new(19_456, 2, 1, Some(32)).expect("params");
                let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
                let mut blocks = vec![Block::default(); params.block_count()];
                let mut out = [0u8; 32];
                let mut times = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    hasher
                        .hash_password_into_with_memory(
                            b"wonderland",
                            b"saltsaltsaltsalt",
                            &mut out,
                            &mut blocks,
                        )
                        .expect("hash");
                    times.push(t.elapsed());
                }
                times
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(a.seconds));
    stop.store(true, Ordering::Relaxed);
    let mut times: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect();
    times.sort();
    let elapsed = started.elapsed().as_secs_f64();
    let p =
        |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "{}",
        serde_json::json!({"scenario": "argon2", "done": times.len(), "failures": 0,
            "rate": times.len() as f64 / elapsed, "p50_ms": p(0.5), "p99_ms": p(0.99), "error": null})
    );
}

fn main() {
    let a = parse_args();
    if a.scenario == "argon2" {
        argon2_rate(&a);
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads.max(1))
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(generate(a));
}

async fn generate(a: Args) {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..a.connections.max(1))
        .map(|i| tokio::spawn(run_worker(i, a.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(a.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut times = Vec::new();
    let mut failures = 0;
    let mut error = None;
    for w in workers {
        let (t, f, e) = w.await.expect("worker");
        times.extend(t);
        failures += f;
        error = error.or(e);
    }
    let elapsed = started.elapsed().as_secs_f64();
    times.sort();
    let pct = |p: f64| -> f64 {
        if times.is_empty() {
            return 0.0;
        }
        let i = ((times.len() as f64 - 1.0) * p).round() as usize;
        times[i].as_secs_f64() * 1000.0
    };
    let out = serde_json::json!({
        "scenario": a.scenario,
        "done": times.len(),
        "failures": failures,
        "rate": times.len() as f64 / elapsed,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "error": error,
    });
    println!("{out}");
}
