"""The same generated documents through the `tesseract` CLI and through PassportEye, one at a time, timed.

Run by scripts/ocr-compare.sh, which also runs document-ocr's reader on the same folder and prints all three
rows together. Prints Markdown table rows:

    | reader | documents | MRZ found | fields exact | documents all exact | p50 ms | p95 ms | mean ms |

Fields compared (as in tools/docgen's ocr-accuracy): document code, issuing state, surname, given names,
document number, nationality, birth date, sex, expiry date. The tesseract CLI gets no help beyond what a user
would give it: the MRZ language data, the MRZ alphabet, one block of text; its lines are cut at their
positions like any MRZ, without repairs. PassportEye reports its own parsed fields.

    python compare.py FOLDER --tessdata .cache/tessdata [--only cli|passporteye]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import date

WIDTHS = {"TD1": (3, 30), "TD2": (2, 36), "TD3": (2, 44)}
FIELDS = ["document_code", "issuing_state", "surname", "given_names", "document_number", "nationality",
          "birth_date", "sex", "expiry_date"]
WHITELIST = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"


def norm(value):
    """Fillers and spaces folded, so every reader is judged on characters, not on how it spells blanks."""
    return re.sub(r"[<\s]+", " ", str(value)).strip()


def yymmdd(iso):
    d = date.fromisoformat(iso)
    return d.strftime("%y%m%d")


def expected(identity):
    return {
        "document_code": norm(identity["document_code"]),
        "issuing_state": norm(identity["issuing_state"]),
        "surname": norm(identity["surname"]),
        "given_names": norm(identity["given_names"]),
        "document_number": norm(identity["document_number"]),
        "nationality": norm(identity["nationality"]),
        "birth_date": yymmdd(identity["birth_date"]),
        "sex": norm(identity["sex"]),
        "expiry_date": yymmdd(identity["expiry_date"]),
    }


def names(field):
    surname, _, given = field.partition("<<")
    return norm(surname), norm(given)


def positional(lines, fmt):
    """ICAO 9303 field positions; no check digits, no repairs."""
    if fmt == "TD1":
        l1, l2, l3 = lines
        surname, given = names(l3)
        return {"document_code": norm(l1[0:2]), "issuing_state": norm(l1[2:5]), "document_number": norm(l1[5:14]),
                "birth_date": l2[0:6], "sex": norm(l2[7]), "expiry_date": l2[8:14], "nationality": norm(l2[15:18]),
                "surname": surname, "given_names": given}
    l1, l2 = lines
    surname, given = names(l1[5:])
    return {"document_code": norm(l1[0:2]), "issuing_state": norm(l1[2:5]), "surname": surname, "given_names": given,
            "document_number": norm(l2[0:9]), "nationality": norm(l2[10:13]), "birth_date": l2[13:19],
            "sex": norm(l2[20]), "expiry_date": l2[21:27]}


def mrz_lines(text, fmt):
    """The lowest run of lines that have about the format's width, fitted to it (fillers added or cut)."""
    count, width = WIDTHS[fmt]
    lines = [re.sub(r"\s", "", l).upper() for l in text.splitlines()]
    lines = [l for l in lines if l]
    for start in range(len(lines) - count, -1, -1):
        group = lines[start:start + count]
        if all(abs(len(l) - width) <= 3 for l in group):
            return [(l + "<" * width)[:width] for l in group]
    return None


def run_cli(path, fmt, tessdata):
    out = subprocess.run(
        ["tesseract", path, "stdout", "--tessdata-dir", tessdata, "-l", "mrz", "--psm", "6",
         "-c", f"tessedit_char_whitelist={WHITELIST}"],
        capture_output=True, text=True, env={**os.environ, "OMP_THREAD_LIMIT": "1"})
    lines = mrz_lines(out.stdout, fmt)
    return positional(lines, fmt) if lines else None


def run_passporteye(path, fmt, _tessdata):
    from passporteye import read_mrz

    mrz = read_mrz(path)
    if mrz is None:
        return None
    d = mrz.to_dict()
    return {"document_code": norm(d.get("type", "")), "issuing_state": norm(d.get("country", "")),
            "surname": norm(d.get("surname", "")), "given_names": norm(d.get("names", "")),
            "document_number": norm(d.get("number", "")), "nationality": norm(d.get("nationality", "")),
            "birth_date": d.get("date_of_birth", ""), "sex": norm(d.get("sex", "")),
            "expiry_date": d.get("expiration_date", "")}


READERS = {
    "cli": ("`tesseract` 5 CLI, mrz data, whole page, psm 6", run_cli),
    "passporteye": ("PassportEye 2.2.2 `read_mrz`", run_passporteye),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--tessdata", default=".cache/tessdata")
    ap.add_argument("--only", choices=sorted(READERS))
    args = ap.parse_args()
    docs = json.load(open(os.path.join(args.folder, "manifest.json")))
    for key, (label, read) in READERS.items():
        if args.only and key != args.only:
            continue
        found = exact_fields = exact_docs = 0
        ms = []
        for doc in docs:
            path = os.path.join(args.folder, doc["file"])
            t = time.perf_counter()
            got = read(path, doc["format"], args.tessdata)
            ms.append((time.perf_counter() - t) * 1e3)
            want = expected(doc["identity"])
            if got is None:
                continue
            found += 1
            right = sum(got.get(f) == want[f] for f in FIELDS)
            exact_fields += right
            exact_docs += right == len(FIELDS)
        n = len(docs)
        ms.sort()
        pct = lambda p: ms[round(p / 100 * (n - 1))]
        print(f"| {label} | {n} | {100 * found / n:.1f} % | {100 * exact_fields / (n * len(FIELDS)):.1f} % "
              f"| {100 * exact_docs / n:.1f} % | {pct(50):.0f} | {pct(95):.0f} | {statistics.mean(ms):.0f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
