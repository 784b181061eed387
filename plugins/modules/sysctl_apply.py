#!/usr/bin/python
# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: sysctl_apply
short_description: Apply kernel parameters to the running kernel where /proc/sys allows it
description:
  - Compares each parameter's live value in C(/proc/sys) with the value wanted (whitespace
    collapsed, so C(5000 65000) matches C(5000<TAB>65000)) and writes those that differ.
  - Where C(/proc/sys) is read-only (containers), a differing parameter cannot be written. Keys in
    O(required) then fail the task; the others produce a warning, or an error with
    O(on_unapplied=fail).
  - It does not write C(/etc/sysctl.d); persist the values with a template and use this module
    for the running kernel.
version_added: "0.1.0"
author:
  - selfhosted.gitpod_k3s maintainers (@selfhosted)
options:
  settings:
    description: Parameter name (dotted, or with C(/) separators as in sysctl(8)) to value.
    type: dict
    required: true
  required:
    description:
      - Keys whose live value must match even where they cannot be written; any such key that
        differs fails the task.
    type: list
    elements: str
    default: []
  on_unapplied:
    description: What a differing key that cannot be written (and is not in O(required)) causes.
    type: str
    choices: [warn, fail]
    default: warn
  persisted_in:
    description: File the values are persisted in, named in the warning.
    type: str
    default: ""
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports which keys would be written; nothing is written.
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
    details: Linux hosts; reads and writes /proc/sys.
notes:
  - A key missing from C(/proc/sys) fails the task (its kernel module is not loaded, or the name
    is wrong), except in check mode, where it is a warning because modules loaded earlier in the
    same play were not loaded.
"""

EXAMPLES = r"""
- name: Apply Kubernetes' kernel parameters
  selfhosted.gitpod_k3s.sysctl_apply:
    settings:
      net.ipv4.ip_forward: 1
      net.core.somaxconn: 4096
      fs.inotify.max_user_watches: 1000000
    required: [net.ipv4.ip_forward]
    persisted_in: /etc/sysctl.d/90-gitpod-k3s.conf
"""

RETURN = r"""
applied:
  description: Keys written (in check mode, keys that would be written), with their previous values.
  type: dict
  returned: always
  sample: {"net.core.somaxconn": {"before": "128", "after": "4096"}}
unapplied:
  description: Keys that differ and could not be written, with the reason.
  type: dict
  returned: always
  sample: {"fs.inotify.max_user_watches": {"expected": "1000000", "actual": "192536", "reason": "read-only"}}
missing:
  description: Keys the running kernel does not have.
  type: list
  elements: str
  returned: always
values:
  description: Live value of every key after the run (null for missing keys).
  type: dict
  returned: always
  sample: {"net.ipv4.ip_forward": "1"}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import sysctl


ARGUMENT_SPEC = {
    "settings": {"type": "dict", "required": True},
    "required": {"type": "list", "elements": "str", "default": []},
    "on_unapplied": {"type": "str", "choices": ["warn", "fail"], "default": "warn"},
    "persisted_in": {"type": "str", "default": ""},
}


def run(module, root=sysctl.PROC_SYS):
    p = module.params
    try:
        result, diff, errors, warnings = sysctl.converge(
            p["settings"], root=root, check_mode=module.check_mode, required=p["required"],
            on_unapplied=p["on_unapplied"], file_hint=p["persisted_in"])
    except ValueError as e:
        module.fail_json(msg=f"settings: {e}")
    result["changed"] = bool(result["applied"])
    if module._diff and diff:
        result["diff"] = diff
    for w in warnings:
        module.warn(w)
    if errors:
        module.fail_json(msg="; ".join(errors), **result)
    module.exit_json(**result)


def main():
    run(AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True))


if __name__ == "__main__":
    main()
