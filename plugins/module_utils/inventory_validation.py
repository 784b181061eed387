# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Cross-variable checks on the inventory, run on the controller before any host is touched.

Every function returns a list of error strings; each names the variable, the value given and
what is allowed. Types and choices of single variables, the server count, group membership,
the k3s tag format and the containerd mode are checked by each role's own validate tasks,
which playbooks/inventory_check.yml runs first; this covers what no single role can see.
"""

from __future__ import annotations

import fnmatch
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
    """k3s_version: Kubernetes 1.21 or newer (Gitpod's minimum).

    The tag's format is the k3s role's own check; a tag this cannot read is left to it.
    """
    match = K3S_VERSION_RE.match(str(version or ""))
    if match and int(match.group(1)) < minimum_minor:
        return [f"k3s_version = {version!r} is Kubernetes 1.{match.group(1)}; allowed: 1.{minimum_minor} or newer (Gitpod's minimum)"]
    return []


def check_thresholds(thresholds, profiles=None, profiles_name="preflight_profiles"):
    """Numeric thresholds: numbers >= 0 (strings of digits are accepted).

    ``profiles`` is a mapping of mappings (preflight_profiles: workload -> threshold -> value);
    its values are reported as ``preflight_profiles.<workload>.<threshold>``.
    """
    values = dict(thresholds or {})
    for workload, entries in (profiles or {}).items():
        if isinstance(entries, dict):
            for key, value in entries.items():
                values[f"{profiles_name}.{workload}.{key}"] = value
    errors = []
    for name, value in sorted(values.items()):
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


def check_airgap_dir(path, required):
    """k3s_airgap_dir: when set, a directory on the controller holding one file for each entry.

    ``required`` is a list of entries, each a glob or a list of alternative globs, e.g.
    [["k3s", "k3s-arm64"], "sha256sum-*.txt"]: the check needs no host facts, so the exact
    per-architecture names are left to the k3s role.
    """
    if path in (None, ""):
        return []
    alternatives = [[entry] if isinstance(entry, str) else list(entry) for entry in required]
    wanted = ", ".join(" or ".join(alts) for alts in alternatives)
    if not os.path.isdir(path):
        return [f"k3s_airgap_dir = {path!r} is not a directory on the controller; allowed: a directory holding "
                f"{wanted}, or empty to download"]
    names = os.listdir(path)
    missing = [" or ".join(alts) for alts in alternatives
               if not any(fnmatch.fnmatchcase(name, pattern) and os.path.isfile(os.path.join(path, name))
                          for pattern in alts for name in names)]
    if missing:
        return [f"k3s_airgap_dir = {path!r} lacks {', '.join(missing)}; allowed: a directory holding {wanted}"]
    return []


# Calico IP pool encapsulations that route over BGP: the Tigera operator refuses them with BGP off
# (tigera/operator pkg/controller/installation/validation.go).
CALICO_BGP_ENCAPSULATIONS = ("IPIP", "IPIPCrossSubnet", "None")


def check_calico_network(encapsulation, bgp):
    """calico_encapsulation and calico_bgp: IPIP, IPIPCrossSubnet and None need calico_bgp Enabled."""
    if encapsulation in CALICO_BGP_ENCAPSULATIONS and bgp != "Enabled":
        return [f"calico_encapsulation = {encapsulation!r} needs calico_bgp = 'Enabled' (given {bgp!r}): "
                "the Tigera operator programs IPIP and unencapsulated routes over BGP; allowed: calico_bgp 'Enabled' "
                "with IPIP, IPIPCrossSubnet or None, or calico_encapsulation VXLAN or VXLANCrossSubnet with BGP "
                "'Disabled' or 'Enabled'"]
    return []
