#!/usr/bin/env bash
# document-ocr's reader, the `tesseract` CLI and PassportEye on the same generated documents, side by side in one
# run: each reads every document in turn on one thread; fields exact and per-document latency, as Markdown rows.
#   scripts/ocr-compare.sh [COUNT (60)] [DISTORTION (mild)]
# PassportEye and its dependencies go into their own venv (.cache/compare-venv), every file hash-pinned.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
COUNT="${1:-60}"; LEVEL="${2:-mild}"

ensure_rust; ensure_ocr
python3 scripts/fetch-models.py
CVENV="$CACHE/compare-venv"
stamp="$CVENV/.requirements.sha256"
want=$(cat tools/ocr-compare/*requirements.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing PassportEye into $CVENV (hash-checked)"
  python3 -m venv "$CVENV"
  "$CVENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r tools/ocr-compare/build-requirements.txt
  "$CVENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-build-isolation \
    -r tools/ocr-compare/requirements.txt
  echo "$want" > "$stamp"
fi
log "building docgen and ocr-accuracy (release)"
build_release -q
DIR="$ROOT/var/ocr-compare"; rm -rf "$DIR"
target/release/docgen --count "$COUNT" --distortion "$LEVEL" --seed 7000 --out "$DIR" >/dev/null
log "$COUNT documents ($LEVEL distortions), each reader one document at a time"
echo "| reader | documents | MRZ found | fields exact | documents all exact | p50 ms | p95 ms | mean ms |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
OMP_THREAD_LIMIT=1 target/release/ocr-accuracy --dir "$DIR" --tessdata .cache/tessdata
OMP_THREAD_LIMIT=1 "$CVENV/bin/python" tools/ocr-compare/compare.py "$DIR" --tessdata .cache/tessdata
