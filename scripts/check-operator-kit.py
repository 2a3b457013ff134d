#!/usr/bin/env python3
"""Checks the operator kit in deploy/observability against the code and, given them, live /metrics outputs.

  scripts/check-operator-kit.py [--promtool PATH] [--metrics FILE_OR_URL ...]

- Prometheus: `promtool check config` (which checks the rule file too) and `promtool test rules` (the alerts'
  unit tests in alerts.test.yml).
- Every metric an alert rule or a dashboard panel names is one the services define (counter!/gauge!/histogram!
  in the Rust sources; a histogram's _bucket/_count/_sum series), or `up`.
- The dashboard is valid JSON: unique panel ids, a query per panel, every query on the dashboard's data source.
- With --metrics (files or URLs of /metrics outputs taken after a flow through all three services): every metric
  each dashboard panel queries is present in them, so no panel is empty on a working stack.

Standard library only.
"""

import argparse
import json
import pathlib
import re
import subprocess
import sys
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
KIT = ROOT / "deploy" / "observability"
PROM = KIT / "prometheus"
DASHBOARDS = sorted((KIT / "grafana").glob("*.json"))

# PromQL words that look like identifiers but are not metric names.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
            "offset", "inf", "nan"}


def fail(msg: str) -> None:
    print(f"check-operator-kit: {msg}", file=sys.stderr)
    sys.exit(1)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)             # string literals
    e = re.sub(r"\{[^}]*\}", "", e)                          # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                         # range selectors
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)  # label lists
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word = m.group(0)
        rest = e[m.end():].lstrip()
        if word.lower() in KEYWORDS or rest.startswith("("):
            continue
        if re.fullmatch(r"\d+(e\d+)?", word):
            continue
        names.add(word)
    return names


def defined_metrics() -> set[str]:
    """Metric series the Rust sources define."""
    names = set()
    for path in list(ROOT.glob("shared/src/**/*.rs")) + list(ROOT.glob("services/*/src/**/*.rs")):
        for kind, name in re.findall(r'\b(counter|gauge|histogram)!\(\s*"([a-z_:][a-z0-9_:]*)"', path.read_text()):
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
            else:
                names.add(name)
    if not names:
        fail("found no metric definitions in the sources")
    return names


def rule_exprs() -> list[tuple[str, str]]:
    """(alert name, expression) of every rule in alerts.yml, read without a YAML library: the file keeps each
    `expr` either on its line or as a `|` block."""
    out, lines = [], (PROM / "alerts.yml").read_text().splitlines()
    name = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"\s*- (?:alert|record): (\S+)", line)
        if m:
            name = m.group(1)
        m = re.match(r"(\s*)expr: (.*)", line)
        if m:
            if m.group(2).strip() == "|":
                indent, block = None, []
                i += 1
                while i < len(lines):
                    cur = lines[i]
                    width = len(cur) - len(cur.lstrip())
                    if cur.strip() and indent is None:
                        indent = width
                    if cur.strip() and width < (indent or 0):
                        break
                    block.append(cur.strip())
                    i += 1
                out.append((name, " ".join(block)))
                continue
            out.append((name, m.group(2)))
        i += 1
    if not out:
        fail("alerts.yml has no rules")
    return out


def dashboard_queries() -> list[tuple[str, str]]:
    out = []
    for path in DASHBOARDS:
        try:
            dash = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            fail(f"{path.name} is not JSON: {e}")
        ids = [p.get("id") for p in dash.get("panels", [])]
        if not ids or len(ids) != len(set(ids)):
            fail(f"{path.name}: panels missing or with repeated ids")
        variables = {v["name"] for v in dash.get("templating", {}).get("list", [])}
        for panel in dash["panels"]:
            targets = panel.get("targets") or fail(f"{path.name}: panel {panel['title']!r} has no query")
            for t in targets:
                uid = (t.get("datasource") or panel.get("datasource") or {}).get("uid", "")
                if uid.startswith("${") and uid[2:-1] not in variables:
                    fail(f"{path.name}: panel {panel['title']!r} uses an undefined data source variable {uid}")
                out.append((f"{path.name}: {panel['title']}", t["expr"]))
    if not out:
        fail("no dashboard queries found")
    return out


def exposed(sources: list[str]) -> set[str]:
    """Series names in /metrics outputs (files or URLs)."""
    names = set()
    for src in sources:
        if src.startswith("http://") or src.startswith("https://"):
            with urllib.request.urlopen(src, timeout=10) as r:
                text = r.read().decode()
        else:
            text = pathlib.Path(src).read_text()
        for line in text.splitlines():
            if line and not line.startswith("#"):
                names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("--metrics", nargs="*", default=[])
    args = ap.parse_args()

    for cmd in ([args.promtool, "check", "config", "prometheus.yml"],
                [args.promtool, "test", "rules", "alerts.test.yml"]):
        run = subprocess.run(cmd, cwd=PROM, capture_output=True, text=True)
        if run.returncode != 0:
            fail(f"{' '.join(cmd[1:])} failed:\n{run.stdout}{run.stderr}")

    defined = defined_metrics() | {"up"}
    rules, queries = rule_exprs(), dashboard_queries()
    for where, expr in [(f"alert {n}", e) for n, e in rules] + queries:
        unknown = metric_names(expr) - defined
        if unknown:
            fail(f"{where} names metrics the services do not define: {sorted(unknown)}")

    if args.metrics:
        live = exposed(args.metrics)
        for where, expr in queries:
            missing = metric_names(expr) - live
            if missing:
                fail(f"{where}: {sorted(missing)} absent from the services' /metrics after a flow")
    print(f"check-operator-kit: {len(rules)} alert rules (unit-tested), {len(queries)} dashboard queries"
          + (f", all present in {len(args.metrics)} /metrics outputs" if args.metrics else "") + ": ok")


if __name__ == "__main__":
    main()
