#!/usr/bin/env bash
# face-match accuracy on every labelled pair of registry-shipped photos (docs/face-pairs.csv): the Rust
# pipeline's scores and verdict-relevant statistics (`face-calibrate`), side by side with the independent
# Python onnxruntime + OpenCV pipeline's scores. Prints the Markdown used in docs/accuracy.md.
#   scripts/face-accuracy.sh [MANIFEST]   (default models/manifest.toml; the Python peer implements SCRFD only,
#                                          so with another detector family its column repeats the default's)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_rust; ensure_tools; ensure_ocr
python3 scripts/fetch-models.py --test-photos >&2
build_release -q
export ORT_DYLIB_PATH="$ROOT/.cache/onnxruntime/libonnxruntime.so"
manifest="${1:-models/manifest.toml}"
out="$ROOT/var/accuracy"; mkdir -p "$out"
"${CARGO_TARGET_DIR:-target}"/release/face-calibrate --pairs docs/face-pairs.csv --manifest "$manifest" --json > "$out/rust.json"
"${CARGO_TARGET_DIR:-target}"/release/face-calibrate --pairs docs/face-pairs.csv --manifest "$manifest" > "$out/rust.txt"
"$VENV/bin/python" tools/face-reference/face_reference.py --manifest models/manifest.toml \
  pipeline --pairs docs/face-pairs.csv --repeat 0 > "$out/python.json"
"$VENV/bin/python" - "$out" "$manifest" <<'PY'
import json, os, sys, tomllib
out = sys.argv[1]
print(f"manifest `{sys.argv[2]}`, detector `{tomllib.load(open(sys.argv[2], 'rb'))['detector']['name']}`\n")
rs = json.load(open(f"{out}/rust.json")); py = json.load(open(f"{out}/python.json"))["results"]
prof = tomllib.load(open(sys.argv[2], "rb"))["embedder"]["profiles"]
d = prof["default"]
print("| pair | a | b | Rust cosine | Python cosine | verdict (default profile) |")
print("|---|---|---|---|---|---|")
worst = 0.0
for r, p in zip(rs["pairs"], py):
    s, q = r["similarity"], p["similarity"]
    worst = max(worst, abs(s - q))
    v = "pass" if s >= d["pass"] else "fail" if s < d["fail"] else "review"
    print(f"| {'genuine' if r['pair']['same'] else 'impostor'} | {os.path.basename(r['pair']['a'])} | "
          f"{os.path.basename(r['pair']['b'])} | {s:.4f} | {q:.4f} | {v} |")
rep = rs["report"]
print()
for k in ("genuine", "impostor"):
    st = rep[k]
    print(f"- {k}: n={st['n']}, min {st['min']:.4f}, mean {st['mean']:.4f}, max {st['max']:.4f}")
print(f"- margin (lowest genuine − highest impostor): {rep['margin']:.4f}")
print(f"- largest |Rust − Python| cosine difference: {worst:.4f}")
for name, t in prof.items():
    g = [r for r in rs["pairs"] if r["pair"]["same"]]; i = [r for r in rs["pairs"] if not r["pair"]["same"]]
    fm = sum(r["similarity"] >= t["pass"] for r in i); fnm = sum(r["similarity"] < t["pass"] for r in g)
    print(f"- profile `{name}` (pass ≥ {t['pass']}, fail < {t['fail']}): false matches {fm}/{len(i)}, "
          f"genuine pairs not passed {fnm}/{len(g)}")
PY
