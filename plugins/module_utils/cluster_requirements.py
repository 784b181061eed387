# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Gitpod's cluster requirements, evaluated on the API objects ``kubectl get -o json`` returns.

What Gitpod's installer checked (``gitpod-installer validate cluster``) and its KOTS preflight,
as ``{id, status, expected, actual, hint}`` checks (module_utils.checks). :func:`gather` reads the
cluster through module_utils.kubectl; :func:`evaluate` is pure and works on recorded objects, so
the unit tests feed it fixtures without a cluster.

Per-node checks are also folded into one cluster check each (status = the worst node), so
``checks`` alone decides whether the cluster passes and ``node_checks`` keeps the detail.
"""

from __future__ import annotations

import json
import re
from copy import deepcopy

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import checks as ck
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import gitpod_constants
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils.versions import (
    VersionError, format_version, parse_kernel, parse_version)

# Gitpod's constants and labels: the module requires them (the cluster_validation role passes the
# common role's values); direct calls (unit tests) fall back to gitpod_constants.
DEFAULT_LABELS = dict(gitpod_constants.LABELS)
DEFAULT_REQUIRED_LABELS = list(gitpod_constants.REQUIRED_LABELS)

# Resource profiles: which label keys put a node in which profile. Every node is in "any".
PROFILE_LABEL_KEYS = {
    "meta": ["meta"],
    "ide": ["ide"],
    "workspace": ["workspace_services", "workspace_regular", "workspace_headless"],
}
PROFILES = ("any", "meta", "ide", "workspace")
THRESHOLD_KEYS = ("fail_vcpus", "warn_vcpus", "fail_memory", "warn_memory")

# GITPOD.md: vCPU fail < 2 on any node, warn < 4 (IDE nodes exempt); memory per label (KOTS "G"
# quantities: 16G = 16e9 bytes, so a machine sold as 16 GB passes). "0" disables a threshold.
DEFAULT_THRESHOLDS = {
    "any": {"fail_vcpus": 2, "warn_vcpus": 0, "fail_memory": "0", "warn_memory": "0"},
    "meta": {"fail_vcpus": 2, "warn_vcpus": 4, "fail_memory": "8G", "warn_memory": "16G"},
    "ide": {"fail_vcpus": 2, "warn_vcpus": 0, "fail_memory": "4G", "warn_memory": "0"},
    "workspace": {"fail_vcpus": 2, "warn_vcpus": 4, "fail_memory": "16G", "warn_memory": "0"},
}

DEFAULT_OS_IMAGES = gitpod_constants.os_images()
DEFAULT_CERT_MANAGER_CRDS = ["certificates.cert-manager.io", "issuers.cert-manager.io",
                             "clusterissuers.cert-manager.io"]
DEFAULT_SECRET_KEYS = {
    "database": ["encryptionKeys", "host", "password", "port", "username"],
    "storage": ["accessKeyId", "secretAccessKey"],
    "registry": [".dockerconfigjson"],
    "tls": ["tls.crt", "tls.key"],
}

DEFAULT_OPTIONS = {
    "min_kubernetes_version": gitpod_constants.MIN_KUBERNETES,
    "min_kernel_version": gitpod_constants.MIN_KERNEL,
    "min_containerd_version": gitpod_constants.MIN_CONTAINERD,
    "os_images": DEFAULT_OS_IMAGES,
    "os_image_status": ck.FAIL,
    "labels": DEFAULT_LABELS,
    "required_labels": DEFAULT_REQUIRED_LABELS,
    "thresholds": DEFAULT_THRESHOLDS,
    "calico_namespace": "calico-system",
    "calico_daemonset": "calico-node",
    "cert_manager_namespace": "cert-manager",
    "cert_manager_webhook": "cert-manager-webhook",
    "cert_manager_crds": DEFAULT_CERT_MANAGER_CRDS,
    "cluster_issuer": "",
    "namespace": "gitpod",
    "workspace_pods": "report",
    "secrets": [],
}
# What workspace_pods may be set to: "fail" (before an upgrade or reset: running workspaces would
# be stopped) or "report" (a warning naming them).
WORKSPACE_POD_MODES = (ck.FAIL, "report")
# Gitpod labels every workspace pod (regular and prebuild) component=workspace.
WORKSPACE_SELECTOR = "component=workspace"
# Pod phases that have nothing left to stop.
FINISHED_PHASES = ("Succeeded", "Failed")
OPENSHIFT_NODE_LABEL_PREFIX = "node.openshift.io/"

DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                             "storageclass.beta.kubernetes.io/is-default-class")
POD_SECURITY_ENFORCE = "pod-security.kubernetes.io/enforce"
SVCLB_LABEL = "svccontroller.k3s.cattle.io/svcname"
K3S_NODE_ARGS = "k3s.io/node-args"

_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:[eE]([+-]?\d+))?(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_MULTIPLIERS = {
    None: 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60,
}


class ConfigError(ValueError):
    """Bad option: the message names the option, the value given and what is allowed."""


# ---------------------------------------------------------------- parsing helpers

def parse_quantity(value, what="quantity"):
    """Parse a Kubernetes quantity (``16331164Ki``, ``16G``, ``3500m``, ``8``) into a float."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: {value!r} is not a quantity")
    if isinstance(value, (int, float)):
        return float(value)
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise ValueError(f"{what}: {value!r} is not a Kubernetes quantity (e.g. 16Gi, 16G, 3500m, 4)")
    number = float(match.group(1)) * (10 ** int(match.group(2)) if match.group(2) else 1)
    return number * _MULTIPLIERS[match.group(3)]


def format_memory(num_bytes):
    """``17179869184`` -> ``16.0 GiB (17.2 G)``."""
    return f"{num_bytes / 2 ** 30:.1f} GiB ({num_bytes / 1e9:.1f} G)"


def format_cpus(cpus):
    return f"{cpus:g}"


def _conditions(obj):
    return {c.get("type"): c for c in ((obj or {}).get("status") or {}).get("conditions") or []}


def _condition_true(obj, kind):
    return (_conditions(obj).get(kind) or {}).get("status") == "True"


def _meta(obj):
    return (obj or {}).get("metadata") or {}


def _name(obj):
    return _meta(obj).get("name", "")


def _ns_name(obj):
    meta = _meta(obj)
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def secret_summary(secret):
    """Keep only what the checks need from a Secret: never its values."""
    if secret is None:
        return None
    keys = set((secret.get("data") or {}).keys()) | set((secret.get("stringData") or {}).keys())
    return {"name": _name(secret), "namespace": _meta(secret).get("namespace", ""),
            "type": secret.get("type", ""), "keys": sorted(keys)}


# ---------------------------------------------------------------- options

def _check_number(option, value, allow_zero=True):
    if isinstance(value, bool):
        raise ConfigError(f"{option} = {value!r} is not a number; allowed: a number >= 0")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{option} = {value!r} is not a number; allowed: a number >= 0") from None
    if number < 0 or (number == 0 and not allow_zero):
        raise ConfigError(f"{option} = {value!r} is negative; allowed: a number >= 0 (0 disables the threshold)")
    return number


def _check_memory(option, value):
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
        return 0.0
    text = str(value).strip()
    if text == "0":
        return 0.0
    if not re.search(r"[A-Za-z]$", text):
        raise ConfigError(f"{option} = {value!r} has no unit; allowed: a quantity such as 16G (16e9 bytes, as in "
                          "Gitpod's KOTS preflight) or 16Gi, or 0 to disable the threshold")
    try:
        number = parse_quantity(text, option)
    except ValueError:
        raise ConfigError(f"{option} = {value!r} is not a Kubernetes quantity; allowed: e.g. 16G, 16Gi, 512Mi, "
                          "or 0 to disable the threshold") from None
    if number < 0:
        raise ConfigError(f"{option} = {value!r} is negative; allowed: a quantity >= 0")
    return number


def merge_thresholds(given):
    """Defaults overlaid with ``given`` (partial dicts are fine), validated.

    Returns ``{profile: {fail_vcpus, warn_vcpus, fail_memory, warn_memory}}`` with numbers
    (memory in bytes) plus the original text under ``*_text`` for messages.
    """
    given = given or {}
    if not isinstance(given, dict):
        raise ConfigError(f"thresholds = {given!r} is not a mapping; allowed: {{profile: {{threshold: value}}}} "
                          f"with profiles {', '.join(PROFILES)}")
    unknown = sorted(set(given) - set(PROFILES))
    if unknown:
        raise ConfigError(f"thresholds: unknown profile(s) {', '.join(unknown)}; allowed: {', '.join(PROFILES)}")
    out = {}
    for profile in PROFILES:
        raw = dict(DEFAULT_THRESHOLDS[profile])
        over = given.get(profile) or {}
        if not isinstance(over, dict):
            raise ConfigError(f"thresholds.{profile} = {over!r} is not a mapping; allowed keys: {', '.join(THRESHOLD_KEYS)}")
        bad = sorted(set(over) - set(THRESHOLD_KEYS))
        if bad:
            raise ConfigError(f"thresholds.{profile}: unknown key(s) {', '.join(bad)}; allowed: {', '.join(THRESHOLD_KEYS)}")
        raw.update({k: v for k, v in over.items() if v is not None})
        out[profile] = {
            "fail_vcpus": _check_number(f"thresholds.{profile}.fail_vcpus", raw["fail_vcpus"]),
            "warn_vcpus": _check_number(f"thresholds.{profile}.warn_vcpus", raw["warn_vcpus"]),
            "fail_memory": _check_memory(f"thresholds.{profile}.fail_memory", raw["fail_memory"]),
            "warn_memory": _check_memory(f"thresholds.{profile}.warn_memory", raw["warn_memory"]),
            "fail_memory_text": str(raw["fail_memory"]),
            "warn_memory_text": str(raw["warn_memory"]),
        }
    return out


def normalise_options(params):
    """Module parameters (None = default) to validated options for :func:`evaluate`."""
    opts = deepcopy(DEFAULT_OPTIONS)
    for key, value in (params or {}).items():
        if key in opts and value is not None:
            opts[key] = value
    for key in ("min_kubernetes_version", "min_kernel_version", "min_containerd_version"):
        try:
            opts[key + "_tuple"] = parse_version(opts[key])
        except VersionError as exc:
            raise ConfigError(f"{key} = {opts[key]!r} is not a version; allowed: e.g. 1.21.0 ({exc})") from None
    if opts["os_image_status"] not in (ck.FAIL, ck.WARN):
        raise ConfigError(f"os_image_status = {opts['os_image_status']!r}; allowed: fail, warn")
    if opts["workspace_pods"] not in WORKSPACE_POD_MODES:
        raise ConfigError(f"workspace_pods = {opts['workspace_pods']!r}; allowed: {', '.join(WORKSPACE_POD_MODES)}")
    labels = opts["labels"]
    if not isinstance(labels, dict) or not labels:
        raise ConfigError(f"labels = {labels!r} is not a mapping of label key to label name")
    missing = [k for k in opts["required_labels"] if k not in labels]
    if missing:
        raise ConfigError(f"required_labels names {', '.join(missing)}; allowed: keys of labels ({', '.join(sorted(labels))})")
    opts["thresholds"] = merge_thresholds(params.get("thresholds") if params else None)
    secrets = []
    for index, secret in enumerate(opts["secrets"] or []):
        if not isinstance(secret, dict) or not secret.get("name"):
            raise ConfigError(f"secrets[{index}] = {secret!r}; allowed: {{name: <Secret name>, keys: [<data key>, ...]}}")
        keys = secret.get("keys") or []
        if not isinstance(keys, list) or not keys:
            raise ConfigError(f"secrets[{index}].keys = {keys!r}; allowed: a non-empty list of data keys")
        secrets.append({"name": secret["name"], "keys": [str(k) for k in keys],
                        "namespace": secret.get("namespace") or opts["namespace"]})
    opts["secrets"] = secrets
    return opts


# ---------------------------------------------------------------- gathering

def gather(kubectl, opts):
    """Read every object the checks need. Secrets are reduced to their key names at once."""
    data = {}
    data["version"] = kubectl.json(["version"])
    data["nodes"] = kubectl.items("nodes", missing_ok=False)
    data["crds"] = kubectl.items("customresourcedefinitions", missing_ok=False)
    data["deployments"] = kubectl.items("deployments", all_namespaces=True, missing_ok=False)
    data["daemonsets"] = kubectl.items("daemonsets", all_namespaces=True, missing_ok=False)
    data["calico_pods"] = kubectl.items("pods", namespace=opts["calico_namespace"],
                                        selector=f"k8s-app={opts['calico_daemonset']}", missing_ok=False)
    data["storageclasses"] = kubectl.items("storageclasses", missing_ok=False)
    data["namespace"] = kubectl.get("namespace", name=opts["namespace"], missing_ok=True)
    # No namespace, no workspace pods: the call is saved.
    data["workspace_pods"] = (kubectl.items("pods", namespace=opts["namespace"], selector=WORKSPACE_SELECTOR,
                                            missing_ok=False)
                              if data["namespace"] is not None else [])
    data["services"] = kubectl.items("services", all_namespaces=True, missing_ok=False)
    crd_names = {_name(c) for c in data["crds"] or []}
    data["clusterissuers"] = (kubectl.items("clusterissuers.cert-manager.io")
                              if "clusterissuers.cert-manager.io" in crd_names else None)
    data["secrets"] = {}
    for secret in opts["secrets"]:
        got = kubectl.get("secret", name=secret["name"], namespace=secret["namespace"], missing_ok=True, sensitive=True)
        data["secrets"][f"{secret['namespace']}/{secret['name']}"] = secret_summary(got)
    return data


# ---------------------------------------------------------------- per-node checks

def _node_info(node):
    return ((node or {}).get("status") or {}).get("nodeInfo") or {}


def _version_check(check_id, text, minimum, what, hint):
    expected = f">= {format_version(minimum)}"
    try:
        found = parse_version(text, what)
    except VersionError as exc:
        return ck.check(check_id, ck.FAIL, expected, text or "(none)", f"{exc}; {hint}")
    status = ck.PASS if found >= minimum else ck.FAIL
    return ck.check(check_id, status, expected, text, hint)


def check_node_ready(node):
    cond = _conditions(node).get("Ready") or {}
    if cond.get("status") == "True":
        return ck.check("ready", ck.PASS, "Ready=True", "Ready")
    actual = f"Ready={cond.get('status', 'missing')}"
    if cond.get("reason"):
        actual += f" ({cond['reason']}" + (f": {cond['message']}" if cond.get("message") else "") + ")"
    return ck.check("ready", ck.FAIL, "Ready=True", actual,
                    "check the k3s service on the node (journalctl -u k3s / k3s-agent) and the CNI (Calico)")


def check_kubelet_version(node, opts):
    return _version_check("kubelet_version", _node_info(node).get("kubeletVersion", ""),
                          opts["min_kubernetes_version_tuple"], "kubelet",
                          "upgrade k3s on the node (playbooks/upgrade.yml) to a release >= the minimum")


def check_container_runtime(node, opts):
    runtime = _node_info(node).get("containerRuntimeVersion", "")
    minimum = opts["min_containerd_version_tuple"]
    expected = f"containerd://>= {format_version(minimum)}"
    kind, sep, version = runtime.partition("://")
    if not sep or kind != "containerd":
        return ck.check("container_runtime", ck.FAIL, expected, runtime or "(none)",
                        "Gitpod's ws-daemon needs containerd: run k3s without --docker (its embedded containerd or "
                        "the system containerd with gitpod_k3s_containerd_mode)")
    try:
        found = parse_version(version, "containerd")
    except VersionError as exc:
        return ck.check("container_runtime", ck.FAIL, expected, runtime, f"{exc}; upgrade containerd")
    status = ck.PASS if found >= minimum else ck.FAIL
    return ck.check("container_runtime", status, expected, runtime, "upgrade containerd (or k3s, for its embedded one)")


def check_kernel(node, opts):
    text = _node_info(node).get("kernelVersion", "")
    minimum = opts["min_kernel_version_tuple"]
    expected = f">= {format_version(minimum)}"
    hint = "upgrade the kernel (Ubuntu: linux-generic-hwe-20.04 or a newer release) and reboot"
    try:
        found = parse_kernel(text)
    except VersionError as exc:
        return ck.check("kernel_version", ck.FAIL, expected, text or "(none)", f"{exc}; {hint}")
    return ck.check("kernel_version", ck.PASS if found >= minimum else ck.FAIL, expected, text, hint)


def check_os_image(node, opts):
    image = _node_info(node).get("osImage", "")
    allowed = list(opts["os_images"] or [])
    expected = "one of: " + ", ".join(allowed) if allowed else "any"
    if not allowed or any(image.startswith(prefix) for prefix in allowed):
        return ck.check("os_image", ck.PASS, expected, image)
    return ck.check("os_image", opts["os_image_status"], expected, image or "(none)",
                    "Gitpod Self-Hosted was tested on Ubuntu; reinstall the node or extend os_images "
                    "(and set os_image_status: warn) to accept it")


def node_profiles(node, opts):
    """Profiles a node is in: ``any`` plus each profile one of whose labels it carries with value true."""
    labels = _meta(node).get("labels") or {}
    names = opts["labels"]
    out = ["any"]
    for profile in ("meta", "ide", "workspace"):
        if any(labels.get(names[k]) == "true" for k in PROFILE_LABEL_KEYS[profile] if k in names):
            out.append(profile)
    return out


def _threshold_text(opts, profiles, resource):
    parts = []
    for profile in profiles:
        t = opts["thresholds"][profile]
        if resource == "vcpus":
            fail, warn = t["fail_vcpus"], t["warn_vcpus"]
            bits = ([f"fail < {fail:g}"] if fail else []) + ([f"warn < {warn:g}"] if warn else [])
        else:
            bits = (([f"fail < {t['fail_memory_text']}"] if t["fail_memory"] else [])
                    + ([f"warn < {t['warn_memory_text']}"] if t["warn_memory"] else []))
        if bits:
            parts.append(f"{profile}: {', '.join(bits)}")
    return "; ".join(parts) or "no threshold"


def check_resources(node, opts):
    """vCPU and memory checks against the thresholds of every profile the node is in."""
    capacity = ((node or {}).get("status") or {}).get("capacity") or {}
    profiles = node_profiles(node, opts)
    out = []
    for resource, cap_key, fmt in (("vcpus", "cpu", format_cpus), ("memory", "memory", format_memory)):
        expected = _threshold_text(opts, profiles, resource)
        raw = capacity.get(cap_key)
        try:
            value = parse_quantity(raw, f"capacity.{cap_key}")
        except ValueError as exc:
            out.append(ck.check(resource, ck.FAIL, expected, raw if raw is not None else "(none)", str(exc)))
            continue
        status, reasons = ck.PASS, []
        for profile in profiles:
            t = opts["thresholds"][profile]
            fail, warn = t[f"fail_{resource}"], t[f"warn_{resource}"]
            if fail and value < fail:
                status = ck.FAIL
                reasons.append(profile)
            elif warn and value < warn and status != ck.FAIL:
                status = ck.WARN
                reasons.append(profile)
        what = "CPUs" if resource == "vcpus" else "memory"
        hint = (f"give the node more {what} or move it to a pool with lower requirements "
                f"(below the {'/'.join(reasons)} threshold)") if reasons else ""
        out.append(ck.check(resource, status, expected, fmt(value), hint))
    return out


def check_calico_node(node, calico_pods, opts):
    name = _name(node)
    pods = [p for p in calico_pods or [] if ((p.get("spec") or {}).get("nodeName")) == name]
    expected = f"a Ready {opts['calico_daemonset']} pod"
    if not pods:
        return ck.check("calico_node", ck.FAIL, expected, "no pod",
                        f"Calico is not running on this node: check the {opts['calico_daemonset']} DaemonSet in "
                        f"{opts['calico_namespace']} and its tolerations")
    ready = [p for p in pods if _condition_true(p, "Ready")]
    if ready:
        return ck.check("calico_node", ck.PASS, expected, "Ready")
    phases = ", ".join(f"{_name(p)} {((p.get('status') or {}).get('phase') or '?')}" for p in pods)
    return ck.check("calico_node", ck.FAIL, expected, f"{phases}, not Ready",
                    f"kubectl -n {opts['calico_namespace']} describe pod {_name(pods[0])}; "
                    f"kubectl -n {opts['calico_namespace']} logs {_name(pods[0])} -c calico-node")


def node_checks(node, data, opts):
    out = [check_node_ready(node), check_kubelet_version(node, opts), check_container_runtime(node, opts),
           check_kernel(node, opts), check_os_image(node, opts)]
    out += check_resources(node, opts)
    out.append(check_calico_node(node, data.get("calico_pods"), opts))
    return out


def aggregate(check_id, per_node, expected=None):
    """Fold one check over every node: the worst status; failing nodes named in ``actual``."""
    if not per_node:
        return ck.check(check_id, ck.FAIL, expected or "", "no nodes", "the cluster reports no nodes")
    statuses = [c["status"] for _node, c in per_node]
    status = ck.FAIL if ck.FAIL in statuses else ck.WARN if ck.WARN in statuses else ck.PASS
    expectations = sorted({c["expected"] for _node, c in per_node})
    if expected is None:
        expected = expectations[0] if len(expectations) == 1 else "per node: " + " | ".join(expectations)
    if status == ck.PASS:
        groups = {}
        for _node, c in per_node:
            groups[c["actual"]] = groups.get(c["actual"], 0) + 1
        actual = ", ".join(f"{value} ({_plural(n, 'node')})" for value, n in sorted(groups.items()))
        return ck.check(check_id, status, expected, actual)
    bad = [(n, c) for n, c in per_node if c["status"] != ck.PASS]
    actual = "; ".join(f"{n}: {c['actual']} ({c['status']})" for n, c in bad)
    return ck.check(check_id, status, expected, actual, bad[0][1]["hint"])


# ---------------------------------------------------------------- cluster checks

def check_server_version(version_doc, opts):
    server = (version_doc or {}).get("serverVersion") or {}
    return _version_check("kubernetes_version", server.get("gitVersion", ""), opts["min_kubernetes_version_tuple"],
                          "Kubernetes server", "upgrade k3s on the servers (playbooks/upgrade.yml)")


def check_labels(nodes, opts):
    out = []
    for key in opts["required_labels"]:
        label = opts["labels"][key]
        carrying = sorted(_name(n) for n in nodes or [] if (_meta(n).get("labels") or {}).get(label) == "true")
        other = sorted(f"{_name(n)}={(_meta(n).get('labels') or {}).get(label)}" for n in nodes or []
                       if label in (_meta(n).get("labels") or {}) and _name(n) not in carrying)
        expected = f"{label}=true on >= 1 node"
        if carrying:
            out.append(ck.check(f"label_{key}", ck.PASS, expected, ", ".join(carrying)))
        else:
            actual = "no node" + (f" (other values: {', '.join(other)})" if other else "")
            out.append(ck.check(f"label_{key}", ck.FAIL, expected, actual,
                                "put a host in the inventory group that gives this label (gitpod_k3s_label_groups) "
                                "and run playbooks/labels.yml"))
    return out


def _find(objects, namespace, name):
    for obj in objects or []:
        meta = _meta(obj)
        if meta.get("name") == name and meta.get("namespace") == namespace:
            return obj
    return None


def check_calico_daemonset(data, opts):
    ns, name = opts["calico_namespace"], opts["calico_daemonset"]
    expected = f"DaemonSet {ns}/{name}: ready == desired"
    ds = _find(data.get("daemonsets"), ns, name)
    if ds is None:
        return ck.check("calico", ck.FAIL, expected, "not found",
                        "install Calico (playbooks/k3s.yml) or set calico_namespace to where it runs (kube-system for "
                        "the manifest install)")
    st = ds.get("status") or {}
    desired, ready = int(st.get("desiredNumberScheduled") or 0), int(st.get("numberReady") or 0)
    actual = f"{ready}/{desired} ready"
    if desired > 0 and ready == desired:
        return ck.check("calico", ck.PASS, expected, actual)
    return ck.check("calico", ck.FAIL, expected, actual,
                    f"kubectl -n {ns} get pods -l k8s-app={name} -o wide; a node without a Ready Calico pod has no "
                    "pod network")


def check_cert_manager_crds(crds, opts):
    wanted = list(opts["cert_manager_crds"])
    expected = "established: " + ", ".join(wanted)
    by_name = {_name(c): c for c in crds or []}
    missing = [n for n in wanted if n not in by_name]
    pending = [n for n in wanted if n in by_name and not _condition_true(by_name[n], "Established")]
    if not missing and not pending:
        return ck.check("cert_manager_crds", ck.PASS, expected, f"{len(wanted)} of {len(wanted)} established")
    parts = ([f"missing: {', '.join(missing)}"] if missing else []) + (
        [f"not established: {', '.join(pending)}"] if pending else [])
    return ck.check("cert_manager_crds", ck.FAIL, expected, "; ".join(parts),
                    "install cert-manager with its CRDs (playbooks/components.yml, or crds.enabled=true with Helm)")


def check_cert_manager_webhook(deployments, opts):
    ns, name = opts["cert_manager_namespace"], opts["cert_manager_webhook"]
    expected = f"Deployment {ns}/{name} Available"
    dep = _find(deployments, ns, name)
    if dep is None:
        return ck.check("cert_manager_webhook", ck.FAIL, expected, "not found",
                        "install cert-manager (playbooks/components.yml) or set cert_manager_namespace")
    st = dep.get("status") or {}
    actual = f"{int(st.get('readyReplicas') or 0)}/{int((dep.get('spec') or {}).get('replicas', 1) or 0)} ready"
    if _condition_true(dep, "Available") and int(st.get("readyReplicas") or 0) > 0:
        return ck.check("cert_manager_webhook", ck.PASS, expected, f"Available, {actual}")
    return ck.check("cert_manager_webhook", ck.FAIL, expected, f"not Available, {actual}",
                    f"kubectl -n {ns} describe deployment {name}; Certificates cannot be issued until it is up")


def check_cluster_issuer(issuers, opts):
    wanted = opts["cluster_issuer"]
    expected = f"ClusterIssuer {wanted} Ready" if wanted else "a Ready ClusterIssuer"
    if issuers is None:
        return ck.check("cluster_issuer", ck.FAIL, expected, "resource type clusterissuers unknown",
                        "install cert-manager with its CRDs first")
    ready = sorted(_name(i) for i in issuers if _condition_true(i, "Ready"))
    names = sorted(_name(i) for i in issuers)
    if wanted:
        if wanted in ready:
            return ck.check("cluster_issuer", ck.PASS, expected, f"{wanted} Ready")
        actual = f"{wanted} not Ready" if wanted in names else f"{wanted} not found (found: {', '.join(names) or 'none'})"
        return ck.check("cluster_issuer", ck.FAIL, expected, actual,
                        f"kubectl describe clusterissuer {wanted}; create it with playbooks/components.yml")
    if ready:
        return ck.check("cluster_issuer", ck.PASS, expected, ", ".join(ready))
    if names:
        return ck.check("cluster_issuer", ck.WARN, expected, f"none Ready ({', '.join(names)})",
                        "kubectl describe clusterissuer; Gitpod's certificates will not be issued")
    return ck.check("cluster_issuer", ck.WARN, expected, "none",
                    "configure a ClusterIssuer (playbooks/components.yml) unless you bring your own certificates")


def check_default_storage_class(classes):
    expected = "exactly one default StorageClass"
    defaults = sorted(_name(c) for c in classes or []
                      if any((_meta(c).get("annotations") or {}).get(a) == "true" for a in DEFAULT_CLASS_ANNOTATIONS))
    names = sorted(_name(c) for c in classes or [])
    if len(defaults) == 1:
        return ck.check("default_storage_class", ck.PASS, expected, defaults[0])
    if len(defaults) > 1:
        return ck.check("default_storage_class", ck.WARN, expected, f"{len(defaults)} defaults: {', '.join(defaults)}",
                        "keep one: kubectl patch storageclass NAME -p "
                        "'{\"metadata\":{\"annotations\":{\"storageclass.kubernetes.io/is-default-class\":\"false\"}}}'")
    return ck.check("default_storage_class", ck.FAIL, expected, f"none (classes: {', '.join(names) or 'none'})",
                    "mark one default: kubectl patch storageclass local-path -p "
                    "'{\"metadata\":{\"annotations\":{\"storageclass.kubernetes.io/is-default-class\":\"true\"}}}' "
                    "(k3s ships local-path unless --disable local-storage)")


def check_privileged_pods(namespace_obj, opts):
    ns = opts["namespace"]
    expected = f"namespace {ns}: Pod Security enforce absent or privileged"
    if namespace_obj is None:
        return ck.check("privileged_pods", ck.PASS, expected, f"namespace {ns} absent (created without a restriction)")
    level = (_meta(namespace_obj).get("labels") or {}).get(POD_SECURITY_ENFORCE)
    if level in (None, "", "privileged"):
        return ck.check("privileged_pods", ck.PASS, expected, f"enforce={level or 'unset'}")
    return ck.check("privileged_pods", ck.FAIL, expected, f"enforce={level}",
                    f"Gitpod's ws-daemon and workspaces run privileged: kubectl label namespace {ns} "
                    f"{POD_SECURITY_ENFORCE}=privileged --overwrite")


def check_namespace(namespace_obj, opts):
    ns = opts["namespace"]
    expected = f"namespace {ns} exists"
    if namespace_obj is None:
        return ck.check("namespace", ck.FAIL, expected, "not found",
                        f"run playbooks/components.yml (it creates the namespace), or kubectl create namespace {ns}; "
                        "Gitpod's installer installs into an existing namespace")
    phase = ((namespace_obj.get("status") or {}).get("phase")) or "Active"
    if phase != "Active":
        return ck.check("namespace", ck.FAIL, expected, f"{ns} is {phase}",
                        f"the namespace is being deleted: wait until kubectl get namespace {ns} no longer finds it, "
                        "then create it again (playbooks/components.yml)")
    return ck.check("namespace", ck.PASS, expected, f"{ns} Active")


def check_workspace_pods(pods, namespace_obj, opts):
    """Gitpod workspace pods (``component=workspace``) still running in Gitpod's namespace.

    A pod in phase Succeeded or Failed has nothing left to stop and does not count. With
    ``workspace_pods: fail`` (before an upgrade or reset) a running one fails the check; with
    ``report`` it is a warning.
    """
    ns = opts["namespace"]
    expected = f"no running pod labelled {WORKSPACE_SELECTOR} in namespace {ns}"
    if namespace_obj is None:
        return ck.check("workspace_pods", ck.PASS, expected, f"namespace {ns} absent: no workspace")
    mine = [p for p in pods or [] if _meta(p).get("namespace", ns) == ns]
    running = sorted(_name(p) for p in mine if ((p.get("status") or {}).get("phase")) not in FINISHED_PHASES)
    finished = len(mine) - len(running)
    done = f" ({_plural(finished, 'finished pod')} not counted)" if finished else ""
    if not running:
        return ck.check("workspace_pods", ck.PASS, expected, f"none running{done}")
    shown = ", ".join(running[:5]) + (f" and {len(running) - 5} more" if len(running) > 5 else "")
    actual = f"{_plural(len(running), 'workspace pod')} running: {shown}{done}"
    if opts["workspace_pods"] == ck.FAIL:
        return ck.check("workspace_pods", ck.FAIL, expected, actual,
                        "an upgrade or reset stops these workspaces and their users lose unsaved work: ask the users "
                        "to stop them (or stop them in Gitpod's admin dashboard) and run again; to go ahead anyway, "
                        "set workspace_pods: report")
    return ck.check("workspace_pods", ck.WARN, expected, actual,
                    "these workspaces stop when k3s is upgraded or reset on their node")


def _openshift_signs(data):
    """What marks an OpenShift cluster: API groups of *.openshift.io CRDs, node.openshift.io/ node labels."""
    groups = sorted({((c.get("spec") or {}).get("group")) or _name(c).split(".", 1)[-1]
                     for c in data.get("crds") or [] if "openshift" in (((c.get("spec") or {}).get("group")) or _name(c))})
    nodes = sorted(_name(n) for n in data.get("nodes") or []
                   if any(k.startswith(OPENSHIFT_NODE_LABEL_PREFIX) for k in _labels_of(n)))
    return groups, nodes


def check_distribution(data):
    expected = "not OpenShift"
    groups, nodes = _openshift_signs(data)
    if groups or nodes:
        signs = ([f"API groups {', '.join(groups)}"] if groups else []) + (
            [f"{OPENSHIFT_NODE_LABEL_PREFIX}* labels on {', '.join(nodes)}"] if nodes else [])
        return ck.check("distribution", ck.FAIL, expected, "OpenShift (" + "; ".join(signs) + ")",
                        "Gitpod Self-Hosted does not support OpenShift: use a k3s cluster (this collection) or "
                        "another supported distribution")
    server = ((data.get("version") or {}).get("serverVersion") or {}).get("gitVersion", "")
    k3s_nodes = [n for n in data.get("nodes") or [] if ((n.get("spec") or {}).get("providerID") or "").startswith("k3s://")]
    if "+k3s" in server or k3s_nodes:
        return ck.check("distribution", ck.PASS, expected, f"k3s ({server or 'version unknown'})")
    return ck.check("distribution", ck.PASS, expected, f"not OpenShift ({server or 'version unknown'})")


def _servicelb_disabled(args):
    """True when k3s server arguments disable ServiceLB (--disable servicelb, --disable=a,servicelb, --no-deploy)."""
    values = []
    for i, arg in enumerate(args):
        for flag in ("--disable", "--no-deploy"):
            if arg == flag and i + 1 < len(args):
                values.append(args[i + 1])
            elif arg.startswith(flag + "="):
                values.append(arg.split("=", 1)[1])
    return any("servicelb" in [v.strip() for v in value.split(",")] for value in values)


def k3s_servicelb_servers(nodes):
    """k3s server nodes whose arguments leave ServiceLB enabled."""
    out = []
    for node in nodes or []:
        raw = (_meta(node).get("annotations") or {}).get(K3S_NODE_ARGS)
        if not raw:
            continue
        try:
            args = json.loads(raw)
        except ValueError:
            continue
        if isinstance(args, list) and args and args[0] == "server" and not _servicelb_disabled(args):
            out.append(_name(node))
    return sorted(out)


def _labels_of(obj):
    return _meta(obj).get("labels") or {}


def other_lb_providers(data):
    """MetalLB or kube-vip controllers found among Deployments and DaemonSets."""
    found = set()
    for obj in (data.get("deployments") or []) + (data.get("daemonsets") or []):
        labels, name = _labels_of(obj), _name(obj)
        app = labels.get("app.kubernetes.io/name") or labels.get("app") or ""
        if app == "metallb" or name.startswith("metallb-"):
            found.add(f"MetalLB ({_ns_name(obj)})")
        elif app.startswith("kube-vip") or name.startswith("kube-vip"):
            found.add(f"kube-vip ({_ns_name(obj)})")
    return sorted(found)


def check_load_balancer(data):
    expected = "LoadBalancer Services get an address (k3s ServiceLB, MetalLB, kube-vip, ...)"
    services = [s for s in data.get("services") or [] if (s.get("spec") or {}).get("type") == "LoadBalancer"]

    def addresses(svc):
        ingress = (((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress")) or []
        return [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]

    served = [s for s in services if addresses(s)]
    svclb = sorted(_ns_name(d) for d in data.get("daemonsets") or [] if SVCLB_LABEL in _labels_of(d))
    servers = k3s_servicelb_servers(data.get("nodes"))
    others = other_lb_providers(data)
    providers = ((["k3s ServiceLB"] if svclb or servers else []) + others)
    if served:
        first = served[0]
        actual = f"{_ns_name(first)} has {', '.join(addresses(first))}"
        if len(served) > 1:
            actual += f" (+{_plural(len(served) - 1, 'more Service')})"
        if providers:
            actual += f" via {', '.join(providers)}"
        pending = [s for s in services if not addresses(s)]
        if pending:
            return ck.check("load_balancer", ck.WARN, expected,
                            f"{actual}; pending: {', '.join(_ns_name(s) for s in pending)}",
                            "a pending Service usually asks for a port another LoadBalancer Service already holds "
                            "(k3s ServiceLB binds host ports)")
        return ck.check("load_balancer", ck.PASS, expected, actual)
    if services:
        return ck.check("load_balancer", ck.FAIL, expected,
                        f"pending: {', '.join(_ns_name(s) for s in services)}"
                        + (f" (providers: {', '.join(providers)})" if providers else " (no provider found)"),
                        "no LoadBalancer address was assigned: keep k3s ServiceLB enabled (no --disable servicelb) "
                        "and its ports free, or install MetalLB")
    if providers:
        where = f" on {', '.join(servers)}" if servers and not svclb else ""
        return ck.check("load_balancer", ck.PASS, expected,
                        f"{', '.join(providers)}{where} (no LoadBalancer Service yet)")
    return ck.check("load_balancer", ck.FAIL, expected, "no provider: ServiceLB disabled or not k3s, no MetalLB/kube-vip",
                    "remove servicelb from k3s's disable list, or install a LoadBalancer provider such as MetalLB")


def check_secret(secret_opt, summary):
    ns, name, keys = secret_opt["namespace"], secret_opt["name"], secret_opt["keys"]
    check_id = f"secret_{name}"
    expected = f"Secret {ns}/{name} with keys {', '.join(keys)}"
    if summary is None:
        return ck.check(check_id, ck.FAIL, expected, "not found",
                        "run playbooks/components.yml, or create the Secret for the component you bring yourself")
    missing = [k for k in keys if k not in summary["keys"]]
    if missing:
        return ck.check(check_id, ck.FAIL, expected,
                        f"missing {', '.join(missing)} (has: {', '.join(summary['keys']) or 'no keys'})",
                        "recreate the Secret with every key Gitpod's installer reads")
    return ck.check(check_id, ck.PASS, expected, f"{summary.get('type') or 'Opaque'}, {_plural(len(keys), 'key')} present")


def node_facts(nodes, opts):
    """A flat summary per node for reports: role, versions, OS, capacity and Gitpod labels."""
    out = {}
    names = opts["labels"]
    for node in sorted(nodes or [], key=_name):
        info, labels = _node_info(node), _meta(node).get("labels") or {}
        capacity = ((node.get("status") or {}).get("capacity")) or {}
        try:
            memory = format_memory(parse_quantity(capacity.get("memory"), "memory"))
        except ValueError:
            memory = str(capacity.get("memory"))
        control_plane = labels.get("node-role.kubernetes.io/control-plane") == "true"
        out[_name(node)] = {
            "role": "server" if control_plane else "agent",
            "kubelet": info.get("kubeletVersion", ""),
            "runtime": info.get("containerRuntimeVersion", ""),
            "kernel": info.get("kernelVersion", ""),
            "os": info.get("osImage", ""),
            "vcpus": str(capacity.get("cpu", "")),
            "memory": memory,
            "gitpod_labels": ", ".join(k for k, name in names.items() if labels.get(name) == "true") or "none",
        }
    return out


def evaluate(data, opts):
    """Return ``(checks, node_checks)`` for gathered ``data`` and normalised ``opts``."""
    nodes = sorted(data.get("nodes") or [], key=_name)
    per_node = {_name(n): node_checks(n, data, opts) for n in nodes}

    def fold(check_id, expected=None):
        return aggregate(check_id, [(name, c) for name, cs in per_node.items() for c in cs if c["id"] == check_id],
                         expected)

    out = [
        check_server_version(data.get("version"), opts),
        check_distribution(data),
        fold("ready"),
        fold("kubelet_version"),
        fold("container_runtime"),
        fold("kernel_version"),
        fold("os_image"),
    ]
    out += check_labels(nodes, opts)
    out += [
        fold("vcpus", "per node, by label: " + _threshold_text(opts, PROFILES, "vcpus")),
        fold("memory", "per node, by label: " + _threshold_text(opts, PROFILES, "memory")),
        check_calico_daemonset(data, opts),
        fold("calico_node"),
        check_cert_manager_crds(data.get("crds"), opts),
        check_cert_manager_webhook(data.get("deployments"), opts),
        check_cluster_issuer(data.get("clusterissuers"), opts),
        check_default_storage_class(data.get("storageclasses")),
        check_namespace(data.get("namespace"), opts),
        check_privileged_pods(data.get("namespace"), opts),
        check_workspace_pods(data.get("workspace_pods"), data.get("namespace"), opts),
        check_load_balancer(data),
    ]
    for secret in opts["secrets"]:
        out.append(check_secret(secret, (data.get("secrets") or {}).get(f"{secret['namespace']}/{secret['name']}")))
    return out, per_node
