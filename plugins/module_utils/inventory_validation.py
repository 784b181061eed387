# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Every semantic and cross-variable rule on the collection's settings, in one place.

The inventory_check action (plugins/action/inventory_check.py) runs on the controller before any
host is contacted. It applies each role's argument spec (types, choices, list elements: the
shape of single variables), then calls :func:`check_host` once per host and role with the values
the host would get, and :func:`check_fleet` once with every host's values and the inventory
groups. A role used on its own calls the same action from its tasks/validate.yml.

Every rule returns a list of messages; each names the variable (or the host), the value given
and what is allowed. Secret values are never put in a message. The constants Gitpod sets
(minimum versions, known labels) arrive as settings of the common role (gitpod_k3s_*), not as
literals here.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import ipaddress
import json
import math
import os
import re

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import credentials, gitpod_constants, host_requirements, versions
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import k3s_flags

MISSING = object()

# --- name rules of the Kubernetes API server (apimachinery validation) ---------------------------
DNS1123_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# k3s release tags: v1.31.4+k3s1, v1.30.2-rc1+k3s2
K3S_VERSION_RE = re.compile(r"^v1\.(\d+)\.(\d+)(-rc\d+)?\+k3s\d+$")
CALICO_VERSION_RE = re.compile(r"^v\d+\.\d+\.\d+$")
CERT_MANAGER_VERSION_RE = re.compile(r"^v\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$")
# A taint as k3s' --node-taint takes it: key[=value]:Effect.
TAINT_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?)(=([-A-Za-z0-9_.]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$")
KUBELET_ARG_RE = re.compile(r"^[a-z][-a-z0-9]*=")
KERNEL_MODULE_RE = re.compile(r"^[A-Za-z0-9_-]+$")
SYSCTL_KEY_RE = re.compile(r"^[a-z0-9_][a-z0-9_.\-/]*$")
MYSQL_USER_RE = re.compile(r"^[A-Za-z0-9_]{1,32}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PORT_PROTO_RE = re.compile(r"^(\d{1,5})/(tcp|udp)$")
HOST_PORT_RE = re.compile(r"^(https?://)?[A-Za-z0-9.-]+(:\d+)?/?$")
UFW_PORT_RE = re.compile(r"^\d+(:\d+)?$")
DISTRIBUTION_RE = re.compile(r"^[a-z0-9._-]+(:[0-9][0-9.]*)?$")

# Calico IP pool encapsulations that route over BGP: the Tigera operator refuses them with BGP off
# (tigera/operator pkg/controller/installation/validation.go).
CALICO_BGP_ENCAPSULATIONS = ("IPIP", "IPIPCrossSubnet", "None")
# Options of config.yaml the k3s role owns; k3s_*_config_extra must not set them.
K3S_RESERVED_KEYS = ("token", "token-file", "agent-token", "agent-token-file", "server", "cluster-init", "flannel-backend",
                     "disable-network-policy", "cluster-cidr", "service-cidr", "container-runtime-endpoint", "node-name")
# Roles for which the inventory's groups must describe a cluster (servers, agents, Gitpod labels).
CLUSTER_ROLES = ("preflight", "k3s", "calico", "node_labels")
# ufw accepts at most 15 ports per rule (a range counts 2).
UFW_PORTS_PER_RULE = 15
# The preflight's workloads and profile thresholds: the host_requirements module's own.
PREFLIGHT_WORKLOADS = host_requirements.WORKLOADS
PREFLIGHT_PROFILE_KEYS = host_requirements.PROFILE_KEYS
ACME_CREDENTIALS = {
    "cloudflare": ("cert_manager_cloudflare_api_token",),
    "route53": ("cert_manager_route53_access_key_id", "cert_manager_route53_secret_access_key", "cert_manager_route53_region"),
    "clouddns": ("cert_manager_clouddns_project", "cert_manager_clouddns_service_account_json"),
}
# Gitpod's installer never takes a database name: it is always this one.
GITPOD_DATABASE = "gitpod"


def show(value):
    """A value as a message quotes it."""
    return repr(value)


def _has(v, *names):
    return all(v.get(n, MISSING) is not MISSING for n in names)


# --- single rules, each usable alone -------------------------------------------------------------

def _network(name, value, errors, family=4):
    if value in (None, ""):
        errors.append(f"{name} is empty; allowed: an IPv{family} network in CIDR notation, e.g. 10.42.0.0/16")
        return None
    try:
        net = ipaddress.ip_network(str(value), strict=True)
    except ValueError as exc:
        errors.append(f"{name} = {show(value)} is not a valid network ({exc}); allowed: CIDR notation with host bits zero, e.g. 10.42.0.0/16")
        return None
    if family and net.version != family:
        errors.append(f"{name} = {show(value)} is an IPv{net.version} network; allowed: an IPv{family} network in CIDR notation "
                      "(the collection sets up single-stack IPv4: Calico's IP pool is calico_ipv4_pool_cidr)")
        return None
    return net


def check_cidrs(cluster_cidr, service_cidr, node_addresses=None):
    """k3s_cluster_cidr and k3s_service_cidr: IPv4, disjoint, and not holding a node address."""
    errors = []
    cluster = _network("k3s_cluster_cidr", cluster_cidr, errors)
    service = _network("k3s_service_cidr", service_cidr, errors)
    if cluster is not None and service is not None and cluster.overlaps(service):
        errors.append(
            f"k3s_cluster_cidr = {cluster} overlaps k3s_service_cidr = {service}; allowed: two disjoint networks "
            "(k3s defaults: 10.42.0.0/16 and 10.43.0.0/16)")
    return errors + _node_address_errors((("k3s_cluster_cidr", cluster), ("k3s_service_cidr", service)), node_addresses)


def _node_address_errors(networks, node_addresses):
    """A network (name, parsed network or None) that holds a node's address."""
    errors = []
    for host, address in sorted((node_addresses or {}).items()):
        try:
            ip = ipaddress.ip_address(str(address))
        except ValueError:
            continue
        for name, net in networks:
            if net is not None and ip.version == net.version and ip in net:
                errors.append(
                    f"{name} = {net} contains the address {ip} of host {host}; allowed: a network that holds no node address")
    return errors


def carried_labels(host_groups, label_groups, labels):
    """Gitpod label names a host carries from its inventory groups."""
    out = []
    for group in host_groups:
        for key in label_groups.get(group) or []:
            name = labels.get(key) if isinstance(key, str) else None
            if name and name not in out:
                out.append(name)
    return out


def server_count_ok(count):
    """k3s with embedded etcd: one server, or an odd number of three or more (quorum)."""
    return count == 1 or (count >= 3 and count % 2 == 1)


def missing_labels(groups, cluster_hosts, label_groups, labels, required):
    """Required label names no cluster host carries, from the inventory groups alone."""
    carried = set()
    for host in cluster_hosts:
        carried.update(carried_labels([g for g, members in groups.items() if host in (members or [])], label_groups, labels))
    return [labels[k] for k in required if k in labels and labels[k] not in carried]


def check_labels(label_groups, labels, inventory_groups, required=None, known_labels=()):
    """gitpod_k3s_labels / gitpod_k3s_label_groups / gitpod_k3s_required_labels and the gitpod_* groups."""
    errors = []
    if not isinstance(labels, dict):
        return [f"gitpod_k3s_labels = {show(labels)} is not a mapping; allowed: label key -> Gitpod label name"]
    if not isinstance(label_groups, dict):
        return [f"gitpod_k3s_label_groups = {show(label_groups)} is not a mapping; allowed: inventory group -> list of label keys"]
    known = sorted(known_labels)
    for key, name in sorted(labels.items()):
        if known and name not in known:
            errors.append(f"gitpod_k3s_labels.{key} = {show(name)} is not a label Gitpod knows; allowed: {', '.join(known)} "
                          "(gitpod_k3s_known_labels)")
    for group, keys in sorted(label_groups.items()):
        if not isinstance(keys, list):
            errors.append(f"gitpod_k3s_label_groups.{group} = {show(keys)} is not a list; allowed: a list of keys of gitpod_k3s_labels")
            continue
        for key in keys:
            if key not in labels:
                errors.append(
                    f"gitpod_k3s_label_groups.{group} names label key {show(key)}; allowed: {', '.join(sorted(labels))} (keys of gitpod_k3s_labels)")
    for key in required or []:
        if key not in labels:
            errors.append(f"gitpod_k3s_required_labels names {show(key)}; allowed: {', '.join(sorted(labels))} (keys of gitpod_k3s_labels)")
    for group in sorted(inventory_groups or []):
        if group.startswith("gitpod_") and group not in label_groups:
            errors.append(
                f"inventory group {show(group)} is not a Gitpod group; allowed: {', '.join(sorted(label_groups))} "
                "(keys of gitpod_k3s_label_groups)")
    return errors


def check_domain(domain, name="gitpod_k3s_domain"):
    """A DNS name of two or more labels, or empty."""
    if domain in (None, ""):
        return []
    value = str(domain)
    parts = value.rstrip(".").split(".")
    bad = (len(value) > 253 or len(parts) < 2 or not DNS1123_SUBDOMAIN_RE.match(value.rstrip("."))
           or any(len(p) > 63 for p in parts) or parts[-1].isdigit())
    if bad:
        return [f"{name} = {show(value)} is not a valid domain; allowed: a lower-case DNS name such as gitpod.example.com "
                "(no scheme, port, wildcard or path), or empty"]
    return []


def check_dns_name(name, value, kind="subdomain"):
    """A Kubernetes object name: DNS-1123 label (63) or subdomain (253)."""
    pattern, limit = (DNS1123_LABEL_RE, 63) if kind == "label" else (DNS1123_SUBDOMAIN_RE, 253)
    if isinstance(value, str) and len(value) <= limit and pattern.match(value):
        return []
    what = ("a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"
            if kind == "label" else
            "a DNS-1123 subdomain: lower-case labels of letters, digits and '-' joined by '.', at most 253 characters")
    return [f"{name} = {show(value)} is not a valid Kubernetes name; allowed: {what}"]


def check_k3s_version(version, minimum=gitpod_constants.MIN_KUBERNETES, name="k3s_version"):
    """A k3s release tag of Kubernetes ``minimum`` or newer (gitpod_k3s_min_kubernetes)."""
    match = K3S_VERSION_RE.match(str(version or ""))
    if not match:
        return [f"{name} = {show(version)} is not a k3s release tag; allowed: v1.MINOR.PATCH+k3sN, e.g. v1.31.4+k3s1 "
                "(a release candidate: v1.31.4-rc1+k3s1)"]
    kube = (1, int(match.group(1)), int(match.group(2)))
    try:
        floor = versions.parse_version(str(minimum), "gitpod_k3s_min_kubernetes")
    except versions.VersionError:
        return []  # the minimum itself is reported by check_version_setting
    if versions.compare(kube, floor) < 0:
        return [f"{name} = {show(version)} is Kubernetes {versions.format_version(kube)}; allowed: "
                f"{versions.format_version(floor)} or newer (gitpod_k3s_min_kubernetes, Gitpod's minimum)"]
    return []


def check_version_setting(name, value):
    """A version threshold: MAJOR.MINOR[.PATCH], as the version parser of the modules reads it."""
    try:
        if isinstance(value, str):
            versions.parse_version(value, name)
            return []
    except versions.VersionError:
        pass
    return [f"{name} = {show(value)} is not a version; allowed: MAJOR.MINOR[.PATCH] as a string, e.g. '6.1.0'"]


def check_thresholds(thresholds, profiles=None, profiles_name="preflight_profiles"):
    """Numeric thresholds: numbers >= 0 (strings of digits are accepted)."""
    values = dict(thresholds or {})
    for workload, entries in (profiles or {}).items():
        if isinstance(entries, dict):
            for key, value in entries.items():
                values[f"{profiles_name}.{workload}.{key}"] = value
    errors = []
    for name, value in sorted(values.items()):
        if not _number(value, minimum=0):
            errors.append(f"{name} = {show(value)} is not a usable threshold; allowed: a number >= 0")
    return errors


def _number(value, minimum=None, maximum=None, integer=False):
    if isinstance(value, bool):
        return False
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    if math.isnan(number) or math.isinf(number):
        return False
    if integer and number != int(number):
        return False
    return (minimum is None or number >= minimum) and (maximum is None or number <= maximum)


def check_positive(name, value, unit="seconds"):
    if _number(value, minimum=1, integer=True):
        return []
    return [f"{name} = {show(value)} is not usable; allowed: a whole number of {unit} > 0"]


def check_url(name, value, empty_ok=False):
    """An http(s) URL with a scheme and a host."""
    if empty_ok and value in (None, ""):
        return []
    if isinstance(value, str) and re.match(r"^https?://[^\s/:?#]+(:\d+)?(/\S*)?$", value):
        return []
    return [f"{name} = {show(value)} is not a URL; allowed: http:// or https:// followed by a host, e.g. https://example.com/path"]


def check_token(name, value, secret=True, min_length=0):
    """A token or key: no whitespace or line breaks anywhere; at least min_length characters when set."""
    if value in (None, ""):
        return []
    given = "the value given" if secret else show(value)
    if not isinstance(value, str):
        return [f"{name} is not a string; allowed: a single-line text"]
    if re.search(r"\s", value):
        return [f"{name} holds whitespace or a line break ({given}, {len(value)} characters); allowed: one word with no spaces "
                "or line breaks (a value read from a file often keeps its trailing newline: strip it)"]
    if len(value) < min_length:
        return [f"{name} is {len(value)} characters long; allowed: at least {min_length}, or empty to generate one"]
    return []


def check_k3s_config_keys(name, keys, version):
    """Keys of k3s_server_config_extra / k3s_agent_config_extra that are no flag of that k3s command.

    Checked against the flags of the release plugins/module_utils/k3s_flags.py was read from, when
    ``version`` is of that minor release: k3s server skips an unknown key with a warning, k3s agent
    refuses to start.
    """
    try:
        if versions.parse_version(version)[:2] != k3s_flags.K3S_FLAGS_MINOR:
            return []
    except versions.VersionError:
        return []
    server = name == "k3s_server_config_extra"
    known = (k3s_flags.SERVER | k3s_flags.LATER_SERVER) if server else k3s_flags.AGENT
    errors = []
    for key in keys:
        if key in known:
            continue
        text = str(key)
        hint = difflib.get_close_matches(text.lstrip("-"), sorted(known), n=1)
        effect = ("k3s server skips it with a warning, so the setting never applies" if server
                  else "k3s agent refuses to start with it")
        errors.append(f"{name} sets {text!r}, which is no flag of k3s {'server' if server else 'agent'} "
                      f"v{k3s_flags.K3S_FLAGS_MINOR[0]}.{k3s_flags.K3S_FLAGS_MINOR[1]} ({effect}); allowed: its flag names "
                      f"without dashes{f', did you mean {hint[0]!r}?' if hint else ''}")
    return errors


def check_airgap_dir(path, required, name="k3s_airgap_dir"):
    """A directory on the controller holding one file for each entry (a glob or a list of alternative globs)."""
    if path in (None, ""):
        return []
    alternatives = [[entry] if isinstance(entry, str) else list(entry) for entry in required]
    wanted = ", ".join(" or ".join(alts) for alts in alternatives)
    if not os.path.isdir(path):
        return [f"{name} = {show(path)} is not a directory on the controller; allowed: a directory holding {wanted}, or empty to download"]
    names = os.listdir(path)
    missing = [" or ".join(alts) for alts in alternatives
               if not any(fnmatch.fnmatchcase(n, pattern) and os.path.isfile(os.path.join(path, n)) for pattern in alts for n in names)]
    if missing:
        return [f"{name} = {show(path)} lacks {', '.join(missing)}; allowed: a directory holding {wanted}"]
    return []


def check_calico_network(encapsulation, bgp):
    """calico_encapsulation and calico_bgp: IPIP, IPIPCrossSubnet and None need calico_bgp Enabled."""
    if encapsulation in CALICO_BGP_ENCAPSULATIONS and bgp != "Enabled":
        return [f"calico_encapsulation = {encapsulation!r} needs calico_bgp = 'Enabled' (given {bgp!r}): "
                "the Tigera operator programs IPIP and unencapsulated routes over BGP; allowed: calico_bgp 'Enabled' "
                "with IPIP, IPIPCrossSubnet or None, or calico_encapsulation VXLAN or VXLANCrossSubnet with BGP "
                "'Disabled' or 'Enabled'"]
    return []


def check_checksum_file(directory, filename, checksum_file, name):
    """``filename`` in ``directory`` matches its line of the sha256sum file ``checksum_file`` there."""
    path = os.path.join(directory, filename)
    listing = os.path.join(directory, checksum_file)
    missing = [f for f, p in ((filename, path), (checksum_file, listing)) if not os.path.isfile(p)]
    if missing:
        return [f"{name} = {show(directory)} (on the controller) lacks {', '.join(missing)}; allowed: a directory holding "
                f"{filename} and a sha256sum file {checksum_file} listing it"]
    listed = ""
    with open(listing, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("*") == filename and re.match(r"^[0-9a-fA-F]{64}$", parts[0]):
                listed = parts[0].lower()
                break
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if listed != digest.hexdigest():
        return [f"{name}: {filename} has sha256 {digest.hexdigest()}; {checksum_file} lists {listed or 'no line for it'}"]
    return []


def check_registry_mirrors(name, mirrors, gitpod_hosts=None, ca_file=""):
    """Registry mirror map, by the containerd_registries filter's own rules (it reports the first problem)."""
    # The filter is the one definition of the map's shape; imported here, on the controller only.
    from ansible_collections.selfhosted.gitpod_k3s.plugins.filter.registries import containerd_registries  # pylint: disable=import-outside-toplevel
    try:
        containerd_registries(mirrors, gitpod_hosts or [], ca_file or "", name)
    except Exception as exc:  # pylint: disable=broad-exception-caught  # AnsibleFilterError, raised with the message wanted
        return [str(exc)]
    return []


def _mirrors(name, mirrors, gitpod_hosts=None, ca_file=""):
    """The mirror map's shape, then each CA file it names."""
    found = check_registry_mirrors(name, mirrors, gitpod_hosts, ca_file)
    if not found and isinstance(mirrors, dict):
        for registry, settings in sorted(mirrors.items()):
            if isinstance(settings, dict) and settings.get("ca_file"):
                found += check_ca_file(f"{name}[{registry!r}].ca_file", settings["ca_file"])
    return found


def check_ca_file(name, path):
    """A PEM CA certificate file on the controller, without a private key."""
    if path in (None, ""):
        return []
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError as exc:
        return [f"{name} = {show(path)} cannot be read on the controller ({exc.strerror}); allowed: a PEM file of CA certificates"]
    if "-----BEGIN CERTIFICATE-----" not in text or "PRIVATE KEY" in text:
        return [f"{name} = {show(path)} must hold PEM certificates and no private key; allowed: a PEM file of CA certificates"]
    return []


# --- per role: the rules one host's values must pass ----------------------------------------------

def _common(host, v):
    errors = []
    if _has(v, "gitpod_k3s_domain"):
        errors += check_domain(v["gitpod_k3s_domain"])
    if _has(v, "gitpod_k3s_namespace"):
        errors += check_dns_name("gitpod_k3s_namespace", v["gitpod_k3s_namespace"], "label")
    for kind, secret in sorted((v.get("gitpod_k3s_secret_names") or {}).items()) if isinstance(v.get("gitpod_k3s_secret_names"), dict) else []:
        errors += check_dns_name(f"gitpod_k3s_secret_names.{kind}", secret)
    for name in ("gitpod_k3s_min_kernel", "gitpod_k3s_min_kubernetes", "gitpod_k3s_min_containerd"):
        if _has(v, name):
            errors += check_version_setting(name, v[name])
    if _has(v, "gitpod_k3s_registry_mirrors"):
        errors += _mirrors("gitpod_k3s_registry_mirrors", v["gitpod_k3s_registry_mirrors"])
    return errors


def check_node_name(host, v):
    """gitpod_k3s_node_name: a name the API server registers (the roles that make or label nodes read it)."""
    if not _has(v, "gitpod_k3s_node_name"):
        return []
    node = str(v["gitpod_k3s_node_name"]).strip()
    source = ("k3s_node_name" if v.get("k3s_node_name") else
              "its host name, lower-cased" if v.get("__facts") else "its inventory host name, lower-cased")
    if len(node) <= 253 and DNS1123_SUBDOMAIN_RE.match(node):
        return []
    return [f"host {host}: node name {show(node)} (from {source}) is not a name Kubernetes can register; allowed: "
            "a DNS-1123 subdomain (lower-case letters, digits and '-', labels joined by '.', at most 253 characters): "
            "set k3s_node_name for this host"]


def _preflight(host, v):
    errors = []
    names = ("preflight_min_vcpus", "preflight_min_memory_gib", "preflight_min_disk_gib", "preflight_recommended_disk_gib")
    errors += check_thresholds({n: v[n] for n in names if _has(v, n)})
    profiles = v.get("preflight_profiles", MISSING)
    if isinstance(profiles, dict):
        for workload, entries in sorted(profiles.items()):
            if workload not in PREFLIGHT_WORKLOADS:
                errors.append(f"preflight_profiles.{workload}: unknown workload; allowed: {', '.join(PREFLIGHT_WORKLOADS)}")
            elif not isinstance(entries, dict):
                errors.append(f"preflight_profiles.{workload} = {show(entries)} is not a mapping; allowed: a mapping of "
                              f"{', '.join(PREFLIGHT_PROFILE_KEYS)} to numbers")
            else:
                errors += [f"preflight_profiles.{workload}.{k}: unknown threshold; allowed: {', '.join(PREFLIGHT_PROFILE_KEYS)}"
                           for k in sorted(entries) if k not in PREFLIGHT_PROFILE_KEYS]
                errors += check_thresholds({}, {workload: {k: x for k, x in entries.items() if k in PREFLIGHT_PROFILE_KEYS}})
    for name in ("preflight_min_kernel", "preflight_min_containerd_version"):
        if _has(v, name):
            errors += check_version_setting(name, v[name])
    for name in ("preflight_allowed_distributions", "preflight_tested_distributions"):
        for entry in v.get(name) or []:
            if not (isinstance(entry, str) and DISTRIBUTION_RE.match(entry)):
                errors.append(f"{name} entry {show(entry)} is not a distribution; allowed: an os-release ID, optionally with "
                              "its VERSION_ID, e.g. ubuntu or ubuntu:22.04")
    for name in ("preflight_server_ports", "preflight_node_ports"):
        for entry in v.get(name) or []:
            match = PORT_PROTO_RE.match(str(entry))
            if not (match and 1 <= int(match.group(1)) <= 65535):
                errors.append(f"{name} entry {show(entry)} is not a port; allowed: PORT/tcp or PORT/udp with PORT 1-65535")
    workloads = v.get("preflight_label_workloads")
    labels = v.get("preflight_labels")
    if isinstance(workloads, dict):
        for key, workload in sorted(workloads.items()):
            if workload not in PREFLIGHT_WORKLOADS:
                errors.append(f"preflight_label_workloads.{key} = {show(workload)} is not a workload; allowed: {', '.join(PREFLIGHT_WORKLOADS)}")
        if isinstance(labels, dict):
            missing = sorted(k for k in labels if k not in workloads)
            if missing:
                errors.append(f"preflight_label_workloads has no workload for label key(s) {', '.join(missing)} of gitpod_k3s_labels; "
                              f"allowed: give each one of {', '.join(PREFLIGHT_WORKLOADS)}")
    return errors


def _host_prep(host, v):
    errors = []
    sysctls = {}
    for name in ("host_prep_sysctls", "host_prep_extra_sysctls"):
        value = v.get(name, MISSING)
        if not isinstance(value, dict):
            continue
        for key, item in sorted(value.items()):
            if not SYSCTL_KEY_RE.match(str(key)):
                errors.append(f"{name} key {show(key)} is not a kernel parameter name; allowed: names such as net.ipv4.ip_forward")
            if isinstance(item, bool) or not isinstance(item, (str, int, float)) or (isinstance(item, str) and "\n" in item):
                errors.append(f"{name}.{key} = {show(item)} is not a scalar; allowed: a number or a one-line string such as '5000 65000'")
            sysctls[key] = item
    if isinstance(v.get("host_prep_sysctl_required"), list) and _has(v, "host_prep_sysctls", "host_prep_extra_sysctls"):
        unset = [k for k in v["host_prep_sysctl_required"] if k not in sysctls]
        if unset:
            errors.append(f"host_prep_sysctl_required names {', '.join(map(str, unset))}, which host_prep_sysctls and "
                          "host_prep_extra_sysctls do not set; allowed: keys of those dictionaries")
    for name in ("host_prep_kernel_modules", "host_prep_extra_kernel_modules"):
        bad = [m for m in v.get(name) or [] if not KERNEL_MODULE_RE.match(str(m))]
        if bad:
            errors.append(f"{name} holds invalid module names {show(bad)}; allowed: letters, digits, '_' and '-'")
    for entry in v.get("host_prep_directories") or []:
        path = entry.get("path") if isinstance(entry, dict) else None
        if not (isinstance(path, str) and path.startswith("/")):
            errors.append(f"host_prep_directories entry {show(entry)} has no absolute path; allowed: a mapping with path: /absolute/path")
    if v.get("host_prep_ufw") is True:
        for name in ("host_prep_ufw_cluster_ports", "host_prep_ufw_public_ports"):
            ports = v.get(name)
            if not isinstance(ports, dict):
                continue
            for proto, entries in sorted(ports.items()):
                if proto not in ("tcp", "udp"):
                    errors.append(f"{name} key {show(proto)} is not a protocol; allowed: tcp, udp")
                    continue
                if not isinstance(entries, list) or any(not UFW_PORT_RE.match(str(p)) for p in entries):
                    errors.append(f"{name}.{proto} = {show(entries)} is not a list of ports; allowed: ports N or ranges N:M")
                elif sum(2 if ":" in str(p) else 1 for p in entries) > UFW_PORTS_PER_RULE:
                    errors.append(f"{name}.{proto} lists {len(entries)} ports; allowed: at most {UFW_PORTS_PER_RULE} per protocol, "
                                  "a range counting 2 (ufw's limit)")
        for name in ("host_prep_ufw_cluster_sources", "host_prep_ufw_trusted_cidrs"):
            for entry in v.get(name) or []:
                try:
                    ipaddress.ip_network(str(entry), strict=False)
                except ValueError:
                    errors.append(f"{name} entry {show(entry)} is not an address or network; allowed: e.g. 10.0.0.0/8 or 192.0.2.10")
    return errors


def _containerd(host, v):
    errors = []
    ca_file = v.get("containerd_gitpod_registry_ca_file") or ""
    domain = v.get("containerd_domain") or ""
    if ca_file and not domain:
        errors.append(f"containerd_gitpod_registry_ca_file = {show(ca_file)} but containerd_domain (gitpod_k3s_domain) is empty: the CA "
                      "is trusted for reg.<domain>:20000 and registry.<domain>, so set the domain or list the registries in "
                      "gitpod_k3s_registry_mirrors with their ca_file")
    mirrors = v.get("containerd_registry_mirrors", MISSING)
    if mirrors is not MISSING and mirrors is not None:
        # By default the common setting itself: then its messages are the common role's, word for word.
        name = "gitpod_k3s_registry_mirrors" if mirrors == v.get("gitpod_k3s_registry_mirrors") else "containerd_registry_mirrors"
        hosts = v.get("containerd_gitpod_registry_hosts") if domain else []
        errors += _mirrors(name, mirrors, hosts if isinstance(hosts, list) else [], ca_file if domain else "")
    if ca_file and domain:
        errors += check_ca_file("containerd_gitpod_registry_ca_file", ca_file)
    for name in ("containerd_min_version",):
        if _has(v, name):
            errors += check_version_setting(name, v[name])
    return errors


def _k3s(host, v):
    errors = check_node_name(host, v)
    if _has(v, "k3s_version"):
        errors += check_k3s_version(v["k3s_version"], v.get("gitpod_k3s_min_kubernetes", gitpod_constants.MIN_KUBERNETES))
    if _has(v, "k3s_cluster_cidr", "k3s_service_cidr"):
        errors += check_cidrs(v["k3s_cluster_cidr"], v["k3s_service_cidr"])
    node_ip = v.get("k3s_node_ip", MISSING)
    if node_ip not in (MISSING, None, ""):
        try:
            address = ipaddress.ip_address(str(node_ip))
        except ValueError:
            address = None
            errors.append(f"host {host}: k3s_node_ip = {show(node_ip)} is not an IP address; allowed: an IPv4 address (the default takes "
                          "the address of the default route from the gathered facts; set it when there is none)")
        if address is not None and address.version != 4:
            errors.append(f"host {host}: k3s_node_ip = {show(node_ip)} is IPv6 while k3s_cluster_cidr is IPv4; allowed: an IPv4 address "
                          "(mixed address families are not set up by the collection)")
    for taint in v.get("k3s_node_taints") or []:
        if not TAINT_RE.match(str(taint)):
            errors.append(f"host {host}: k3s_node_taints entry {show(taint)} is not a taint; allowed: key=value:Effect or key:Effect with "
                          "Effect NoSchedule, PreferNoSchedule or NoExecute")
    for arg in v.get("k3s_kubelet_args") or []:
        if not KUBELET_ARG_RE.match(str(arg)):
            errors.append(f"k3s_kubelet_args entry {show(arg)} is not name=value; allowed: e.g. max-pods=110 (no leading dashes)")
    for name in ("k3s_server_config_extra", "k3s_agent_config_extra"):
        extra = v.get(name)
        if isinstance(extra, dict):
            reserved = sorted(set(extra) & set(K3S_RESERVED_KEYS))
            if reserved:
                errors.append(f"{name} sets {', '.join(reserved)}, which the k3s role manages; allowed: other config.yaml keys "
                              f"(use k3s_token, k3s_cluster_cidr, ... instead; reserved: {', '.join(K3S_RESERVED_KEYS)})")
            errors += check_k3s_config_keys(name, [k for k in extra if k not in K3S_RESERVED_KEYS], v.get("k3s_version"))
    if _has(v, "k3s_token"):
        errors += check_token("k3s_token", v["k3s_token"], min_length=16)
    if v.get("k3s_release_url", MISSING) is not MISSING and not v.get("k3s_airgap_dir"):
        errors += check_url("k3s_release_url", v["k3s_release_url"])
    for name in ("k3s_wait_timeout", "k3s_drain_timeout"):
        if _has(v, name):
            errors += check_positive(name, v[name])
    if _has(v, "k3s_api_port") and not _number(v["k3s_api_port"], 1, 65535, integer=True):
        errors.append(f"k3s_api_port = {show(v['k3s_api_port'])} is not a port; allowed: 1-65535")
    endpoint = v.get("k3s_api_endpoint") or ""
    if endpoint and not _address_or_name(endpoint):
        errors.append(f"k3s_api_endpoint = {show(endpoint)} is not a host; allowed: an IP address or DNS name without scheme or port "
                      "(the port is k3s_api_port)")
    for san in v.get("k3s_tls_san") or []:
        if not _address_or_name(str(san)):
            errors.append(f"k3s_tls_san entry {show(san)} is not a host; allowed: an IP address or DNS name")
    errors += _k3s_airgap(v)
    arch = v.get("ansible_architecture", MISSING)
    arch_map = v.get("__k3s_arch_map") or {}
    if arch not in (MISSING, None) and isinstance(arch_map, dict) and arch not in arch_map:
        errors.append(f"host {host} has architecture {show(arch)}; allowed: {', '.join(arch_map)} (k3s releases exist for these)")
    return errors


def _address_or_name(value):
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return bool(DNS1123_SUBDOMAIN_RE.match(value.lower())) and len(value) <= 253


def _k3s_airgap(v):
    directory = v.get("k3s_airgap_dir") or ""
    if not directory:
        return []
    assets = v.get("__k3s_binary_assets") or {}
    arch = (v.get("__k3s_arch_map") or {}).get(v.get("ansible_architecture"))
    if arch and arch in assets:
        required = [assets[arch], f"sha256sum-{arch}.txt"]
        images = [f"k3s-airgap-images-{arch}.tar.zst", f"k3s-airgap-images-{arch}.tar.gz", f"k3s-airgap-images-{arch}.tar"]
    else:  # no facts yet: any architecture's files
        required = [sorted(set(assets.values())) or ["k3s"], "sha256sum-*.txt"]
        images = ["k3s-airgap-images-*"]
    if v.get("k3s_airgap_images", True):
        required.append(images)
    extra = [e for e in v.get("k3s_airgap_extra_images") or [] if isinstance(e, str)]
    if extra:
        required += extra + [str(v.get("k3s_airgap_extra_checksum_file") or "sha256sum-extra.txt")]
    return check_airgap_dir(directory, required)


def _calico(host, v):
    errors = []
    if _has(v, "calico_version") and not CALICO_VERSION_RE.match(str(v["calico_version"])):
        errors.append(f"calico_version = {show(v['calico_version'])} is not a Calico release tag; allowed: vMAJOR.MINOR.PATCH, e.g. v3.30.3")
    if _has(v, "calico_encapsulation", "calico_bgp"):
        errors += check_calico_network(v["calico_encapsulation"], v["calico_bgp"])
    mtu = v.get("calico_mtu")
    if mtu is not None and not _number(mtu, 576, 9000, integer=True):
        errors.append(f"calico_mtu = {show(mtu)} is not usable; allowed: a whole number from 576 to 9000 (1450 for VXLAN on a 1500-byte "
                      "network), or null to let Calico detect it")
    if _has(v, "calico_ipv4_pool_cidr"):
        pool_errors = []
        pool = _network("calico_ipv4_pool_cidr", v["calico_ipv4_pool_cidr"], pool_errors)
        errors += pool_errors
        cluster = v.get("k3s_cluster_cidr", v.get("gitpod_k3s_cluster_cidr"))
        if pool is not None and cluster not in (None, "") and str(pool) != str(cluster):
            errors.append(f"calico_ipv4_pool_cidr = {show(v['calico_ipv4_pool_cidr'])} is not k3s_cluster_cidr = {show(cluster)}: k3s gives "
                          "each node its pod range from the cluster CIDR and Calico must hand out addresses from the same network; "
                          "allowed: the value of k3s_cluster_cidr (leave calico_ipv4_pool_cidr unset)")
        block = v.get("calico_block_size", MISSING)
        if pool is not None and block is not MISSING and not _number(block, pool.prefixlen, 32, integer=True):
            errors.append(f"calico_block_size = {show(block)} does not fit calico_ipv4_pool_cidr = {pool}; allowed: a whole number from "
                          f"{pool.prefixlen} to 32")
    directory = v.get("calico_airgap_dir") or ""
    if directory and _has(v, "calico_chart_file", "calico_airgap_checksum_file"):
        errors += check_checksum_file(directory, str(v["calico_chart_file"]), str(v["calico_airgap_checksum_file"]), "calico_airgap_dir")
    elif _has(v, "calico_chart_repo"):
        errors += check_url("calico_chart_repo", v["calico_chart_repo"])
    if _has(v, "calico_wait_timeout"):
        errors += check_positive("calico_wait_timeout", v["calico_wait_timeout"])
    return errors


def _cert_manager(host, v):
    errors = []
    if _has(v, "cert_manager_version") and not CERT_MANAGER_VERSION_RE.match(str(v["cert_manager_version"])):
        errors.append(f"cert_manager_version = {show(v['cert_manager_version'])} is not a cert-manager release tag; allowed: "
                      "vMAJOR.MINOR.PATCH, e.g. v1.16.2")
    for name in ("cert_manager_namespace",):
        if _has(v, name):
            errors += check_dns_name(name, v[name], "label")
    for name in ("cert_manager_selfsigned_issuer", "cert_manager_ca_issuer", "cert_manager_acme_issuer", "cert_manager_tls_secret",
                 "cert_manager_acme_credentials_secret"):
        if _has(v, name):
            errors += check_dns_name(name, v[name])
    if _has(v, "cert_manager_wait_timeout"):
        errors += check_positive("cert_manager_wait_timeout", v["cert_manager_wait_timeout"])
    chart_file = v.get("cert_manager_chart_file") or ""
    if chart_file and not os.path.isfile(chart_file):
        errors.append(f"cert_manager_chart_file = {show(chart_file)} does not exist on the controller; allowed: the path of "
                      f"cert-manager-{v.get('cert_manager_version', 'VERSION')}.tgz, or empty to download")
    elif not chart_file and _has(v, "cert_manager_chart_repo"):
        errors += check_url("cert_manager_chart_repo", v["cert_manager_chart_repo"])
    provider = v.get("cert_manager_acme_provider") or ""
    if provider:
        if not v.get("cert_manager_domain"):
            errors.append(f"cert_manager_acme_provider = {show(provider)} needs cert_manager_domain (gitpod_k3s_domain) for the wildcard "
                          f"certificate; given {show(v.get('cert_manager_domain', ''))}")
        if not EMAIL_RE.match(str(v.get("cert_manager_acme_email") or "")):
            errors.append(f"cert_manager_acme_email = {show(v.get('cert_manager_acme_email', ''))} is not an e-mail address; allowed: the "
                          f"address of the ACME account (cert_manager_acme_provider is {show(provider)})")
        if _has(v, "cert_manager_acme_server"):
            errors += check_url("cert_manager_acme_server", v["cert_manager_acme_server"])
        empty = [n for n in ACME_CREDENTIALS.get(provider, ()) if not v.get(n)]
        if empty:
            errors.append(f"cert_manager_acme_provider = {show(provider)} needs {', '.join(ACME_CREDENTIALS[provider])}; empty: {', '.join(empty)}")
        if provider == "cloudflare":
            errors += check_token("cert_manager_cloudflare_api_token", v.get("cert_manager_cloudflare_api_token"))
        if provider == "route53":
            errors += check_token("cert_manager_route53_access_key_id", v.get("cert_manager_route53_access_key_id"))
            errors += check_token("cert_manager_route53_secret_access_key", v.get("cert_manager_route53_secret_access_key"))
        if provider == "clouddns" and v.get("cert_manager_clouddns_service_account_json"):
            try:
                parsed = json.loads(v["cert_manager_clouddns_service_account_json"]) \
                    if isinstance(v["cert_manager_clouddns_service_account_json"], str) else v["cert_manager_clouddns_service_account_json"]
                ok = isinstance(parsed, dict)
            except ValueError:
                ok = False
            if not ok:
                errors.append("cert_manager_clouddns_service_account_json is not a JSON object; allowed: the service account key file's "
                              "JSON text (e.g. lookup('file', 'key.json'))")
    return errors


def _components(host, v):
    errors = []
    if _has(v, "components_namespace"):
        errors += check_dns_name("components_namespace", v["components_namespace"], "label")
    if v.get("components_mysql_database", GITPOD_DATABASE) != GITPOD_DATABASE:
        errors.append(f"components_mysql_database = {show(v['components_mysql_database'])}, but Gitpod always uses the database "
                      f"{GITPOD_DATABASE!r} (its installer sets no database name): the setting is gone; remove it from the inventory")
    mysql, storage, registry = v.get("components_mysql"), v.get("components_storage"), v.get("components_registry")
    if mysql == "in_cluster" and _has(v, "components_mysql_username") and not MYSQL_USER_RE.match(str(v["components_mysql_username"])):
        errors.append(f"components_mysql_username = {show(v['components_mysql_username'])} is not a MySQL user name; allowed: 1-32 "
                      "letters, digits or '_'")
    if registry == "in_cluster" and v.get("components_registry_storage") == "s3" and storage not in ("in_cluster", "external", MISSING, None):
        errors.append(f"components_registry = 'in_cluster' with components_registry_storage = 's3' needs components_storage 'in_cluster' "
                      f"or 'external' (given {show(storage)}); allowed: one of those, or components_registry_storage 'pvc'")
    for name in ("components_mysql_min_version", "components_mariadb_min_version"):
        if _has(v, name):
            errors += check_version_setting(name, v[name])
    if mysql == "external" and _has(v, "components_mysql_external"):
        ext = v.get("components_mysql_external") or {}
        empty = [k for k in ("host", "username", "password") if not ext.get(k)]
        if empty:
            errors.append(f"components_mysql is 'external', so components_mysql_external needs host, username and password; empty: "
                          f"{', '.join(empty)}")
        if ext.get("port") is not None and not _number(ext.get("port"), 1, 65535, integer=True):
            errors.append(f"components_mysql_external.port = {show(ext.get('port'))} is not a port; allowed: 1-65535")
    if storage == "external" and _has(v, "components_storage_external"):
        ext = v.get("components_storage_external") or {}
        if not HOST_PORT_RE.match(str(ext.get("endpoint") or "")):
            errors.append(f"components_storage_external.endpoint = {show(ext.get('endpoint', ''))} is not an S3 endpoint; allowed: "
                          "[https://]host[:port]")
        empty = [k for k in ("bucket", "access_key_id", "secret_access_key") if not ext.get(k)]
        if empty:
            errors.append(f"components_storage is 'external', so components_storage_external needs bucket, access_key_id and "
                          f"secret_access_key; empty: {', '.join(empty)}")
        for key in ("access_key_id", "secret_access_key"):
            errors += check_token(f"components_storage_external.{key}", ext.get(key))
    if registry == "external" and _has(v, "components_registry_external"):
        ext = v.get("components_registry_external") or {}
        if not HOST_PORT_RE.match(str(ext.get("url") or "")):
            errors.append(f"components_registry_external.url = {show(ext.get('url', ''))} is not a registry address; allowed: "
                          "[https://]host[:port]")
        empty = [k for k in ("username", "password") if not ext.get(k)]
        if empty:
            errors.append(f"components_registry is 'external', so components_registry_external needs username and password; empty: "
                          f"{', '.join(empty)}")
    if _has(v, "components_credentials_overrides"):
        errors += credentials.check_overrides("components_credentials_overrides", v["components_credentials_overrides"])
    claims = v.get("components_confirm_delete_claims")
    for entry in claims if isinstance(claims, list) else []:
        errors += check_dns_name("components_confirm_delete_claims entry", entry)
    if _has(v, "components_check_timeout"):
        errors += check_positive("components_check_timeout", v["components_check_timeout"])
    for name in ("components_registry_extra_names",):
        for entry in v.get(name) or []:
            if not _address_or_name(str(entry)):
                errors.append(f"{name} entry {show(entry)} is not a host name; allowed: a DNS name or IP address")
    return errors


def _cluster_validation(host, v):
    errors = []
    kinds = v.get("cluster_validation_secrets")
    for table in ("cluster_validation_secret_names", "cluster_validation_secret_keys"):
        if isinstance(kinds, list) and isinstance(v.get(table), dict):
            unknown = [k for k in kinds if k not in v[table]]
            if unknown:
                errors.append(f"cluster_validation_secrets names {', '.join(map(str, unknown))}, which {table} lacks; allowed: "
                              f"{', '.join(sorted(map(str, v[table])))}")
    for name in ("cluster_validation_min_kubernetes_version", "cluster_validation_min_kernel_version",
                 "cluster_validation_min_containerd_version"):
        if _has(v, name):
            errors += check_version_setting(name, v[name])
    return errors


def _node_labels(host, v):
    errors = check_node_name(host, v)
    if _has(v, "node_labels_labels") and not v["node_labels_labels"]:
        errors.append("node_labels_labels is empty; allowed: at least one label key -> Gitpod label name (gitpod_k3s_labels)")
    # By default k3s_node_taints, which the k3s role's rules check; a value of its own is checked here.
    if isinstance(v.get("node_labels_taints"), list) and v["node_labels_taints"] != v.get("k3s_node_taints", []):
        errors += [f"host {host}: node_labels_taints entry {show(t)} is not a taint; allowed: key=value:Effect or key:Effect with "
                   "Effect NoSchedule, PreferNoSchedule or NoExecute" for t in v["node_labels_taints"] if not TAINT_RE.match(str(t))]
    return errors


ROLE_RULES = {
    "common": _common,
    "preflight": _preflight,
    "host_prep": _host_prep,
    "containerd": _containerd,
    "k3s": _k3s,
    "calico": _calico,
    "cert_manager": _cert_manager,
    "components": _components,
    "cluster_validation": _cluster_validation,
    "node_labels": _node_labels,
}
# Variables a role's rules read besides its argument spec's: connection settings, facts, the k3s
# role's release asset names (vars/main.yml), and for Calico the cluster CIDR its pool must equal.
ALSO_READS = {
    "common": ("k3s_node_name", "ansible_host", "ansible_port", "ansible_connection", "ansible_architecture"),
    "k3s": ("__k3s_arch_map", "__k3s_binary_assets"),
    "calico": ("k3s_cluster_cidr",),
    "node_labels": ("k3s_node_taints",),
    # Settings that are gone: set in an inventory, they are refused with the reason (RETIRED).
    "components": ("components_mysql_database", "components_node_ca_file"),
}
# Settings that are gone, with what took their place; the role's ALSO_READS names them.
RETIRED = {
    "components": {
        "components_node_ca_file": "the controller's copy of the CA the nodes trust is gitpod_k3s_node_ca_file (common role) "
                                   "now, which every playbook that configures containerd reads; set that instead",
    },
}
# Rules that read gathered facts: a role re-runs them (scope facts) once the facts are there. With
# them, every other setting those rules read (the air-gap rule reads which archives are needed).
FACT_SETTINGS = ("gitpod_k3s_node_name", "k3s_node_ip", "ansible_architecture", "k3s_airgap_dir",
                 "k3s_airgap_images", "k3s_airgap_extra_images", "k3s_airgap_extra_checksum_file")


def check_host(role, host, values):
    """The rules of ``role`` on one host's values (a dict; a value that could not be known is absent)."""
    rule = ROLE_RULES.get(role)
    retired = [f"{name} = {show(values[name])}: the setting is gone; {why}"
               for name, why in RETIRED.get(role, {}).items() if name in values]
    return retired + (rule(host, values) if rule else [])


# Settings of different roles that describe one thing on a host and must agree; each defaults to the
# collection-wide setting named first, which is the one to set.
SAME_THING = {
    "containerd mode": ("gitpod_k3s_containerd_mode",
                        ("containerd_mode", "k3s_containerd_mode", "calico_containerd_mode", "gitpod_config_containerd_mode")),
}


def check_agreement(host, values):
    """Messages for the settings of SAME_THING that disagree on one host."""
    errors = []
    for thing, (source, names) in SAME_THING.items():
        given = {n: values[n] for n in names if n in values and values[n] is not MISSING}
        if len(set(map(str, given.values()))) > 1:
            shown = ", ".join(f"{n} = {show(v)}" for n, v in given.items())
            errors.append(f"host {host}: the {thing} differs between roles ({shown}); allowed: one value, set once as {source} "
                          "(common role), which each of them follows")
    return errors


# --- across hosts: what the inventory alone tells --------------------------------------------------

def check_fleet(roles, hosts, groups):
    """Rules across hosts. ``hosts`` maps each play host to its values; ``groups`` is the inventory's."""
    if not hosts:
        return []
    first = next(iter(hosts.values()))
    errors = [m for host, v in hosts.items() for m in check_agreement(host, v)]
    labels, label_groups = first.get("gitpod_k3s_labels"), first.get("gitpod_k3s_label_groups")
    required = first.get("gitpod_k3s_required_labels") or []
    known = first.get("gitpod_k3s_known_labels") or gitpod_constants.KNOWN_LABELS
    errors += check_labels(label_groups, labels, list(groups), required, known)
    server_group = first.get("gitpod_k3s_server_group") or "k3s_servers"
    agent_group = first.get("gitpod_k3s_agent_group") or "k3s_agents"
    servers = list(groups.get(server_group) or [])
    agents = list(groups.get(agent_group) or [])
    # The cluster's shape matters to the roles that build it or check it; host_prep or containerd
    # alone prepare any host.
    if set(CLUSTER_ROLES) & set(roles):
        if not server_count_ok(len(servers)):
            errors.append(f"inventory group {server_group} has {len(servers)} hosts ({', '.join(servers) or 'none'}); allowed: 1 server, or an "
                          "odd number >= 3 (3, 5, 7) for embedded etcd to keep quorum")
        for host in sorted(set(servers) & set(agents)):
            errors.append(f"host {host} is in both {server_group} and {agent_group} (gitpod_k3s_server_group, gitpod_k3s_agent_group); "
                          "allowed: exactly one of them")
        if isinstance(labels, dict) and isinstance(label_groups, dict):
            missing = missing_labels(groups, list(dict.fromkeys(servers + agents)), label_groups, labels, required)
            if missing:
                givers = sorted({g for g, keys in label_groups.items() if isinstance(keys, list) for k in keys if labels.get(k) in missing})
                errors.append(f"no host of {server_group} or {agent_group} carries {', '.join(missing)} (gitpod_k3s_required_labels); "
                              f"allowed: put hosts in the inventory group(s) {', '.join(givers) or '(none gives it)'}")
    if "k3s" in roles:
        initial = first.get("k3s_initial_server")
        if initial not in (None, MISSING) and servers and initial not in servers:
            errors.append(f"k3s_initial_server = {show(initial)} is not a server; allowed: one of {', '.join(servers)} ({server_group})")
    if {"k3s", "node_labels"} & set(roles):
        errors += _unique(hosts, "gitpod_k3s_node_name", "node name", lambda x: str(x).strip().lower())
    if "calico" in roles:
        initial = first.get("calico_initial_server")
        if initial not in (None, MISSING) and servers and initial not in servers:
            errors.append(f"calico_initial_server = {show(initial)} is not a server; allowed: one of {', '.join(servers)} ({server_group})")
    if "components" in roles:
        delegate = first.get("components_check_delegate_to")
        if delegate not in (None, MISSING, "localhost", "127.0.0.1") and delegate not in hosts and not any(
                delegate in members for members in groups.values()):
            errors.append(f"components_check_delegate_to = {show(delegate)} is no host of the inventory; allowed: localhost (the "
                          "controller) or an inventory host")
    addresses = {}
    for host, v in hosts.items():
        if v.get("ansible_connection") in ("local",):
            continue
        key = (str(v.get("ansible_connection") or "ssh"), str(v.get("ansible_host") or host), str(v.get("ansible_port") or "default"))
        addresses.setdefault(key, []).append(host)
    for (connection, address, port), names in sorted(addresses.items()):
        if len(names) > 1:
            errors.append(f"hosts {', '.join(sorted(names))} all point at {address}"
                          f"{'' if port == 'default' else ':' + port} ({connection}); allowed: one inventory host per machine")
    if "k3s" in roles:
        node_ips = {h: v.get("k3s_node_ip") or v.get("ansible_host") for h, v in hosts.items()}
        # The networks' own problems are each host's (check_host); here only what needs every host.
        networks = [(name, _network(name, first.get(name), [])) for name in ("k3s_cluster_cidr", "k3s_service_cidr")]
        errors += _node_address_errors(networks, node_ips)
    return errors


def check_fleet_facts(roles, hosts):
    """Across hosts, once facts are gathered: node names are unique."""
    return _unique(hosts, "gitpod_k3s_node_name", "node name", lambda x: str(x).strip().lower()) if {"k3s", "node_labels"} & set(roles) else []


def _unique(hosts, name, what, normal):
    seen = {}
    for host, v in hosts.items():
        if v.get(name) not in (None, MISSING, ""):
            seen.setdefault(normal(v[name]), []).append(host)
    return [f"hosts {', '.join(sorted(h))} have the same {what} {show(n)} ({name}); allowed: a different one per host (set k3s_node_name)"
            for n, h in sorted(seen.items()) if len(h) > 1]
