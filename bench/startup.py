#!/usr/bin/env python3
"""Startup benchmark: median time from process start to the first HTTP 200 on discovery
(and, for honesty, on JWKS, which needs a signing key), for `oidc-bridge mock` and for
oauth2-mock-server 9.3.0 on the same machine.

    cargo build --release && (cd bench && npm ci) && python3 bench/startup.py [--runs 30]

Each run starts the process on a free port and polls with a fresh connection every 0.5 ms.
"""
import argparse
import http.client
import os
import socket
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_200(port, path, deadline):
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
    raise TimeoutError(f"no 200 on {path}")


def measure(name, command, runs):
    disc, jwks = [], []
    for _ in range(runs):
        port = free_port()
        t0 = time.perf_counter()
        p = subprocess.Popen(command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        try:
            t1 = wait_200(port, "/.well-known/openid-configuration", t0 + 30)
            t2 = wait_200(port, JWKS[name], t0 + 30)
            disc.append((t1 - t0) * 1000)
            jwks.append((t2 - t0) * 1000)
        finally:
            p.terminate()
            p.wait()
    return statistics.median(disc), min(disc), max(disc), statistics.median(jwks)


JWKS = {
    "oidc-bridge mock": "/jwks",
    "oidc-bridge mock --key-file": "/jwks",
    "oauth2-mock-server 9.3.0": "/jwks",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    bridge = os.path.join(ROOT, "target", "release", "oidc-bridge")
    mock_server = os.path.join(ROOT, "bench", "node_modules", ".bin", "oauth2-mock-server")
    key_file = os.path.join(ROOT, "target", "bench-mock-key.pem")
    if not os.path.exists(key_file):
        # The first run with --key-file creates the key; later runs load it.
        p = subprocess.Popen([bridge, "mock", "--listen", "127.0.0.1:0", "--key-file", key_file],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(key_file):
                break
            time.sleep(0.05)
        p.terminate()
        p.wait()
    targets = {
        "oidc-bridge mock": lambda port: [bridge, "mock", "--listen", f"127.0.0.1:{port}"],
        "oidc-bridge mock --key-file": lambda port: [
            bridge, "mock", "--listen", f"127.0.0.1:{port}", "--key-file", key_file],
        "oauth2-mock-server 9.3.0": lambda port: ["node", mock_server, "-a", "127.0.0.1", "-p", str(port)],
    }
    results = {}
    for name, cmd in targets.items():
        results[name] = measure(name, cmd, args.runs)
    print(f"{'server':<28} {'discovery median':>17} {'min':>8} {'max':>8} {'JWKS median':>12}   ({args.runs} runs)")
    for name, (med, lo, hi, jw) in results.items():
        print(f"{name:<28} {med:>14.1f} ms {lo:>5.1f} ms {hi:>5.1f} ms {jw:>9.1f} ms")
    a = results["oidc-bridge mock"][0]
    b = results["oauth2-mock-server 9.3.0"][0]
    print(f"ratio (oidc-bridge / oauth2-mock-server, discovery medians): {a / b:.3f}")


if __name__ == "__main__":
    main()
