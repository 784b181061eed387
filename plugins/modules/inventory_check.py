# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Documentation of the inventory_check action plugin (plugins/action/inventory_check.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: inventory_check
short_description: Check every setting of the collection's roles before any host is touched
version_added: "0.1.0"
description:
  - Runs on the controller only; it never connects to a host and gathers no facts.
  - For every host of the play it works out each variable of the argument spec (entry point C(main)) of
    every role in O(roles), as that role would see it (the role's C(defaults/main.yml) under the
    inventory and extra vars, templated), and validates it with Ansible's argument spec validator
    (types, choices, list elements, sub-options).
  - It then applies the role's rules and the rules across hosts, all in
    C(plugins/module_utils/inventory_validation.py), and fails with one message listing every
    problem, each naming the variable or host, the value given and what is allowed. Secret values are
    never quoted.
  - A value that depends on gathered facts is checked when the facts are there (O(scope=facts)).
options:
  roles:
    description:
      - Roles of the collection whose settings to check; C(common) is always checked.
    type: list
    elements: str
    default: []
  scope:
    description:
      - C(all) checks every setting; C(facts) re-checks only what gathered facts decide (node name, node
        address, architecture, air-gap file names).
    type: str
    choices: [all, facts]
    default: all
  hosts:
    description: Hosts to check; the play's hosts (C(ansible_play_hosts_all)) when empty.
    type: list
    elements: str
    default: []
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
    roles: [preflight, host_prep, containerd, k3s, calico]
  run_once: true

- name: Check what the gathered facts tell
  selfhosted.gitpod_k3s.inventory_check:
    roles: [k3s]
    scope: facts
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
