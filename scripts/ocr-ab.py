#!/usr/bin/env python3
"""document-ocr builds side by side through HTTP: per-request latency of each build on the same pages, in one run.

    scripts/ocr-ab.py --docs DIR --build before=/path/to/bin --build after=target/release [--rounds 3]
    scripts/ocr-ab.py --docs DIR --build file=target/release \
        --build pg=target/release,IDV_AUDIT__LEDGER_URL=postgres://…,IDV_RATE_LIMIT__REDIS_URL=redis://127.0.0.1:6379

A build may name environment variables after its folder (comma separated): the same binaries run twice, once on
the ledger file and once on PostgreSQL, say.

Each build directory holds `document-ocr` and `idvctl`. Round by round, builds in turn (so drift of the machine
hits both alike), each one: started on its embedded defaults with a fresh data dir on an ephemeral port,
`OMP_THREAD_LIMIT=1`, every page uploaded with its own `idvctl`, three warm-up calls, then every page posted
once, one request at a time. Prints a Markdown row per build: p50, p95, p99 and mean over all rounds.
Run from the repository root (the services find `.cache/tessdata` there).
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, token: str, body: dict) -> int:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            res.read()
            return res.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code


def run_build(build: str, pages: list[str]) -> list[float]:
    bindir, *extra = build.split(",")
    data = tempfile.mkdtemp(prefix="ocr-ab-")
    port = free_port()
    env = dict(os.environ, IDV_DATA_DIR=data, IDV_BIND=f"127.0.0.1:{port}", OMP_THREAD_LIMIT="1",
               IDV_LOG__FILTER="warn")
    env.update(kv.split("=", 1) for kv in extra)
    proc = subprocess.Popen([os.path.join(bindir, "document-ocr")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"{bindir}: document-ocr did not become ready")
        ctl = os.path.join(bindir, "idvctl")
        token = subprocess.check_output([ctl, "token", "mint", "--service", "document-ocr", "--region", "eu"],
                                        env=env, text=True).strip()
        ids = [subprocess.check_output([ctl, "artifact", "put", "--region", "eu", p], env=env, text=True).strip()
               for p in pages]
        url = base + "/v1/documents/ocr"
        for i in ids[:3]:
            post(url, token, {"artifact_id": i})
        times = []
        for i in ids:
            t0 = time.perf_counter()
            status = post(url, token, {"artifact_id": i})
            times.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise SystemExit(f"{bindir}: status {status}")
        return times
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", required=True, help="folder of page images (docgen --out)")
    ap.add_argument("--build", action="append", required=True, help="NAME=DIR holding document-ocr and idvctl")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    pages = sorted(os.path.join(args.docs, f) for f in os.listdir(args.docs)
                   if f.lower().endswith((".jpg", ".jpeg", ".png")))
    builds = [b.split("=", 1) for b in args.build]
    times: dict[str, list[float]] = {name: [] for name, _ in builds}
    for r in range(args.rounds):
        for name, bindir in builds:
            times[name] += run_build(bindir, pages)
            print(f"round {r + 1} {name}: p50 {pct(times[name][-len(pages):], 0.5):.1f} ms", flush=True)
    print("| build | requests | p50 ms | p95 ms | p99 ms | mean ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, _ in builds:
        t = times[name]
        print(f"| {name} | {len(t)} | {pct(t, 0.5):.1f} | {pct(t, 0.95):.1f} | {pct(t, 0.99):.1f} | "
              f"{statistics.mean(t):.1f} |")


if __name__ == "__main__":
    main()
