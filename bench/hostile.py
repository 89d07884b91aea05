#!/usr/bin/env python3
"""Hostile-load benchmark: floods the release binary on loopback for a bounded time and
reports what a platform team needs to know — peak RSS against idle RSS, how often a correct
client still succeeds during the flood and its p99 latency, and how many rows the flood
left behind.

    cargo build --release && python3 bench/hostile.py [--duration 20] [--connections 200]
                                                      [--phase secrets logins authorize]
                                                      [--json out.json]

Phases (each `--duration` seconds, `--connections` concurrent keep-alive connections):

* secrets:   wrong secrets for a client kept as an argon2id hash (`secret_hash`), each
             connection claiming another client address (X-Forwarded-For from a trusted
             proxy), so the per-address throttle does not spare the hasher: the worst case.
             Meanwhile one connection asks for client_credentials tokens with the correct
             secret of a keyed-digest client and of the hashed client.
* logins:    wrong passwords at /login, each for another unknown username from another
             address (so no throttle spares the hasher); meanwhile correct logins from a
             browser that signed in before (device cookie).
* authorize: /authorize requests with 1 KB nonces from one address and from many; the
             database growth is reported.

Everything runs on 127.0.0.1 against a temporary SQLite database; nothing else is touched.
"""
import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HASHED_SECRET = "hashed-secret-0123456789"
SVC_SECRET = "svc-secret-0123456789"
PASSWORD = "correct horse battery staple"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def basic(cid, secret):
    enc = lambda s: urllib.parse.quote(s, safe="")
    return "Basic " + base64.b64encode(f"{enc(cid)}:{enc(secret)}".encode()).decode()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def argon2_hash(binary, secret):
    p = subprocess.run([binary, "hash-password"], input=secret + "\n",
                       capture_output=True, text=True, check=True)
    return re.search(r"\$argon2id\$\S+", p.stdout + p.stderr).group(0)


class Server:
    def __init__(self, binary, workdir, legacy=False):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.db = os.path.join(workdir, "bridge.db")
        config = f"""
issuer: {self.base}
listen: 127.0.0.1:{self.port}
database: sqlite://{self.db}
{"" if legacy else "server: { trusted_proxies: [127.0.0.1/32] }"}
clients:
  - {{ id: svc, secret: {SVC_SECRET}, grant_types: [client_credentials] }}
  - {{ id: hashed, secret_hash: "{argon2_hash(binary, HASHED_SECRET)}", grant_types: [client_credentials] }}
  - {{ id: web2, secret: web2-secret-0123456789, redirect_uris: [https://two.example.com/cb], skip_consent: true }}
users:
  - {{ username: alice, password: "{PASSWORD}" }}
"""
        path = os.path.join(workdir, "hostile.yaml")
        with open(path, "w") as f:
            f.write(config)
        self.log = open(os.path.join(workdir, "server.log"), "w")
        env = dict(os.environ, RUST_LOG="warn")
        self.proc = subprocess.Popen([binary, "serve", "--config", path], stdout=self.log,
                                     stderr=self.log, env=env, cwd=workdir)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if request(self, "GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the server did not become ready")

    def rows(self):
        with sqlite3.connect(self.db, timeout=30) as c:
            return c.execute("SELECT COUNT(*) FROM auth_requests").fetchone()[0]

    def db_bytes(self):
        return sum(os.path.getsize(self.db + s) for s in ("", "-wal") if os.path.exists(self.db + s))

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()


def request(server, method, path, body=None, headers=None, conn=None, timeout=30):
    c = conn or http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    h = dict(headers or {})
    if isinstance(body, dict):
        body = urllib.parse.urlencode(body)
        h["Content-Type"] = "application/x-www-form-urlencoded"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    cookies = [v for k, v in r.getheaders() if k.lower() == "set-cookie"]
    if conn is None:
        c.close()
    return r.status, data, cookies, r.getheader("Location")


def address(i):
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


class Flood:
    """`n` threads, each on its own keep-alive connection, calling `step(conn, i)` until
    the deadline; statuses counted."""

    def __init__(self, server, n, step, deadline):
        self.counts = {}
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(server, step, deadline, t), daemon=True)
                        for t in range(n)]

    def run(self, server, step, deadline, t):
        conn = None
        i = t
        while time.time() < deadline:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                status = step(conn, i)
            except (OSError, http.client.HTTPException):
                status = "error"
                conn = None
            with self.lock:
                self.counts[status] = self.counts.get(status, 0) + 1
            i += len(self.threads)

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        for t in self.threads:
            t.join()


def watch_rss(pid, stop, samples):
    while not stop.is_set():
        samples.append(rss_kb(pid))
        time.sleep(0.1)


def probe(server, deadline, call):
    """The correct client: one request after another; (status, latency) each."""
    out = []
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    while time.time() < deadline:
        t0 = time.perf_counter()
        try:
            status = call(conn)
        except (OSError, http.client.HTTPException):
            status = "error"
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        out.append((status, (time.perf_counter() - t0) * 1000))
        time.sleep(0.02)
    return out


def p99(latencies):
    if not latencies:
        return float("nan")
    s = sorted(latencies)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


def authorize_path(extra=None):
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    q = dict(client_id="web2", response_type="code", scope="openid", redirect_uri="https://two.example.com/cb",
             state="s", code_challenge=challenge, code_challenge_method="S256", **(extra or {}))
    return "/authorize?" + urllib.parse.urlencode(q)


def hidden(page, name):
    m = re.search(rf'name="{name}" value="([^"]*)"', page.decode(errors="replace"))
    return m.group(1) if m else None


def cookie_header(cookies):
    return "; ".join(c.split(";", 1)[0] for c in cookies)


def login_once(server, conn, password, addr, extra_cookie="", username="alice"):
    st, page, cookies, _ = request(server, "GET", authorize_path(), headers={"X-Forwarded-For": addr}, conn=conn)
    if st != 200:
        return st, []
    form = {"request": hidden(page, "request"), "csrf": hidden(page, "csrf"), "username": username, "password": password}
    jar = "; ".join(x for x in [cookie_header(cookies), extra_cookie] if x)
    st, _, set_cookies, _ = request(server, "POST", "/login", form,
                                    {"X-Forwarded-For": addr, "Cookie": jar}, conn=conn)
    return st, set_cookies


def phase(server, name, flood_step, probe_call, args, idle):
    deadline = time.time() + args.duration
    samples, stop = [], threading.Event()
    w = threading.Thread(target=watch_rss, args=(server.proc.pid, stop, samples), daemon=True)
    w.start()
    rows0 = server.rows()
    flood = Flood(server, args.connections, flood_step, deadline)
    flood.start()
    probes = probe(server, deadline, probe_call) if probe_call else []
    flood.join()
    stop.set()
    w.join()
    ok = [lat for st, lat in probes if st == 200]
    result = {
        "phase": name,
        "seconds": args.duration,
        "connections": args.connections,
        "flood_statuses": {str(k): v for k, v in sorted(flood.counts.items(), key=lambda kv: str(kv[0]))},
        "idle_rss_mb": idle / 1024,
        "peak_rss_mb": max(samples) / 1024 if samples else 0,
        "peak_over_idle": (max(samples) / idle) if samples else 0,
        "correct_requests": len(probes),
        "correct_success_rate": (len(ok) / len(probes)) if probes else None,
        "correct_p50_ms": statistics.median(ok) if ok else None,
        "correct_p99_ms": p99(ok),
        "rows_grown": server.rows() - rows0,
        "db_bytes": server.db_bytes(),
    }
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--phase", nargs="*", default=["secrets", "logins", "authorize"])
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "oidc-bridge"))
    ap.add_argument("--json")
    ap.add_argument("--legacy", action="store_true",
                    help="for a binary older than server.trusted_proxies (a before/after comparison)")
    args = ap.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} is missing: cargo build --release first")
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        server = Server(args.binary, workdir, args.legacy)
        try:
            # Warm up: the correct secrets once each, so the hashed one is known.
            for cid, sec in (("svc", SVC_SECRET), ("hashed", HASHED_SECRET)):
                request(server, "POST", "/token", {"grant_type": "client_credentials"}, {"Authorization": basic(cid, sec)})
            time.sleep(1)
            idle = rss_kb(server.proc.pid)

            def wrong_secret(conn, i):
                return request(server, "POST", "/token", {"grant_type": "client_credentials"},
                               {"Authorization": basic("hashed", f"wrong%41secret-{i}"), "X-Forwarded-For": address(i)},
                               conn=conn)[0]

            def correct_clients(conn):
                a = request(server, "POST", "/token", {"grant_type": "client_credentials"},
                            {"Authorization": basic("svc", SVC_SECRET)}, conn=conn)[0]
                b = request(server, "POST", "/token", {"grant_type": "client_credentials"},
                            {"Authorization": basic("hashed", HASHED_SECRET)}, conn=conn)[0]
                return 200 if a == b == 200 else (a if a != 200 else b)

            # A browser that signed in before: its device cookie.
            _, set_cookies = login_once(server, None, PASSWORD, "192.0.2.1")
            device = "; ".join(c.split(";", 1)[0] for c in set_cookies if "device" in c)

            # Each attempt for another (unknown) username from another address: no budget
            # applies, so every one reaches the hasher (the worst case for memory).
            def wrong_login(conn, i):
                return login_once(server, conn, "wrong-password", address(i), username=f"nobody{i}")[0]

            def correct_login(conn):
                st, _ = login_once(server, conn, PASSWORD, "192.0.2.1", device)
                return 200 if st == 303 else st

            def authorize_flood(conn, i):
                addr = "203.0.113.9" if i % 2 else address(i)
                return request(server, "GET", authorize_path({"nonce": "N" * 1000}),
                               headers={"X-Forwarded-For": addr}, conn=conn)[0]

            phases = {
                "secrets": (wrong_secret, correct_clients),
                "logins": (wrong_login, correct_login),
                "authorize": (authorize_flood, None),
            }
            for name in args.phase:
                flood_step, probe_call = phases[name]
                results.append(phase(server, name, flood_step, probe_call, args, idle))
                time.sleep(2)
        finally:
            server.stop()
    print(f"\nhostile load: {args.connections} connections, {args.duration} s a phase, release binary, loopback\n")
    print(f"| phase | flood answers | idle RSS | peak RSS | peak / idle | correct ok | correct p50 | correct p99 | rows grown |")
    print(f"|---|---|---|---|---|---|---|---|---|")
    for r in results:
        rate = "—" if r["correct_success_rate"] is None else f"{r['correct_success_rate'] * 100:.1f} % of {r['correct_requests']}"
        p50 = "—" if r["correct_p50_ms"] is None else f"{r['correct_p50_ms']:.1f} ms"
        p99v = "—" if r["correct_requests"] == 0 else f"{r['correct_p99_ms']:.1f} ms"
        print(f"| {r['phase']} | {r['flood_statuses']} | {r['idle_rss_mb']:.0f} MB | {r['peak_rss_mb']:.0f} MB "
              f"| {r['peak_over_idle']:.2f}× | {rate} | {p50} | {p99v} | {r['rows_grown']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
