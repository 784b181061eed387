# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Plan and apply the managed labels and taints of Kubernetes nodes.

The collection manages a fixed set of label names (Gitpod's ``gitpod.io/workload_*``). For each
node it is told which of them the node must carry; it adds those that are missing, removes managed
labels the node must no longer carry (the host left an inventory group) and never touches any
other label.

Taints the same way, for the nodes given taints: k3s applies ``node-taint`` only when the node
registers (the kubelet's --register-with-taints), so a changed ``k3s_node_taints`` reaches a
registered node only here. The taints the collection set are recorded on the node (annotation
TAINTS_ANNOTATION, ``key:Effect`` entries); only those are ever removed, never a taint someone
else set (a cordon, a cloud provider's, an operator's). Plain Python: the module and the unit tests
call it without Ansible.
"""

from __future__ import annotations

import json
import re

DEFAULT_VALUE = "true"

# Kubernetes label keys: an optional DNS-subdomain prefix and "/", then a name of at most 63
# characters that starts and ends with an alphanumeric (k8s.io/apimachinery validation).
_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


class LabelError(ValueError):
    """Bad input: the message names the option, the value given and what is allowed."""


def validate_label_key(key, option="managed_labels"):
    """Raise LabelError unless ``key`` is a valid Kubernetes label key."""
    if not isinstance(key, str) or not key:
        raise LabelError(f"{option}: label names must be non-empty strings, got {key!r}")
    prefix, _sep, name = key.rpartition("/")
    if "/" in prefix or (key.count("/") == 1 and not prefix):
        raise LabelError(f"{option}: {key!r} is not a valid label name: at most one '/' after a DNS prefix")
    if prefix and (len(prefix) > 253 or not _PREFIX.match(prefix)):
        raise LabelError(f"{option}: {key!r} has an invalid prefix {prefix!r}: a lower-case DNS subdomain "
                         "of at most 253 characters is allowed")
    if not _NAME.match(name):
        raise LabelError(f"{option}: {key!r} has an invalid name part {name!r}: 1-63 characters [A-Za-z0-9-_.], "
                         "starting and ending with a letter or digit")


def validate_label_value(value, option="value"):
    """Raise LabelError unless ``value`` is a valid Kubernetes label value."""
    if not isinstance(value, str) or not _VALUE.match(value):
        raise LabelError(f"{option}: {value!r} is not a valid label value: at most 63 characters [A-Za-z0-9-_.], "
                         "starting and ending with a letter or digit")


def normalise_desired(nodes, managed, value=DEFAULT_VALUE):
    """Check the desired state and return ``{node name: {label: value}}``.

    ``nodes`` is a list of ``{"name": str, "labels": [label, ...]}``; each label must be one of
    ``managed`` (a label the module would add but never remove is refused).
    """
    for key in managed:
        validate_label_key(key, "managed_labels")
    validate_label_value(value, "value")
    managed_set = set(managed)
    desired = {}
    for index, node in enumerate(nodes or []):
        name = (node or {}).get("name")
        if not isinstance(name, str) or not name:
            raise LabelError(f"nodes[{index}].name: a node name is required, got {name!r}")
        if name in desired:
            raise LabelError(f"nodes: node {name!r} is listed twice; give each Kubernetes node once "
                             "(two inventory hosts resolve to the same node name?)")
        labels = node.get("labels") or []
        unmanaged = sorted(set(labels) - managed_set)
        if unmanaged:
            raise LabelError(f"nodes[{index}] ({name}).labels: {', '.join(unmanaged)} not in managed_labels "
                             f"({', '.join(sorted(managed_set)) or 'empty'}); only managed labels can be set")
        desired[name] = {label: value for label in labels}
    return desired


def managed_view(labels, managed):
    """The managed subset of a node's labels."""
    return {k: v for k, v in (labels or {}).items() if k in managed}


def plan(cluster_nodes, desired, managed, unlisted="ignore"):
    """Decide what to change.

    ``cluster_nodes`` is the ``items`` of ``kubectl get nodes -o json``. Returns
    ``(changes, missing)``: ``changes`` maps each node to change to ``{"set": {k: v}, "remove": [k],
    "before": {managed labels now}, "after": {managed labels wanted}}``; ``missing`` lists desired
    node names the cluster does not have. Nodes not in ``desired`` keep their labels unless
    ``unlisted`` is ``remove``, which strips their managed labels.
    """
    managed = set(managed)
    current = {}
    for item in cluster_nodes or []:
        meta = item.get("metadata") or {}
        current[meta.get("name")] = meta.get("labels") or {}
    missing = sorted(name for name in desired if name not in current)
    changes = {}
    for name in sorted(current):
        if name in desired:
            want = desired[name]
        elif unlisted == "remove":
            want = {}
        else:
            continue
        before = managed_view(current[name], managed)
        to_set = {k: v for k, v in sorted(want.items()) if before.get(k) != v}
        to_remove = sorted(k for k in before if k not in want)
        if to_set or to_remove:
            changes[name] = {"set": to_set, "remove": to_remove, "before": before, "after": dict(sorted(want.items()))}
    return changes, missing


def label_args(node, change):
    """``kubectl label`` arguments for one node: set with --overwrite, remove with ``key-``."""
    args = ["label", "node", node, "--overwrite"]
    args += [f"{k}={v}" for k, v in change["set"].items()]
    args += [f"{k}-" for k in change["remove"]]
    return args


def render(labels):
    """Labels as sorted ``key=value`` lines, for diffs."""
    return "".join(f"{k}={v}\n" for k, v in sorted(labels.items()))


def diffs(changes):
    """One before/after diff per changed node."""
    return [
        {"before_header": f"node/{name} (managed labels)", "after_header": f"node/{name} (managed labels)",
         "before": render(c["before"]), "after": render(c["after"])}
        for name, c in sorted(changes.items())
    ]


def verify(cluster_nodes, changes, managed):
    """After applying: the names of changed nodes whose managed labels still differ from the plan."""
    by_name = {(i.get("metadata") or {}).get("name"): (i.get("metadata") or {}).get("labels") or {}
               for i in cluster_nodes or []}
    return sorted(name for name, c in changes.items()
                  if managed_view(by_name.get(name, {}), set(managed)) != c["after"])


# --- taints ------------------------------------------------------------------------------------

TAINTS_ANNOTATION = "gitpod-k3s.selfhosted.io/taints"
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def parse_taint(text, option="taints"):
    """``key[=value]:Effect`` -> ``(key, value, effect)``; raises LabelError naming ``option``."""
    key_value, _colon, effect = str(text).rpartition(":")
    key, _eq, value = key_value.partition("=")
    if effect not in TAINT_EFFECTS or not key:
        raise LabelError(f"{option}: {text!r} is not a taint; allowed: key=value:Effect or key:Effect with Effect "
                         f"{', '.join(TAINT_EFFECTS)}")
    validate_label_key(key, option)
    if value:
        validate_label_value(value, option)
    return key, value, effect


def _taint_id(taint):
    return f"{taint['key']}:{taint['effect']}"


def _spec(taint):
    return f"{taint['key']}={taint['value']}:{taint['effect']}" if taint["value"] else _taint_id(taint)


def _recorded(meta):
    try:
        found = json.loads((meta.get("annotations") or {}).get(TAINTS_ANNOTATION) or "[]")
    except ValueError:
        return set()
    return {str(x) for x in found} if isinstance(found, list) else set()


def plan_taints(cluster_nodes, desired):
    """``desired``: node name -> list of ``key[=value]:Effect`` (nodes not given are left alone).

    Returns node -> ``{"add": [spec], "remove": ["key:Effect"], "record": ["key:Effect"], "before": [...],
    "after": [...]}`` for the nodes whose taints or record change. A wanted taint already on the node
    is adopted into the record (the taints k3s set at registration); a recorded taint no longer
    wanted is removed; any other taint stays.
    """
    changes = {}
    for item in cluster_nodes or []:
        meta = item.get("metadata") or {}
        name = meta.get("name")
        if name not in desired:
            continue
        want = {}
        for spec in desired[name]:
            key, value, effect = parse_taint(spec, f"taints of node {name}")
            want[f"{key}:{effect}"] = {"key": key, "value": value, "effect": effect}
        current = {_taint_id(t): {"key": t.get("key"), "value": t.get("value") or "", "effect": t.get("effect")}
                   for t in (item.get("spec") or {}).get("taints") or []}
        recorded = _recorded(meta)
        add = [t for tid, t in sorted(want.items()) if current.get(tid) != t]
        remove = sorted(tid for tid in recorded & set(current) if tid not in want)
        record = sorted(want)
        if add or remove or set(record) != recorded:
            changes[name] = {
                "add": [_spec(t) for t in add], "remove": remove, "record": record,
                "before": sorted(_spec(t) for tid, t in current.items() if tid in recorded | set(want)),
                "after": sorted(_spec(t) for t in want.values())}
    return changes


def taint_args(node, change):
    """``kubectl taint`` arguments, or None when only the record changes."""
    if not change["add"] and not change["remove"]:
        return None
    return ["taint", "node", node, "--overwrite"] + change["add"] + [f"{tid}-" for tid in change["remove"]]


def record_args(node, change):
    """``kubectl annotate`` arguments that record the taints the collection manages on ``node``."""
    return ["annotate", "node", node, "--overwrite", f"{TAINTS_ANNOTATION}={json.dumps(change['record'])}"]


def taint_diffs(changes):
    """One before/after diff per node whose managed taints change."""
    return [
        {"before_header": f"node/{name} (managed taints)", "after_header": f"node/{name} (managed taints)",
         "before": "".join(f"{t}\n" for t in c["before"]), "after": "".join(f"{t}\n" for t in c["after"])}
        for name, c in sorted(changes.items())
    ]
