# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Decide which kernel modules must be loaded: only those neither present nor built in.

A module may be loaded (``/sys/module/NAME``), built in without a ``/sys/module`` entry (found
through the feature it provides: ``/proc/filesystems``, ``/proc/sys/net/bridge``, ...), listed in
``modules.builtin``, loadable from ``/lib/modules/$(uname -r)`` (listed in ``modules.dep``), or
unavailable. Kernels without loadable modules (no ``/proc/modules``, no ``/lib/modules``) build
everything in, and calling ``modprobe`` there fails: the decision avoids that.
"""

from __future__ import annotations

import os
import re

LOADED = "loaded"            # present in the running kernel (module or built in)
BUILTIN = "builtin"          # listed in modules.builtin: nothing to load
LOADABLE = "loadable"        # a .ko under /lib/modules/RELEASE: modprobe it
UNAVAILABLE = "unavailable"  # none of the above

# Features that show a module is in the running kernel when /sys/module/NAME is absent
# (built-in code without parameters has no /sys/module entry).
FEATURES = {
    "overlay": [("filesystem", "overlay")],
    "fuse": [("filesystem", "fuse")],
    "br_netfilter": [("path", "/proc/sys/net/bridge")],
    "ip_tables": [("path", "/proc/net/ip_tables_names")],
    "ip6_tables": [("path", "/proc/net/ip6_tables_names")],
    "nf_conntrack": [("path", "/proc/sys/net/netfilter/nf_conntrack_max"), ("path", "/proc/net/nf_conntrack")],
    "ip_set": [("path", "/proc/net/ip_set")],
    "ipip": [("path", "/sys/class/net/tunl0")],
}

_KO = re.compile(r"\.ko(\.(gz|xz|zst))?$")


def canonical(name):
    """Module names treat '-' and '_' alike; /sys/module uses '_'."""
    return str(name).strip().replace("-", "_")


def names_from_module_list(text):
    """Module names from modules.builtin or modules.dep text (``kernel/net/x/y.ko[: deps]``)."""
    names = set()
    for line in (text or "").splitlines():
        path = line.split(":", 1)[0].strip()
        if not path:
            continue
        base = os.path.basename(path)
        if _KO.search(base):
            names.add(canonical(_KO.sub("", base)))
    return names


def filesystems_from_proc(text):
    """Filesystem names from /proc/filesystems (``nodev\\toverlay`` or ``\\text4``)."""
    out = set()
    for line in (text or "").splitlines():
        fields = line.split()
        if fields:
            out.add(fields[-1])
    return out


def status(name, sys_modules, filesystems, exists, builtin, loadable):
    """Return (state, evidence) for one module.

    sys_modules: names under /sys/module; filesystems: names from /proc/filesystems;
    exists: callable(path) -> bool; builtin/loadable: names from modules.builtin/modules.dep,
    or None when that file is absent.
    """
    name = canonical(name)
    if name in sys_modules:
        return LOADED, f"/sys/module/{name}"
    for kind, value in FEATURES.get(name, []):
        if kind == "filesystem" and value in filesystems:
            return LOADED, f"{value} in /proc/filesystems"
        if kind == "path" and exists(value):
            return LOADED, value
    if builtin is not None and name in builtin:
        return BUILTIN, "modules.builtin"
    if loadable is not None and name in loadable:
        return LOADABLE, "modules.dep"
    if builtin is None and loadable is None:
        return UNAVAILABLE, "no /lib/modules for the running kernel (modules cannot be loaded)"
    return UNAVAILABLE, "not loaded, not built in, not in modules.dep"


def decide(names, sys_modules, filesystems, exists, builtin, loadable):
    """Return {"modules": {name: {state, evidence}}, "to_load": [...], "unavailable": [...]}."""
    modules, to_load, unavailable = {}, [], []
    for raw in names:
        name = canonical(raw)
        if name in modules:
            continue
        state, evidence = status(name, sys_modules, filesystems, exists, builtin, loadable)
        modules[name] = {"state": state, "evidence": evidence}
        if state == LOADABLE:
            to_load.append(name)
        elif state == UNAVAILABLE:
            unavailable.append(name)
    return {"modules": modules, "to_load": to_load, "unavailable": unavailable}


def _read(path):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def gather(release=None, root="/"):
    """Read the live sources: returns the keyword arguments of ``decide`` except ``names``."""
    release = release or os.uname().release

    def p(path):
        return os.path.join(root, path.lstrip("/"))

    try:
        sys_modules = {canonical(n) for n in os.listdir(p("/sys/module"))}
    except OSError:
        sys_modules = set()
    filesystems = filesystems_from_proc(_read(p("/proc/filesystems")))
    moddir = p(f"/lib/modules/{release}")
    builtin_text = _read(os.path.join(moddir, "modules.builtin"))
    dep_text = _read(os.path.join(moddir, "modules.dep"))
    return {
        "sys_modules": sys_modules,
        "filesystems": filesystems,
        "exists": lambda path: os.path.exists(p(path)),
        "builtin": None if builtin_text is None else names_from_module_list(builtin_text),
        "loadable": None if dep_text is None else names_from_module_list(dep_text),
    }
