#!/usr/bin/env bash
# Runs every test: formatting, clippy, and the whole workspace's tests against real SeaweedFS and Redis.
# Installs and starts what it needs; stops the SeaweedFS it started.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ensure_rust
ensure_tools
ensure_redis

started_weed=0
scripts/seaweedfs.sh status || started_weed=1
eval "$(scripts/seaweedfs.sh start)"
cleanup() { if [ "$started_weed" = 1 ]; then scripts/seaweedfs.sh stop; fi; }
trap cleanup EXIT

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
