# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Fleet reports of check results: report.json, report.md and a compact summary.

Plain Python used by the ``checks_report`` action plugin (roles/report). Input is a mapping
``{host: [check, ...]}`` and, optionally, ``{scope: [check, ...]}`` for wider scopes (``fleet``,
``cluster``); each check is a checks.check() dict. The output carries no timestamps, so writing the same
results again changes nothing.
"""

from __future__ import annotations

import json

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import checks as C

MARKS = {C.PASS: "✅ pass", C.WARN: "⚠️ warn", C.FAIL: "❌ fail"}
SHORT_MARKS = {C.PASS: "✅", C.WARN: "⚠️", C.FAIL: "❌"}


class ReportError(ValueError):
    """Input the report cannot be built from."""


def _validate(results, name):
    if not isinstance(results, dict):
        raise ReportError(f"{name} must be a mapping of host (or scope) to a list of checks, got {type(results).__name__}")
    out = {}
    for scope, items in results.items():
        if not isinstance(items, list):
            raise ReportError(f"{name}[{scope!r}] must be a list of checks, got {type(items).__name__}")
        clean = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or "id" not in item or item.get("status") not in C.STATUSES:
                raise ReportError(
                    f"{name}[{scope!r}][{i}] must be a check {{id, status: pass|warn|fail, expected, actual, hint}}, got {item!r}")
            clean.append(C.check(item["id"], item["status"], item.get("expected"), item.get("actual"), item.get("hint")))
        out[str(scope)] = clean
    return out


def _entries(results, facts):
    out = {}
    for scope, items in results.items():
        entry = {"passed": C.passed(items), "counts": C.counts(items)}
        scope_facts = facts.get(scope)
        if scope_facts:
            if not isinstance(scope_facts, dict):
                raise ReportError(f"facts[{scope!r}] must be a mapping, got {type(scope_facts).__name__}")
            entry["facts"] = {str(k): scope_facts[k] for k in scope_facts}
        entry["checks"] = items
        out[scope] = entry
    return out


def build(title, results, facts=None, scopes=None):
    """The report document.

    ``{title, passed, counts, hosts: {host: {passed, counts, facts, checks}}, scopes: {name: {passed, counts, checks}}}``:
    ``results`` are per-host checks (the host x check table), ``scopes`` wider ones (``fleet``,
    ``cluster``), each shown as its own table of checks.
    """
    results = _validate(results, "results")
    scopes = _validate(scopes or {}, "scopes")
    facts = facts or {}
    if not isinstance(facts, dict):
        raise ReportError(f"facts must be a mapping of host to a mapping, got {type(facts).__name__}")
    every = [c for items in list(results.values()) + list(scopes.values()) for c in items]
    return {
        "title": str(title),
        "passed": C.passed(every),
        "counts": C.counts(every),
        "hosts": _entries(results, facts),
        "scopes": _entries(scopes, {}),
    }


def to_json(doc):
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _cell(value):
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _columns(entries):
    """Check ids in first-seen order across hosts."""
    seen = {}
    for entry in entries.values():
        for c in entry["checks"]:
            seen.setdefault(c["id"], None)
    return list(seen)


def _counts_text(counts):
    return f"{counts[C.PASS]} pass, {counts[C.WARN]} warn, {counts[C.FAIL]} fail"


def _finding(c):
    text = f"- {MARKS[c['status']]} **{_cell(c['id'])}**: expected {_cell(c['expected'])}, found {_cell(c['actual'])}"
    if c["hint"]:
        text += f". Fix: {_cell(c['hint'])}"
    return text


def to_markdown(doc, managed=""):
    """A host x check table with marks, a facts table, one table per wider scope, then every
    warning and failure of the hosts with its hint."""
    lines = []
    if managed:
        lines += [f"<!-- {_cell(managed)} -->", ""]
    hosts, scopes = doc["hosts"], doc.get("scopes") or {}
    failing = [h for h, e in list(hosts.items()) + list(scopes.items()) if not e["passed"]]
    lines.append(f"# {_cell(doc['title'])}")
    lines.append("")
    verdict = "PASSED" if doc["passed"] else "FAILED"
    lines.append(f"**{verdict}**: {len(hosts)} host(s)"
                 + (f" and {len(scopes)} wider scope(s)" if scopes else "")
                 + f", {len(failing)} with failures; {_counts_text(doc['counts'])}.")
    lines.append("")
    columns = _columns(hosts)
    if hosts and columns:
        lines.append("| host | " + " | ".join(_cell(c) for c in columns) + " |")
        lines.append("|---|" + ":-:|" * len(columns))
        for host, entry in hosts.items():
            by_id = {c["id"]: c["status"] for c in entry["checks"]}
            cells = [SHORT_MARKS[by_id[c]] if c in by_id else "" for c in columns]
            lines.append(f"| {_cell(host)} | " + " | ".join(cells) + " |")
        lines.append("")
        lines.append("✅ pass · ⚠️ warn · ❌ fail · empty: not checked on that host")
        lines.append("")
    with_facts = [(h, e["facts"]) for h, e in hosts.items() if e.get("facts")]
    if with_facts:
        keys = []
        for _host, f in with_facts:
            for k in f:
                if k not in keys:
                    keys.append(k)
        lines.append("## Hosts")
        lines.append("")
        lines.append("| host | " + " | ".join(_cell(k) for k in keys) + " |")
        lines.append("|---|" + "---|" * len(keys))
        for host, f in with_facts:
            lines.append(f"| {_cell(host)} | " + " | ".join(_cell(f.get(k, "")) for k in keys) + " |")
        lines.append("")
    for scope, entry in scopes.items():
        lines.append(f"## {_cell(scope)}")
        lines.append("")
        lines.append("| check | status | expected | actual | hint |")
        lines.append("|---|:-:|---|---|---|")
        for c in entry["checks"]:
            lines.append(f"| {_cell(c['id'])} | {MARKS[c['status']]} | {_cell(c['expected'])} | {_cell(c['actual'])} | {_cell(c['hint'])} |")
        lines.append("")
    if hosts:
        lines.append("## Findings")
        lines.append("")
        findings = False
        for host, entry in hosts.items():
            items = [c for c in entry["checks"] if c["status"] != C.PASS]
            if not items:
                continue
            findings = True
            lines.append(f"### {_cell(host)}")
            lines.append("")
            lines.extend(_finding(c) for c in sorted(items, key=lambda x: 0 if x["status"] == C.FAIL else 1))
            lines.append("")
        if not findings:
            lines.append("Every host check passed.")
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def summary(doc, paths=()):
    """Compact lines for the end of a run: one per host and scope, naming failing and warning checks."""
    entries = dict(doc["hosts"])
    entries.update(doc.get("scopes") or {})
    verdict = "PASSED" if doc["passed"] else "FAILED"
    lines = [f"{doc['title']}: {verdict}: {len(doc['hosts'])} host(s), {_counts_text(doc['counts'])}"]
    width = max((len(s) for s in entries), default=0)
    for scope, entry in entries.items():
        fails = [c["id"] for c in entry["checks"] if c["status"] == C.FAIL]
        warns = [c["id"] for c in entry["checks"] if c["status"] == C.WARN]
        parts = []
        if fails:
            parts.append("FAIL " + ", ".join(fails))
        if warns:
            parts.append("warn " + ", ".join(warns))
        lines.append(f"{scope.ljust(width)}  " + ("; ".join(parts) if parts else "ok"))
    for p in paths:
        lines.append(f"report: {p}")
    return lines
