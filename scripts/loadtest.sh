#!/usr/bin/env bash
# Load-tests one service with k6 on this machine (release build, real backends), at a fixed arrival rate.
#   scripts/loadtest.sh phone-proof [RATE flows/s] [DURATION] [WRONG codes per flow]
#       Redis backend, the webhook sender pointed at `idvctl sms-sink`, seeded phone artifacts.
#   scripts/loadtest.sh face-match [RATE pairs/s] [DURATION]
#       the manifest's models, real photo pairs (genuine and impostor) from registry packages.
#   scripts/loadtest.sh document-ocr [RATE documents/s] [DURATION]
#       60 generated passports and ID cards (TD1, TD2, TD3; mild distortions) read through Tesseract.
# Results: the k6 summary on stdout and in var/loadtest/<service>-summary.json.
# The standard OTEL_* variables reach the services (e.g. OTEL_EXPORTER_OTLP_ENDPOINT, to load-test with traces
# exported); IDV_BIN_DIR=DIR runs the binaries in DIR instead of building.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

target="${1:-phone-proof}"
case "$target" in
  phone-proof|face-match|document-ocr) ;;
  *) echo "usage: scripts/loadtest.sh phone-proof|face-match|document-ocr [RATE] [DURATION] [...]" >&2; exit 2 ;;
esac

ensure_rust; ensure_tools; ensure_redis; ensure_ocr
# IDV_BIN_DIR runs other binaries (e.g. an earlier commit's release build, for a before/after in one run).
if [ -n "${IDV_BIN_DIR:-}" ]; then
  BIN="$(cd "$IDV_BIN_DIR" && pwd)"
  log "using the binaries in $BIN"
else
  log "building release binaries"
  build_release -q
  BIN="$ROOT/target/release"
fi
WORK="$ROOT/var/loadtest"; rm -rf "$WORK"; mkdir -p "$WORK"
export IDV_DATA_DIR="$WORK/data"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# Runs loadtests/<service>.js against 127.0.0.1:PORT with the extra environment given, then reports the
# service's memory and CPU time, and exits with k6's status.
#   run_k6 SERVICE PORT PID [VAR=value ...]
run_k6() {
  local service=$1 port=$2 pid=$3 status; shift 3
  set +e
  env BASE_URL="http://127.0.0.1:$port" TOKEN="$TOKEN" RATE="$RATE" DURATION="$DURATION" "$@" \
    "$VENV/bin/k6" run --quiet --summary-export "$WORK/$service-summary.json" "loadtests/$service.js"
  status=$?
  set -e
  report_usage "$service" "$pid"
  exit $status
}

# A service's resident memory and CPU time (user + system, from /proc, to the clock tick) so far.
#   report_usage SERVICE PID
report_usage() {
  awk -v s="$1" -v tick="$(getconf CLK_TCK)" '{printf "%s CPU %.2f s", s, ($14 + $15) / tick}' "/proc/$2/stat"
  ps -o rss= -p "$2" | awk '{printf ", RSS after the run: %.0f MiB\n", $1 / 1024}'
}

# Waits for a service's /readyz on its port, or shows its log and fails.
await_ready() {
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return; sleep 0.1; done
  tail "$WORK/$2.log" >&2; exit 1
}

if [ "$target" = "document-ocr" ]; then
  RATE="${2:-5}"; DURATION="${3:-60s}"
  python3 scripts/fetch-models.py
  IDV_BIND=127.0.0.1:18081 IDV_LOG__FILTER=warn OMP_THREAD_LIMIT=1 \
  IDV_RATE_LIMIT__REQUESTS_PER_SECOND=1000000 IDV_RATE_LIMIT__BURST=1000000 \
  OCR_TESSDATA="$ROOT/.cache/tessdata" "$BIN/document-ocr" >"$WORK/document-ocr.log" 2>&1 &
  pids+=($!)
  await_ready 18081 document-ocr
  log "generating and seeding 60 documents"
  "$BIN/docgen" --count 60 --distortion mild --out "$WORK/docs" >/dev/null
  python3 - "$WORK/docs" "$BIN/idvctl" > "$WORK/docs.json" <<'PY'
import json, subprocess, sys
folder, idvctl = sys.argv[1], sys.argv[2]
out = []
for d in json.load(open(f"{folder}/manifest.json")):
    aid = subprocess.run([idvctl, "artifact", "put", "--region", "eu", f"{folder}/{d['file']}"],
                         check=True, capture_output=True, text=True).stdout.strip()
    out.append({"artifact_id": aid, "format": d["format"], "document_number": d["identity"]["document_number"]})
json.dump(out, sys.stdout)
PY
  TOKEN=$("$BIN/idvctl" token mint --service document-ocr --tenant loadtest --region eu --ttl 900)
  log "k6: $RATE documents/s for $DURATION"
  run_k6 document-ocr 18081 "${pids[0]}" DOCS="$WORK/docs.json"
fi

if [ "$target" = "face-match" ]; then
  RATE="${2:-20}"; DURATION="${3:-60s}"
  python3 scripts/fetch-models.py --test-photos
  IDV_BIND=127.0.0.1:18082 IDV_LOG__FILTER=warn \
  IDV_RATE_LIMIT__REQUESTS_PER_SECOND=1000000 IDV_RATE_LIMIT__BURST=1000000 \
  ORT_DYLIB_PATH="$ROOT/.cache/onnxruntime/libonnxruntime.so" FACE_MANIFEST="$ROOT/models/manifest.toml" \
    "$BIN/face-match" >"$WORK/face-match.log" 2>&1 &
  pids+=($!)
  await_ready 18082 face-match
  log "seeding photo artifacts"
  declare -A ID
  for f in .cache/testdata/face_recognition/{obama,obama2,obama3,biden}.jpg .cache/testdata/insightface/yaoming.jpg; do
    ID[$(basename "$f")]=$("$BIN/idvctl" artifact put --region eu "$f")
  done
  pair() { printf '{"reference":"%s","probe":"%s","expect":"%s"}' "${ID[$1]}" "${ID[$2]}" "$3"; }
  printf '[%s,%s,%s,%s,%s,%s]' "$(pair obama.jpg obama2.jpg pass)" "$(pair obama.jpg obama3.jpg pass)" \
    "$(pair obama2.jpg obama3.jpg pass)" "$(pair obama.jpg biden.jpg fail)" "$(pair biden.jpg yaoming.jpg fail)" \
    "$(pair obama3.jpg yaoming.jpg fail)" > "$WORK/pairs.json"
  TOKEN=$("$BIN/idvctl" token mint --service face-match --tenant loadtest --region eu --ttl 900)
  log "k6: $RATE pairs/s for $DURATION"
  run_k6 face-match 18082 "${pids[0]}" PAIRS="$WORK/pairs.json"
fi
RATE="${2:-200}"; DURATION="${3:-60s}"; WRONG="${4:-1}"

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
await_ready 18083 phone-proof

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
report_usage phone-proof "${pids[1]}"
redis-cli --scan --pattern "$PREFIX:*" | xargs -r -n 1000 redis-cli del >/dev/null
exit $status
