#!/usr/bin/python
# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Ansible module: check a host against Gitpod's requirements."""

from __future__ import annotations

DOCUMENTATION = r"""
module: host_requirements
short_description: Check a host against Gitpod Self-Hosted's requirements
version_added: "0.1.0"
description:
  - Collects, in one pass and without Ansible facts, what Gitpod needs from a host (os-release,
    kernel release, usable vCPUs and memory, free space under O(data_dir), swap, cgroup version,
    systemd, kernel features, containerd version, ports already in use, C(/usr/src) and kernel
    headers) and evaluates it against thresholds.
  - Thresholds depend on the Gitpod workloads the host will run (O(workloads)), after Gitpod's
    per-label profiles; O(min_vcpus) and O(min_memory_gib) are floors that apply to every host.
  - Returns RV(checks), one C({id, status, expected, actual, hint}) per check, with status
    C(pass), C(warn) or C(fail). Fails, unless O(fail_on_error=false), with one message that lists
    every failing check and its hint.
  - Kernel features count as present when built in, loaded or loadable. They are detected from
    C(/sys/module), C(/proc/filesystems), C(/proc/sys/net/bridge), C(/proc/net/ip_tables_names),
    C(/lib/modules/$(uname -r)/modules.builtin) and C(modules.dep), and the kernel config; nothing
    is loaded.
  - Ports are read from C(/proc/net/tcp), C(tcp6), C(udp) and C(udp6). A port held by k3s or
    Calico itself (O(port_owners_expected)) is a C(warn), so the check stays useful on a node
    that already runs the cluster; any other owner is a C(fail).
  - Hints name the variables of the C(selfhosted.gitpod_k3s.preflight) role, which passes them here.
  - Gitpod's constants have no default here, so that they are written once, in the C(selfhosted.gitpod_k3s.common)
    role. They are O(allowed_distributions) and O(tested_distributions) (from C(gitpod_k3s_supported_os)), O(min_kernel)
    (C(gitpod_k3s_min_kernel)) and O(min_containerd_version) (C(gitpod_k3s_min_containerd)); the preflight role
    passes them through its variables of the same purpose.
author:
  - selfhosted.gitpod_k3s maintainers (@selfhosted)
options:
  only:
    description:
      - Run only these checks (ids as in RV(checks)); empty runs all of them.
      - Only the facts these checks need are collected.
    type: list
    elements: str
    default: []
  warn_only:
    description: Report a failure of these checks as C(warn) instead.
    type: list
    elements: str
    default: []
  fail_on_error:
    description: Fail the task when a check fails. With V(false) the result still carries RV(passed).
    type: bool
    default: true
  data_dir:
    description: Directory whose free space the C(disk) check measures (its nearest existing parent when missing).
    type: path
    default: /var/lib
  workloads:
    description:
      - Gitpod workloads the host will run, from its node labels. Selects the per-workload profiles and
        whether workspace-only checks (fuse or shiftfs, C(/usr/src), headers) apply.
      - Omitted means all three; V([]) means none (e.g. a dedicated k3s server).
    type: list
    elements: str
    choices: [meta, ide, workspace]
  k3s_server:
    description: The host will be a k3s server; adds 6443 and 2379-2380 to the default O(ports).
    type: bool
    default: true
  allowed_distributions:
    description:
      - os-release C(ID)s, optionally with a C(VERSION_ID), that pass the C(os) check, e.g. V(ubuntu) or V(ubuntu:22.04).
      - Empty allows any distribution.
      - The preflight role passes C(preflight_allowed_distributions), by default the IDs of the releases of
        C(gitpod_k3s_supported_os) (common role) that Gitpod runs on.
    type: list
    elements: str
    required: true
  tested_distributions:
    description:
      - Releases Gitpod was tested on; an allowed release not listed here is a C(warn).
      - The preflight role passes C(preflight_tested_distributions), by default the C(gitpod_tested) releases of
        C(gitpod_k3s_supported_os) (common role).
    type: list
    elements: str
    required: true
  min_kernel:
    description:
      - Lowest kernel release; compared on its numeric part (V(5.15.0-91-generic) is 5.15.0).
      - The preflight role passes C(preflight_min_kernel), by default C(gitpod_k3s_min_kernel) (common role).
    type: str
    required: true
  min_vcpus:
    description: Usable vCPUs every host needs (affinity mask, capped by a cgroup CPU quota).
    type: float
    default: 4
  min_memory_gib:
    description: Memory (GiB, 5% tolerance for what firmware keeps) every host needs, capped by a cgroup limit.
    type: float
    default: 16
  profiles:
    description:
      - Per-workload thresholds (keys V(meta), V(ide), V(workspace); values C(min_vcpus), C(warn_vcpus),
        C(min_memory_gib), C(warn_memory_gib)), merged over the defaults, which are Gitpod's KOTS preflight values
        meta 2/4 vCPUs and 8/16 GiB, ide 2/0 vCPUs and 4/0 GiB, workspace 2/4 vCPUs and 16/0 GiB (fail/warn).
      - A host gets the strictest values of its workloads and of the floors; V(0) disables a threshold.
    type: dict
    default: {}
  min_disk_gib:
    description: Free GiB under O(data_dir) below which the C(disk) check fails.
    type: float
    default: 20
  recommended_disk_gib:
    description: Free GiB under O(data_dir) below which the C(disk) check warns.
    type: float
    default: 100
  min_containerd_version:
    description:
      - Lowest containerd version, when containerd is installed.
      - The preflight role passes C(preflight_min_containerd_version), by default C(gitpod_k3s_min_containerd) (common role).
    type: str
    required: true
  require_containerd:
    description: Fail the C(containerd) check when no containerd binary is found.
    type: bool
    default: false
  ports:
    description:
      - Ports that must be free, as V(6443/tcp) or V(4789/udp).
      - Default V(10250/tcp), V(179/tcp), V(4789/udp), V(5473/tcp), plus V(6443/tcp), V(2379/tcp), V(2380/tcp) when O(k3s_server).
    type: list
    elements: str
  port_owners_expected:
    description: Process names (C(/proc/PID/comm)) whose listeners make the C(ports) check a C(warn) rather than a C(fail).
    type: list
    elements: str
    default: [k3s, k3s-server, k3s-agent, containerd, kubelet, kube-apiserver, etcd, calico-node, calico-typha, typha, bird, bird6]
  gather_facts:
    description:
      - Also return the facts C(kernel), C(architecture) and C(service_mgr), decided as
        M(ansible.builtin.setup) decides them on Linux, so that the host layer after the preflight
        needs no separate fact gathering.
    type: bool
    default: false
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
    details: Linux hosts; reads /proc and /sys.
notes:
  - Naming a process that owns a busy port needs root (it scans C(/proc/*/fd)); without it the owner is unknown and the check fails.
"""

EXAMPLES = r"""
# Gitpod's constants come from the common role (the preflight role passes them the same way).
- name: Check the host against Gitpod's requirements
  selfhosted.gitpod_k3s.host_requirements:
    workloads: [workspace]
    k3s_server: false
    allowed_distributions: "{{ gitpod_k3s_supported_os | selectattr('gitpod') | map(attribute='id') | unique | list }}"
    tested_distributions: []
    min_kernel: "{{ gitpod_k3s_min_kernel }}"
    min_containerd_version: "{{ gitpod_k3s_min_containerd }}"
    fail_on_error: false
  register: requirements

- name: Check only the installed containerd, and require a newer one than Gitpod does
  selfhosted.gitpod_k3s.host_requirements:
    only: [containerd]
    require_containerd: true
    allowed_distributions: []
    tested_distributions: []
    min_kernel: "{{ gitpod_k3s_min_kernel }}"
    min_containerd_version: "1.6.0"

- name: A trial run on a small machine
  selfhosted.gitpod_k3s.host_requirements:
    allowed_distributions: [ubuntu]
    tested_distributions: []
    min_kernel: "{{ gitpod_k3s_min_kernel }}"
    min_containerd_version: "{{ gitpod_k3s_min_containerd }}"
    min_vcpus: 2
    min_memory_gib: 4
    profiles:
      workspace: {min_memory_gib: 4}
    warn_only: [os]
"""

RETURN = r"""
ansible_facts:
  description: C(kernel), C(architecture) and C(service_mgr), named as M(ansible.builtin.setup) names them.
  returned: when gather_facts is true
  type: dict
  sample: {"kernel": "5.15.0-91-generic", "architecture": "x86_64", "service_mgr": "systemd"}
checks:
  description: One result per check, in a fixed order.
  returned: always
  type: list
  elements: dict
  sample:
    - {id: vcpus, status: fail, expected: ">= 4 for meta+ide+workspace", actual: "2",
       hint: "Give the host at least 4 vCPUs, or relax the threshold for a trial run (-e preflight_min_vcpus=2)."}
    - {id: kernel, status: pass, expected: ">= 5.4.0", actual: "5.15.0-91-generic", hint: ""}
passed:
  description: True when no check failed (warnings pass).
  returned: always
  type: bool
  sample: false
counts:
  description: Number of checks per status.
  returned: always
  type: dict
  sample: {pass: 11, warn: 1, fail: 1}
facts:
  description: What was collected (only what the selected checks need; hostname, architecture and kernel always).
  returned: always
  type: dict
  sample:
    hostname: node1
    architecture: x86_64
    kernel: 5.15.0-91-generic
    vcpus: 8
    memory_bytes: 33554432000
    containerd: {installed: true, path: /usr/bin/containerd, version: "1.7.12", output: "...", error: ""}
msg:
  description: The failure message listing every failing check, or a one-line summary.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import host_requirements as hr


class ModuleProbe(hr.Probe):
    """The real host, with commands run through AnsibleModule (LC_ALL=C)."""

    def __init__(self, module):
        self.module = module

    def run(self, args):
        return self.module.run_command(args, environ_update={"LC_ALL": "C", "LANG": "C"})


def main():
    module = AnsibleModule(
        argument_spec={
            "only": {"type": "list", "elements": "str", "default": []},
            "warn_only": {"type": "list", "elements": "str", "default": []},
            "fail_on_error": {"type": "bool", "default": True},
            "data_dir": {"type": "path", "default": "/var/lib"},
            "workloads": {"type": "list", "elements": "str", "choices": list(hr.WORKLOADS)},
            "k3s_server": {"type": "bool", "default": True},
            # Gitpod's constants: required, from the common role (through the preflight role).
            "allowed_distributions": {"type": "list", "elements": "str", "required": True},
            "tested_distributions": {"type": "list", "elements": "str", "required": True},
            "min_kernel": {"type": "str", "required": True},
            "min_vcpus": {"type": "float", "default": 4},
            "min_memory_gib": {"type": "float", "default": 16},
            "profiles": {"type": "dict", "default": {}},
            "min_disk_gib": {"type": "float", "default": 20},
            "recommended_disk_gib": {"type": "float", "default": 100},
            "min_containerd_version": {"type": "str", "required": True},
            "require_containerd": {"type": "bool", "default": False},
            "ports": {"type": "list", "elements": "str"},
            "port_owners_expected": {"type": "list", "elements": "str",
                                     "default": list(hr.DEFAULT_OPTIONS["port_owners_expected"])},
            "gather_facts": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    options = {k: v for k, v in module.params.items() if k not in ("fail_on_error", "gather_facts")}
    try:
        result = hr.run(ModuleProbe(module), options)
    except hr.OptionError as exc:
        module.fail_json(msg=f"host_requirements: {exc}", checks=[], passed=False)
    if module.params["gather_facts"]:
        result["ansible_facts"] = hr.host_facts(ModuleProbe(module))
    if module.params["fail_on_error"] and not result["passed"]:
        module.fail_json(changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
