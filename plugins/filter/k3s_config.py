# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Filter: the settings k3s fixes that a new config.yaml would change (plugins/module_utils/k3s_flags.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: k3s_fixed_changes
short_description: Settings k3s fixes that a new config.yaml would change
version_added: "0.1.0"
description:
  - Compares the config.yaml on a node with the one the role would write, for the keys every server must share
    (k3s's critical configuration) and the node's name. One entry per changed key; empty when none changed.
options:
  _input:
    description: The config.yaml on the node, parsed (empty on a first install).
    type: dict
    required: true
  after:
    description: The config.yaml the role would write.
    type: dict
    required: true
  server:
    description: Whether the node is a server (agents share only the node name rule).
    type: bool
    required: true
"""

EXAMPLES = r"""
- name: Refuse a new pod network on a running cluster
  ansible.builtin.assert:
    that: changes | length == 0
  vars:
    changes: "{{ {'cluster-cidr': '10.42.0.0/16'} | selfhosted.gitpod_k3s.k3s_fixed_changes({'cluster-cidr': '10.52.0.0/16'}, true) }}"
"""

RETURN = r"""
_value:
  description: One C({key, before, after}) per changed key.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils.k3s_flags import fixed_setting_changes


def k3s_fixed_changes(before, after, server):
    if not isinstance(before, dict) or not isinstance(after, dict):
        raise AnsibleFilterError("k3s_fixed_changes: config.yaml before and after must be mappings")
    return [{"key": key, "before": old, "after": new} for key, old, new in fixed_setting_changes(before, after, bool(server))]


class FilterModule:
    def filters(self):
        return {"k3s_fixed_changes": k3s_fixed_changes}
