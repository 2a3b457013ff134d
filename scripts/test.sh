#!/usr/bin/env bash
# Runs every test: formatting, clippy, and the whole workspace's tests against real SeaweedFS and Redis.
# Then schemathesis against each service (scripts/schemathesis.sh), replicas of the real binaries on one
# PostgreSQL ledger (scripts/replicas-test.py), and the container image and compose stack (scripts/compose-test.sh).
# Installs and starts what it needs; stops the SeaweedFS it started.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ensure_rust
ensure_cargo_tools
ensure_ocr
ensure_compose
ensure_tools
ensure_promtool
ensure_redis
ensure_postgres
export OMP_THREAD_LIMIT=1
log "models, ONNX Runtime and test photos (sha256-checked)"
python3 scripts/fetch-models.py --test-photos

started_weed=0
scripts/seaweedfs.sh status || started_weed=1
eval "$(scripts/seaweedfs.sh start)"
cleanup() { if [ "$started_weed" = 1 ]; then scripts/seaweedfs.sh stop; fi; }
trap cleanup EXIT

scripts/helm-check.sh
log "docker-compose.yml validates"
docker-compose -f docker-compose.yml config -q
# Every variable the compose file reads is documented in .env.example.
for v in $(grep -o '\${[A-Z0-9_]*' docker-compose.yml | tr -d '${' | sort -u); do
  grep -q "^$v=" .env.example || { echo "docker-compose.yml reads $v, which .env.example does not document" >&2; exit 1; }
done
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "unused dependencies (cargo machete) and the dependency policy (cargo deny: bans, licences, sources)"
cargo machete
# cargo deny reads the metadata of every package in the lock file, those of other platforms too (windows-sys, …),
# which a build here never downloads: fetch them first, so that a fresh machine's cache has them.
cargo fetch --locked --quiet
cargo deny --offline --log-level error check bans licenses sources
log "operator kit: alert rules and their unit tests (promtool), dashboard and rules against the metrics the code defines"
python3 scripts/check-operator-kit.py --promtool "$PROMTOOL"
log "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
log "schemathesis against each service's OpenAPI document (the binaries the tests just built)"
# With --tests, dev-dependencies unify features exactly as the test build did, so nothing is compiled again.
cargo build --workspace --bins --tests --locked
scripts/schemathesis.sh
log "replicas: two processes of each service on one PostgreSQL ledger, one Redis and SeaweedFS; kill -9 of one"
python3 scripts/replicas-test.py --bin target/debug
log "containers: the Dockerfile's image and docker-compose.yml run in a dockerd of the test's own; one onboarding flow"
scripts/compose-test.sh target/debug
