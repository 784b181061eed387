# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Filters that turn inventory group membership into Gitpod node labels."""

from __future__ import annotations

DOCUMENTATION = r"""
name: gitpod_node_labels
short_description: Gitpod node labels for a host's inventory groups
version_added: "0.1.0"
description:
  - Returns the label names a host carries, sorted, from the groups it belongs to.
  - The same computation serves k3s registration labels, the node_labels module, and the preflight.
options:
  _input:
    description: The host's C(group_names).
    type: list
    elements: str
    required: true
  label_groups:
    description: Inventory group to label keys (C(gitpod_k3s_label_groups)).
    type: dict
    required: true
  labels:
    description: Label key to label name (C(gitpod_k3s_labels)).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Labels this host registers with
  ansible.builtin.debug:
    msg: "{{ group_names | selfhosted.gitpod_k3s.gitpod_node_labels(gitpod_k3s_label_groups, gitpod_k3s_labels) }}"
"""

RETURN = r"""
_value:
  description: Sorted label names, e.g. C([gitpod.io/workload_ide, gitpod.io/workload_meta]).
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import inventory_validation as iv


def label_keys_for_groups(group_names, label_groups):
    """Return the sorted label keys the given groups confer."""
    keys = set()
    for group in group_names or []:
        for key in label_groups.get(group, []) or []:
            keys.add(key)
    return sorted(keys)


def gitpod_node_labels(group_names, label_groups, labels):
    """Return the sorted label names a host in ``group_names`` carries."""
    if not isinstance(label_groups, dict):
        raise AnsibleFilterError(
            f"gitpod_node_labels: label_groups (gitpod_k3s_label_groups) must be a mapping, got {type(label_groups).__name__}")
    if not isinstance(labels, dict):
        raise AnsibleFilterError(
            f"gitpod_node_labels: labels (gitpod_k3s_labels) must be a mapping, got {type(labels).__name__}")
    for key in label_keys_for_groups(group_names, label_groups):
        if key not in labels:
            raise AnsibleFilterError(
                f"gitpod_node_labels: gitpod_k3s_label_groups names label key '{key}', which gitpod_k3s_labels "
                f"does not define; defined keys: {', '.join(sorted(labels))}")
    return sorted(iv.carried_labels(group_names or [], label_groups, labels))


class FilterModule:
    """Gitpod label filters."""

    def filters(self):
        return {"gitpod_node_labels": gitpod_node_labels}
