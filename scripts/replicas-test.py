#!/usr/bin/env python3
"""Two processes of each service on one PostgreSQL ledger, one Redis rate limiter and one S3 store, as replicas
behind a load balancer run them: nothing answered is lost when one is killed, and a burst limit holds across both.

    scripts/replicas-test.py --bin target/debug

For document-ocr, face-match and phone-proof in turn: two processes of the real service binary share a fresh
PostgreSQL database (migrated with `idvctl ledger migrate`), Redis (a prefix of their own) and SeaweedFS's
buckets. Workers send requests split across both; once both have answered, replica A is killed with SIGKILL
while requests are in flight, the workers go on against B, and B is stopped with SIGTERM (its drain writes the
closing checkpoint). Then every verdict answered with 200 must have exactly one ledger row, and
`idvctl ledger verify --postgres … --chain <service> --jwks …` must find the chain and its checkpoints intact.
Last, two phone-proof processes with a burst of 5 take 20 requests at once: at most 5 get through, not 10.

Needs IDV_TEST_POSTGRES_URL (an owner's URL; the test creates and drops its own database), IDV_TEST_REDIS_URL
(default redis://127.0.0.1:6379) and IDV_TEST_S3_ENDPOINT/_ACCESS_KEY/_SECRET_KEY (`scripts/seaweedfs.sh env`).
Run from the repository root (the services find `.cache/` and `models/` there). Exit code 0 when all holds.
"""

import argparse
import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg: str) -> None:
    print(f"replicas-test: {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method: str, url: str, token: str | None = None, body: dict | None = None,
         timeout: float = 60) -> tuple[int, dict]:
    """(status, JSON body); status 0 when the connection failed (a killed replica)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            raw = res.read()
            return res.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw) if raw else {}
        except ValueError:
            return e.code, {}
    except (OSError, ValueError):
        return 0, {}


class Replica:
    """One service process on an ephemeral port."""

    def __init__(self, binary: str, env: dict, name: str, logdir: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.name = name
        self.log = open(os.path.join(logdir, f"{name}.log"), "wb")
        self.proc = subprocess.Popen([binary], env=dict(env, IDV_BIND=f"127.0.0.1:{self.port}"),
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{name} exited with {self.proc.returncode}; see {self.log.name}")
            if call("GET", self.base + "/readyz", timeout=2)[0] == 200:
                return
            time.sleep(0.2)
        raise SystemExit(f"{name} did not become ready; see {self.log.name}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


def psql(url: str, sql: str) -> str:
    return subprocess.check_output(["psql", "-X", "-q", "-tA", url, "-c", sql], text=True).strip()


def with_db(url: str, db: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + db))


class Suite:
    def __init__(self, args):
        self.bin = args.bin
        self.owner = os.environ["IDV_TEST_POSTGRES_URL"]
        self.db = f"idv_replicas_{os.getpid()}"
        self.url = with_db(self.owner, self.db)
        self.tmp = tempfile.mkdtemp(prefix="idv-replicas-")
        self.failures: list[str] = []
        # Phone challenges live in Redis, so a code sent by one replica can be checked on the other.
        self.phone = {
            "PHONE_REDIS_URL": os.environ.get("IDV_TEST_REDIS_URL", "redis://127.0.0.1:6379"),
            "PHONE_REDIS_PREFIX": f"idv:replicas:{os.getpid()}:phone",
        }
        endpoint = os.environ["IDV_TEST_S3_ENDPOINT"]
        self.env = dict(
            os.environ,
            IDV_DATA_DIR=os.path.join(self.tmp, "data"),
            IDV_LOG__FILTER="warn",
            OMP_THREAD_LIMIT="1",
            IDV_AUDIT__LEDGER_URL=self.url,
            IDV_AUDIT__CHECKPOINT_EVERY_ENTRIES="50",
            IDV_RATE_LIMIT__REDIS_URL=os.environ.get("IDV_TEST_REDIS_URL", "redis://127.0.0.1:6379"),
            IDV_RATE_LIMIT__REDIS_PREFIX=f"idv:replicas:{os.getpid()}",
            ORT_DYLIB_PATH=os.path.join(ROOT, ".cache/onnxruntime/libonnxruntime.so"),
            FACE_MANIFEST=os.path.join(ROOT, "models/manifest.toml"),
        )
        for region in ("EU", "US"):
            self.env.update({
                f"IDV_REGIONS__{region}__KIND": "s3",
                f"IDV_REGIONS__{region}__BUCKET": f"idv-{region.lower()}",
                f"IDV_REGIONS__{region}__ENDPOINT": endpoint,
                f"IDV_REGIONS__{region}__PATH_STYLE": "true",
                f"IDV_REGIONS__{region}__ACCESS_KEY_ID": os.environ["IDV_TEST_S3_ACCESS_KEY"],
                f"IDV_REGIONS__{region}__SECRET_ACCESS_KEY": os.environ["IDV_TEST_S3_SECRET_KEY"],
            })

    def ctl(self, *args: str, env: dict | None = None) -> str:
        return subprocess.check_output([os.path.join(self.bin, "idvctl"), *args], env=env or self.env,
                                       text=True, cwd=ROOT).strip()

    def check(self, ok: bool, what: str) -> None:
        log(("ok: " if ok else "FAILED: ") + what)
        if not ok:
            self.failures.append(what)

    def setup(self) -> None:
        psql(self.owner, f"CREATE DATABASE {self.db}")
        self.ctl("ledger", "migrate", "--postgres", self.url)

    def teardown(self) -> None:
        psql(self.owner, f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")

    def replicas(self, service: str, extra: dict | None = None, count: int = 2) -> list[Replica]:
        env = dict(self.env, **(extra or {}))
        # One after the other: the first creates the shared audit key ring, the second loads it.
        return [Replica(os.path.join(self.bin, service), env, f"{service}-{i}", self.tmp) for i in range(count)]

    def kill_one(self, service: str, request, workers: int, before: int, after: int,
                 extra: dict | None = None) -> None:
        """Load split across two replicas; A killed with SIGKILL once both answered `before` verdicts each.
        `request(i, target, other)` makes the i-th verdict on `target` (`other`: the other live replica) and
        returns (status, body)."""
        a, b = self.replicas(service, extra)
        answered: list[str] = []
        by = {a.name: 0, b.name: 0}
        lock = threading.Lock()
        a_dead = threading.Event()
        done = threading.Event()

        def worker(k: int) -> None:
            i = k
            while not done.is_set():
                target = b if a_dead.is_set() or i % 2 else a
                other = b if a_dead.is_set() or target is a else a
                status, res = request(i, target, other)
                i += workers
                if status == 200 and "id" in res:
                    with lock:
                        answered.append(res["id"])
                        by[target.name] += 1
                        if by[b.name] >= before + after and a_dead.is_set():
                            done.set()
                elif status not in (0, 429):
                    with lock:
                        self.failures.append(f"{service}: {status} {res.get('code')}")
                    done.set()

        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(worker, k) for k in range(workers)]
            while not done.is_set() and min(by.values()) < before:
                time.sleep(0.05)
            a.kill()
            a_dead.set()
            log(f"{service}: killed {a.name} (SIGKILL) after {by[a.name]} answers, {workers} requests in flight")
            for f in futures:
                f.result()
        jwks = os.path.join(self.tmp, f"{service}-jwks.json")
        with open(jwks, "w") as f:
            json.dump(call("GET", b.base + "/.well-known/jwks.json")[1], f)
        self.check(b.stop() == 0, f"{service}: {b.name} stops cleanly on SIGTERM")
        rows = psql(self.url, "SELECT record::jsonb ->> 'vid', count(*) FROM audit_ledger "
                              f"WHERE chain = '{service}' AND NOT checkpoint GROUP BY 1")
        recorded = dict(line.split("|") for line in rows.splitlines() if line)
        missing = [v for v in answered if v not in recorded]
        self.check(not missing and len(answered) == len(set(answered)),
                   f"{service}: {len(answered)} verdicts answered ({by[a.name]} by the killed replica), "
                   f"{len(missing)} without a ledger row")
        self.check(all(n == "1" for n in recorded.values()), f"{service}: one row per verdict")
        verify = subprocess.run([os.path.join(self.bin, "idvctl"), "ledger", "verify", "--postgres", self.url,
                                 "--chain", service, "--jwks", jwks], env=self.env, cwd=ROOT,
                                capture_output=True, text=True)
        self.check(verify.returncode == 0,
                   f"{service}: chain and checkpoints verify: {verify.stdout.strip() or verify.stderr.strip()}")

    def burst(self) -> None:
        """Two phone-proof replicas, burst 5: twenty requests at once across both get at most five through."""
        a, b = self.replicas("phone-proof", {
            **self.phone,
            "IDV_RATE_LIMIT__BURST": "5",
            "IDV_RATE_LIMIT__REQUESTS_PER_SECOND": "0.1",
            "IDV_RATE_LIMIT__REDIS_PREFIX": f"idv:replicas:{os.getpid()}:burst",
        })
        try:
            token = self.ctl("token", "mint", "--service", "phone-proof", "--tenant", "burst", "--region", "eu")
            url = "/v1/phone/challenges/chl_0000000000000000000000"

            def one(i: int) -> int:
                return call("GET", (a if i % 2 else b).base + url, token)[0]

            with concurrent.futures.ThreadPoolExecutor(20) as pool:
                statuses = list(pool.map(one, range(20)))
            through = sum(1 for s in statuses if s != 429)
            self.check(through <= 5 and statuses.count(429) >= 15,
                       f"burst 5 across two replicas: {through} of 20 through, {statuses.count(429)} × 429")
        finally:
            a.stop()
            b.stop()

    def run(self, only: list[str]) -> None:
        if "document-ocr" in only:
            docs = os.path.join(self.tmp, "docs")
            subprocess.check_call([os.path.join(self.bin, "docgen"), "--count", "6", "--out", docs,
                                   "--distortion", "mild"], stdout=subprocess.DEVNULL, cwd=ROOT)
            ids = [self.ctl("artifact", "put", "--region", "eu", os.path.join(docs, f))
                   for f in sorted(os.listdir(docs)) if f.endswith(".jpg")]
            token = self.ctl("token", "mint", "--service", "document-ocr", "--tenant", "load", "--region", "eu")
            self.kill_one("document-ocr", lambda i, t, _: call("POST", t.base + "/v1/documents/ocr", token,
                                                               {"artifact_id": ids[i % len(ids)]}),
                          workers=4, before=6, after=12)
        if "face-match" in only:
            faces = os.path.join(ROOT, ".cache/testdata/face_recognition")
            ids = [self.ctl("artifact", "put", "--region", "eu", os.path.join(faces, f))
                   for f in ("obama.jpg", "obama2.jpg", "biden.jpg")]
            token = self.ctl("token", "mint", "--service", "face-match", "--tenant", "load", "--region", "eu")
            pairs = [(ids[0], ids[1]), (ids[0], ids[2]), (ids[1], ids[2])]

            def match(i: int, target: Replica, _other: Replica) -> tuple[int, dict]:
                r, p = pairs[i % len(pairs)]
                return call("POST", target.base + "/v1/faces/match", token,
                            {"reference_artifact_id": r, "probe_artifact_id": p})

            self.kill_one("face-match", match, workers=4, before=8, after=16)
        if "phone-proof" in only:
            self.burst()
            ids = json.loads(self.ctl("artifact", "seed-phones", "--region", "eu", "--count", "400"))
            token = self.ctl("token", "mint", "--service", "phone-proof", "--tenant", "load", "--region", "eu")

            def prove(i: int, target: Replica, other: Replica) -> tuple[int, dict]:
                # The challenge made on one replica is checked on the other: its state lives in Redis. A wrong
                # code still gets a verdict (`fail`, `code_mismatch`), with its ledger entry.
                status, res = call("POST", target.base + "/v1/phone/challenges", token,
                                   {"phone_artifact_id": ids[i % len(ids)], "channel": "sms"})
                if status not in (200, 201):
                    return status, res
                return call("POST", f"{other.base}/v1/phone/challenges/{res['challenge_id']}/verify", token,
                            {"code": "000000"})

            self.kill_one("phone-proof", prove, workers=8, before=40, after=80, extra=self.phone)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/debug"),
                    help="folder holding the service binaries, idvctl and docgen")
    ap.add_argument("--only", default="document-ocr,face-match,phone-proof")
    args = ap.parse_args()
    suite = Suite(args)
    suite.setup()
    try:
        suite.run(args.only.split(","))
    finally:
        suite.teardown()
    if suite.failures:
        log(f"{len(suite.failures)} failed; logs in {suite.tmp}")
        raise SystemExit(1)
    log("all held")


if __name__ == "__main__":
    main()
