# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Parse and compare the version strings hosts and clusters report.

Plain Python with no Ansible imports, shared by host_requirements (kernel, containerd) and by
whoever needs to compare Kubernetes versions. Every parser raises ``VersionError`` with a message
naming the string it could not read; callers turn that into a failing check, never a traceback.

Versions are tuples of three ints, ``(major, minor, patch)``; a missing patch (``6.8``) is 0.
Pre-release and build parts (``-91-generic``, ``+k3s1``, ``~ds1``) are dropped: the collection
compares release numbers only (the Gitpod installer's ``>= 5.4.0-0`` means the same).
"""

from __future__ import annotations

import re

__all__ = [
    "VersionError",
    "parse_version",
    "parse_kernel",
    "parse_containerd",
    "compare",
    "at_least",
    "format_version",
    "k3s_upgrade_refusals",
]


class VersionError(ValueError):
    """A version string could not be read."""


# major.minor[.patch], optionally led by "v", followed by anything that is not another digit or dot.
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?![\d])")
# The same pattern anywhere in a line, as a whole whitespace-separated token.
_TOKEN = re.compile(r"(?:^|\s)v?(\d+)\.(\d+)(?:\.(\d+))?(?=$|[\s~+\-_])")


def _to_tuple(match):
    return (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


def _text(value, what):
    if value is None:
        raise VersionError(f"no {what} version given")
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        value = str(value)
    value = value.strip()
    if not value:
        raise VersionError(f"empty {what} version")
    return value


def parse_version(value, what="version"):
    """Parse a semver-ish string: ``1.21.0``, ``v1.27.4+k3s1``, ``5.4``, ``1.6.20~ds1``.

    Accepts a tuple/list of ints as already parsed. Raises VersionError otherwise.
    """
    if isinstance(value, (tuple, list)):
        if 1 <= len(value) <= 3 and all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in value):
            return tuple(list(value) + [0] * (3 - len(value)))
        raise VersionError(f"cannot read {what} version {value!r}")
    text = _text(value, what)
    match = _VERSION.match(text)
    if not match:
        raise VersionError(f"cannot read {what} version {text!r}: expected a version like 1.2.3")
    return _to_tuple(match)


def parse_kernel(value):
    """Parse a kernel release as ``uname -r`` prints it.

    ``5.4.0-1045-aws`` -> (5, 4, 0), ``6.1.0+`` -> (6, 1, 0), ``6.8.0-31-generic`` -> (6, 8, 0).
    """
    text = _text(value, "kernel")
    match = _VERSION.match(text.rstrip("+"))
    if not match:
        raise VersionError(f"cannot read kernel release {text!r}: expected a release like 5.15.0-91-generic")
    return _to_tuple(match)


def parse_containerd(value):
    """Parse ``containerd --version`` output, or a bare version.

    ``containerd containerd.io 1.6.28 ae07eda...`` -> (1, 6, 28);
    ``containerd github.com/containerd/containerd 1.7.12`` -> (1, 7, 12);
    ``containerd github.com/containerd/containerd v1.7.11-k3s2 64b8a811...`` -> (1, 7, 11);
    ``1.6.20~ds1`` -> (1, 6, 20).
    """
    text = _text(value, "containerd")
    first_line = text.splitlines()[0]
    match = _TOKEN.search(first_line)
    if not match:
        raise VersionError(
            f"cannot read containerd version from {first_line!r}: expected output like "
            "'containerd github.com/containerd/containerd 1.7.12 <commit>'")
    return _to_tuple(match)


def compare(a, b):
    """Return -1, 0 or 1 as version ``a`` is lower than, equal to or higher than ``b``.

    Both may be strings (parsed with parse_version) or tuples.
    """
    ta = parse_version(a)
    tb = parse_version(b)
    return (ta > tb) - (ta < tb)


def at_least(actual, minimum):
    """True when ``actual`` >= ``minimum`` (tuples or semver-ish strings)."""
    return compare(actual, minimum) >= 0


def format_version(version):
    """``(5, 4, 0)`` -> ``"5.4.0"``."""
    return ".".join(str(p) for p in parse_version(version))


_K3S_REVISION = re.compile(r"\+k3s(\d+)$")


def _k3s_release(value, what):
    """``v1.31.4+k3s2`` -> ``(1, 31, 4, 2)``: k3s numbers its rebuilds of one Kubernetes release."""
    text = _text(value, what)
    revision = _K3S_REVISION.search(text)
    return parse_version(text, what) + (int(revision.group(1)) if revision else 0,)


def k3s_upgrade_refusals(node_versions, target):
    """Messages for the nodes that cannot move to ``target`` (a k3s release) in one step.

    ``node_versions`` maps node name to the kubelet version it reports. k3s moves forward one minor
    release at a time (docs.k3s.io/upgrades/manual: "Ensure that your plan does not skip
    intermediate minor versions"), and going back is a restore of the datastore, not an upgrade
    (docs.k3s.io/upgrades/roll-back). A node already at ``target`` is fine (a re-run).
    """
    want = _k3s_release(target, "k3s_version")
    refusals = []
    for name, reported in sorted((node_versions or {}).items()):
        try:
            have = _k3s_release(reported, f"node {name}'s kubelet")
        except VersionError as exc:
            refusals.append(f"node {name}: {exc}")
            continue
        if have > want:
            refusals.append(f"node {name} runs {reported}, newer than k3s_version {target}: k3s does not downgrade "
                            "(a way back is a restore of the datastore, docs.k3s.io/upgrades/roll-back)")
        elif have[:2] == want[:2] or (have[0] == want[0] and want[1] == have[1] + 1):
            continue
        else:
            refusals.append(f"node {name} runs {reported}; k3s_version {target} skips a minor release: upgrade to "
                            f"v{have[0]}.{have[1] + 1}.x first (docs.k3s.io/upgrades/manual: one minor release at a time)")
    return refusals


def command_version(command, paths, exists, run, parse):
    """Find ``command`` in ``paths`` and ask it for ``--version``.

    ``exists(path)`` and ``run(argv) -> (rc, out, err)`` reach the host; ``parse`` reads the
    output. Returns {installed, path, output, version (str) or None, error}: an error names what
    failed (the command's exit, or the output that is not a version), and version is then None.
    """
    path = next((f"{d}/{command}" for d in paths if exists(f"{d}/{command}")), None)
    if not path:
        return {"installed": False, "path": "", "output": "", "version": None, "error": ""}
    try:
        rc, out, err = run([path, "--version"])
    except (OSError, NotImplementedError) as exc:
        return {"installed": True, "path": path, "output": "", "version": None, "error": str(exc)}
    out = (out or "").strip()
    if rc != 0:
        return {"installed": True, "path": path, "output": out, "version": None,
                "error": f"`{path} --version` exited {rc}: {(err or '').strip()}"}
    try:
        version, error = format_version(parse(out)), ""
    except VersionError as exc:
        version, error = None, str(exc)
    return {"installed": True, "path": path, "output": out, "version": version, "error": error}
