# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Converge a host's packages, kernel modules and parameters, swap, files and services in one pass.

The host layer (host_prep and containerd roles) used to be about a hundred tasks, each a round
trip to every host. This is the same work in one module call per host (playbooks/prepare.yml
gives both roles' arguments to one call, ``calls``, merged by ``merge_specs``): it reads the host once,
changes only what differs, and reports what it changed (or would change, in check mode) with a
diff. Section order matters and is fixed:

  dpkg journal -> packages -> kernel modules -> kernel parameters -> swap -> directories
  -> files -> absent paths and pruned directories -> services

so that a service starts after its package is installed and restarts after its configuration
is written. Every side effect goes through ``System``; tests give it a temporary root and a fake
command runner.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import grp
import json
import os
import pwd
import re
import shutil
import stat
import tempfile
import time

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import kernel_modules, sysctl, versions

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
# How long to wait for another package manager (unattended-upgrades, or the apt of an earlier run
# whose controller was killed and which still runs on the host) to release dpkg's lock.
LOCK_TIMEOUT = 600
DPKG_FRONTEND_LOCK = "/var/lib/dpkg/lock-frontend"
APT_LOCK_WAIT = ["-o", f"DPkg::Lock::Timeout={LOCK_TIMEOUT}"]
APT_INSTALL = ["apt-get", "install", "-y", "-q", *APT_LOCK_WAIT,
               "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
# As ansible.builtin.replace in the former swap tasks: an uncommented fstab line of type swap.
# Leading blanks only: \s would match the newline of an empty line before the entry.
FSTAB_SWAP = re.compile(r"^([ \t]*[^#\s]\S*\s+\S+\s+swap\s.*)$", re.MULTILINE)
# The archive's answers about optional packages, with the package lists they were given for.
ARCHIVE_ANSWERS = "/var/cache/selfhosted-gitpod-k3s/archive-answers.json"
FSTAB_SWAP_NOTE = "  # swap off for Kubernetes (selfhosted.gitpod_k3s)"


class HostStateError(Exception):
    """A state the module cannot reach; the message says what and how to fix it."""


class System:
    """The host, seen through paths under ``root``, a command runner and the AnsibleModule.

    ``run(argv, env=None)`` returns (rc, stdout, stderr). The module passes AnsibleModule.run_command
    and itself; tests pass a fake runner, a temporary root and an AnsibleModule of their own. Files
    are moved into place and given their mode and owner by AnsibleModule's own helpers
    (``atomic_move``, ``set_fs_attributes_if_different``), as ansible.builtin.copy does.
    """

    def __init__(self, run, module, root="/"):
        self._run = run
        self.module = module
        self.root = root

    def path(self, path):
        return os.path.join(self.root, path.lstrip("/")) if self.root != "/" else path

    def run(self, argv, env=None):
        return self._run(list(argv), env)

    def read_bytes(self, path):
        try:
            with open(self.path(path), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def read_text(self, path):
        data = self.read_bytes(path)
        return None if data is None else data.decode("utf-8", "replace")

    def lstat(self, path):
        try:
            return os.lstat(self.path(path))
        except FileNotFoundError:
            return None

    def listdir(self, path):
        try:
            return sorted(os.listdir(self.path(path)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def glob(self, pattern):
        return glob.glob(self.path(pattern))

    def mtime(self, path):
        st = self.lstat(path)
        return None if st is None else st.st_mtime

    def touch(self, path):
        os.utime(self.path(path))

    def write_file(self, path, data, mode, uid, gid):
        """A temporary file in the same directory, moved over ``path`` by AnsibleModule.atomic_move."""
        target = self.path(path)
        fd, tmp = tempfile.mkstemp(prefix=".gitpod-k3s.", dir=os.path.dirname(target))
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            self.module.atomic_move(tmp, target)
        except Exception as exc:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise HostStateError(f"cannot write {path}: {exc}") from None
        self.set_attributes(path, mode, uid, gid)

    def makedirs(self, path, mode, uid, gid):
        os.makedirs(self.path(path), mode=mode)
        # os.makedirs applies the umask: the mode asked for, and the owner.
        self.set_attributes(path, mode, uid, gid)

    def set_attributes(self, path, mode, uid, gid):
        """Mode, owner and group (None: left as they are), by AnsibleModule.set_fs_attributes_if_different."""
        self.module.set_fs_attributes_if_different(
            {"path": self.path(path), "mode": mode, "owner": uid, "group": gid,
             "secontext": [None] * 4, "attributes": None}, False)

    def remove(self, path):
        target = self.path(path)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        else:
            os.unlink(target)


class Report:
    """What a pass changed: per-section results, diffs, warnings and the changed flag."""

    def __init__(self, check_mode=False):
        self.check_mode = check_mode
        self.changed = False
        self.changes = []
        self.diffs = []
        self.warnings = []
        self.sections = {}
        # Directories a check-mode pass would create: files may go into them.
        self.planned_dirs = set()

    def change(self, what, diff=None):
        self.changed = True
        self.changes.append(what)
        if diff is not None:
            self.diffs.append(diff)

    def result(self):
        out = dict(self.sections)
        out.update(changed=self.changed, changes=self.changes)
        return out


def _mode(value, what):
    if value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value), 8)
    except ValueError:
        raise HostStateError(f"{what}: mode {value!r} is not an octal mode such as '0644'") from None


def _ids(owner, group, what):
    try:
        uid = pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise HostStateError(f"{what}: owner {owner!r} is not a user on this host") from None
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise HostStateError(f"{what}: group {group!r} is not a group on this host") from None
    return uid, gid


def _run_or_fail(system, argv, env=None, fix=""):
    rc, out, err = system.run(argv, env)
    if rc != 0:
        text = (err or out or "").strip().splitlines()[-5:]
        raise HostStateError(f"`{' '.join(argv)}` exited {rc}: {' / '.join(text)}{('. ' + fix) if fix else ''}")
    return out


# ---------------------------------------------------------------------------------------------
# dpkg and packages


def wait_for_dpkg_lock(system, timeout=LOCK_TIMEOUT, sleep=time.sleep, clock=time.monotonic):
    """Wait until no process holds dpkg's frontend lock; returns the seconds waited.

    dpkg and apt take it with fcntl record locks: trying (and at once releasing) the same lock
    tells whether another package manager runs. Raises HostStateError after ``timeout`` seconds.
    """
    path = system.path(DPKG_FRONTEND_LOCK)
    started = clock()
    while True:
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return 0
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.lockf(fd, fcntl.LOCK_UN)
            return round(clock() - started, 1)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
        finally:
            os.close(fd)
        if clock() - started >= timeout:
            raise HostStateError(
                f"another package manager has held {DPKG_FRONTEND_LOCK} for {timeout} s (unattended-upgrades, or the "
                "apt of an interrupted run still installing): let it finish, then run again")
        sleep(1)


def recover_dpkg(system, report, wait=wait_for_dpkg_lock):
    """A run killed during apt leaves dpkg's journal behind; apt refuses to install until it is replayed.

    The apt of an interrupted run may still be running on the host (killing the controller does
    not stop it): wait for it first; it may finish the journal itself.
    """
    pending = system.listdir("/var/lib/dpkg/updates")
    if pending and not report.check_mode:
        report.sections["dpkg_lock_waited_s"] = wait(system)
        pending = system.listdir("/var/lib/dpkg/updates")
    report.sections["dpkg_recovered"] = bool(pending)
    if not pending:
        return
    report.change("finished the package installation an earlier run left interrupted (dpkg --configure -a)")
    if not report.check_mode:
        _run_or_fail(system, ["dpkg", "--configure", "-a"], APT_ENV)


def dpkg_installed(system, names):
    """{name: version} of the packages among ``names`` that dpkg has installed."""
    if not names:
        return {}
    _rc, out, _err = system.run(["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\t${Version}\n", *names], None)
    installed = {}
    for line in (out or "").splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].startswith("ii"):
            installed[parts[0].split(":")[0]] = parts[2]
    return installed


def lists_present(system):
    return bool(system.glob("/var/lib/apt/lists/*_Packages*"))


def lists_age(system, now=None):
    """Seconds since the package lists were refreshed, as ansible.builtin.apt judges it."""
    stamp = system.mtime("/var/lib/apt/periodic/update-success-stamp")
    lists = system.mtime("/var/lib/apt/lists")
    newest = max([t for t in (stamp, lists) if t is not None], default=None)
    return None if newest is None else (now or time.time()) - newest


def in_archive(system, name):
    rc, _out, err = system.run(["apt-cache", "show", "--no-all-versions", name], APT_ENV)
    if rc == 0:
        return True
    if rc == 100:
        return False
    raise HostStateError(f"`apt-cache show {name}` exited {rc}: {(err or '').strip()}")


def lists_key(system):
    """Identifies the package lists' content: names, sizes and times of the Packages files."""
    entries = []
    for path in sorted(system.glob("/var/lib/apt/lists/*_Packages*")):
        st = os.stat(path)
        entries.append(f"{os.path.basename(path)}:{st.st_size}:{int(st.st_mtime)}")
    return "|".join(entries)


def read_answers(system, key):
    """Optional packages the archive lacked, as last asked with the same package lists."""
    try:
        data = json.loads(system.read_text(ARCHIVE_ANSWERS) or "{}")
    except ValueError:
        return set()
    if not isinstance(data, dict) or data.get("lists") != key or not isinstance(data.get("absent"), list):
        return set()
    return set(data["absent"])


def write_answers(system, key, absent_names):
    if system.lstat(os.path.dirname(ARCHIVE_ANSWERS)) is None:
        system.makedirs(os.path.dirname(ARCHIVE_ANSWERS), 0o755, os.geteuid(), os.getegid())
    data = json.dumps({"lists": key, "absent": sorted(absent_names)}, indent=1).encode("utf-8")
    system.write_file(ARCHIVE_ANSWERS, data, 0o644, os.geteuid(), os.getegid())


def packages(system, report, specs, cache_valid_time=3600, now=None):
    """Install what is missing. ``specs``: [{name, optional, unless_installed}].

    - unless_installed: skip the package when any of these is installed (a time daemon beside another);
    - optional: install only when the archive has it (kernel headers of custom kernels are not there).
      The archive's answer is kept in ARCHIVE_ANSWERS with the lists it came from, and asked again
      only when the lists change (apt-cache reads the whole package cache: 0.2 s a host, more in a fleet).
    The package lists are refreshed when a required package is missing and they are missing or
    older than ``cache_valid_time`` seconds, or when only an optional one is missing and there are none.
    """
    specs = specs or []
    if specs and system.lstat("/usr/bin/dpkg-query") is None:
        release = dict(line.split("=", 1) for line in (system.read_text("/etc/os-release") or "").splitlines() if "=" in line)
        raise HostStateError(
            f"this host runs {release.get('PRETTY_NAME', 'an unknown system').strip(chr(34) + chr(39))} without dpkg: the host layer "
            "supports apt-based distributions (Ubuntu, Debian)")
    names = sorted({s["name"] for s in specs} | {a for s in specs for a in s.get("unless_installed") or []})
    installed = dpkg_installed(system, names)
    present, skipped, missing, optional = [], {}, [], []
    for spec in specs:
        name = spec["name"]
        alternative = next((a for a in spec.get("unless_installed") or [] if a in installed), None)
        if alternative:
            skipped[name] = alternative
        elif name in installed:
            present.append(name)
        elif spec.get("optional"):
            optional.append(name)
        else:
            missing.append(name)
    section = {"present": present, "skipped": skipped, "installed": [], "unavailable": [],
               "refreshed": False, "versions": {n: installed[n] for n in present}}
    report.sections["packages"] = section
    if not missing and not optional:
        return section

    have_lists = lists_present(system)
    age = lists_age(system, now)
    stale = age is None or age > int(cache_valid_time)
    if not have_lists or (missing and stale):
        if report.check_mode:
            if not have_lists:
                wanted = missing + [f"{n} (if the archive has it)" for n in optional]
                report.change(f"would refresh the package lists and install {', '.join(wanted)}")
                section["installed"] = missing + optional
                return section
        else:
            _run_or_fail(system, ["apt-get", "update", "-q", *APT_LOCK_WAIT], APT_ENV,
                         "The hosts need a working apt source (or a mirror) to install packages.")
            system.touch("/var/lib/apt/lists")
            section["refreshed"] = True
    if optional:
        key = lists_key(system)
        known_absent = read_answers(system, key)
        for name in optional:
            if name not in known_absent and in_archive(system, name):
                missing.append(name)
            else:
                section["unavailable"].append(name)
        if not report.check_mode and set(section["unavailable"]) != known_absent:
            write_answers(system, key, section["unavailable"])
    if not missing:
        return section
    section["installed"] = missing
    report.change(f"{'would install' if report.check_mode else 'installed'} {', '.join(missing)}",
                  {"before_header": "packages", "after_header": "packages",
                   "before": "", "after": "".join(f"+ {n}\n" for n in missing)})
    if not report.check_mode:
        _run_or_fail(system, APT_INSTALL + missing, APT_ENV)
        section["versions"].update(dpkg_installed(system, missing))
    return section


# How each command of min_versions prints its version (the module's choices).
VERSION_PARSERS = {"containerd": versions.parse_containerd}


def command_version(system, command, minimum, parse, paths=("/usr/bin", "/usr/local/bin", "/usr/sbin", "/bin")):
    """Version of ``command`` (``parse`` reads its ``--version`` output); fails below ``minimum``."""
    info = versions.command_version(command, paths, lambda path: system.lstat(path) is not None,
                                    lambda argv: system.run(argv, None), parse)
    if info["error"]:
        raise HostStateError(f"cannot read the version of {info['path']}: {info['error']}")
    if info["installed"] and not versions.at_least(info["version"], minimum):
        raise HostStateError(f"{info['path']} is version {info['version']}; at least {minimum} is needed. Upgrade it, "
                             "or remove it so that the distribution's current package is installed")
    return {key: info[key] for key in ("installed", "path", "version")}


# ---------------------------------------------------------------------------------------------
# Kernel modules, kernel parameters, swap


def load_kernel_modules(system, report, names, gathered=None, release=None):
    release = release or os.uname().release
    gathered = gathered if gathered is not None else kernel_modules.gather(release, root=system.root)
    decided = kernel_modules.decide(names, **gathered)
    report.sections["kernel_modules"] = dict(decided, kernel=release)
    if decided["unavailable"]:
        evidence = ", ".join(f"{n} ({decided['modules'][n]['evidence']})" for n in decided["unavailable"])
        raise HostStateError(
            f"Kernel {release} has none of these modules: {evidence}. On Ubuntu cloud kernels install "
            f"linux-modules-extra-{release}, or remove them from host_prep_kernel_modules / "
            f"host_prep_extra_kernel_modules (given {', '.join(names)}).")
    for name in decided["to_load"]:
        report.change(f"{'would load' if report.check_mode else 'loaded'} kernel module {name}")
        if not report.check_mode:
            _run_or_fail(system, ["modprobe", name])


def apply_sysctls(system, report, settings, required=(), on_unapplied="warn", persisted_in=""):
    try:
        result, diff, errors, warnings = sysctl.converge(
            settings, root=system.path(sysctl.PROC_SYS), check_mode=report.check_mode, required=required,
            on_unapplied=on_unapplied, file_hint=persisted_in)
    except ValueError as exc:
        raise HostStateError(f"sysctl settings: {exc}") from None
    report.sections["sysctl"] = result
    if result["applied"]:
        report.change(f"{'would set' if report.check_mode else 'set'} kernel parameters {', '.join(result['applied'])}",
                      dict(diff, before_header="/proc/sys", after_header="/proc/sys"))
    report.warnings.extend(warnings)
    if errors:
        raise HostStateError("; ".join(errors))


def swap_off(system, report, container):
    swaps = [line for line in (system.read_text("/proc/swaps") or "").splitlines()[1:] if line.strip()]
    section = {"active": swaps, "fstab_entries": []}
    report.sections["swap"] = section
    if swaps:
        if container:
            raise HostStateError(
                f"Swap is active ({'; '.join(swaps)}) and this host is a container: turn swap off on the machine "
                "that runs it, or set host_prep_disable_swap: false to leave swap alone (the kubelet refuses to run "
                "with swap on).")
        report.change(f"{'would turn' if report.check_mode else 'turned'} swap off ({'; '.join(swaps)})")
        if not report.check_mode:
            _run_or_fail(system, ["swapoff", "-a"])
    fstab = system.read_text("/etc/fstab")
    if fstab is not None:
        entries = FSTAB_SWAP.findall(fstab)
        section["fstab_entries"] = entries
        if entries:
            after = FSTAB_SWAP.sub(lambda m: "# " + m.group(1) + FSTAB_SWAP_NOTE, fstab)
            report.change("commented out the swap entries of /etc/fstab",
                          {"before_header": "/etc/fstab", "after_header": "/etc/fstab", "before": fstab, "after": after})
            if not report.check_mode:
                st = system.lstat("/etc/fstab")
                system.write_file("/etc/fstab", after.encode("utf-8"), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)


# ---------------------------------------------------------------------------------------------
# Directories, files, absent paths, pruned directories


def _fix_attributes(system, report, path, st, mode, uid, gid, kind):
    fix = False
    if mode is not None and stat.S_IMODE(st.st_mode) != mode:
        report.change(f"{kind} {path}: mode {stat.S_IMODE(st.st_mode):04o} -> {mode:04o}")
        fix = True
    if (st.st_uid, st.st_gid) != (uid, gid):
        report.change(f"{kind} {path}: owner {st.st_uid}:{st.st_gid} -> {uid}:{gid}")
        fix = True
    if fix and not report.check_mode:
        system.set_attributes(path, mode, uid, gid)


def directories(system, report, specs):
    for spec in specs or []:
        path = spec["path"]
        mode = _mode(spec.get("mode"), path)
        uid, gid = _ids(spec.get("owner") or "root", spec.get("group") or "root", path)
        st = system.lstat(path)
        if st is None:
            report.change(f"{'would create' if report.check_mode else 'created'} directory {path}",
                          {"before_header": path, "after_header": path, "before": "(absent)\n", "after": "(directory)\n"})
            if report.check_mode:
                report.planned_dirs.add(os.path.normpath(path))
            else:
                system.makedirs(path, mode if mode is not None else 0o755, uid, gid)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise HostStateError(f"{path} exists and is not a directory")
        _fix_attributes(system, report, path, st, mode, uid, gid, "directory")


def files(system, report, specs):
    """Write each file whose content differs; returns the paths changed (or that would change)."""
    changed = []
    for spec in specs or []:
        path = spec["path"]
        content = spec["content"]
        if content and not content.endswith("\n"):
            # Template lookups drop the final newline a template file ends with.
            content += "\n"
        data = content.encode("utf-8")
        mode = _mode(spec.get("mode") or "0644", path)
        uid, gid = _ids(spec.get("owner") or "root", spec.get("group") or "root", path)
        st = system.lstat(path)
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise HostStateError(f"{path} exists and is not a regular file")
        if system.lstat(os.path.dirname(path)) is None and os.path.normpath(os.path.dirname(path)) not in report.planned_dirs:
            raise HostStateError(f"{path}: directory {os.path.dirname(path)} does not exist")
        current = system.read_bytes(path)
        if current != data:
            changed.append(path)
            report.change(f"{'would write' if report.check_mode else 'wrote'} {path}",
                          {"before_header": path, "after_header": path,
                           "before": "" if current is None else current.decode("utf-8", "replace"),
                           "after": content})
            if not report.check_mode:
                system.write_file(path, data, mode, uid, gid)
            continue
        _fix_attributes(system, report, path, st, mode, uid, gid, "file")
    return changed


def absent(system, report, paths):
    removed = []
    for path in paths or []:
        if system.lstat(path) is not None:
            removed.append(path)
            report.change(f"{'would remove' if report.check_mode else 'removed'} {path}",
                          {"before_header": path, "after_header": path, "before": "(present)\n", "after": "(absent)\n"})
            if not report.check_mode:
                system.remove(path)
    return removed


def prune(system, report, specs):
    """Remove the subdirectories of each ``path`` not in ``keep``; with ``marker_file`` only those
    whose marker file contains ``marker`` (the ones this collection wrote)."""
    removed = []
    for spec in specs or []:
        keep = set(spec.get("keep") or [])
        for name in system.listdir(spec["path"]):
            sub = os.path.join(spec["path"], name)
            st = system.lstat(sub)
            if name in keep or st is None or not stat.S_ISDIR(st.st_mode):
                continue
            if spec.get("marker_file"):
                text = system.read_text(os.path.join(sub, spec["marker_file"])) or ""
                if not text or spec.get("marker", "") not in text:
                    continue
            removed.extend(absent(system, report, [sub]))
    return removed


# ---------------------------------------------------------------------------------------------
# Services


def unit_states(system, names):
    """{unit: {load, file, active}} for every name, in one ``systemctl show`` (blocks in argument order)."""
    if not names:
        return {}
    rc, out, err = system.run(["systemctl", "show", "--property", "LoadState,UnitFileState,ActiveState", "--", *names], None)
    if rc != 0:
        raise HostStateError(f"`systemctl show {' '.join(names)}` exited {rc}: {(err or '').strip()}")
    blocks = [block for block in (out or "").split("\n\n") if block.strip()]
    if len(blocks) != len(names):
        raise HostStateError(f"`systemctl show {' '.join(names)}` answered {len(blocks)} units for {len(names)}")
    states = {}
    for name, block in zip(names, blocks):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        states[name] = {"load": props.get("LoadState", ""), "file": props.get("UnitFileState", ""),
                        "active": props.get("ActiveState", "")}
    return states


def services(system, report, specs, changed_files=(), container=False, installed_packages=None):
    """Each spec: {name, masked, enabled, started, start_in_container, only_if_package, restart_on, only_if_running,
    restart_pending_file}.

    - masked: true masks the unit (systemd then never starts it);
    - enabled / started: enable it, start it (not in a container when start_in_container is false);
    - restart_on: restart it when one of these paths (or a path below one) changed in this pass and it was running;
    - only_if_running: touch nothing but the restart, and only when the unit runs (k3s reading registries);
    - restart_pending_file: instead of restarting, write this file (0600, naming the changed paths); whoever
      restarts the unit later removes it, so a restart decided here survives a run that stops before it
      (k3s, restarted one node at a time by the k3s role).
    - only_if_package: manage it only when that package is installed (or would be, in check mode).
    """
    section = {}
    report.sections["services"] = section
    changed_files = set(changed_files)
    installed_packages = installed_packages if installed_packages is not None else set()
    handled = []
    for spec in specs or []:
        if spec.get("only_if_package") and spec["only_if_package"] not in installed_packages:
            section[spec["name"]] = {"skipped": f"package {spec['only_if_package']} is not installed"}
        else:
            handled.append(spec)
    # One systemctl call reads every unit's state.
    states = unit_states(system, list(dict.fromkeys(spec["name"] for spec in handled)))
    for spec in handled:
        name = spec["name"]
        state = states[name]
        section[name] = dict(state, actions=[])

        def act(verb, *argv, _name=name):
            section[_name]["actions"].append(verb)
            report.change(f"{'would ' if report.check_mode else ''}{verb} {_name}")
            if not report.check_mode:
                _run_or_fail(system, ["systemctl", *argv, "--", _name])

        if spec.get("masked"):
            if state["file"] != "masked":
                act("mask", "mask")
            continue
        if state["load"] == "not-found":
            if report.check_mode and spec.get("only_if_package"):
                section[name]["skipped"] = "installed by this run (check mode)"
                continue
            if spec.get("only_if_running"):
                continue
            raise HostStateError(f"systemd has no unit {name}: is its package installed?")
        running = state["active"] in ("active", "activating", "reloading")
        restart = running and any(_under(path, spec.get("restart_on") or []) for path in changed_files)
        if restart and spec.get("restart_pending_file"):
            _record_pending_restart(system, report, section[name], name, spec["restart_pending_file"],
                                    [path for path in changed_files if _under(path, spec["restart_on"])])
            restart = False
        if spec.get("only_if_running"):
            if restart:
                act("restart", "restart")
            continue
        if spec.get("enabled") and state["file"] not in ("enabled", "enabled-runtime", "static", "alias", "indirect", "generated"):
            act("enable", "enable")
        want_start = spec.get("started") and (spec.get("start_in_container", True) or not container)
        if want_start and not running:
            act("start", "start")
        elif restart:
            act("restart", "restart")


def _record_pending_restart(system, report, section, name, path, because):
    """Write ``path`` so that a later restart of ``name`` (one node at a time) happens even after an interrupted run."""
    section["actions"].append("restart pending")
    report.change(f"{'would record' if report.check_mode else 'recorded'} a pending restart of {name} in {path}")
    if report.check_mode:
        return
    if system.lstat(os.path.dirname(path)) is None:
        system.makedirs(os.path.dirname(path), 0o755, None, None)
    system.write_file(path, "".join(f"{changed}\n" for changed in sorted(because)).encode("utf-8"), 0o600, None, None)


def _under(path, roots):
    """Whether ``path`` is one of ``roots`` or lies below one of them."""
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def is_container(system):
    rc, _out, _err = system.run(["systemd-detect-virt", "--container"], None)
    return rc == 0


# ---------------------------------------------------------------------------------------------
# The pass


def converge(system, params, check_mode=False):
    """Run every section ``params`` asks for; returns the Report.

    Raises HostStateError carrying ``report``: what was changed before the failure.
    """
    report = Report(check_mode)
    try:
        _converge(system, params, report)
    except HostStateError as exc:
        exc.report = report
        raise
    return report


def _converge(system, params, report):
    container = is_container(system)
    report.sections["container"] = container
    report.sections["exists"] = {path: system.lstat(path) is not None for path in params.get("stat") or []}
    recover_dpkg(system, report)
    pkg = packages(system, report, params.get("packages"), params.get("cache_valid_time", 3600))
    managed = set(pkg["present"]) | set(pkg["installed"])
    for check in params.get("min_versions") or []:
        # In check mode a package this pass would install is not there to ask.
        if check["package"] not in managed or (report.check_mode and check["package"] in pkg["installed"]):
            continue
        report.sections.setdefault("versions", {})[check["command"]] = command_version(
            system, check["command"], check["min_version"], VERSION_PARSERS[check["command"]])
    if params.get("kernel_modules"):
        load_kernel_modules(system, report, params["kernel_modules"])
    if params.get("sysctl"):
        spec = params["sysctl"]
        apply_sysctls(system, report, spec["settings"], spec.get("required") or [],
                      spec.get("on_unapplied") or "warn", spec.get("persisted_in") or "")
    if params.get("swap_off"):
        swap_off(system, report, container)
    directories(system, report, params.get("directories"))
    changed_files = files(system, report, params.get("files"))
    removed = absent(system, report, params.get("absent")) + prune(system, report, params.get("prune"))
    report.sections["files_changed"] = changed_files
    report.sections["removed"] = removed
    services(system, report, params.get("services"), changed_files + removed, container, managed)


# ---------------------------------------------------------------------------------------------
# Several roles' arguments in one call (the module's ``calls`` option)

LIST_OPTIONS = ("packages", "min_versions", "kernel_modules", "directories", "files", "absent", "prune", "stat", "services")
MERGEABLE = LIST_OPTIONS + ("cache_valid_time", "swap_off", "sysctl")


def merge_specs(specs):
    """One set of module arguments from several argument sets (``calls``), in their order.

    Lists are concatenated (each section keeps the calls' order, and the module's fixed section
    order still puts every package before any file and every file before any service); swap_off
    holds when any call asks; cache_valid_time is the smallest given. Two calls that both set
    ``sysctl`` cannot be merged: one module call applies one set of kernel parameters. A set may
    be empty or None (a role that has nothing to change on the host).
    """
    merged = {}
    for number, spec in enumerate(specs):
        if spec is None:
            continue
        if not isinstance(spec, dict):
            raise HostStateError(f"calls[{number}] is {type(spec).__name__} {spec!r}; allowed: a dict of host_state options")
        for key, value in spec.items():
            if value is None:
                continue
            if key in LIST_OPTIONS:
                if not isinstance(value, (list, tuple)):
                    raise HostStateError(f"calls[{number}].{key} is {value!r}; allowed: a list")
                merged.setdefault(key, [])
                merged[key] = merged[key] + list(value)
            elif key == "swap_off":
                try:
                    merged[key] = boolean(value, strict=True) or bool(merged.get(key))
                except TypeError:
                    raise HostStateError(f"calls[{number}].swap_off is {value!r}; allowed: true, false") from None
            elif key == "cache_valid_time":
                try:
                    merged[key] = min(int(value), int(merged.get(key, value)))
                except (TypeError, ValueError):
                    raise HostStateError(f"calls[{number}].cache_valid_time is {value!r}; allowed: a number of seconds") from None
            elif key == "sysctl":
                if "sysctl" in merged:
                    raise HostStateError(f"calls[{number}] sets sysctl, and an earlier one did: give the parameters to one of them")
                merged[key] = value
            else:
                raise HostStateError(f"calls[{number}] has the option {key!r}; allowed: {', '.join(MERGEABLE)}")
    return merged
