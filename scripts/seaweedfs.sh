#!/usr/bin/env bash
# Starts (or stops) a local SeaweedFS with an S3 gateway on 127.0.0.1 and one bucket per test region.
#   scripts/seaweedfs.sh start   # idempotent; prints the env the tests read
#   scripts/seaweedfs.sh stop
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

S3_PORT="${IDV_TEST_S3_PORT:-18333}"
DIR="$CACHE/seaweedfs"
PIDFILE="$DIR/weed.pid"
KEY=idvtestkey
SECRET=idvtestsecret

s3() {
  # curl signs a body's hash only if told where to put it; SeaweedFS then wants the header.
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 --aws-sigv4 "aws:amz:us-east-1:s3" --user "$KEY:$SECRET" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}

bucket_ok() { s3 "http://127.0.0.1:$S3_PORT/$1" -X HEAD | grep -q '^200$'; }

# A bucket that answers HEAD may still refuse writes while SeaweedFS grows its first volumes; the tests write at
# once and in parallel, so ready means an object round-trips in every bucket.
writable() {
  local b url
  for b in idv-eu idv-us; do
    url="http://127.0.0.1:$S3_PORT/$b/readiness-probe"
    s3 "$url" -X PUT --data-binary "probe" | grep -q '^200$' || return 1
    s3 "$url" | grep -q '^200$' || return 1
    s3 "$url" -X DELETE | grep -q '^20[04]$' || return 1
  done
}

start() {
  ensure_tools
  if writable; then log "SeaweedFS already answering on :$S3_PORT"; return; fi
  mkdir -p "$DIR/data"
  cat > "$DIR/s3.json" <<JSON
{"identities":[{"name":"idv-test","credentials":[{"accessKey":"$KEY","secretKey":"$SECRET"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
JSON
  log "starting SeaweedFS (S3 on 127.0.0.1:$S3_PORT, buckets idv-eu and idv-us)"
  # Small volumes and a fixed volume count: left to itself SeaweedFS sizes the count from free disk space, and a
  # CI disk filled by build output leaves too few volumes for a bucket's first writes.
  nohup "$VENV/bin/weed" mini -dir="$DIR/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$S3_PORT" \
    -s3.config="$DIR/s3.json" -bucket=idv-eu,idv-us -admin.ui=false \
    -master.volumeSizeLimitMB=64 -volume.max=64 > "$DIR/weed.log" 2>&1 &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 240); do
    if bucket_ok idv-eu && bucket_ok idv-us && writable; then log "SeaweedFS ready"; return; fi
    sleep 0.5
  done
  echo "SeaweedFS did not become ready; last log lines:" >&2; tail -20 "$DIR/weed.log" >&2; return 1
}

# Waits for the process to exit: a start right after a stop must not mistake the dying server for a live one.
stop() {
  [ -f "$PIDFILE" ] || return 0
  local pid; pid=$(cat "$PIDFILE")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
}

env_lines() {
  echo "export IDV_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT IDV_TEST_S3_ACCESS_KEY=$KEY IDV_TEST_S3_SECRET_KEY=$SECRET"
}

case "${1:-start}" in
  start) start; env_lines ;;
  stop) stop ;;
  env) env_lines ;;
  status) writable ;;
  *) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
