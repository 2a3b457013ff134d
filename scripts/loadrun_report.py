#!/usr/bin/env python3
"""Turns a scripts/loadrun.sh run into its report, printed and written into docs/benchmarks.md between its
markers (appended on the first run). Exit 1 when a ledger check fails.

    loadrun_report.py onboarding WORK RATE DURATION COMMAND
        per-route requests/s, p50/p95/p99 and error rate from k6's summary export, peak memory and cores used per
        service from the resource samples, and the ledger check (every verdict answered 200 has its entry; every
        chain intact).
    loadrun_report.py saturation WORK STEP...
        prints the saturation rate: the most verdicts answered per second in any 10 s step.
    loadrun_report.py saturate WORK SERVICE SATURATION COMMAND STEP...
        the rising steps, the 60 s at twice the saturation rate (answers, refusals and their latency, errors,
        memory), the first 10 s after it, and the ledger check.
"""

import collections
import json
import pathlib
import re
import sys
from datetime import datetime, timezone

ROUTES = [("ocr", "document-ocr", "POST /v1/documents/ocr"), ("face", "face-match", "POST /v1/faces/match"),
          ("challenge", "phone-proof", "POST /v1/phone/challenges"),
          ("verify", "phone-proof", "POST /v1/phone/challenges/{id}/verify")]
LEDGER_COUNTER = {"document-ocr": "verdicts_ocr", "face-match": "verdicts_face", "phone-proof": "verdicts_phone"}


def write_section(name, title, report):
    start, end = f"<!-- loadrun:{name}:start -->", f"<!-- loadrun:{name}:end -->"
    bench = pathlib.Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
    doc = bench.read_text()
    block = f"{start}\n{report}{end}"
    if start in doc and end in doc:
        doc = doc[:doc.index(start)] + block + doc[doc.index(end) + len(end):]
    else:
        doc += f"\n## {title}\n\nWritten by the runner; rerun to refresh.\n\n{block}\n"
    bench.write_text(doc)


def ledger(work, service):
    text = (work / f"ledger-{service}.txt").read_text().strip()
    entries = int(re.search(r"(\d+) entries", text).group(1)) if text.startswith("OK") else -1
    return text, entries


def samples(work):
    out = collections.defaultdict(list)
    for row in (work / "resources.txt").read_text().split("\n"):
        parts = row.split()
        if len(parts) == 4:
            out[parts[1]].append((int(parts[0]), int(parts[2]), int(parts[3])))
    return out


def step(work, name):
    m = json.loads((work / f"step-{name}.json").read_text())["metrics"]
    return lambda metric, key, default=0.0: m.get(metric, {}).get(key, default)


def saturation(work, steps):
    return max(round(step(work, f"rise-{r}")("verdicts", "count") / 10) for r in steps)


def saturate(work, service, sat, command, steps):
    lines = [f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, `{command}`: {service} alone under its own k6 "
             "script, the whole suite running beside it on 2 cores with k6.", "",
             "| offered/s | answered/s | refused 503 | errors | answers p50 / p99 ms | refusals p99 ms |",
             "|---:|---:|---:|---:|---:|---:|"]
    total = 0
    for name, offered, secs in [(f"rise-{r}", r, 10) for r in steps] + [("overload", 2 * sat, 60), ("after", (sat + 3) // 4, 10)]:
        g = step(work, name)
        total += int(g("verdicts", "count"))
        label = {"overload": f"**{offered}** (2× saturation, {secs} s)", "after": f"{offered} (right after)"}.get(name, str(offered))
        lines.append(f"| {label} | {g('verdicts', 'count') / secs:.1f} | {int(g('overloaded', 'count'))} "
                     f"| {100 * g('http_req_failed{expected:yes}', 'value'):.2f} % "
                     f"| {g('http_req_duration{status:200}', 'med'):.0f} / {g('http_req_duration{status:200}', 'p(99)'):.0f} "
                     f"| {g('http_req_duration{status:503}', 'p(99)'):.0f} |")
    t0, t1 = int((work / "overload.start").read_text()), int((work / "overload.end").read_text())
    s = [x for x in samples(work)[service] if t0 <= x[0] <= t1] or [(0, 0, 0)]
    text, entries = ledger(work, service)
    good = text.startswith("OK") and entries == total
    after = step(work, "after")
    lines += ["", f"- Saturation ≈ **{sat} verdicts/s**. At 2× for 60 s the excess is refused with `503 overloaded` "
              f"at once; memory {s[0][1] / 1024:.0f} MiB at the start of the overload, peak {max(r for _, r, _ in s) / 1024:.0f} MiB, "
              f"{s[-1][1] / 1024:.0f} MiB at its end; the process stayed up.",
              f"- Right after: {int(after('overloaded', 'count'))} refusals, answers p99 "
              f"{after('http_req_duration{status:200}', 'p(99)'):.0f} ms, checks {100 * after('checks', 'value'):.1f} %.",
              f"- Ledger: {entries} entries for {total} verdicts answered over the whole run: "
              f"{'one entry per verdict, chain intact' if good else 'MISMATCH: ' + text}."]
    report = "\n".join(lines) + "\n"
    print(report)
    write_section(f"saturate:{service}", f"{service} at and past saturation (`scripts/loadrun.sh saturate`)", report)
    return 0 if good else 1


def main():
    mode, work = sys.argv[1], pathlib.Path(sys.argv[2])
    if mode == "saturation":
        print(saturation(work, sys.argv[3:]))
        return 0
    if mode == "saturate":
        return saturate(work, sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6:])
    return onboarding(work, *sys.argv[3:6])


def onboarding(work, rate, duration, command):
    m = json.loads((work / "summary.json").read_text())["metrics"]
    get = lambda name, key, default=0.0: m.get(name, {}).get(key, default)
    seconds = float(duration.rstrip("s"))
    lines = [f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, `{command}`: onboarding flows (document OCR, "
             f"face match of selfie vs the document page, phone challenge + verify) at {rate}/s for {duration}, "
             "2 cores, all three services and k6 on the same machine, artifacts in SeaweedFS, phone state in Redis.",
             "",
             f"Flows completed: {int(get('iterations', 'count'))} ({get('iterations', 'rate'):.2f}/s); checks passed "
             f"{100 * get('checks', 'value'):.2f} %; HTTP errors {100 * get('http_req_failed', 'value'):.2f} %; "
             f"dropped flows {int(get('dropped_iterations', 'count'))}. Outright `pass`: documents "
             f"{100 * get('ocr_pass', 'value'):.1f} %, faces {100 * get('face_pass', 'value'):.1f} % (the rest `review`, "
             "or `fail` for the impostor share and misread documents).",
             "",
             "| route | requests/s | p50 ms | p95 ms | p99 ms | errors |",
             "|---|---:|---:|---:|---:|---:|"]
    for tag, _, route in ROUTES:
        d = m.get(f"http_req_duration{{name:{tag}}}", {})
        lines.append(f"| `{route}` | {get(f'http_reqs{{name:{tag}}}', 'count') / seconds:.2f} | {d.get('med', 0):.0f} "
                     f"| {d.get('p(95)', 0):.0f} | {d.get('p(99)', 0):.0f} "
                     f"| {100 * get(f'http_req_failed{{name:{tag}}}', 'value'):.2f} % |")
    sampled = samples(work)
    lines += ["", "| service | peak RSS | RSS at the end | cores used (mean) | ledger entries | verdicts answered | ledger |",
              "|---|---:|---:|---:|---:|---:|---|"]
    ok = True
    for service, counter in LEDGER_COUNTER.items():
        s = sampled.get(service) or [(0, 0, 0)]
        wall = max(1, s[-1][0] - s[0][0])
        cores = (s[-1][2] - s[0][2]) / wall
        text, entries = ledger(work, service)
        answered = int(get(counter, "count"))
        good = text.startswith("OK") and entries == answered
        ok &= good
        lines.append(f"| {service} | {max(r for _, r, _ in s) / 1024:.0f} MiB | {s[-1][1] / 1024:.0f} MiB | {cores:.2f} "
                     f"| {entries} | {answered} | {'intact, one entry per verdict' if good else 'MISMATCH: ' + text} |")
    report = "\n".join(lines) + "\n"
    print(report)
    write_section("onboarding", "The suite under load: onboarding flows (`scripts/loadrun.sh`)", report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
