#!/usr/bin/env bash
# What tracing costs a request, in one run: face-match and phone-proof under k6 (scripts/loadtest.sh) with
#   before  the binaries in BEFORE_DIR (an earlier commit's `cargo build --release --workspace --bins`),
#   off     this tree's release binaries, no OTLP endpoint (the default),
#   export  the same binaries exporting every span (OTEL_EXPORTER_OTLP_ENDPOINT, sampler always on) to a local
#           OTLP/HTTP receiver that accepts and discards (standing in for a collector on another host),
# interleaved for ROUNDS rounds so that the machine's drift falls on every configuration alike.
#   scripts/otel-overhead.sh BEFORE_DIR [ROUNDS=2] [FACE_RATE=20] [PHONE_RATE=150] [DURATION=30s]
# Prints one line per run: service, configuration, round, k6's p50/p95/p99 (face-match: answered pairs;
# phone-proof: verify requests), the service's CPU time and what the receiver was sent.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

BEFORE="${1:?usage: scripts/otel-overhead.sh BEFORE_DIR [ROUNDS] [FACE_RATE] [PHONE_RATE] [DURATION]}"
ROUNDS="${2:-2}"; FACE_RATE="${3:-20}"; PHONE_RATE="${4:-150}"; DURATION="${5:-30s}"
build_release -q
OUT=$(mktemp -d)

# The receiver: answers every OTLP/HTTP export with 200 and an empty ExportTraceServiceResponse.
python3 - 14318 >>"$OUT/sink.log" 2>/dev/null <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        print(len(body), flush=True)
        self.send_response(200); self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
SINK=$!
trap 'kill $SINK 2>/dev/null || true; rm -rf "$OUT"' EXIT

run() {  # run SERVICE CONFIG ROUND
  local service=$1 config=$2 round=$3 rate env=()
  rate=$([ "$service" = face-match ] && echo "$FACE_RATE" || echo "$PHONE_RATE")
  case "$config" in
    before) env=(IDV_BIN_DIR="$BEFORE") ;;
    off) env=(IDV_BIN_DIR="$ROOT/target/release") ;;
    export) env=(IDV_BIN_DIR="$ROOT/target/release" OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:14318
                 OTEL_TRACES_SAMPLER=always_on) ;;
  esac
  : >"$OUT/sink.log"
  env "${env[@]}" scripts/loadtest.sh "$service" "$rate" "$DURATION" >"$OUT/run.log" 2>&1 || true
  python3 - "$service" "$config" "$round" "$rate" "$OUT/run.log" "var/loadtest/$service-summary.json" \
    "$OUT/sink.log" <<'PY'
import json, re, sys
service, config, rnd, rate, log, summary, sink = sys.argv[1:]
posts = [int(x) for x in open(sink).read().split()]
m = json.load(open(summary))["metrics"]
# face-match: answered pairs; phone-proof: the verify requests (what a flow waits on most).
d = m["http_req_duration{status:200}" if service == "face-match" else "http_req_duration{name:verify}"]
cpu = re.search(r"CPU ([0-9.]+) s", open(log).read())
print(f"{service:12} {config:7} round {rnd}  {rate}/s  p50 {d['med']:.2f}  p95 {d['p(95)']:.2f}  "
      f"p99 {d['p(99)']:.2f} ms  requests {int(m['http_reqs']['count'])}  cpu {cpu.group(1) if cpu else '?'} s  "
      f"exported {len(posts)} batches, {sum(posts) / 1024:.0f} KiB")
PY
}

for round in $(seq 1 "$ROUNDS"); do
  for service in face-match phone-proof; do
    for config in before off export; do
      run "$service" "$config" "$round"
    done
  done
done
