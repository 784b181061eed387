# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Check results shared by host_requirements (preflight) and cluster_requirements (validation).

A check is a plain dict ``{id, status, expected, actual, hint}`` with status ``pass``, ``warn``
or ``fail``, so modules return it as JSON and reports read it without this code.
"""

from __future__ import annotations

PASS = "pass"
WARN = "warn"
FAIL = "fail"
STATUSES = (PASS, WARN, FAIL)


def check(check_id, status, expected, actual, hint=""):
    """Build one check result; ``expected`` and ``actual`` are rendered as strings."""
    if status not in STATUSES:
        raise ValueError(f"check {check_id}: status must be one of {', '.join(STATUSES)}, got {status!r}")
    return {
        "id": str(check_id),
        "status": status,
        "expected": "" if expected is None else str(expected),
        "actual": "" if actual is None else str(actual),
        "hint": "" if status == PASS else (hint or ""),
    }


def passed(checks):
    """True when no check failed (warnings do not fail a run)."""
    return all(c["status"] != FAIL for c in checks)


def counts(checks):
    """Return {"pass": n, "warn": n, "fail": n}."""
    out = {s: 0 for s in STATUSES}
    for c in checks:
        out[c["status"]] += 1
    return out


def failure_message(checks, subject="host"):
    """One message listing every failing check with what was expected, found, and the hint."""
    failing = [c for c in checks if c["status"] == FAIL]
    if not failing:
        return ""
    lines = [f"{len(failing)} {subject} requirement(s) not met:"]
    for c in failing:
        line = f"- {c['id']}: expected {c['expected']}, found {c['actual']}"
        if c["hint"]:
            line += f". Fix: {c['hint']}"
        lines.append(line)
    return "\n".join(lines)
