# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Filter: the nodes an upgrade to a k3s release must not touch (plugins/module_utils/versions.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: k3s_upgrade_refusals
short_description: Nodes that cannot move to a k3s release in one step
version_added: "0.1.0"
description:
  - One message per node whose kubelet version is newer than the target (k3s does not downgrade) or more than one
    minor release older (k3s moves one minor release at a time). Empty when every node may be upgraded.
options:
  _input:
    description: Node name to the kubelet version it reports (C(status.nodeInfo.kubeletVersion)).
    type: dict
    required: true
  target:
    description: The k3s release to move to (C(k3s_version)).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Refuse a downgrade or a skipped minor release
  ansible.builtin.assert:
    that: refusals | length == 0
  vars:
    refusals: "{{ {'s1': 'v1.30.4+k3s1'} | selfhosted.gitpod_k3s.k3s_upgrade_refusals('v1.32.1+k3s1') }}"
"""

RETURN = r"""
_value:
  description: One message per refused node.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import versions


def k3s_upgrade_refusals(node_versions, target):
    """The messages of versions.k3s_upgrade_refusals; an unreadable target is a filter error."""
    try:
        return versions.k3s_upgrade_refusals(node_versions, target)
    except versions.VersionError as exc:
        raise AnsibleFilterError(f"k3s_upgrade_refusals: {exc}") from None


class FilterModule:
    """k3s upgrade filters."""

    def filters(self):
        return {"k3s_upgrade_refusals": k3s_upgrade_refusals}
