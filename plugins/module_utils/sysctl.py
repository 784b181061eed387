# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Compare kernel parameters with the values wanted, and apply them where /proc/sys allows it.

Plain Python so unit tests call it directly. Inside containers /proc/sys is mounted read-only;
a parameter that differs there cannot be applied, only reported ("unapplied"). The caller
decides whether that is a warning or an error (see ``policy_messages``).
"""

from __future__ import annotations

import errno
import os

PROC_SYS = "/proc/sys"

OK = "ok"            # live value already as wanted
APPLY = "apply"      # differs and the file is writable: write it
UNAPPLIED = "unapplied"  # differs and cannot be written here (read-only /proc/sys, EPERM)
MISSING = "missing"  # the kernel has no such parameter (module not loaded, wrong name)


def key_to_path(key, root=PROC_SYS):
    """``net.ipv4.ip_forward`` -> ``/proc/sys/net/ipv4/ip_forward``.

    As sysctl(8): when the key contains ``/`` that is the separator and dots are kept
    (``net/ipv4/conf/eth0.100/rp_filter``).
    """
    key = str(key).strip()
    parts = key.split("/") if "/" in key else key.split(".")
    if not key or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid sysctl key {key!r}")
    return os.path.join(root, *parts)


def normalize(value):
    """Kernel values compare after collapsing whitespace: ``5000\\t65000`` == ``5000 65000``."""
    if isinstance(value, bool):
        value = int(value)
    return " ".join(str(value).split())


def read_value(path):
    with open(path, "r", encoding="utf-8") as f:
        return normalize(f.read())


def is_writable(path):
    """False on a read-only mount (EROFS) or without permission; a write may still fail (EPERM)."""
    return os.access(path, os.W_OK)


def write_value(path, value):
    with open(path, "w", encoding="utf-8") as f:
        f.write(normalize(value) + "\n")


def plan(settings, root=PROC_SYS, exists=None, read=None, writable=None):
    """Return one entry per key (sorted): {key, path, expected, actual, action, reason}."""
    exists = exists or os.path.exists
    read = read or read_value
    writable = writable or is_writable
    entries = []
    for key in sorted(settings):
        path = key_to_path(key, root)
        expected = normalize(settings[key])
        entry = {"key": key, "path": path, "expected": expected, "actual": None, "action": OK, "reason": ""}
        if not exists(path):
            entry["action"] = MISSING
            entry["reason"] = f"{path} does not exist"
        else:
            entry["actual"] = read(path)
            if entry["actual"] != expected:
                if writable(path):
                    entry["action"] = APPLY
                else:
                    entry["action"] = UNAPPLIED
                    entry["reason"] = f"{path} is not writable (read-only /proc/sys, e.g. in a container)"
        entries.append(entry)
    return entries


def apply(entries, write=None, read=None):
    """Write every APPLY entry; an entry whose write fails or does not stick becomes UNAPPLIED.

    Returns the entries (updated in place) for chaining.
    """
    write = write or write_value
    read = read or read_value
    for entry in entries:
        if entry["action"] != APPLY:
            continue
        try:
            write(entry["path"], entry["expected"])
        except OSError as e:
            entry["action"] = UNAPPLIED
            entry["reason"] = f"writing {entry['path']} failed: {os.strerror(e.errno) if e.errno else e}"
            if e.errno in (errno.EROFS,):
                entry["reason"] += " (read-only /proc/sys, e.g. in a container)"
            continue
        after = read(entry["path"])
        if after != entry["expected"]:
            entry["action"] = UNAPPLIED
            entry["reason"] = f"the kernel kept {after!r} after writing {entry['expected']!r}"
            entry["actual"] = after
    return entries


def by_action(entries, action):
    return [e for e in entries if e["action"] == action]


def describe(entry):
    return f"{entry['key']} (wanted {entry['expected']!r}, live {entry['actual']!r}: {entry['reason']})"


def policy_messages(entries, required=(), on_unapplied="warn", check_mode=False, file_hint=""):
    """Decide what the caller must report: returns (errors, warnings), lists of strings.

    - MISSING keys are errors (the kernel lacks the parameter: a module is not loaded or the key
      is wrong), except in check mode, where modules that would be loaded first are not loaded.
    - UNAPPLIED keys listed in ``required`` are always errors: Kubernetes networking needs them.
    - Other UNAPPLIED keys are warnings, or errors when ``on_unapplied == "fail"``.
    """
    if on_unapplied not in ("warn", "fail"):
        raise ValueError(f"on_unapplied must be 'warn' or 'fail', got {on_unapplied!r}")
    required = set(required or ())
    errors, warnings = [], []

    missing = by_action(entries, MISSING)
    if missing:
        msg = "kernel parameters missing from /proc/sys: " + "; ".join(describe(e) for e in missing)
        if check_mode:
            warnings.append(msg + " (check mode: kernel modules that would provide them were not loaded)")
        else:
            errors.append(msg + ". Load the kernel module that provides them (e.g. br_netfilter for net.bridge.*) or fix the key")

    unapplied = by_action(entries, UNAPPLIED)
    must = [e for e in unapplied if e["key"] in required]
    may = [e for e in unapplied if e["key"] not in required]
    if must:
        errors.append(
            "required kernel parameters do not hold and cannot be set here: " + "; ".join(describe(e) for e in must)
            + ". Set them on the container host or in the container runtime (e.g. docker run --sysctl)")
    if may:
        msg = "kernel parameters not applied to the running kernel: " + "; ".join(describe(e) for e in may)
        if file_hint:
            msg += f". They are written to {file_hint} and take effect when the host boots with a writable /proc/sys"
        if on_unapplied == "fail":
            errors.append(msg)
        else:
            warnings.append(msg)
    return errors, warnings


def converge(settings, root=PROC_SYS, check_mode=False, required=(), on_unapplied="warn", file_hint=""):
    """Plan, apply (unless ``check_mode``) and judge: returns (result, diff, errors, warnings).

    result: applied (key -> before, after), unapplied (key -> expected, actual, reason), missing
    keys and the values the kernel now has; diff: before/after text of the applied keys, or None.
    Raises ValueError on a bad key; host_state reports it.
    """
    entries = plan(settings, root=root)
    before = {e["key"]: e["actual"] for e in entries}
    if not check_mode:
        apply(entries)
    applied = {e["key"]: {"before": before[e["key"]], "after": e["expected"]}
               for e in entries if e["action"] == APPLY}
    result = {
        "applied": applied,
        "unapplied": {e["key"]: {"expected": e["expected"], "actual": e["actual"], "reason": e["reason"]}
                      for e in by_action(entries, UNAPPLIED)},
        "missing": [e["key"] for e in by_action(entries, MISSING)],
        "values": {e["key"]: (e["expected"] if e["action"] == APPLY else e["actual"]) for e in entries},
    }
    diff = None
    if applied:
        diff = {"before": "".join(f"{k} = {v['before']}\n" for k, v in applied.items()),
                "after": "".join(f"{k} = {v['after']}\n" for k, v in applied.items())}
    errors, warnings = policy_messages(entries, required=required, on_unapplied=on_unapplied,
                                       check_mode=check_mode, file_hint=file_hint)
    return result, diff, errors, warnings
