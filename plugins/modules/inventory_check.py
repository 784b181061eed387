# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Documentation of the inventory_check action plugin (plugins/action/inventory_check.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: inventory_check
short_description: Reject a bad inventory before any host is touched
version_added: "0.1.0"
description:
  - Runs on the controller only; it never connects to a host.
  - Checks what no single role's validate tasks can, across variables and hosts, and fails with one
    message that names, for every problem, the variable, the value given and what is allowed.
options:
  k3s_cluster_cidr: {description: Pod network., type: str}
  k3s_service_cidr: {description: Service network., type: str}
  node_addresses: {description: "Host to node address, to keep nodes out of the CIDRs.", type: dict, default: {}}
  labels: {description: gitpod_k3s_labels. The label checks run when labels or label_groups is given., type: dict}
  label_groups: {description: gitpod_k3s_label_groups., type: dict}
  required_labels: {description: gitpod_k3s_required_labels., type: list, elements: str, default: []}
  inventory_groups: {description: Names of the inventory's groups., type: list, elements: str, default: []}
  domain: {description: gitpod_k3s_domain., type: str, default: ""}
  k3s_version: {description: k3s release tag; must be Kubernetes 1.21 or newer. Not checked when omitted., type: str}
  thresholds: {description: Variable name to value of every numeric threshold., type: dict, default: {}}
  threshold_profiles: {description: "preflight_profiles: workload to threshold name to value; each value a number >= 0.", type: dict, default: {}}
  airgap_dir: {description: k3s_airgap_dir on the controller., type: str, default: ""}
  airgap_files: {description: "Entries the air-gap directory must hold, each a glob or a list of alternative globs.", type: list, elements: raw, default: []}
  calico_encapsulation:
    description: "Calico IP pool encapsulation; IPIP, IPIPCrossSubnet and None need calico_bgp Enabled. Not checked when omitted."
    type: str
  calico_bgp: {description: Calico BGP (Enabled or Disabled)., type: str}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode: {support: full}
  diff_mode: {support: none}
  platform: {platforms: all}
author: selfhosted.gitpod_k3s maintainers (@selfhosted)
"""

EXAMPLES = r"""
- name: Reject a bad inventory before any host is touched
  selfhosted.gitpod_k3s.inventory_check:
    k3s_cluster_cidr: "{{ k3s_cluster_cidr }}"
    k3s_service_cidr: "{{ k3s_service_cidr }}"
    labels: "{{ gitpod_k3s_labels }}"
    label_groups: "{{ gitpod_k3s_label_groups }}"
    inventory_groups: "{{ groups.keys() | list }}"
    domain: "{{ gitpod_k3s_domain }}"
  run_once: true
"""

RETURN = r"""
errors:
  description: One line per problem, naming the variable, the value given and what is allowed.
  type: list
  elements: str
  returned: always
  sample: ["k3s_cluster_cidr = 10.42.0.0/16 overlaps k3s_service_cidr = 10.42.128.0/17; allowed: two disjoint networks"]
"""
