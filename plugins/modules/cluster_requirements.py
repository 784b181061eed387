#!/usr/bin/python
# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_requirements
short_description: Check a running cluster against Gitpod Self-Hosted's requirements
version_added: 0.1.0
description:
  - Reads the cluster with C(kubectl ... -o json) and returns the checks Gitpod's installer (C(validate cluster))
    and its KOTS preflight made, as C({id, status, expected, actual, hint}) with status C(pass), C(warn) or C(fail),
    the same shape as the host preflight (M(selfhosted.gitpod_k3s.host_requirements)).
  - "Checks: Kubernetes server and every kubelet version; the distribution is not OpenShift; every node Ready;
    containerd as the runtime of every node; kernel and OS image of every node; every required label on at least one
    node; vCPU and memory per node by the Gitpod labels it carries; Calico ready (DaemonSet and on every node);
    cert-manager CRDs, webhook and a ClusterIssuer (warning when none); a default StorageClass; Gitpod's namespace
    exists and allows privileged pods; no Gitpod workspace pod runs in it (see O(workspace_pods)); a LoadBalancer
    provider; and, when O(secrets) names them, the Secrets Gitpod's installer reads."
  - Per-node checks are returned under RV(node_checks) and folded into one check each in RV(checks)
    (status of the worst node), so RV(checks) decides RV(passed).
  - Gitpod's constants and labels have no default here, so that they are written once, in the
    C(selfhosted.gitpod_k3s.common) role. They are O(min_kubernetes_version), O(min_kernel_version),
    O(min_containerd_version) (C(gitpod_k3s_min_kubernetes), C(gitpod_k3s_min_kernel), C(gitpod_k3s_min_containerd)),
    O(os_images) (from C(gitpod_k3s_supported_os)), O(labels) and O(required_labels) (C(gitpod_k3s_labels),
    C(gitpod_k3s_required_labels)); the cluster_validation role passes them through its C(cluster_validation_*)
    variables.
  - Changes nothing. Needs read access to nodes, CRDs, Deployments, DaemonSets, pods (Calico's and Gitpod's namespace),
    StorageClasses, Namespaces, Services and the named Secrets (only their key names are kept; values never leave the module).
options:
  min_kubernetes_version:
    description:
      - Lowest Kubernetes version for the API server and every kubelet.
      - The cluster_validation role passes C(cluster_validation_min_kubernetes_version), by default
        C(gitpod_k3s_min_kubernetes) (common role).
    type: str
    required: true
  min_kernel_version:
    description:
      - Lowest kernel release (C(nodeInfo.kernelVersion), numeric part) on every node.
      - The cluster_validation role passes C(cluster_validation_min_kernel_version), by default C(gitpod_k3s_min_kernel)
        (common role).
    type: str
    required: true
  min_containerd_version:
    description:
      - Lowest containerd version in C(nodeInfo.containerRuntimeVersion).
      - The cluster_validation role passes C(cluster_validation_min_containerd_version), by default
        C(gitpod_k3s_min_containerd) (common role).
    type: str
    required: true
  os_images:
    description:
      - Accepted C(nodeInfo.osImage) prefixes; an empty list accepts any.
      - The cluster_validation role passes C(cluster_validation_os_images), by default C(<name> <version>) of the
        releases of C(gitpod_k3s_supported_os) (common role) that Gitpod runs on.
    type: list
    elements: str
    required: true
  os_image_status:
    description: Status of a node whose OS image is not in O(os_images).
    type: str
    choices: [fail, warn]
    default: fail
  labels:
    description:
      - Label key to label name; the keys C(meta), C(ide), C(workspace_*) choose the threshold profiles.
      - The cluster_validation role passes C(cluster_validation_labels), by default C(gitpod_k3s_labels) (common role).
    type: dict
    required: true
  required_labels:
    description:
      - Keys of O(labels) that at least one node must carry with value C(true).
      - The cluster_validation role passes C(cluster_validation_required_labels), by default C(gitpod_k3s_required_labels)
        (common role).
    type: list
    elements: str
    required: true
  thresholds:
    description:
      - vCPU and memory thresholds per profile, checked against node capacity. Profiles are C(any) (every node),
        C(meta), C(ide) and C(workspace) (a node with any workspace label); a node is checked against every profile
        it is in.
      - Each profile takes C(fail_vcpus), C(warn_vcpus) (numbers) and C(fail_memory), C(warn_memory) (Kubernetes
        quantities; C(16G) is 16e9 bytes as in Gitpod's KOTS preflight, C(16Gi) is 2^34). C(0) disables one.
      - "Given values are laid over the defaults, so C({meta: {warn_vcpus: 8}}) changes only that one."
      - "Defaults (GITPOD.md): any: fail_vcpus 2; meta: fail_vcpus 2, warn_vcpus 4, fail_memory 8G, warn_memory 16G;
        ide: fail_vcpus 2, fail_memory 4G; workspace: fail_vcpus 2, warn_vcpus 4, fail_memory 16G."
    type: dict
    default: {}
  calico_namespace:
    description: Namespace of Calico's node DaemonSet (C(calico-system) with the Tigera operator, C(kube-system) for the manifest).
    type: str
    default: calico-system
  calico_daemonset:
    description: Name of Calico's node DaemonSet; its pods are found by the label C(k8s-app=<name>).
    type: str
    default: calico-node
  cert_manager_namespace:
    description: Namespace of cert-manager.
    type: str
    default: cert-manager
  cert_manager_webhook:
    description: Name of cert-manager's webhook Deployment.
    type: str
    default: cert-manager-webhook
  cert_manager_crds:
    description: CustomResourceDefinitions that must exist and be established.
    type: list
    elements: str
    default: [certificates.cert-manager.io, issuers.cert-manager.io, clusterissuers.cert-manager.io]
  cluster_issuer:
    description:
      - A ClusterIssuer that must exist and be Ready (a failure otherwise).
      - Empty accepts any Ready ClusterIssuer and warns when there is none (you may bring your own certificates).
    type: str
    default: ""
  namespace:
    description: Gitpod's namespace (must exist; its Pod Security labels, its workspace pods, and the default namespace of O(secrets)).
    type: str
    default: gitpod
  workspace_pods:
    description:
      - What a running Gitpod workspace pod (label C(component=workspace), phase neither Succeeded nor Failed) in
        O(namespace) makes of the C(workspace_pods) check.
      - C(fail) before an upgrade or reset, which would stop those workspaces; C(report) (a warning) otherwise.
    type: str
    choices: [fail, report]
    default: report
  secrets:
    description:
      - Secrets that must exist with the given data keys. Empty (the default) checks none; list them once the
        components that create them are installed.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Secret name.
        type: str
        required: true
      keys:
        description: Data keys the Secret must have.
        type: list
        elements: str
        required: true
      namespace:
        description: Namespace; defaults to O(namespace).
        type: str
  fail_on_error:
    description: Fail the task, listing every failing check and its hint, when a check fails. Warnings never fail it.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - selfhosted.gitpod_k3s.kubectl
attributes:
  check_mode:
    support: full
    details: The module only reads.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
notes:
  - Pod Security admission defaults set cluster-wide through an AdmissionConfiguration file are not visible through the
    API; only the namespace labels are checked.
seealso:
  - module: selfhosted.gitpod_k3s.node_labels
author:
  - selfhosted.gitpod_k3s maintainers (@selfhosted)
"""

EXAMPLES = r"""
# Gitpod's constants and labels come from the common role (the cluster_validation role passes them the same way).
- name: Validate the cluster for Gitpod
  selfhosted.gitpod_k3s.cluster_requirements:
    min_kubernetes_version: "{{ gitpod_k3s_min_kubernetes }}"
    min_kernel_version: "{{ gitpod_k3s_min_kernel }}"
    min_containerd_version: "{{ gitpod_k3s_min_containerd }}"
    os_images: [Ubuntu 22.04, Ubuntu 24.04]
    labels: "{{ gitpod_k3s_labels }}"
    required_labels: "{{ gitpod_k3s_required_labels }}"
    namespace: gitpod
  run_once: true
  become: true

- name: Before an upgrade, running Gitpod workspaces fail the task (as any other failing check does)
  selfhosted.gitpod_k3s.cluster_requirements:
    min_kubernetes_version: "{{ gitpod_k3s_min_kubernetes }}"
    min_kernel_version: "{{ gitpod_k3s_min_kernel }}"
    min_containerd_version: "{{ gitpod_k3s_min_containerd }}"
    os_images: []
    labels: "{{ gitpod_k3s_labels }}"
    required_labels: "{{ gitpod_k3s_required_labels }}"
    workspace_pods: fail
  run_once: true
  become: true

- name: Collect the checks without failing, with relaxed vCPU thresholds and the Secrets checked
  selfhosted.gitpod_k3s.cluster_requirements:
    min_kubernetes_version: "{{ gitpod_k3s_min_kubernetes }}"
    min_kernel_version: "{{ gitpod_k3s_min_kernel }}"
    min_containerd_version: "{{ gitpod_k3s_min_containerd }}"
    os_images: []
    labels: "{{ gitpod_k3s_labels }}"
    required_labels: "{{ gitpod_k3s_required_labels }}"
    kubectl: kubectl
    kubeconfig: "{{ gitpod_k3s_artifacts_dir }}/kubeconfig"
    thresholds:
      meta: {warn_vcpus: 2}
      workspace: {warn_vcpus: 2}
    secrets:
      - {name: gitpod-database, keys: [encryptionKeys, host, password, port, username]}
      - {name: gitpod-storage, keys: [accessKeyId, secretAccessKey]}
    fail_on_error: false
  delegate_to: localhost
  run_once: true
  register: cluster
"""

RETURN = r"""
checks:
  description: Cluster checks, per-node checks folded in (worst node).
  type: list
  elements: dict
  returned: always
  sample:
    - {id: kubernetes_version, status: pass, expected: ">= 1.21.0", actual: v1.28.5+k3s1, hint: ""}
    - id: kernel_version
      status: fail
      expected: ">= 5.4.0"
      actual: "agent-2: 4.15.0-213-generic (fail)"
      hint: upgrade the kernel and reboot
node_checks:
  description: Node name to that node's checks (ready, kubelet_version, container_runtime, kernel_version, os_image, vcpus, memory, calico_node).
  type: dict
  returned: always
node_facts:
  description: Node name to a flat summary (role, kubelet, runtime, kernel, os, vcpus, memory, gitpod_labels) for reports.
  type: dict
  returned: always
  sample:
    gitpod-server-1: {role: server, kubelet: v1.28.5+k3s1, runtime: containerd://1.7.2, kernel: 5.15.0-97-generic,
                      os: Ubuntu 22.04.4 LTS, vcpus: "4", memory: 15.6 GiB (16.8 G), gitpod_labels: "meta, ide"}
passed:
  description: True when no check failed (warnings pass).
  type: bool
  returned: always
counts:
  description: Number of checks per status.
  type: dict
  returned: always
  sample: {pass: 24, warn: 1, fail: 0}
"""

# Imports follow the documentation blocks, as in every Ansible module (hence E402).
from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import checks as ck  # noqa: E402
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import cluster_requirements as cr  # noqa: E402
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils.kubectl import (  # noqa: E402
    KUBECTL_ARGUMENT_SPEC, KubectlError, from_module)


def main():
    argument_spec = dict(
        # Gitpod's constants and labels: required, from the common role (through cluster_validation).
        min_kubernetes_version=dict(type="str", required=True),
        min_kernel_version=dict(type="str", required=True),
        min_containerd_version=dict(type="str", required=True),
        os_images=dict(type="list", elements="str", required=True),
        os_image_status=dict(type="str", choices=["fail", "warn"], default="fail"),
        labels=dict(type="dict", required=True),
        required_labels=dict(type="list", elements="str", required=True),
        thresholds=dict(type="dict", default={}),
        calico_namespace=dict(type="str", default="calico-system"),
        calico_daemonset=dict(type="str", default="calico-node"),
        cert_manager_namespace=dict(type="str", default="cert-manager"),
        cert_manager_webhook=dict(type="str", default="cert-manager-webhook"),
        cert_manager_crds=dict(type="list", elements="str", default=list(cr.DEFAULT_CERT_MANAGER_CRDS)),
        cluster_issuer=dict(type="str", default=""),
        namespace=dict(type="str", default="gitpod"),
        workspace_pods=dict(type="str", choices=list(cr.WORKSPACE_POD_MODES), default=cr.DEFAULT_OPTIONS["workspace_pods"]),
        secrets=dict(type="list", elements="dict", default=[], no_log=False, options=dict(
            name=dict(type="str", required=True),
            keys=dict(type="list", elements="str", required=True, no_log=False),
            namespace=dict(type="str"),
        )),
        fail_on_error=dict(type="bool", default=True),
        **KUBECTL_ARGUMENT_SPEC,
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        opts = cr.normalise_options(module.params)
    except cr.ConfigError as exc:
        module.fail_json(msg=str(exc))

    kubectl = from_module(module)
    try:
        data = cr.gather(kubectl, opts)
    except KubectlError as exc:
        module.fail_json(**exc.fail_kwargs())

    checks, node_checks = cr.evaluate(data, opts)
    result = dict(changed=False, checks=checks, node_checks=node_checks, passed=ck.passed(checks),
                  counts=ck.counts(checks), node_facts=cr.node_facts(data.get("nodes"), opts))
    if not result["passed"] and module.params["fail_on_error"]:
        module.fail_json(msg=ck.failure_message(checks, subject="cluster"), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
