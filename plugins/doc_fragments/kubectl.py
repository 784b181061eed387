# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Options of the modules that talk to the cluster through kubectl (module_utils.kubectl)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubectl:
    description: The kubectl command, split like a shell would; the default is the one k3s ships.
    type: str
    default: k3s kubectl
  kubeconfig:
    description: Kubeconfig file; omit to use kubectl's own default (k3s reads C(/etc/rancher/k3s/k3s.yaml)).
    type: path
  timeout:
    description: Seconds before a kubectl request gives up (C(--request-timeout)); C(0) for no limit.
    type: int
    default: 30
"""
