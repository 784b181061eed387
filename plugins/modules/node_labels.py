#!/usr/bin/python
# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: node_labels
short_description: Keep the labels and taints the collection manages on Kubernetes nodes in line with the inventory
version_added: 0.1.0
description:
  - Reads the nodes with C(kubectl get nodes -o json) and, for every node listed in O(nodes), adds the managed
    labels it must carry and removes managed labels it must no longer carry (its host left an inventory group).
  - Labels not named in O(managed_labels) are never touched.
  - For a node given O(nodes[].taints), adds the taints it must carry and removes those this module set before
    (recorded in the node annotation C(gitpod-k3s.selfhosted.io/taints)) that it must no longer carry; a taint set
    otherwise (a cordon, another controller's) is never touched. k3s applies C(node-taint) only at registration,
    so this is how a changed C(k3s_node_taints) reaches a registered node.
  - One call handles the whole cluster; run it once (C(run_once)) on a k3s server, or anywhere with a kubeconfig.
  - Talks to the cluster only through C(kubectl), so no Kubernetes Python library is needed.
options:
  nodes:
    description:
      - Every node whose managed labels this call decides, with the managed labels it must carry.
      - A node given with an empty O(nodes[].labels) loses all managed labels.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Kubernetes node name (C(kubectl get nodes)), not necessarily the inventory host name.
        type: str
        required: true
      labels:
        description: Managed label names the node must carry, each one of O(managed_labels).
        type: list
        elements: str
        default: []
      taints:
        description:
          - Taints the node must carry, C(key=value:Effect) or C(key:Effect). Omitted, the node's taints are left alone.
        type: list
        elements: str
  managed_labels:
    description:
      - Every label name the collection manages (the values of C(gitpod_k3s_labels)).
      - Only these are ever added, changed or removed.
      - The node_labels role passes the values of C(node_labels_labels) (by default C(gitpod_k3s_labels), common role)
        and C(node_labels_retired_labels). The label names Gitpod knows are C(gitpod_k3s_known_labels) (common role).
    type: list
    elements: str
    required: true
  value:
    description: Value of every managed label (Gitpod selects nodes with C(<label>=true)).
    type: str
    default: "true"
  missing_nodes:
    description:
      - What to do when a node in O(nodes) is not in the cluster (not registered yet, or a name mismatch).
      - C(fail) stops before anything changes; C(warn) labels the other nodes and warns.
    type: str
    choices: [fail, warn]
    default: fail
  unlisted_nodes:
    description:
      - What to do with cluster nodes that are not in O(nodes) (e.g. added outside the inventory).
      - C(ignore) leaves them alone; C(remove) strips their managed labels.
    type: str
    choices: [ignore, remove]
    default: ignore
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - selfhosted.gitpod_k3s.kubectl
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: One before/after diff of the managed labels per changed node.
  platform:
    support: full
    platforms: posix
notes:
  - Labels given at registration (k3s C(node-label)) come from the same filter, C(selfhosted.gitpod_k3s.gitpod_node_labels),
    so a freshly registered node needs no change.
  - Needs C(kubectl) access to nodes (get, patch); on a k3s server run it with C(become).
seealso:
  - module: selfhosted.gitpod_k3s.cluster_requirements
author:
  - selfhosted.gitpod_k3s maintainers (@selfhosted)
"""

EXAMPLES = r"""
- name: Label Gitpod's node pools
  selfhosted.gitpod_k3s.node_labels:
    managed_labels: "{{ gitpod_k3s_labels.values() | list }}"
    nodes:
      - name: server-1
        labels: ["{{ gitpod_k3s_labels.meta }}", "{{ gitpod_k3s_labels.ide }}"]
      - name: agent-1
        labels:
          - "{{ gitpod_k3s_labels.workspace_services }}"
          - "{{ gitpod_k3s_labels.workspace_regular }}"
          - "{{ gitpod_k3s_labels.workspace_headless }}"
      - name: agent-2   # left gitpod_workspace: its managed labels are removed
        labels: []
  run_once: true
  become: true

- name: From the controller, with the fetched kubeconfig
  selfhosted.gitpod_k3s.node_labels:
    kubectl: kubectl
    kubeconfig: "{{ gitpod_k3s_artifacts_dir }}/kubeconfig"
    managed_labels: ["{{ gitpod_k3s_labels.meta }}"]
    nodes: [{name: server-1, labels: ["{{ gitpod_k3s_labels.meta }}"]}]
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
changed_nodes:
  description: Nodes whose labels changed (or would change in check mode), sorted.
  type: list
  elements: str
  returned: always
  sample: [agent-1, agent-2]
nodes:
  description: Per changed node, the managed labels set and removed, and the managed labels before and after.
  type: dict
  returned: always
  sample:
    agent-2:
      set: {}
      remove: [gitpod.io/workload_workspace_regular]
      before: {gitpod.io/workload_workspace_regular: "true"}
      after: {}
taints:
  description: Per node whose managed taints change, the taints added and removed and the record kept.
  type: dict
  returned: always
  sample:
    agent-2:
      add: ["gitpod.io/headless=true:NoSchedule"]
      remove: []
      record: ["gitpod.io/headless:NoSchedule"]
      before: []
      after: ["gitpod.io/headless=true:NoSchedule"]
missing_nodes:
  description: Nodes given in O(nodes) that the cluster does not have.
  type: list
  elements: str
  returned: always
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import node_labels as nl
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils.kubectl import (
    KUBECTL_ARGUMENT_SPEC, KubectlError, from_module)


def main():
    argument_spec = dict(
        nodes=dict(type="list", elements="dict", required=True, options=dict(
            name=dict(type="str", required=True),
            labels=dict(type="list", elements="str", default=[]),
            taints=dict(type="list", elements="str"),
        )),
        managed_labels=dict(type="list", elements="str", required=True),
        value=dict(type="str", default=nl.DEFAULT_VALUE),
        missing_nodes=dict(type="str", choices=["fail", "warn"], default="fail"),
        unlisted_nodes=dict(type="str", choices=["ignore", "remove"], default="ignore"),
        **KUBECTL_ARGUMENT_SPEC,
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    result = dict(changed=False, changed_nodes=[], nodes={}, taints={}, missing_nodes=[])

    try:
        desired = nl.normalise_desired(p["nodes"], p["managed_labels"], p["value"])
        for node in p["nodes"]:
            for taint in node.get("taints") or []:
                nl.parse_taint(taint, f"nodes[{node['name']}].taints")
    except nl.LabelError as exc:
        module.fail_json(msg=str(exc), **result)

    kubectl = from_module(module)
    try:
        items = kubectl.items("nodes", missing_ok=False)
        changes, missing = nl.plan(items, desired, p["managed_labels"], p["unlisted_nodes"])
        result["missing_nodes"] = missing
        if missing:
            known = ", ".join(sorted((i.get("metadata") or {}).get("name", "") for i in items)) or "none"
            msg = (f"nodes: {', '.join(missing)} not found in the cluster (its nodes: {known}); a node must be "
                   "registered first, and an inventory host whose node name differs from its inventory name needs "
                   "node_labels_node_name")
            if p["missing_nodes"] == "fail":
                module.fail_json(msg=msg, **result)
            module.warn(msg)

        taints = nl.plan_taints(items, {n["name"]: n["taints"] for n in p["nodes"] if n.get("taints") is not None})
        result["changed"] = bool(changes or taints)
        result["changed_nodes"] = sorted(set(changes) | set(taints))
        result["nodes"] = changes
        result["taints"] = taints
        if module._diff and (changes or taints):
            result["diff"] = nl.diffs(changes) + nl.taint_diffs(taints)

        if changes and not module.check_mode:
            for name, change in sorted(changes.items()):
                kubectl.run(nl.label_args(name, change))
            wrong = nl.verify(kubectl.items("nodes", missing_ok=False), changes, p["managed_labels"])
            if wrong:
                module.fail_json(msg=f"after labelling, the managed labels of {', '.join(wrong)} still differ from the "
                                     "wanted ones (another controller relabelling nodes?)", **result)
        if taints and not module.check_mode:
            for name, change in sorted(taints.items()):
                args = nl.taint_args(name, change)
                if args:
                    kubectl.run(args)
                kubectl.run(nl.record_args(name, change))
    except KubectlError as exc:
        module.fail_json(**exc.fail_kwargs(), **result)

    module.exit_json(**result)


if __name__ == "__main__":
    main()
