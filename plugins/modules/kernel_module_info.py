#!/usr/bin/python
# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: kernel_module_info
short_description: Tell which kernel modules are present, built in, loadable or unavailable
description:
  - For each module name, looks for it in C(/sys/module), for the feature it provides
    (C(/proc/filesystems) for overlay and fuse, C(/proc/sys/net/bridge) for br_netfilter,
    C(/proc/net/ip_tables_names) for ip_tables, ...), in C(modules.builtin), and in C(modules.dep)
    of the running kernel.
  - Returns the modules that must be loaded (present only as a loadable C(.ko)), so that
    C(community.general.modprobe) runs only for them. Kernels that build everything in have no
    C(/lib/modules), and C(modprobe) fails there.
  - Reads only; never changes the host.
version_added: "0.1.0"
author:
  - selfhosted.gitpod_k3s maintainers (@selfhosted)
options:
  names:
    description: Module names (C(-) and C(_) are treated alike).
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
    details: Linux hosts; reads /sys, /proc and /lib/modules.
"""

EXAMPLES = r"""
- name: Find the kernel modules to load
  selfhosted.gitpod_k3s.kernel_module_info:
    names: [overlay, br_netfilter]
  register: kmods

- name: Load what is missing
  community.general.modprobe:
    name: "{{ item }}"
    state: present
  loop: "{{ kmods.to_load }}"
"""

RETURN = r"""
modules:
  description: Per module, its state (loaded, builtin, loadable, unavailable) and the evidence.
  type: dict
  returned: always
  sample: {"br_netfilter": {"state": "loaded", "evidence": "/proc/sys/net/bridge"}}
to_load:
  description: Modules that are loadable and not yet loaded.
  type: list
  elements: str
  returned: always
  sample: [br_netfilter]
unavailable:
  description: Modules neither present, built in, nor loadable.
  type: list
  elements: str
  returned: always
kernel:
  description: The running kernel's release.
  type: str
  returned: always
  sample: 5.15.0-91-generic
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import kernel_modules


def main():
    module = AnsibleModule(
        argument_spec={"names": {"type": "list", "elements": "str", "required": True}},
        supports_check_mode=True,
    )
    release = os.uname().release
    result = kernel_modules.decide(module.params["names"], **kernel_modules.gather(release))
    module.exit_json(changed=False, kernel=release, **result)


if __name__ == "__main__":
    main()
