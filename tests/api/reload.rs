//! Live reload of the real binary: `kill -HUP` and `POST /admin/reload` with a changed client
//! list take effect with no request dropped; a broken config is refused whole, every problem
//! logged with its key path, and the old config keeps serving. The CLI's `clients` commands
//! drive the admin API.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_oidc-bridge");
const ADMIN_TOKEN: &str = "admin-token-for-tests-0123456789abcdef";

fn config(dir: &std::path::Path, clients: &[(&str, &str)], extra: &str) -> String {
    let mut yaml = format!(
        "listen: 127.0.0.1:0\ndatabase: sqlite://{db}\naudit:\n  output: {audit}\nadmin:\n  token: {ADMIN_TOKEN}\nclients:\n",
        db = dir.join("s.db").display(),
        audit = dir.join("audit.jsonl").display(),
    );
    for (id, secret) in clients {
        yaml.push_str(&format!(
            "  - id: {id}\n    secret: {secret}\n    grant_types: [client_credentials]\n"
        ));
    }
    yaml.push_str(extra);
    yaml
}

struct Server {
    child: std::process::Child,
    base: String,
    logs: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(cfg: &std::path::Path) -> Self {
        let mut child = Command::new(BIN)
            .args([
                "--log-format",
                "json",
                "serve",
                "--config",
                cfg.to_str().expect("utf8"),
            ])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("serve");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let addr = loop {
            let line = lines.next().expect("logs before serving").expect("line");
            let v: serde_json::Value = serde_json::from_str(&line).expect("json log");
            if v["message"] == "oidc-bridge is serving" {
                break v["addr"].as_str().expect("addr").to_string();
            }
        };
        let logs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().expect("logs").push(line);
            }
        });
        Self {
            child,
            base: format!("http://{addr}"),
            logs,
        }
    }

    fn hup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn logs(&self) -> String {
        self.logs.lock().expect("logs").join("\n")
    }
}

async fn token_status(http: &reqwest::Client, base: &str, id: &str, secret: &str) -> u16 {
    http.post(format!("{base}/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request")
        .status()
        .as_u16()
}

/// Polls until `f` is true (a signal is handled asynchronously), for at most 10 s.
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} never happened");
}

fn audit_lines(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each audit line is JSON"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_client_list_without_dropping_a_request_and_refuses_a_broken_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.yaml");
    let keep = ("kept", "kept-secret-0123456789");
    let old = ("leaving", "leaving-secret-0123456789");
    let new = ("arriving", "arriving-secret-0123456789");
    std::fs::write(&cfg, config(dir.path(), &[keep, old], "")).expect("write");
    let server = Server::start(&cfg);
    let http = reqwest::Client::new();
    assert_eq!(token_status(&http, &server.base, old.0, old.1).await, 200);
    assert_eq!(token_status(&http, &server.base, new.0, new.1).await, 401);

    // Requests keep flowing for the kept client while the config changes under them.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (http, base) = (http.clone(), server.base.clone());
        let (stop, failures, done) = (stop.clone(), failures.clone(), done.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if token_status(&http, &base, keep.0, keep.1).await != 200 {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    std::fs::write(&cfg, config(dir.path(), &[keep, new], "")).expect("rewrite");
    server.hup();
    // The new client may be found in storage (where the reload writes it first) a moment
    // before the new list is swapped in: wait for both halves of the swap.
    eventually("the new client works and the old one is gone", || {
        let (http, base) = (http.clone(), server.base.clone());
        async move {
            token_status(&http, &base, new.0, new.1).await == 200
                && token_status(&http, &base, old.0, old.1).await == 401
        }
    })
    .await;
    let before = done.load(Ordering::Relaxed);
    eventually("more requests after the swap", || {
        let n = done.load(Ordering::Relaxed);
        async move { n > before + 20 }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.expect("load task");
    }
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "no request of the kept client failed across the reload"
    );

    // A config with two problems is refused whole; the running one stays.
    let broken = config(
        dir.path(),
        &[keep],
        "tokens:\n  access_token: forever\nbogus: 1\n",
    );
    std::fs::write(&cfg, broken).expect("break");
    server.hup();
    // One line per problem: wait for both (the log is read through a pipe).
    eventually("the refusal is logged", || {
        let logs = server.logs();
        async move { logs.matches("config reload refused").count() >= 2 }
    })
    .await;
    let logs = server.logs();
    let refused: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("config reload refused"))
        })
        .collect();
    let keys: Vec<&str> = refused.iter().filter_map(|v| v["key"].as_str()).collect();
    assert!(keys.contains(&"tokens.access_token"), "{logs}");
    assert!(keys.contains(&"bogus"), "{logs}");
    assert_eq!(
        token_status(&http, &server.base, new.0, new.1).await,
        200,
        "the old config still serves"
    );

    // The same through the admin API: 422 with every problem.
    let resp = http
        .post(format!("{}/admin/reload", server.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("reload");
    assert_eq!(resp.status(), 422);
    let body: serde_json::Value = resp.json().await.expect("json");
    let paths: Vec<&str> = body["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["path"].as_str())
        .collect();
    assert!(
        paths.contains(&"tokens.access_token") && paths.contains(&"bogus"),
        "{body}"
    );

    // A key only a restart applies is a problem too.
    let moved = config(dir.path(), &[keep], "").replace("127.0.0.1:0", "127.0.0.1:1");
    std::fs::write(&cfg, moved).expect("move");
    let resp = http
        .post(format!("{}/admin/reload", server.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("reload");
    assert_eq!(resp.status(), 422);
    let body: serde_json::Value = resp.json().await.expect("json");
    let paths: Vec<&str> = body["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["path"].as_str())
        .collect();
    assert!(paths.contains(&"listen"), "{body}");

    let audit = audit_lines(dir.path());
    let reloads: Vec<(&str, &str)> = audit
        .iter()
        .filter(|l| l["event"] == "config_reload")
        .map(|l| {
            (
                l["outcome"].as_str().unwrap_or(""),
                l["details"]["trigger"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        reloads,
        [
            ("success", "sighup"),
            ("refused", "sighup"),
            ("refused", "admin"),
            ("refused", "admin")
        ]
    );
}

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("OIDC_BRIDGE_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("cli");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_commands_create_rotate_list_and_delete_through_the_admin_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        config(
            dir.path(),
            &[("from-config", "config-secret-0123456789")],
            "",
        ),
    )
    .expect("write");
    let server = Server::start(&cfg);
    let http = reqwest::Client::new();
    let client_file = dir.path().join("new.yaml");
    std::fs::write(
        &client_file,
        "id: made-by-cli\nname: Made by the CLI\ngrant_types: [client_credentials]\n",
    )
    .expect("write");
    let url = server.base.clone();
    let run = move |args: Vec<String>| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
                all.extend(["--url", &url]);
                cli(&all)
            })
            .await
            .expect("cli")
        }
    };
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let file = client_file.to_str().expect("utf8");
    let (code, out, err) = run(s(&["clients", "create", "--file", file])).await;
    assert_eq!(code, 0, "{err}");
    let made: serde_json::Value = serde_json::from_str(&out).expect("json");
    let first = made["client_secret"].as_str().expect("secret shown once");
    assert_eq!(
        token_status(&http, &server.base, "made-by-cli", first).await,
        200
    );

    let (code, out, err) = run(s(&[
        "clients",
        "rotate-secret",
        "made-by-cli",
        "--overlap",
        "0",
    ]))
    .await;
    assert_eq!(code, 0, "{err}");
    let rotated: serde_json::Value = serde_json::from_str(&out).expect("json");
    let second = rotated["client_secret"].as_str().expect("new secret");
    assert_eq!(
        token_status(&http, &server.base, "made-by-cli", second).await,
        200
    );
    assert_eq!(
        token_status(&http, &server.base, "made-by-cli", first).await,
        401,
        "with no overlap the old secret ends at once"
    );

    let (code, out, _) = run(s(&["clients", "list"])).await;
    assert_eq!(code, 0);
    let listed: serde_json::Value = serde_json::from_str(&out).expect("json");
    let sources: Vec<(String, String)> = listed["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or("").to_string(),
                c["source"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        sources,
        [
            ("from-config".to_string(), "config".to_string()),
            ("made-by-cli".to_string(), "api".to_string())
        ]
    );
    assert!(!out.contains(second), "a list never shows a secret");

    let (code, _, err) = run(s(&["clients", "delete", "from-config"])).await;
    assert_eq!(code, 1, "config clients are read-only");
    assert!(err.contains("409") && err.contains("config file"), "{err}");
    let (code, _, err) = run(s(&["clients", "delete", "made-by-cli"])).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        token_status(&http, &server.base, "made-by-cli", second).await,
        401
    );

    let (code, _, err) = tokio::task::spawn_blocking({
        let url = server.base.clone();
        move || {
            let out = Command::new(BIN)
                .args(["clients", "list", "--url", &url, "--token", "wrong-token"])
                .output()
                .expect("cli");
            (
                out.status.code().unwrap_or(-1),
                String::new(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    })
    .await
    .expect("cli");
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");
}
