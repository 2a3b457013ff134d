#!/usr/bin/env bash
# Checks Cargo.lock against the RustSec advisory database: `cargo deny check advisories`, with deny.toml's
# exceptions (each with its reason).
#
#   scripts/advisories.sh              fetch the database from GitHub, then check
#   scripts/advisories.sh DATABASE     check against DATABASE, a clone (or git URL) of rustsec/advisory-db
#
# Not part of the test command: the database lives only on GitHub, which the CI machines cannot reach (they
# reach crates.io, PyPI, Debian and npm, and none of these carries it). The last result is in
# docs/dependencies.md.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_cargo_tools
DBS="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"   # cargo-deny's default db-path
if [ $# -eq 0 ]; then
  log "fetching the advisory database"
  cargo deny fetch db
else
  # cargo-deny (0.20) keeps the default database's clone in advisory-db-<hash of its URL>: a clone of DATABASE
  # goes there (in place of the one fetched from GitHub, if any), and the check below runs offline.
  dest="$DBS/advisory-db-3157b0e258782691"
  log "advisory database from $1"
  rm -rf "$dest"; mkdir -p "$DBS"
  git clone -q "$1" "$dest"
fi
git -C "$DBS"/advisory-db-3157b0e258782691 log -1 --format='advisory database at %h, committed %cs'
log "cargo deny check advisories"
cargo deny --offline check advisories
