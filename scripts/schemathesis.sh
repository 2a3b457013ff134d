#!/usr/bin/env bash
# Contract fuzzing: schemathesis (every check) against each service's committed OpenAPI document, each service
# started on its embedded defaults in a throwaway data dir on a free loopback port. Bounded by examples per
# operation and a time budget, with a fixed seed so a failure reproduces. Exit code 1 when any check fails.
#   scripts/schemathesis.sh [service...]        (default: all three; binaries from IDV_BIN_DIR, target/debug)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ensure_schemathesis
BIN="${IDV_BIN_DIR:-$ROOT/target/debug}"
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-40}"
export OMP_THREAD_LIMIT=1
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$ROOT/.cache/onnxruntime/libonnxruntime.so}"
export FACE_MANIFEST="${FACE_MANIFEST:-$ROOT/models/manifest.toml}"
declare -A SCOPES=(
  [document-ocr]="ocr:verify"
  [face-match]="face:verify face:admin"
  [phone-proof]="phone:challenge phone:verify phone:admin"
)
services=("$@")
[ ${#services[@]} -gt 0 ] || services=(document-ocr face-match phone-proof)

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

failed=0
for svc in "${services[@]}"; do
  data="$work/$svc"; mkdir -p "$data"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  IDV_DATA_DIR="$data" IDV_BIND="127.0.0.1:$port" IDV_LOG__FILTER=error "$BIN/$svc" >"$work/$svc.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$work/$svc.log" >&2; echo "$svc did not start" >&2; exit 1; }
  scope_args=(); for s in ${SCOPES[$svc]}; do scope_args+=(--scope "$s"); done
  token=$(IDV_DATA_DIR="$data" "$BIN/idvctl" token mint --service "$svc" "${scope_args[@]}" --ttl 900)
  log "schemathesis: $svc ($EXAMPLES examples per operation)"
  if ! "$SCHEMATHESIS_VENV/bin/schemathesis" run "openapi/$svc.json" --url "http://127.0.0.1:$port" \
      -H "Authorization: Bearer $token" --checks all --max-examples "$EXAMPLES" --seed 20261202 \
      --workers 1 --phases examples,coverage,fuzzing --max-time 150 --request-timeout 20 --warnings off --no-color; then
    failed=1
  fi
done
exit "$failed"
