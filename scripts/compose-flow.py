#!/usr/bin/env python3
"""One onboarding flow against the compose stack scripts/compose-test.sh brought up, from inside its network
namespace: a generated passport read by document-ocr, a selfie matched by face-match, a phone number proved by
phone-proof with the code the SMS sink received, each through its published port with a token from the stack's
own dev issuer; then every service's ledger verified inside its container against its published JWKS, and the
operator kit (deploy/observability) checked against the services' /metrics.

Standard library only; docker-compose (DOCKER_HOST from the caller) for `exec` into the containers.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
PORTS = {"document-ocr": 8081, "face-match": 8082, "phone-proof": 8083}


def fail(msg: str) -> None:
    print(f"compose-flow: {msg}", file=sys.stderr)
    sys.exit(1)


class Stack:
    def __init__(self, project: str):
        self.project = project

    def exec(self, service: str, *args: str, stdin: bytes | None = None, check: bool = True) -> str | None:
        """Runs a command in a service's container (as its user) and returns its standard output (None when it
        failed and `check` is off)."""
        cmd = ["docker-compose", "-p", self.project, "-f", str(ROOT / "docker-compose.yml"), "exec", "-T",
               service, *args]
        run = subprocess.run(cmd, input=stdin, capture_output=True, timeout=120)
        if run.returncode != 0:
            if not check:
                return None
            fail(f"{' '.join(args[:3])} in {service}: {run.stderr.decode(errors='replace')[-600:]}")
        return run.stdout.decode().strip()

    def put(self, service: str, data: bytes) -> str:
        """Stores bytes in the `eu` region (the stack's SeaweedFS) and returns the artifact ID."""
        return self.exec(service, "idvctl", "artifact", "put", "--region", "eu", "/dev/stdin", stdin=data)

    def token(self, service: str) -> str:
        return self.exec(service, "idvctl", "token", "mint", "--service", service, "--tenant", "compose",
                         "--region", "eu")


def call(method: str, service: str, path: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    url = f"http://127.0.0.1:{PORTS[service]}{path}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            return res.status, json.loads(res.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def verdict(name: str, status: int, body: dict, want: str) -> dict:
    if status != 200 or body.get("verdict") != want:
        fail(f"{name}: expected 200 {want}, got {status} {json.dumps(body)[:800]}")
    if not body.get("audit_token"):
        fail(f"{name}: no audit token")
    print(f"compose-flow: {name}: {want} (confidence {body.get('confidence')})")
    return body


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--project", required=True)
    ap.add_argument("--bin", required=True, help="folder holding docgen")
    ap.add_argument("--promtool", help="check the operator kit against the services' /metrics after the flow")
    args = ap.parse_args()
    stack = Stack(args.project)

    # Document: a generated TD3 passport, scanned cleanly.
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(ROOT / args.bin / "docgen"), "--count", "1", "--format", "TD3", "--out", tmp,
                        "--distortion", "clean"], check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        page = next(p for p in sorted(pathlib.Path(tmp).iterdir()) if p.suffix == ".jpg").read_bytes()
    doc = stack.put("document-ocr", page)
    status, body = call("POST", "document-ocr", "/v1/documents/ocr", stack.token("document-ocr"),
                        {"artifact_id": doc})
    verdict("document", status, body, "pass")

    # Face: the document photo and a selfie of the same person (registry photos).
    photos = ROOT / ".cache/testdata/face_recognition"
    ref = stack.put("face-match", (photos / "obama.jpg").read_bytes())
    probe = stack.put("face-match", (photos / "obama2.jpg").read_bytes())
    status, body = call("POST", "face-match", "/v1/faces/match", stack.token("face-match"),
                        {"reference_artifact_id": ref, "probe_artifact_id": probe})
    verdict("face", status, body, "pass")

    # Phone: a challenge sent through the SMS sink, the code read back from the sink as a test phone would.
    number = stack.put("phone-proof", json.dumps({"phone_number": "+4915112345678"}).encode())
    token = stack.token("phone-proof")
    status, challenge = call("POST", "phone-proof", "/v1/phone/challenges", token,
                             {"phone_artifact_id": number, "channel": "sms"})
    if status not in (200, 201):
        fail(f"phone challenge: {status} {challenge}")
    cid = challenge["challenge_id"]
    code = None
    for _ in range(50):
        got = stack.exec("phone-proof", "curl", "-fsS", f"http://sms-sink:8099/codes/{cid}", check=False)
        if got:
            code = json.loads(got)["code"]
            break
        time.sleep(0.2)
    if code is None:
        fail("the SMS sink never received the code")
    status, body = call("POST", "phone-proof", f"/v1/phone/challenges/{cid}/verify", token, {"code": code})
    verdict("phone", status, body, "pass")

    # Every ledger: hash chain and signed checkpoints, read inside its container, keys from the published JWKS.
    for service, port in PORTS.items():
        out = stack.exec(service, "idvctl", "ledger", "verify", f"/var/lib/idv/ledger/{service}.jsonl",
                         "--jwks", f"http://127.0.0.1:{port}/.well-known/jwks.json")
        print(f"compose-flow: ledger {service}: {out.splitlines()[0] if out else '(empty)'}")

    # The operator kit: alert rules and their unit tests, and every dashboard panel's metric in the /metrics of
    # the services that just served the flow.
    if args.promtool:
        subprocess.run([sys.executable, str(ROOT / "scripts/check-operator-kit.py"), "--promtool", args.promtool,
                        "--metrics", *[f"http://127.0.0.1:{port}/metrics" for port in PORTS.values()]],
                       check=True)


if __name__ == "__main__":
    main()
