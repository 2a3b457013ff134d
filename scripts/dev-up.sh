#!/usr/bin/env bash
# Builds the suite, seeds demo artifacts and starts all three services on their embedded defaults
# (folder stores for eu and us under var/, the local dev issuer), then prints ready-to-paste calls.
#   scripts/dev-up.sh         # (re)start everything
#   scripts/dev-up.sh stop    # stop what it started
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

SERVICES=(document-ocr face-match phone-proof)
export IDV_DATA_DIR="${IDV_DATA_DIR:-$ROOT/var}"
RUN="$IDV_DATA_DIR/run"
mkdir -p "$RUN" "$IDV_DATA_DIR/log"

stop_all() {
  for s in "${SERVICES[@]}"; do
    if [ -f "$RUN/$s.pid" ]; then
      kill "$(cat "$RUN/$s.pid")" 2>/dev/null || true
      rm -f "$RUN/$s.pid"
    fi
  done
}

if [ "${1:-}" = "stop" ]; then stop_all; log "stopped"; exit 0; fi

ensure_rust
ensure_ocr
export OMP_THREAD_LIMIT=1
log "fetching the face models, ONNX Runtime and the MRZ language data (sha256-checked, not committed)"
python3 scripts/fetch-models.py --test-photos
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$ROOT/.cache/onnxruntime/libonnxruntime.so}"
export FACE_MANIFEST="${FACE_MANIFEST:-$ROOT/models/manifest.toml}"
log "building release binaries (the first build takes several minutes)"
build_release
BIN="$ROOT/target/release"

stop_all
for s in "${SERVICES[@]}"; do
  nohup "$BIN/$s" > "$IDV_DATA_DIR/log/$s.log" 2>&1 &
  echo $! > "$RUN/$s.pid"
done

declare -A PORT=([document-ocr]=8081 [face-match]=8082 [phone-proof]=8083)
for s in "${SERVICES[@]}"; do
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:${PORT[$s]}/readyz" >/dev/null && break
    if ! kill -0 "$(cat "$RUN/$s.pid")" 2>/dev/null; then
      echo "$s exited; its log:" >&2; tail -20 "$IDV_DATA_DIR/log/$s.log" >&2; exit 1
    fi
    sleep 0.2
  done
  curl -sf "http://127.0.0.1:${PORT[$s]}/readyz" >/dev/null || { echo "$s is not ready" >&2; exit 1; }
done

log "seeding demo artifacts"
demo="$IDV_DATA_DIR/demo"; mkdir -p "$demo"
printf '{"phone_number": "+4915112345678"}' > "$demo/phone-eu.json"
PHONE_EU=$("$BIN/idvctl" artifact put --region eu "$demo/phone-eu.json")
FACE_A=$("$BIN/idvctl" artifact put --region eu .cache/testdata/face_recognition/obama.jpg)
FACE_B=$("$BIN/idvctl" artifact put --region eu .cache/testdata/face_recognition/obama2.jpg)
FACE_C=$("$BIN/idvctl" artifact put --region eu .cache/testdata/face_recognition/biden.jpg)
"$BIN/docgen" --count 1 --format TD3 --distortion mild --out "$demo/docs" >/dev/null
DOC=$("$BIN/idvctl" artifact put --region eu "$demo/docs/doc-00001.jpg")
OCR_TOKEN=$("$BIN/idvctl" token mint --service document-ocr --tenant demo --region eu)
TOKEN=$("$BIN/idvctl" token mint --service face-match --tenant demo --region eu)
PHONE_TOKEN=$("$BIN/idvctl" token mint --service phone-proof --tenant demo --region eu)

cat <<TXT

The suite is running on its embedded defaults (data, keys, ledgers and logs under $IDV_DATA_DIR):
  document-ocr  http://127.0.0.1:8081   docs: http://127.0.0.1:8081/docs
  face-match    http://127.0.0.1:8082   docs: http://127.0.0.1:8082/docs
  phone-proof   http://127.0.0.1:8083   docs: http://127.0.0.1:8083/docs
They trust the LOCAL DEV ISSUER (see the warning in each log); never expose them like this.

Try:
  curl -s http://127.0.0.1:8082/readyz
  curl -s http://127.0.0.1:8082/.well-known/jwks.json
  curl -s http://127.0.0.1:8082/openapi.json | head -c 400; echo

A fresh dev token (face-match, scope face:verify, tenant demo, region eu; valid 10 minutes):
  export TOKEN=$TOKEN

More tokens and artifacts (same data dir):
  IDV_DATA_DIR=$IDV_DATA_DIR $BIN/idvctl token mint --service phone-proof --region eu
  IDV_DATA_DIR=$IDV_DATA_DIR $BIN/idvctl artifact put --region eu path/to/selfie.jpg
A demo phone artifact in eu: $PHONE_EU

Read a passport (document-ocr; a generated TD3 page, $demo/docs/doc-00001.jpg):
  export OCR_TOKEN=$OCR_TOKEN
  curl -s -H "Authorization: Bearer \$OCR_TOKEN" -H 'content-type: application/json' \\
       -d '{"artifact_id": "$DOC", "fields": ["surname", "birth_date", "expiry_date"]}' http://127.0.0.1:8081/v1/documents/ocr

Match faces (face-match; demo photos from the face_recognition package: two of one person, one of another):
  curl -s -H "Authorization: Bearer \$TOKEN" -H 'content-type: application/json' \\
       -d '{"reference_artifact_id": "$FACE_A", "probe_artifact_id": "$FACE_B"}' http://127.0.0.1:8082/v1/faces/match
  curl -s -H "Authorization: Bearer \$TOKEN" -H 'content-type: application/json' \\
       -d '{"reference_artifact_id": "$FACE_A", "probe_artifact_id": "$FACE_C"}' http://127.0.0.1:8082/v1/faces/match
  curl -s -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:8082/v1/models

Prove a phone number (phone-proof; the code lands in the local outbox, standing in for the phone):
  export PHONE_TOKEN=$PHONE_TOKEN
  curl -s -H "Authorization: Bearer \$PHONE_TOKEN" -H 'content-type: application/json' \\
       -d '{"phone_artifact_id": "$PHONE_EU", "channel": "sms"}' http://127.0.0.1:8083/v1/phone/challenges
  tail -n 1 $IDV_DATA_DIR/outbox/phone-proof.jsonl
  curl -s -H "Authorization: Bearer \$PHONE_TOKEN" -H 'content-type: application/json' \\
       -d '{"code": "<code>"}' http://127.0.0.1:8083/v1/phone/challenges/<challenge_id>/verify

Verify a verdict's audit token:   $BIN/idvctl audit verify-token <audit_token> --jwks http://127.0.0.1:8082/.well-known/jwks.json
Verify a ledger:                  $BIN/idvctl ledger verify $IDV_DATA_DIR/ledger/face-match.jsonl
Logs: $IDV_DATA_DIR/log/     Stop: scripts/dev-up.sh stop
TXT
