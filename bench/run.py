#!/usr/bin/env python3
"""The benchmark, side by side in one run: oidc-bridge (metrics and audit on, as people run
it), oauth2-mock-server 9.3.0 and oidc-provider 9.13.3 (pinned in bench/package-lock.json),
`openssl speed` for the signing ceiling and the argon2id rate at the server's parameters, all
loaded by the same generator (bench/loadgen) on loopback for a bounded time.

    bench/run [--seconds 5] [--connections 8] [--out bench/results]

Writes bench/results/latest.md (the table the README shows) and latest.json. With
OIDC_BRIDGE_BENCH_POSTGRES_URL set (a database the benchmark may fill), refresh grants are
also measured on PostgreSQL.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "oidc-bridge")
LOADGEN = os.path.join(ROOT, "target", "release", "loadgen")
SECRET = "bench-secret-0123456789"
# `wonderland`, argon2id at the defaults (m=19456, t=2, p=1).
HASH = "$argon2id$v=19$m=19456,t=2,p=1$/GOzbAgL6K8JKBKk3v5YrQ$fA5Bmqs5p4z/V1gJmCYpLtuHRKkR4bSkOlue1gjBey4"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wait_200(port, path, timeout=30.0):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            c.close()
            if r.status == 200:
                return time.perf_counter()
        except OSError:
            pass
        time.sleep(0.0005)
    raise TimeoutError(f"no 200 on :{port}{path}")


def load(scenario, base, args, **extra):
    cmd = [LOADGEN, scenario, "--base", base, "--seconds", str(args.seconds),
           "--connections", str(extra.pop("connections", args.connections))]
    for k, v in extra.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    if r["failures"] and r["done"] == 0:
        raise RuntimeError(f"{scenario} on {base}: {r['error']}")
    return r


def config(port, db, audit, algorithm="RS256", users=16, extra="", more_clients=0):
    u = "".join(f"  - username: bench{i}\n    password_hash: \"{HASH}\"\n" for i in range(users))
    c = "".join(
        f"  - id: filler-{i}\n    secret: filler-secret-{i:012d}\n    grant_types: [client_credentials]\n"
        for i in range(more_clients))
    return f"""issuer: http://127.0.0.1:{port}
listen: 127.0.0.1:{port}
database: {db}
server:
  metrics_listen: 127.0.0.1:{free_port()}
  pending_requests_per_minute: 1000000
audit:
  output: {audit}
signing:
  algorithm: {algorithm}
{extra}
clients:
  - id: bench
    secret: {SECRET}
    redirect_uris: [http://127.0.0.1:9/cb]
    grant_types: [authorization_code, refresh_token, client_credentials]
    skip_consent: true
    scopes: [openid, profile, email, offline_access]
{c}users:
{u}"""


class Server:
    def __init__(self, cmd, port, ready="/.well-known/openid-configuration", env=None):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, **(env or {})}, cwd=ROOT)
        self.start_ms = (wait_200(port, ready) - t0) * 1000
        time.sleep(0.3)
        self.idle_mb = rss_mb(self.proc.pid)

    def rss(self):
        return rss_mb(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def openssl_rate(alg):
    out = subprocess.run(["openssl", "speed", "-multi", "2", "-seconds", "3", alg],
                         capture_output=True, text=True).stdout
    if alg == "rsa2048":
        m = re.search(r"rsa 2048 bits\s+\S+\s+\S+\s+([\d.]+)", out)
    else:
        m = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)", out)
    return float(m.group(1)) if m else float("nan")


def bridge(args, tmp, results, algorithm="RS256", db=None, label="oidc-bridge"):
    port = free_port()
    db = db or f"sqlite://{tmp}/{label}.db"
    path = os.path.join(tmp, f"{label}.yaml")
    with open(path, "w") as f:
        f.write(config(port, db, os.path.join(tmp, f"{label}-audit.jsonl"), algorithm))
    return Server([BIN, "serve", "--config", path], port), path


def run(args):
    tmp = tempfile.mkdtemp(prefix="oidc-bridge-bench-")
    r = {"machine": {"cores": os.cpu_count()}, "rows": {}}
    rows = r["rows"]
    print("ceilings: openssl speed, argon2id", file=sys.stderr)
    r["rsa2048_sign_per_s"] = openssl_rate("rsa2048")
    r["p256_sign_per_s"] = openssl_rate("ecdsap256")
    r["argon2id_per_s"] = load("argon2", "", args, connections=os.cpu_count() or 2)["rate"]

    # oidc-bridge, RS256, SQLite: fresh start, then a restart on the same database.
    print("oidc-bridge (RS256, SQLite)", file=sys.stderr)
    s, cfg = bridge(args, tmp, r)
    rows["start_fresh_ms"] = {"oidc-bridge": s.start_ms}
    s.stop()
    s = Server([BIN, "serve", "--config", cfg], s.port)
    rows["start_existing_ms"] = {"oidc-bridge": s.start_ms}
    rows["idle_rss_mb"] = {"oidc-bridge": s.idle_mb}
    user = {"user": "bench{n}", "password": "wonderland"}
    for name, scen, extra in [
        ("discovery", "get", {"threads": 2}),
        ("jwks", "get", {"path": "/jwks", "threads": 2}),
        ("client_credentials_rs256", "client-credentials", {}),
        ("refresh_sqlite", "refresh", user),
        ("password_login", "login", user),
        ("sso_login", "sso-login", user),
        ("introspection", "introspect", user),
        ("userinfo", "userinfo", user),
    ]:
        rows.setdefault(name, {})["oidc-bridge"] = load(scen, s.base, args, **extra)
    rows["after_load_rss_mb"] = {"oidc-bridge": s.rss()}
    s.stop()

    print("oidc-bridge (ES256)", file=sys.stderr)
    s, _ = bridge(args, tmp, r, algorithm="ES256", label="es256")
    rows["client_credentials_es256"] = {"oidc-bridge": load("client-credentials", s.base, args)}
    s.stop()

    pg = os.environ.get("OIDC_BRIDGE_BENCH_POSTGRES_URL")
    if pg:
        print("oidc-bridge (PostgreSQL)", file=sys.stderr)
        port = free_port()
        path = os.path.join(tmp, "pg.yaml")
        with open(path, "w") as f:
            f.write(config(port, pg, os.path.join(tmp, "pg-audit.jsonl"),
                           extra="  encryption_key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="))
        s = Server([BIN, "serve", "--config", path], port)
        rows["refresh_postgres"] = {"oidc-bridge": load("refresh", s.base, args, **user)}
        s.stop()

    print("oidc-bridge mock (login_hint)", file=sys.stderr)
    port = free_port()
    s = Server([BIN, "mock", "--listen", f"127.0.0.1:{port}"], port)
    rows["hint_login"] = {"oidc-bridge": load("hint-login", s.base, args, client="mock-client",
                                               secret="mock-secret", redirect_uri="http://localhost:3000/cb",
                                               user="alice", scope="openid")}
    rows["mock_start_ms"] = {"oidc-bridge": s.start_ms}
    s.stop()

    node = shutil.which("node")
    mock_server = os.path.join(ROOT, "bench", "node_modules", ".bin", "oauth2-mock-server")
    print("oauth2-mock-server 9.3.0", file=sys.stderr)
    port = free_port()
    s = Server([node, mock_server, "-a", "127.0.0.1", "-p", str(port)], port)
    peer = "oauth2-mock-server"
    rows["idle_rss_mb"][peer] = s.idle_mb
    rows["mock_start_ms"][peer] = s.start_ms
    for name, scen, extra in [
        ("discovery", "get", {"threads": 2}),
        ("jwks", "get", {"path": "/jwks", "threads": 2}),
        ("client_credentials_rs256", "client-credentials", {}),
        ("hint_login", "hint-login", {"redirect_uri": "http://localhost:3000/cb", "user": "alice", "scope": "openid"}),
    ]:
        rows[name][peer] = load(scen, s.base, args, **extra)
    rows["after_load_rss_mb"][peer] = s.rss()
    s.stop()

    print("oidc-provider 9.13.3", file=sys.stderr)
    port = free_port()
    s = Server([node, os.path.join(ROOT, "bench", "peers", "oidc-provider.mjs"), str(port)], port)
    peer = "oidc-provider"
    rows["idle_rss_mb"][peer] = s.idle_mb
    for name, scen, extra in [
        ("discovery", "get", {"threads": 2}),
        ("jwks", "get", {"path": "/jwks", "threads": 2}),
        ("client_credentials_rs256", "client-credentials", {}),
        # Its whole login (devInteractions: any login, no password hash, then consent),
        # set against our logins on an existing session.
        ("sso_login", "form-login", {"user": "alice", "password": "x", "scope": "openid",
                                     "authorize_path": "/auth"}),
    ]:
        rows[name][peer] = load(scen, s.base, args, **extra)
    rows["after_load_rss_mb"][peer] = s.rss()
    s.stop()
    if args.large:
        large(args, tmp, rows)
    shutil.rmtree(tmp, ignore_errors=True)
    return r


def large(args, tmp, rows):
    """10,000 clients, 100,000 users and 1,000,000 refresh families (with their tokens):
    the token, refresh and login rates against the empty database's of this run."""
    import sqlite3
    print("oidc-bridge with 10k clients, 100k users, 1M refresh families", file=sys.stderr)
    port = free_port()
    db = os.path.join(tmp, "large.db")
    path = os.path.join(tmp, "large.yaml")
    with open(path, "w") as f:
        f.write(config(port, f"sqlite://{db}", os.path.join(tmp, "large-audit.jsonl"),
                       users=100_000, more_clients=9_999))
    s = Server([BIN, "serve", "--config", path], port, )
    s.stop()
    con = sqlite3.connect(db)
    now = int(time.time())
    fam = ((f"fam-{i}", f"filler-{i % 9999}", f"bench{i % 100000}", "{}", now, now + 86400 * 30, None)
           for i in range(1_000_000))
    con.executemany("INSERT INTO refresh_families (id, client_id, sub, grant_data, created_at, "
                    "absolute_expires_at, sid) VALUES (?, ?, ?, ?, ?, ?, ?)", fam)
    tok = ((f"tok-{i}", f"fam-{i}", now, now + 86400 * 7) for i in range(1_000_000))
    con.executemany("INSERT INTO refresh_tokens (token_hash, family_id, created_at, idle_expires_at) "
                    "VALUES (?, ?, ?, ?)", tok)
    con.commit()
    con.close()
    s = Server([BIN, "serve", "--config", path], port)
    rows["start_large_ms"] = {"oidc-bridge": s.start_ms}
    user = {"user": "bench{n}", "password": "wonderland"}
    for name, scen, extra in [
        ("client_credentials_rs256", "client-credentials", {}),
        ("refresh_sqlite", "refresh", user),
        ("password_login", "login", user),
    ]:
        big = load(scen, s.base, args, **extra)
        rows[f"{name}_large"] = {"oidc-bridge": big}
    rows["after_load_rss_mb_large"] = {"oidc-bridge": s.rss()}
    s.stop()


def rate(cell):
    return cell["rate"] if isinstance(cell, dict) else cell


def markdown(r):
    rows = r["rows"]
    peers = ["oidc-bridge", "oauth2-mock-server", "oidc-provider"]
    lines = [
        f"RSA-2048 sign ceiling (`openssl speed -multi 2`): {r['rsa2048_sign_per_s']:.0f}/s; "
        f"P-256: {r['p256_sign_per_s']:.0f}/s; argon2id (m=19456, t=2, p=1) on "
        f"{r['machine']['cores']} cores: {r['argon2id_per_s']:.1f}/s.",
        "",
        "| figure | " + " | ".join(peers) + " | ratio |",
        "|---|" + "---|" * (len(peers) + 1),
    ]

    def cell(v):
        if v is None:
            return "—"
        if isinstance(v, dict):
            return f"{v['rate']:.0f}/s (p50 {v['p50_ms']:.1f} ms, p99 {v['p99_ms']:.1f} ms)"
        return f"{v:.0f}"

    def ratio(name, v):
        b = rows[name].get("oidc-bridge")
        if b is None:
            return ""
        b = rate(b)
        parts = []
        if name == "client_credentials_rs256":
            parts.append(f"{b / r['rsa2048_sign_per_s']:.2f}× RSA ceiling")
        if name == "client_credentials_es256":
            rs = rate(rows["client_credentials_rs256"]["oidc-bridge"])
            parts.append(f"{b / rs:.2f}× our RS256")
        if name.endswith("_large"):
            base = rows.get(name[: -len("_large")], {}).get("oidc-bridge")
            if base is not None and rate(base):
                parts.append(f"{b / rate(base):.2f}× the empty database")
        if name.startswith("refresh"):
            parts.append(f"{2 * b / r['rsa2048_sign_per_s']:.2f}× RSA ceiling (2 signatures each)")
        if name == "password_login":
            parts.append(f"{b / r['argon2id_per_s']:.2f}× argon2id rate")
        for p in ("oauth2-mock-server", "oidc-provider"):
            if rows[name].get(p) is not None:
                pv = rate(rows[name][p])
                if pv:
                    parts.append(f"{b / pv:.2f}× {p}")
        return "; ".join(parts)

    for name in rows:
        lines.append(f"| {name} | " + " | ".join(cell(rows[name].get(p)) for p in peers)
                     + f" | {ratio(name, rows[name])} |")
    lines.append("")
    lines.append("oidc-provider's `sso_login` is its whole login through its development "
                 "interactions (any login, no password hash, consent), the figure our logins on "
                 "an existing session are set against.")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--large", action="store_true",
                    help="also 10k clients, 100k users, 1M refresh families (about 2 more minutes)")
    args = ap.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "oidc-bridge", "-p", "loadgen"],
                       cwd=ROOT, check=True)
    # The peers are installed whatever --no-build says: a fresh clone has none.
    if not os.path.exists(os.path.join(ROOT, "bench", "node_modules", "oidc-provider")):
        subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                       cwd=os.path.join(ROOT, "bench"), check=True)
    r = run(args)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "latest.json"), "w") as f:
        json.dump(r, f, indent=2)
    md = markdown(r)
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
