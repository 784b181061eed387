# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Cross-variable checks on the inventory, run on the controller before any host is touched.

Every function returns a list of error strings; each names the variable, the value given and
what is allowed. Types and choices of single variables are left to each role's argument spec.
"""

from __future__ import annotations

import ipaddress
import os
import re

# Labels Gitpod's releases know (gitpod_k3s_labels values must be among them).
GITPOD_LABELS = frozenset({
    "gitpod.io/workload_meta",
    "gitpod.io/workload_ide",
    "gitpod.io/workload_workspace_services",
    "gitpod.io/workload_services",
    "gitpod.io/workload_workspace_regular",
    "gitpod.io/workload_workspace_headless",
})

CONTAINERD_MODES = ("system", "embedded")

# k3s release tags: v1.28.5+k3s1, v1.30.2-rc1+k3s2
K3S_VERSION_RE = re.compile(r"^v1\.(\d+)\.(\d+)(-rc\d+)?\+k3s\d+$")

# RFC 1123 host names with at least two labels; wildcards are added by the collection itself.
DOMAIN_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def _network(name, value, errors):
    if value in (None, ""):
        errors.append(f"{name} is empty; allowed: an IPv4 or IPv6 network in CIDR notation, e.g. 10.42.0.0/16")
        return None
    try:
        return ipaddress.ip_network(str(value), strict=True)
    except ValueError as exc:
        errors.append(f"{name} = {value!r} is not a valid network ({exc}); allowed: CIDR notation with host bits zero, e.g. 10.42.0.0/16")
        return None


def check_cidrs(cluster_cidr, service_cidr, node_addresses=None):
    """k3s_cluster_cidr and k3s_service_cidr: valid, not overlapping, and not holding a node address."""
    errors = []
    cluster = _network("k3s_cluster_cidr", cluster_cidr, errors)
    service = _network("k3s_service_cidr", service_cidr, errors)
    if cluster is not None and service is not None:
        if cluster.version != service.version:
            errors.append(
                f"k3s_cluster_cidr = {cluster} and k3s_service_cidr = {service} are of different IP versions; allowed: both IPv4 or both IPv6")
        elif cluster.overlaps(service):
            errors.append(
                f"k3s_cluster_cidr = {cluster} overlaps k3s_service_cidr = {service}; allowed: two disjoint networks "
                "(k3s defaults: 10.42.0.0/16 and 10.43.0.0/16)")
    for host, address in sorted((node_addresses or {}).items()):
        try:
            ip = ipaddress.ip_address(str(address))
        except ValueError:
            continue
        for name, net in (("k3s_cluster_cidr", cluster), ("k3s_service_cidr", service)):
            if net is not None and ip.version == net.version and ip in net:
                errors.append(
                    f"{name} = {net} contains the address {ip} of host {host}; allowed: a network that holds no node address")
    return errors


def check_topology(servers, agents, all_hosts=None):
    """Server count and group membership."""
    errors = []
    servers = list(servers or [])
    agents = list(agents or [])
    if not servers:
        errors.append(
            "inventory group k3s_servers (gitpod_k3s_server_group) is empty; allowed: one server, or an odd number >= 3 for HA")
    elif len(servers) > 1 and len(servers) % 2 == 0:
        errors.append(
            f"inventory group k3s_servers has {len(servers)} hosts ({', '.join(servers)}); allowed: 1, or an odd number >= 3 "
            "(embedded etcd needs a majority)")
    both = sorted(set(servers) & set(agents))
    if both:
        errors.append(
            f"host(s) {', '.join(both)} are in both k3s_servers and k3s_agents; allowed: each host in exactly one of them")
    if all_hosts is not None:
        loose = sorted(set(all_hosts) - set(servers) - set(agents))
        if loose:
            errors.append(
                f"host(s) {', '.join(loose)} are in neither k3s_servers nor k3s_agents; allowed: every cluster host in one of them")
    return errors


def check_labels(label_groups, labels, inventory_groups, required=None, known_labels=GITPOD_LABELS):
    """gitpod_k3s_labels / gitpod_k3s_label_groups and the gitpod_* groups of the inventory."""
    errors = []
    if not isinstance(labels, dict):
        return [f"gitpod_k3s_labels = {labels!r} is not a mapping; allowed: label key -> Gitpod label name"]
    if not isinstance(label_groups, dict):
        return [f"gitpod_k3s_label_groups = {label_groups!r} is not a mapping; allowed: inventory group -> list of label keys"]
    for key, name in sorted(labels.items()):
        if name not in known_labels:
            errors.append(
                f"gitpod_k3s_labels.{key} = {name!r} is not a label Gitpod knows; allowed: {', '.join(sorted(known_labels))}")
    for group, keys in sorted(label_groups.items()):
        if not isinstance(keys, list):
            errors.append(f"gitpod_k3s_label_groups.{group} = {keys!r} is not a list; allowed: a list of keys of gitpod_k3s_labels")
            continue
        for key in keys:
            if key not in labels:
                errors.append(
                    f"gitpod_k3s_label_groups.{group} names label key {key!r}; allowed: {', '.join(sorted(labels))} (keys of gitpod_k3s_labels)")
    for key in required or []:
        if key not in labels:
            errors.append(f"gitpod_k3s_required_labels names {key!r}; allowed: {', '.join(sorted(labels))} (keys of gitpod_k3s_labels)")
    for group in sorted(inventory_groups or []):
        if group.startswith("gitpod_") and group not in label_groups:
            errors.append(
                f"inventory group {group!r} is not a Gitpod group; allowed: {', '.join(sorted(label_groups))} "
                "(keys of gitpod_k3s_label_groups)")
    return errors


def check_domain(domain):
    """gitpod_k3s_domain: empty (no domain) or a DNS name of two or more labels."""
    if domain in (None, ""):
        return []
    value = str(domain)
    labels = value.rstrip(".").split(".")
    bad = (len(value) > 253 or len(labels) < 2 or value != value.lower()
           or not all(DOMAIN_LABEL_RE.match(label) for label in labels) or labels[-1].isdigit())
    if bad:
        return [f"gitpod_k3s_domain = {value!r} is not a valid domain; allowed: a lower-case DNS name such as gitpod.example.com "
                "(no scheme, port, wildcard or path), or empty"]
    return []


def check_k3s_version(version, minimum_minor=21):
    """k3s_version: a k3s release tag, Kubernetes >= 1.21."""
    match = K3S_VERSION_RE.match(str(version or ""))
    if not match:
        return [f"k3s_version = {version!r} is malformed; allowed: a k3s release tag such as v1.28.5+k3s1"]
    if int(match.group(1)) < minimum_minor:
        return [f"k3s_version = {version!r} is Kubernetes 1.{match.group(1)}; allowed: 1.{minimum_minor} or newer (Gitpod's minimum)"]
    return []


def check_containerd_mode(mode, name="gitpod_k3s_containerd_mode"):
    if mode not in CONTAINERD_MODES:
        return [f"{name} = {mode!r} is unknown; allowed: {', '.join(CONTAINERD_MODES)}"]
    return []


def check_thresholds(thresholds):
    """Numeric thresholds: numbers >= 0 (strings of digits are accepted)."""
    errors = []
    for name, value in sorted((thresholds or {}).items()):
        if isinstance(value, bool):
            ok = False
        else:
            try:
                ok = float(value) >= 0
            except (TypeError, ValueError):
                ok = False
        if not ok:
            errors.append(f"{name} = {value!r} is not a usable threshold; allowed: a number >= 0")
    return errors


def check_airgap_dir(path, required_files):
    """k3s_airgap_dir: when set, a directory on the controller holding every required file."""
    if path in (None, ""):
        return []
    if not os.path.isdir(path):
        return [f"k3s_airgap_dir = {path!r} is not a directory on the controller; allowed: a directory holding "
                f"{', '.join(required_files)}, or empty to download"]
    missing = [f for f in required_files if not os.path.isfile(os.path.join(path, f))]
    if missing:
        return [f"k3s_airgap_dir = {path!r} lacks {', '.join(missing)}; allowed: a directory holding {', '.join(required_files)}"]
    return []
