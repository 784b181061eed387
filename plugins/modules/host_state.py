#!/usr/bin/python
# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
from __future__ import annotations

DOCUMENTATION = r"""
module: host_state
short_description: Converge a host's packages, kernel settings, swap, files and services in one call
description:
  - The host layer of the collection in one round trip per host. It reads the host, changes only
    what differs and reports each change, so that a run that changes nothing costs one module call.
  - Sections run in a fixed order, each only when its option is given - an interrupted dpkg journal
    is replayed (C(dpkg --configure -a)); O(packages) missing are installed with C(apt-get); the
    O(min_versions) are checked; O(kernel_modules) not present nor built in are loaded; O(sysctl)
    parameters are applied; swap is turned off (O(swap_off)); O(directories), O(files), O(absent)
    and O(prune) are brought to state; and O(services) are masked, enabled, started or restarted.
  - The package lists are refreshed only when a package must be installed or looked up and the
    lists are missing or older than O(cache_valid_time).
  - Several roles' argument sets can be given together (O(calls)) and are applied in one pass.
version_added: "0.1.0"
author:
  - selfhosted.gitpod_k3s maintainers (@selfhosted)
options:
  packages:
    description: Packages that must be installed.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Package name.
        type: str
        required: true
      optional:
        description: Install it only when the archive has it (kernel headers of custom kernels are not there).
        type: bool
        default: false
      unless_installed:
        description: Leave it out when one of these packages is installed (another time daemon).
        type: list
        elements: str
        default: []
  cache_valid_time:
    description: Seconds the package lists stay fresh when a package must be installed.
    type: int
    default: 3600
  min_versions:
    description: Minimum version of a command installed by one of O(packages), checked once it is installed.
    type: list
    elements: dict
    default: []
    suboptions:
      package:
        description: The package that provides the command; the check runs when it is installed.
        type: str
        required: true
      command:
        description: The command asked for C(--version).
        type: str
        choices: [containerd]
        required: true
      min_version:
        description: Lowest version accepted.
        type: str
        required: true
  kernel_modules:
    description:
      - Kernel modules that must be available. Those present only as a loadable C(.ko) are loaded;
        one that is neither present, built in nor loadable fails the task.
    type: list
    elements: str
    default: []
  sysctl:
    description:
      - Kernel parameters applied to the running kernel where C(/proc/sys) is writable. Where it is
        read-only (containers) a differing parameter is reported; those in O(sysctl.required) fail the task.
    type: dict
    suboptions:
      settings:
        description: Parameter name to value.
        type: dict
        required: true
      required:
        description: Keys whose live value must match even where they cannot be written.
        type: list
        elements: str
        default: []
      on_unapplied:
        description: What a differing key that cannot be written (and is not in O(sysctl.required)) causes.
        type: str
        choices: [warn, fail]
        default: warn
      persisted_in:
        description: File the values are persisted in (write it with O(files)), named in warnings.
        type: str
        default: ""
  swap_off:
    description:
      - Turn active swap off, comment out the swap lines of C(/etc/fstab) and fail in a container
        whose swap belongs to the machine that runs it. Mask C(swap.target) with O(services).
    type: bool
    default: false
  directories:
    description: Directories that must exist (parents are created as needed).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      mode:
        description: Octal mode; omitted, an existing directory keeps its mode and a new one gets C(0755).
        type: raw
      owner:
        description: Owner.
        type: str
        default: root
      group:
        description: Group.
        type: str
        default: root
  files:
    description: Files and their content (render templates on the controller); written atomically when the content differs.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path; its directory must exist (create it with O(directories)).
        type: path
        required: true
      content:
        description: The whole content; a final newline is added when it lacks one (template lookups drop it).
        type: str
        required: true
      mode:
        description: Octal mode.
        type: raw
        default: "0644"
      owner:
        description: Owner.
        type: str
        default: root
      group:
        description: Group.
        type: str
        default: root
  absent:
    description: Files or directories (recursively) that must not exist.
    type: list
    elements: path
    default: []
  prune:
    description: Directories whose subdirectories not listed in O(prune[].keep) are removed.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The directory to prune.
        type: path
        required: true
      keep:
        description: Names of the subdirectories to keep.
        type: list
        elements: str
        default: []
      marker_file:
        description: Remove only subdirectories whose file of this name contains O(prune[].marker).
        type: str
      marker:
        description: Text that marks a subdirectory as written by this collection.
        type: str
        default: ""
  calls:
    description:
      - Argument sets of several roles, each a dict of this module's other options, applied in one
        pass as if given at once - lists are joined in order, O(swap_off) holds when any set asks,
        the smallest O(cache_valid_time) is used, and only one set may give O(sysctl). An empty or
        null set adds nothing.
      - C(playbooks/prepare.yml) so applies host_prep's and containerd's changes in one round trip
        per host; the module's fixed section order installs every package before any file is
        written and any service started.
      - With O(calls), no other option may be given.
    type: list
    elements: raw
    default: []
  stat:
    description: Paths whose existence is returned in RV(exists); nothing is done to them.
    type: list
    elements: path
    default: []
  services:
    description: systemd units, handled after every other section.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Unit name.
        type: str
        required: true
      masked:
        description: Mask the unit (nothing else is done to it).
        type: bool
        default: false
      enabled:
        description: Enable the unit.
        type: bool
        default: false
      started:
        description: Start the unit when it is not running.
        type: bool
        default: false
      start_in_container:
        description: Start it in a container too (units such as systemd-timesyncd do not run in one).
        type: bool
        default: true
      restart_on:
        description: Restart the unit when one of these paths, or a path below one, changed in this call and it was running.
        type: list
        elements: path
        default: []
      only_if_running:
        description: Only restart it (O(services[].restart_on)), and only when it runs; a missing unit is skipped.
        type: bool
        default: false
      restart_pending_file:
        description:
          - Instead of restarting the unit (O(services[].restart_on)), write this file (mode 0600, listing the changed
            paths). The caller restarts the unit later and removes the file, so a restart decided here survives a run
            that stops before it.
        type: path
      only_if_package:
        description: Handle the unit only when this package, one of O(packages), is installed (or is installed by this call).
        type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports every change it would make. On a host without package lists the packages are listed
        as they would be installed, without asking the archive.
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
    details: Debian and Ubuntu hosts with systemd (apt, dpkg, systemctl).
notes:
  - Files are compared by content; templates are rendered on the controller and passed as O(files[].content).
"""

EXAMPLES = r"""
- name: Prepare the host in one call
  selfhosted.gitpod_k3s.host_state:
    packages:
      - name: conntrack
      - name: "linux-headers-{{ ansible_facts['kernel'] }}"
        optional: true
      - name: systemd-timesyncd
        unless_installed: [chrony, ntp]
    kernel_modules: [overlay, br_netfilter]
    sysctl:
      settings: {net.ipv4.ip_forward: 1}
      required: [net.ipv4.ip_forward]
      persisted_in: /etc/sysctl.d/90-gitpod-k3s.conf
    swap_off: true
    directories:
      - path: /var/gitpod/workspaces
        mode: "0755"
    files:
      - path: /etc/sysctl.d/90-gitpod-k3s.conf
        content: "{{ lookup('ansible.builtin.template', 'sysctl.conf.j2') }}"
    services:
      - name: swap.target
        masked: true
      - name: systemd-timesyncd
        enabled: true
        started: true
        start_in_container: false
        only_if_package: systemd-timesyncd

- name: Apply the argument sets two roles computed, in one call
  selfhosted.gitpod_k3s.host_state:
    calls:
      - "{{ host_prep_host_state }}"
      - "{{ containerd_host_state }}"
"""

RETURN = r"""
changes:
  description: One line per change made (in check mode, that would be made).
  type: list
  elements: str
  returned: always
  sample: ["installed conntrack, socat", "wrote /etc/sysctl.d/90-gitpod-k3s.conf", "enable systemd-timesyncd"]
container:
  description: Whether the host is a container (systemd-detect-virt).
  type: bool
  returned: always
packages:
  description:
    - present, installed (by this call), skipped (package -> the alternative installed),
      unavailable (optional, not in the archive), refreshed (lists), versions.
  type: dict
  returned: always
  sample:
    present: ["curl"]
    installed: ["socat"]
    skipped: {"systemd-timesyncd": "chrony"}
    unavailable: ["linux-headers-6.8.0-fc"]
    refreshed: true
    versions: {"curl": "7.88.1-10"}
versions:
  description: Per O(min_versions) command, installed, path and version.
  type: dict
  returned: when min_versions is given and the package is installed
  sample: {"containerd": {"installed": true, "path": "/usr/bin/containerd", "version": "1.6.20"}}
kernel_modules:
  description:
    - Per module name, its state (loaded, builtin, loadable or missing) and the evidence; to_load
      (the modules loaded, or that would be) and unavailable; the running kernel.
  type: dict
  returned: when kernel_modules is given
sysctl:
  description:
    - applied (key -> before, after), unapplied (key -> expected, actual, reason), missing keys and
      the live values.
  type: dict
  returned: when sysctl is given
swap:
  description: Active swap areas found and the fstab entries commented out.
  type: dict
  returned: when swap_off is true
exists:
  description: Per path of O(stat), whether it exists.
  type: dict
  returned: always
  sample: {"/run/containerd/containerd.sock": false}
files_changed:
  description: Files written (or that would be).
  type: list
  elements: str
  returned: always
removed:
  description: Paths removed by O(absent) and O(prune) (or that would be).
  type: list
  elements: str
  returned: always
services:
  description: Per unit, its load, unit-file and active state before the call and the actions taken.
  type: dict
  returned: always
  sample: {"containerd": {"load": "loaded", "file": "enabled", "active": "active", "actions": ["restart"]}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import host_state

# The options of one argument set; ``calls`` holds several, merged by module_utils.host_state.merge_specs.
OPTIONS = {
    "packages": {"type": "list", "elements": "dict", "default": [], "options": {
        "name": {"type": "str", "required": True},
        "optional": {"type": "bool", "default": False},
        "unless_installed": {"type": "list", "elements": "str", "default": []},
    }},
    "cache_valid_time": {"type": "int", "default": 3600},
    "min_versions": {"type": "list", "elements": "dict", "default": [], "options": {
        "package": {"type": "str", "required": True},
        "command": {"type": "str", "required": True, "choices": ["containerd"]},
        "min_version": {"type": "str", "required": True},
    }},
    "kernel_modules": {"type": "list", "elements": "str", "default": []},
    "sysctl": {"type": "dict", "options": {
        "settings": {"type": "dict", "required": True},
        "required": {"type": "list", "elements": "str", "default": []},
        "on_unapplied": {"type": "str", "choices": ["warn", "fail"], "default": "warn"},
        "persisted_in": {"type": "str", "default": ""},
    }},
    "swap_off": {"type": "bool", "default": False},
    "directories": {"type": "list", "elements": "dict", "default": [], "options": {
        "path": {"type": "path", "required": True},
        "mode": {"type": "raw"},
        "owner": {"type": "str", "default": "root"},
        "group": {"type": "str", "default": "root"},
    }},
    "files": {"type": "list", "elements": "dict", "default": [], "options": {
        "path": {"type": "path", "required": True},
        "content": {"type": "str", "required": True},
        "mode": {"type": "raw", "default": "0644"},
        "owner": {"type": "str", "default": "root"},
        "group": {"type": "str", "default": "root"},
    }},
    "absent": {"type": "list", "elements": "path", "default": []},
    "prune": {"type": "list", "elements": "dict", "default": [], "options": {
        "path": {"type": "path", "required": True},
        "keep": {"type": "list", "elements": "str", "default": []},
        "marker_file": {"type": "str"},
        "marker": {"type": "str", "default": ""},
    }},
    "stat": {"type": "list", "elements": "path", "default": []},
    "services": {"type": "list", "elements": "dict", "default": [], "options": {
        "name": {"type": "str", "required": True},
        "masked": {"type": "bool", "default": False},
        "enabled": {"type": "bool", "default": False},
        "started": {"type": "bool", "default": False},
        "start_in_container": {"type": "bool", "default": True},
        "restart_on": {"type": "list", "elements": "path", "default": []},
        "only_if_running": {"type": "bool", "default": False},
        "restart_pending_file": {"type": "path"},
        "only_if_package": {"type": "str"},
    }},
}


ARGUMENT_SPEC = dict(OPTIONS, calls={"type": "list", "elements": "raw", "default": []})
MUTUALLY_EXCLUSIVE = [["calls", name] for name in OPTIONS]


def build_module():
    return AnsibleModule(argument_spec=ARGUMENT_SPEC, mutually_exclusive=MUTUALLY_EXCLUSIVE, supports_check_mode=True)


def arguments(module):
    """The options of this pass: the module's own, or the argument sets of ``calls`` merged and then
    checked against the same specification."""
    if not module.params["calls"]:
        return module.params
    try:
        merged = host_state.merge_specs(module.params["calls"])
    except host_state.HostStateError as exc:
        module.fail_json(msg=str(exc))
    checked = ArgumentSpecValidator(OPTIONS).validate(merged)
    if checked.error_messages:
        module.fail_json(msg=f"calls, merged: {'; '.join(checked.error_messages)}")
    return checked.validated_parameters


def run(module, system=None):
    system = system or host_state.System(
        lambda argv, env: module.run_command(argv, environ_update=env or {}), module)
    params = arguments(module)
    try:
        report = host_state.converge(system, params, check_mode=module.check_mode)
    except host_state.HostStateError as exc:
        module.fail_json(msg=str(exc), **exc.report.result())
    result = report.result()
    if module._diff and report.diffs:
        result["diff"] = report.diffs
    for warning in report.warnings:
        module.warn(warning)
    module.exit_json(**result)


def main():
    run(build_module())


if __name__ == "__main__":
    main()
