# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Collect what Gitpod needs from a host in one pass, and evaluate it.

Plain Python, no Ansible imports: the ``host_requirements`` module is a thin wrapper, and unit
tests drive ``collect()`` through a fake ``Probe`` and ``evaluate()`` with plain dicts.

``collect(probe, options)`` returns a facts dict; ``evaluate(facts, options)`` returns a list of
checks (see checks.py). Both only do the work the selected checks (``options["only"]``) need.
Thresholds and semantics are documented in the module's DOCUMENTATION and in roles/preflight.
"""

from __future__ import annotations

import gzip
import os
import re

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import checks as C
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import gitpod_constants
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import versions
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils.kernel_modules import names_from_module_list

GIB = 1024 ** 3

CHECK_IDS = (
    "os",
    "kernel",
    "vcpus",
    "memory",
    "disk",
    "swap",
    "cgroup",
    "systemd",
    "kernel_features",
    "containerd",
    "ports",
    "usr_src",
    "kernel_headers",
)

WORKLOADS = ("meta", "ide", "workspace")

# Gitpod's per-workload thresholds (its KOTS preflight). 0 disables a threshold.
DEFAULT_PROFILES = {
    "meta": {"min_vcpus": 2, "warn_vcpus": 4, "min_memory_gib": 8, "warn_memory_gib": 16},
    "ide": {"min_vcpus": 2, "warn_vcpus": 0, "min_memory_gib": 4, "warn_memory_gib": 0},
    "workspace": {"min_vcpus": 2, "warn_vcpus": 4, "min_memory_gib": 16, "warn_memory_gib": 0},
}
PROFILE_KEYS = ("min_vcpus", "warn_vcpus", "min_memory_gib", "warn_memory_gib")

# Defaults for direct calls (unit tests). The module requires Gitpod's constants (versions, OS
# lists), which the preflight role passes from the common role; their fallback is gitpod_constants.
DEFAULT_OPTIONS = {
    "only": [],
    "warn_only": [],
    "data_dir": "/var/lib",
    "workloads": list(WORKLOADS),
    "k3s_server": True,
    "allowed_distributions": gitpod_constants.allowed_distributions(),
    "tested_distributions": gitpod_constants.tested_distributions(),
    "min_kernel": gitpod_constants.MIN_KERNEL,
    "min_vcpus": 4,
    "min_memory_gib": 16,
    "profiles": DEFAULT_PROFILES,
    "min_disk_gib": 20,
    "recommended_disk_gib": 100,
    "min_containerd_version": gitpod_constants.MIN_CONTAINERD,
    "require_containerd": False,
    "ports": None,
    "port_owners_expected": [
        "k3s", "k3s-server", "k3s-agent", "containerd", "kubelet", "kube-apiserver", "etcd",
        "calico-node", "calico-typha", "typha", "bird", "bird6",
    ],
}

SERVER_PORTS = ["6443/tcp", "10250/tcp", "2379/tcp", "2380/tcp"]
NODE_PORTS = ["10250/tcp", "179/tcp", "4789/udp", "5473/tcp"]

# Kernel features: how each shows up when present. ``config`` is the CONFIG_ symbol.
FEATURES = {
    "overlay": {"filesystem": "overlay", "config": "OVERLAY_FS", "modules": ["overlay"]},
    "br_netfilter": {"path": "/proc/sys/net/bridge", "config": "BRIDGE_NETFILTER", "modules": ["br_netfilter"]},
    "vxlan": {"config": "VXLAN", "modules": ["vxlan"]},
    "ipip": {"path": "/sys/class/net/tunl0", "config": "NET_IPIP", "modules": ["ipip"]},
    "ip_tables": {"path": "/proc/net/ip_tables_names", "config": "IP_NF_IPTABLES", "modules": ["ip_tables"]},
    "ip_set": {"config": "IP_SET", "modules": ["ip_set"]},
    "fuse": {"filesystem": "fuse", "config": "FUSE_FS", "modules": ["fuse"]},
    "shiftfs": {"filesystem": "shiftfs", "config": "SHIFT_FS", "modules": ["shiftfs"]},
}
# Requirement groups: every group needs one of its features. ``workspace`` groups apply to hosts
# that run workspaces only.
FEATURE_GROUPS = [
    {"any_of": ["overlay"], "workspace": False},
    {"any_of": ["br_netfilter"], "workspace": False},
    {"any_of": ["vxlan", "ipip"], "workspace": False},
    {"any_of": ["ip_tables"], "workspace": False},
    {"any_of": ["ip_set"], "workspace": False},
    {"any_of": ["fuse", "shiftfs"], "workspace": True},
]
PRESENT = ("builtin", "loaded", "active", "loadable")

CONTAINERD_PATHS = ["/usr/bin", "/usr/local/bin", "/usr/sbin", "/bin", "/var/lib/rancher/k3s/data/current/bin"]

# /proc/net/tcp state for LISTEN; UDP sockets are bound when listed at all.
_TCP_LISTEN = "0A"


class OptionError(ValueError):
    """An option value the module cannot use."""


# ---------------------------------------------------------------------------------------------
# Host access


class Probe:
    """Reads the host. Tests replace it with a fake that serves recorded files."""

    def read(self, path):
        """Text of a file, or None when it cannot be read."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        if path.endswith(".gz"):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError):
                return None
        return data.decode("utf-8", "replace")

    def exists(self, path):
        return os.path.exists(path)

    def isdir(self, path):
        return os.path.isdir(path)

    def listdir(self, path):
        try:
            return os.listdir(path)
        except OSError:
            return []

    def readlink(self, path):
        try:
            return os.readlink(path)
        except OSError:
            return None

    def uname(self):
        u = os.uname()
        return {"release": u.release, "machine": u.machine, "nodename": u.nodename}

    def cpu_count(self):
        try:
            return len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            return os.cpu_count() or 0

    def free_bytes(self, path):
        """Bytes available to unprivileged users under ``path``, or None."""
        try:
            st = os.statvfs(path)
        except OSError:
            return None
        return st.f_bavail * st.f_frsize

    def run(self, args):
        """(rc, stdout, stderr); the module plugs in AnsibleModule.run_command."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# Options


def normalize_options(options):
    """Fill defaults and validate. Raises OptionError naming the option, the value and what is allowed."""
    opts = dict(DEFAULT_OPTIONS)
    for key, value in (options or {}).items():
        if value is not None or key in ("ports", "workloads"):
            opts[key] = value
    if opts["workloads"] is None:
        opts["workloads"] = list(WORKLOADS)
    for key in ("only", "warn_only"):
        opts[key] = list(opts[key] or [])
        unknown = [c for c in opts[key] if c not in CHECK_IDS]
        if unknown:
            raise OptionError(f"{key}: unknown check id(s) {', '.join(map(str, unknown))}; known: {', '.join(CHECK_IDS)}")
    bad = [w for w in opts["workloads"] if w not in WORKLOADS]
    if bad:
        raise OptionError(f"workloads: unknown workload(s) {', '.join(map(str, bad))}; allowed: {', '.join(WORKLOADS)}")
    profiles = {}
    given = opts["profiles"] or {}
    if not isinstance(given, dict):
        raise OptionError(f"profiles: expected a mapping of workload to thresholds, got {given!r}")
    for name, values in given.items():
        if name not in WORKLOADS:
            raise OptionError(f"profiles: unknown workload {name!r}; allowed: {', '.join(WORKLOADS)}")
        if not isinstance(values, dict):
            raise OptionError(f"profiles.{name}: expected a mapping with {', '.join(PROFILE_KEYS)}, got {values!r}")
        merged = dict(DEFAULT_PROFILES[name])
        for key, value in values.items():
            if key not in PROFILE_KEYS:
                raise OptionError(f"profiles.{name}.{key}: unknown threshold; allowed: {', '.join(PROFILE_KEYS)}")
            merged[key] = _number(value, f"profiles.{name}.{key}")
        profiles[name] = merged
    for name in WORKLOADS:
        profiles.setdefault(name, dict(DEFAULT_PROFILES[name]))
    opts["profiles"] = profiles
    for key in ("min_vcpus", "min_memory_gib", "min_disk_gib", "recommended_disk_gib"):
        opts[key] = _number(opts[key], key)
    for key in ("min_kernel", "min_containerd_version"):
        try:
            versions.parse_version(opts[key])
        except versions.VersionError as exc:
            raise OptionError(f"{key}: {exc}") from None
    opts["allowed_distributions"] = [_distribution(d, "allowed_distributions") for d in opts["allowed_distributions"] or []]
    opts["tested_distributions"] = [_distribution(d, "tested_distributions") for d in opts["tested_distributions"] or []]
    if opts["ports"] is None:
        opts["ports"] = list(dict.fromkeys((SERVER_PORTS if opts["k3s_server"] else []) + NODE_PORTS))
    opts["ports"] = [_port(p) for p in opts["ports"]]
    opts["port_owners_expected"] = [str(p) for p in opts["port_owners_expected"] or []]
    return opts


def _number(value, name):
    if isinstance(value, bool):
        raise OptionError(f"{name}: expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"{name}: expected a number, got {value!r}") from None
    if number < 0:
        raise OptionError(f"{name}: expected a number >= 0, got {value!r}")
    return int(number) if number.is_integer() else number


def _distribution(entry, name):
    """``ubuntu`` or ``ubuntu:22.04`` -> (id, version or None)."""
    text = str(entry).strip().lower()
    ident, _sep, version = text.partition(":")
    if not ident:
        raise OptionError(f"{name}: entries look like 'ubuntu' or 'ubuntu:22.04', got {entry!r}")
    return (ident, version or None)


def _port(entry):
    """``6443``, ``6443/tcp`` or ``4789/udp`` -> (6443, "tcp")."""
    text = str(entry).strip().lower()
    number, _sep, proto = text.partition("/")
    proto = proto or "tcp"
    if not number.isdigit() or not 0 < int(number) < 65536 or proto not in ("tcp", "udp"):
        raise OptionError(f"ports: entries look like 6443/tcp or 4789/udp, got {entry!r}")
    return (int(number), proto)


def _wanted(opts, *ids):
    return not opts["only"] or any(i in opts["only"] for i in ids)


# ---------------------------------------------------------------------------------------------
# Collection


def collect(probe, opts):
    """Collect the facts the selected checks need. ``opts`` comes from normalize_options()."""
    uname = probe.uname()
    facts = {
        "hostname": _hostname(probe, uname),
        "architecture": uname.get("machine", ""),
        "kernel": uname.get("release", ""),
    }
    if _wanted(opts, "os"):
        facts["os"] = parse_os_release(probe.read("/etc/os-release") or probe.read("/usr/lib/os-release"))
    if _wanted(opts, "vcpus"):
        facts["vcpus"] = usable_vcpus(probe)
    if _wanted(opts, "memory", "swap"):
        meminfo = parse_meminfo(probe.read("/proc/meminfo"))
        facts["memory_bytes"] = usable_memory(probe, meminfo.get("MemTotal"))
        facts["swap_bytes"] = meminfo.get("SwapTotal")
    if _wanted(opts, "disk"):
        facts["data_dir"], facts["disk_free_bytes"] = free_space(probe, opts["data_dir"])
    if _wanted(opts, "cgroup"):
        facts["cgroup"] = cgroup_version(probe.read("/proc/self/mounts") or probe.read("/proc/mounts"))
    if _wanted(opts, "systemd"):
        facts["systemd"] = {
            "booted": probe.isdir("/run/systemd/system"),
            "pid1": (probe.read("/proc/1/comm") or "").strip(),
        }
    if _wanted(opts, "kernel_features"):
        facts["kernel_features"] = kernel_features(probe, facts["kernel"])
    if _wanted(opts, "containerd"):
        facts["containerd"] = containerd_version(probe)
    if _wanted(opts, "ports"):
        facts["ports"] = ports_in_use(probe, opts["ports"])
    if _wanted(opts, "usr_src", "kernel_headers"):
        facts["usr_src"] = probe.isdir("/usr/src")
        release = facts["kernel"]
        facts["kernel_headers"] = any(
            probe.exists(p) for p in (f"/lib/modules/{release}/build", f"/usr/src/linux-headers-{release}"))
    return facts


def _hostname(probe, uname):
    text = (probe.read("/proc/sys/kernel/hostname") or "").strip()
    return text or uname.get("nodename", "")


SYSTEMD_CANARIES = ("/run/systemd/system/", "/dev/.run/systemd/", "/dev/.systemd/")


def host_facts(probe):
    """kernel, architecture and service_mgr as ansible.builtin.setup decides them on Linux.

    service_mgr: PID 1's name unless it is init or a shell, else systemd when one of systemd's
    canary directories exists, else sysvinit when /etc/init.d exists, else "service". Computed
    here because importing ansible-core's fact collectors ships all of them with every preflight.
    """
    uname = probe.uname()
    proc_1 = os.path.basename((probe.read("/proc/1/comm") or "").strip())
    if proc_1 and proc_1 != "init" and not proc_1.endswith("sh"):
        manager = proc_1
    elif any(probe.isdir(canary) for canary in SYSTEMD_CANARIES):
        manager = "systemd"
    elif probe.isdir("/etc/init.d"):
        manager = "sysvinit"
    else:
        manager = "service"
    return {"kernel": uname["release"], "architecture": uname["machine"], "service_mgr": manager}


def parse_os_release(text):
    """os-release -> {id, version_id, pretty_name, id_like}; missing keys are empty strings."""
    out = {"id": "", "version_id": "", "pretty_name": "", "id_like": ""}
    for line in (text or "").splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        lk = key.lower()
        if lk in out:
            out[lk] = value.lower() if lk in ("id", "id_like") else value
    return out


def parse_meminfo(text):
    """/proc/meminfo -> {key: bytes}."""
    out = {}
    for line in (text or "").splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not parts or not parts[0].isdigit():
            continue
        value = int(parts[0])
        if len(parts) > 1 and parts[1].lower() == "kb":
            value *= 1024
        out[key.strip()] = value
    return out


def _cgroup_paths(probe):
    """Controller -> cgroup path of this process, from /proc/self/cgroup ('' for the v2 entry)."""
    out = {}
    for line in (probe.read("/proc/self/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            out[controller] = parts[2]
    return out


def _ancestors(path):
    """'/a/b' -> ['/a/b', '/a', '']: the cgroup and its parents up to the root."""
    path = path.rstrip("/")
    out = []
    while path:
        out.append(path)
        path = path.rsplit("/", 1)[0]
    out.append("")
    return out


def _read_int(probe, path):
    text = (probe.read(path) or "").strip()
    try:
        return int(text)
    except ValueError:
        return None


def cgroup_cpu_limit(probe):
    """CPUs the cgroup quota allows (float), or None when unlimited or unknown."""
    paths = _cgroup_paths(probe)
    limits = []
    if "" in paths:  # cgroup v2 (unified, or the hybrid's unified hierarchy)
        for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
            for p in _ancestors(paths[""]):
                text = (probe.read(f"{base}{p}/cpu.max") or "").split()
                if len(text) == 2 and text[0].isdigit() and text[1].isdigit() and int(text[1]) > 0:
                    limits.append(int(text[0]) / int(text[1]))
    for controller in ("cpu", "cpu,cpuacct"):
        if controller in paths:
            for base in ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"):
                for p in _ancestors(paths[controller]):
                    quota = _read_int(probe, f"{base}{p}/cpu.cfs_quota_us")
                    period = _read_int(probe, f"{base}{p}/cpu.cfs_period_us")
                    if quota and quota > 0 and period and period > 0:
                        limits.append(quota / period)
            break
    return min(limits) if limits else None


def usable_vcpus(probe):
    """CPUs this host lets processes use: the affinity mask, capped by a cgroup CPU quota."""
    count = probe.cpu_count()
    limit = cgroup_cpu_limit(probe)
    if limit is not None and limit < count:
        return round(limit, 2)
    return count


def cgroup_memory_limit(probe):
    """Memory limit in bytes of this process's cgroup (or a parent), or None when unlimited."""
    paths = _cgroup_paths(probe)
    limits = []
    if "" in paths:
        for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
            for p in _ancestors(paths[""]):
                value = _read_int(probe, f"{base}{p}/memory.max")
                if value:
                    limits.append(value)
    if "memory" in paths:
        for p in _ancestors(paths["memory"]):
            value = _read_int(probe, f"/sys/fs/cgroup/memory{p}/memory.limit_in_bytes")
            # The kernel reports "unlimited" as a page-rounded 2**63 - 1.
            if value and value < 2 ** 62:
                limits.append(value)
    return min(limits) if limits else None


def usable_memory(probe, mem_total):
    """Bytes of memory: MemTotal, capped by a cgroup limit. None when unknown."""
    limit = cgroup_memory_limit(probe)
    if mem_total is None:
        return limit
    if limit is not None and limit < mem_total:
        return limit
    return mem_total


def free_space(probe, data_dir):
    """(path measured, free bytes) for data_dir or its nearest existing parent."""
    path = os.path.normpath(data_dir or "/")
    while True:
        if probe.exists(path):
            return path, probe.free_bytes(path)
        parent = os.path.dirname(path)
        if parent == path:
            return path, None
        path = parent


def cgroup_version(mounts):
    """'v2' (unified), 'hybrid' (v1 controllers with a v2 hierarchy), 'v1' or 'none'."""
    v1 = v2_root = v2_any = False
    for line in (mounts or "").splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        target, fstype = parts[1], parts[2]
        if fstype == "cgroup2":
            v2_any = True
            if target == "/sys/fs/cgroup":
                v2_root = True
        elif fstype == "cgroup":
            v1 = True
    if v2_root:
        return "v2"
    if v1 and v2_any:
        return "hybrid"
    if v1:
        return "v1"
    if v2_any:
        return "v2"
    return "none"


def _kernel_config(probe, release):
    for path in ("/proc/config.gz", f"/boot/config-{release}"):
        text = probe.read(path)
        if text:
            out = {}
            for line in text.splitlines():
                m = re.match(r"^CONFIG_([A-Z0-9_]+)=([ym])$", line.strip())
                if m:
                    out[m.group(1)] = m.group(2)
            return path, out
    return None, None


def kernel_features(probe, release):
    """Feature -> {state: builtin|loaded|active|loadable|missing, source}.

    ``active`` means the feature is live (a /proc entry) without telling built in from loaded.

    Looks at what is live first (/sys/module, /proc/filesystems, /proc/sys/net/bridge, ...), then
    at modules.builtin and modules.dep under /lib/modules/<release>, then at the kernel config.
    """
    filesystems = set()
    for line in (probe.read("/proc/filesystems") or "").splitlines():
        parts = line.split()
        if parts:
            filesystems.add(parts[-1])
    modules_dir = f"/lib/modules/{release}"
    builtin = dep = config = None
    config_path = None
    out = {}
    for name, spec in FEATURES.items():
        state, source = "missing", ""
        for mod in spec["modules"]:
            if probe.isdir(f"/sys/module/{mod}"):
                if probe.exists(f"/sys/module/{mod}/initstate"):
                    state, source = "loaded", f"/sys/module/{mod}"
                else:
                    state, source = "builtin", f"/sys/module/{mod}"
                break
        if state == "missing" and spec.get("filesystem") in filesystems:
            state, source = "active", "/proc/filesystems"
        if state == "missing" and spec.get("path") and probe.exists(spec["path"]):
            state, source = "active", spec["path"]
        if state == "missing":
            if builtin is None:
                builtin = names_from_module_list(probe.read(f"{modules_dir}/modules.builtin"))
            if any(m in builtin for m in spec["modules"]):
                state, source = "builtin", f"{modules_dir}/modules.builtin"
        if state == "missing":
            if dep is None:
                dep = names_from_module_list(probe.read(f"{modules_dir}/modules.dep"))
            if any(m in dep for m in spec["modules"]):
                state, source = "loadable", f"{modules_dir}/modules.dep"
        if state == "missing":
            if config is None:
                config_path, config = _kernel_config(probe, release)
                config = config or {}
            value = config.get(spec["config"])
            if value == "y":
                state, source = "builtin", f"{config_path} CONFIG_{spec['config']}=y"
            elif value == "m" and not dep:
                # Without modules.dep to confirm it, trust the config.
                state, source = "loadable", f"{config_path} CONFIG_{spec['config']}=m"
        out[name] = {"state": state, "source": source}
    return out


def containerd_version(probe):
    """{installed, path, output, version (str) or None, error}."""
    return versions.command_version("containerd", CONTAINERD_PATHS, probe.exists, probe.run, versions.parse_containerd)


def parse_proc_net(text, proto):
    """Listening sockets from /proc/net/{tcp,tcp6,udp,udp6}: [(port, inode, address)]."""
    out = []
    for line in (text or "").splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10 or ":" not in parts[1]:
            continue
        address, _sep, port_hex = parts[1].rpartition(":")
        try:
            port = int(port_hex, 16)
        except ValueError:
            continue
        if proto == "tcp" and parts[3] != _TCP_LISTEN:
            continue
        inode = parts[9] if parts[9].isdigit() else "0"
        out.append((port, inode, address))
    return out


def _socket_owners(probe, inodes):
    """inode -> process name, scanning /proc/*/fd once. Names stay unknown without permission."""
    owners = {}
    wanted = {f"socket:[{i}]": i for i in inodes if i != "0"}
    if not wanted:
        return owners
    for pid in probe.listdir("/proc"):
        if not pid.isdigit():
            continue
        for fd in probe.listdir(f"/proc/{pid}/fd"):
            target = probe.readlink(f"/proc/{pid}/fd/{fd}")
            if target in wanted and wanted[target] not in owners:
                owners[wanted[target]] = (probe.read(f"/proc/{pid}/comm") or "").strip() or f"pid {pid}"
        if len(owners) == len(wanted):
            break
    return owners


def ports_in_use(probe, ports):
    """[{port, proto, owner}] for each wanted port that something already listens on."""
    listening = {}
    for proto in ("tcp", "udp"):
        for suffix in ("", "6"):
            for port, inode, _address in parse_proc_net(probe.read(f"/proc/net/{proto}{suffix}"), proto):
                listening.setdefault((port, proto), set()).add(inode)
    busy = [(port, proto, listening[(port, proto)]) for port, proto in ports if (port, proto) in listening]
    owners = _socket_owners(probe, {i for _port, _proto, inodes in busy for i in inodes})
    out = []
    for port, proto, inodes in busy:
        names = sorted({owners.get(i, "") for i in inodes if i != "0"} - {""})
        if not names and all(i == "0" for i in inodes):
            # Kernel sockets have no process: a VXLAN device binds 4789/udp this way.
            names = ["kernel"]
            if port == 4789 and probe.exists("/sys/class/net/vxlan.calico"):
                names = ["calico vxlan (kernel)"]
        out.append({"port": port, "proto": proto, "owners": names})
    return out


# ---------------------------------------------------------------------------------------------
# Evaluation


def _gib(value):
    return f"{value / GIB:.1f} GiB"


def _fmt_num(value):
    return f"{value:g}"


def evaluate(facts, opts):
    """Checks for the collected facts, in CHECK_IDS order, honouring ``only`` and ``warn_only``."""
    results = []
    for check_id in CHECK_IDS:
        if not _wanted(opts, check_id):
            continue
        result = EVALUATORS[check_id](facts, opts)
        if result["status"] == C.FAIL and check_id in opts["warn_only"]:
            result = C.check(check_id, C.WARN, result["expected"], result["actual"],
                             f"Only a warning because '{check_id}' is in preflight_warn_only. {result['hint']}".strip())
        results.append(result)
    return results


def eval_os(facts, opts):
    info = facts.get("os") or {}
    ident, version = info.get("id", ""), info.get("version_id", "")
    actual = f"{ident} {version}".strip() or "unknown (no /etc/os-release)"
    allowed = opts["allowed_distributions"]
    expected = "one of " + ", ".join(f"{i} {v}" if v else i for i, v in allowed) if allowed else "any distribution"

    def matches(entries):
        return any(ident == i and (v is None or version == v or version.startswith(v + ".")) for i, v in entries)

    if allowed and not matches(allowed):
        return C.check("os", C.FAIL, expected, actual,
                       f"Gitpod supports Ubuntu. To try {ident or 'this OS'} anyway, add '{ident or 'ID'}' to "
                       "preflight_allowed_distributions or add 'os' to preflight_warn_only "
                       "(e.g. -e preflight_warn_only=os).")
    tested = opts["tested_distributions"]
    if tested and not matches(tested):
        return C.check("os", C.WARN, expected, actual,
                       "Gitpod's own tests ran " + ", ".join(f"{i} {v}" if v else i for i, v in tested)
                       + "; this release is untested (preflight_tested_distributions).")
    return C.check("os", C.PASS, expected, actual)


def eval_kernel(facts, opts):
    release = facts.get("kernel", "")
    expected = f">= {opts['min_kernel']}"
    try:
        parsed = versions.parse_kernel(release)
    except versions.VersionError as exc:
        return C.check("kernel", C.FAIL, expected, release or "unknown",
                       f"{exc}; check `uname -r` on the host.")
    if versions.at_least(parsed, opts["min_kernel"]):
        return C.check("kernel", C.PASS, expected, release)
    return C.check("kernel", C.FAIL, expected, release,
                   f"Upgrade the kernel to {opts['min_kernel']} or newer (Ubuntu: install linux-generic-hwe-*), "
                   "or lower preflight_min_kernel.")


def thresholds(opts, resource):
    """(fail_below, fail_source, warn_below, warn_source) for 'vcpus' or 'memory_gib'.

    The floor option (min_vcpus / min_memory_gib) applies to every host; each workload the host
    runs adds its profile's thresholds; the strictest value wins.
    """
    floor_key = "min_vcpus" if resource == "vcpus" else "min_memory_gib"
    fail, fail_source = opts[floor_key], f"preflight_{floor_key}"
    warn, warn_source = 0, ""
    for workload in opts["workloads"]:
        profile = opts["profiles"][workload]
        if profile[f"min_{resource}"] > fail:
            fail, fail_source = profile[f"min_{resource}"], f"preflight_profiles.{workload}.min_{resource}"
        if profile[f"warn_{resource}"] > warn:
            warn, warn_source = profile[f"warn_{resource}"], f"preflight_profiles.{workload}.warn_{resource}"
    return fail, fail_source, warn, warn_source


def _workload_text(opts):
    return "+".join(opts["workloads"]) or "no Gitpod workload"


def eval_vcpus(facts, opts):
    vcpus = facts.get("vcpus")
    fail, fail_src, warn, warn_src = thresholds(opts, "vcpus")
    expected = f">= {_fmt_num(fail)}" + (f" (recommended >= {_fmt_num(warn)})" if warn > fail else "")
    expected += f" for {_workload_text(opts)}"
    if vcpus is None:
        return C.check("vcpus", C.FAIL, expected, "unknown", "Could not count usable CPUs.")
    actual = _fmt_num(vcpus)
    if vcpus < fail:
        relax = f"-e {fail_src}={max(1, int(vcpus))}" if fail_src == "preflight_min_vcpus" else fail_src
        return C.check("vcpus", C.FAIL, expected, actual,
                       f"Give the host at least {_fmt_num(fail)} vCPUs, or relax the threshold for a trial run "
                       f"({relax}).")
    if vcpus < warn:
        return C.check("vcpus", C.WARN, expected, actual,
                       f"Gitpod recommends {_fmt_num(warn)} vCPUs for this node's workloads ({warn_src}).")
    return C.check("vcpus", C.PASS, expected, actual)


def eval_memory(facts, opts):
    memory = facts.get("memory_bytes")
    fail, fail_src, warn, warn_src = thresholds(opts, "memory_gib")
    expected = f">= {_fmt_num(fail)} GiB" + (f" (recommended >= {_fmt_num(warn)} GiB)" if warn > fail else "")
    expected += f" for {_workload_text(opts)}"
    if memory is None:
        return C.check("memory", C.FAIL, expected, "unknown", "Could not read MemTotal from /proc/meminfo.")
    # Firmware and the kernel keep some memory: a "16 GB" machine shows ~15.6 GiB. Allow 5%.
    gib = memory / GIB
    if gib < fail * 0.95:
        relax = f"-e {fail_src}={max(1, int(gib))}" if fail_src == "preflight_min_memory_gib" else fail_src
        return C.check("memory", C.FAIL, expected, _gib(memory),
                       f"Give the host at least {_fmt_num(fail)} GiB of memory, or relax the threshold for a "
                       f"trial run ({relax}).")
    if gib < warn * 0.95:
        return C.check("memory", C.WARN, expected, _gib(memory),
                       f"Gitpod recommends {_fmt_num(warn)} GiB for this node's workloads ({warn_src}).")
    return C.check("memory", C.PASS, expected, _gib(memory))


def eval_disk(facts, opts):
    path, free = facts.get("data_dir", opts["data_dir"]), facts.get("disk_free_bytes")
    fail, warn = opts["min_disk_gib"], opts["recommended_disk_gib"]
    expected = f">= {_fmt_num(fail)} GiB free under {opts['data_dir']}" + (
        f" (recommended >= {_fmt_num(warn)} GiB)" if warn > fail else "")
    if free is None:
        return C.check("disk", C.FAIL, expected, "unknown", f"Could not stat {path}.")
    # Whole GiB: free space moves all the time, and the report should not change with every write.
    actual = f"{free // GIB} GiB free on {path}"
    if free < fail * GIB:
        return C.check("disk", C.FAIL, expected, actual,
                       f"Free space under {path} (images, workspaces and k3s data live there), "
                       "or lower preflight_min_disk_gib.")
    if free < warn * GIB:
        return C.check("disk", C.WARN, expected, actual,
                       f"Gitpod's test VMs used {_fmt_num(warn)} GB disks; workspaces and images fill disks fast "
                       "(preflight_recommended_disk_gib).")
    return C.check("disk", C.PASS, expected, actual)


def eval_swap(facts, opts):
    swap = facts.get("swap_bytes")
    if swap is None:
        return C.check("swap", C.WARN, "swap off", "unknown", "Could not read SwapTotal from /proc/meminfo.")
    if swap > 0:
        return C.check("swap", C.WARN, "swap off", f"{_gib(swap)} swap",
                       "Kubernetes memory limits assume no swap: `swapoff -a` and remove swap from /etc/fstab.")
    return C.check("swap", C.PASS, "swap off", "off")


def eval_cgroup(facts, opts):
    version = facts.get("cgroup", "none")
    expected = "cgroup v1, hybrid or v2 mounted"
    if version == "none":
        return C.check("cgroup", C.FAIL, expected, "no cgroup filesystem mounted",
                       "Mount cgroups (systemd does this at boot); containers cannot run without them.")
    return C.check("cgroup", C.PASS, expected, version)


def eval_systemd(facts, opts):
    info = facts.get("systemd") or {}
    pid1 = info.get("pid1") or "unknown"
    if info.get("booted"):
        return C.check("systemd", C.PASS, "systemd as init", f"systemd (PID 1: {pid1})")
    return C.check("systemd", C.FAIL, "systemd as init", f"PID 1 is {pid1}, /run/systemd/system missing",
                   "Gitpod's ws-daemon drives the host through systemctl and k3s runs as a systemd service: "
                   "boot the host with systemd (or add 'systemd' to preflight_warn_only to try anyway).")


def eval_kernel_features(facts, opts):
    features = facts.get("kernel_features") or {}
    workspace = "workspace" in opts["workloads"]
    groups = [g for g in FEATURE_GROUPS if workspace or not g["workspace"]]
    expected = ", ".join(" or ".join(g["any_of"]) for g in groups)
    missing, found = [], []
    for group in groups:
        present = [f for f in group["any_of"] if (features.get(f) or {}).get("state") in PRESENT]
        if present:
            found.extend(f"{f} ({features[f]['state']})" for f in present)
        else:
            missing.append(" or ".join(group["any_of"]))
    if missing:
        modules = [g["any_of"][0] for g in groups if " or ".join(g["any_of"]) in missing]
        return C.check("kernel_features", C.FAIL, expected, "missing: " + ", ".join(missing),
                       "Use a kernel that has these features (built in or as modules, e.g. Ubuntu's "
                       f"linux-modules-extra-$(uname -r)); check with `modprobe {' '.join(modules)}`.")
    return C.check("kernel_features", C.PASS, expected, ", ".join(found))


def eval_containerd(facts, opts):
    info = facts.get("containerd") or {}
    expected = f">= {opts['min_containerd_version']}"
    if not info.get("installed"):
        if opts["require_containerd"]:
            return C.check("containerd", C.FAIL, expected, "not installed",
                           "Install containerd (the containerd role does) or use k3s's embedded containerd.")
        return C.check("containerd", C.PASS, expected + " when installed", "not installed yet")
    if not info.get("version"):
        return C.check("containerd", C.FAIL, expected, info.get("output") or "no version output",
                       f"Could not read the version of {info.get('path')}: {info.get('error')}")
    if versions.at_least(info["version"], opts["min_containerd_version"]):
        return C.check("containerd", C.PASS, expected, info["version"])
    return C.check("containerd", C.FAIL, expected, f"{info['version']} ({info.get('path')})",
                   f"Upgrade containerd to {opts['min_containerd_version']} or newer, or remove it and let the "
                   "containerd role install a current one.")


def eval_ports(facts, opts):
    busy = facts.get("ports") or []
    expected = "free: " + ", ".join(f"{p}/{proto}" for p, proto in opts["ports"])
    if not busy:
        return C.check("ports", C.PASS, expected, "all free")
    expected_owners = set(opts["port_owners_expected"])
    foreign, own = [], []
    for entry in busy:
        label = f"{entry['port']}/{entry['proto']} by {', '.join(entry['owners']) or 'unknown process'}"
        owners = entry["owners"]
        if owners and all(o in expected_owners or o.startswith("calico") or o.startswith("k3s") for o in owners):
            own.append(label)
        else:
            foreign.append(label)
    actual = "in use: " + "; ".join(foreign + own)
    if foreign:
        return C.check("ports", C.FAIL, expected, actual,
                       "Stop what listens there (see `ss -lntup`) or move it: k3s and Calico need these ports.")
    return C.check("ports", C.WARN, expected, actual,
                   "Already served by k3s/Calico: expected on a node that runs the cluster already.")


def eval_usr_src(facts, opts):
    if "workspace" not in opts["workloads"]:
        return C.check("usr_src", C.PASS, "/usr/src on workspace nodes", "not a workspace node")
    if facts.get("usr_src"):
        return C.check("usr_src", C.PASS, "/usr/src exists", "present")
    return C.check("usr_src", C.FAIL, "/usr/src exists", "missing",
                   "Gitpod's ws-daemon mounts /usr/src to build shiftfs: `mkdir -p /usr/src`.")


def eval_kernel_headers(facts, opts):
    release = facts.get("kernel", "")
    expected = f"headers for {release}"
    if "workspace" not in opts["workloads"]:
        return C.check("kernel_headers", C.PASS, expected + " on workspace nodes", "not a workspace node")
    if facts.get("kernel_headers"):
        return C.check("kernel_headers", C.PASS, expected, "present")
    return C.check("kernel_headers", C.WARN, expected, "missing",
                   f"shiftfs is built with DKMS: install linux-headers-{release} "
                   "(not needed when workspaces use fuse-overlayfs).")


EVALUATORS = {
    "os": eval_os,
    "kernel": eval_kernel,
    "vcpus": eval_vcpus,
    "memory": eval_memory,
    "disk": eval_disk,
    "swap": eval_swap,
    "cgroup": eval_cgroup,
    "systemd": eval_systemd,
    "kernel_features": eval_kernel_features,
    "containerd": eval_containerd,
    "ports": eval_ports,
    "usr_src": eval_usr_src,
    "kernel_headers": eval_kernel_headers,
}


def run(probe, options):
    """normalize, collect, evaluate: {facts, checks, passed, counts, msg}. Raises OptionError."""
    opts = normalize_options(options)
    facts = collect(probe, opts)
    results = evaluate(facts, opts)
    return {
        "facts": facts,
        "checks": results,
        "passed": C.passed(results),
        "counts": C.counts(results),
        "msg": C.failure_message(results) or f"{len(results)} host check(s): "
        + ", ".join(f"{n} {s}" for s, n in C.counts(results).items()),
    }
