"""Gitpod's constants as the common role defines them (roles/common/defaults/main.yml), for tests.

The modules take Gitpod's constants as required options, which the roles pass from the common
role. Tests that run a module's main() pass the same values, read from that one file, so a test
never carries its own copy of a minimum version or an OS list.
"""

import os

import yaml

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import gitpod_constants

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMON_DEFAULTS = os.path.join(REPO, "roles", "common", "defaults", "main.yml")

with open(COMMON_DEFAULTS, encoding="utf-8") as _handle:
    COMMON = yaml.safe_load(_handle)

SUPPORTED_OS = COMMON["gitpod_k3s_supported_os"]

# What roles/preflight passes to host_requirements by default.
HOST_REQUIREMENTS_ARGS = {
    "allowed_distributions": gitpod_constants.allowed_distributions(SUPPORTED_OS),
    "tested_distributions": gitpod_constants.tested_distributions(SUPPORTED_OS),
    "min_kernel": COMMON["gitpod_k3s_min_kernel"],
    "min_containerd_version": COMMON["gitpod_k3s_min_containerd"],
}

# What roles/cluster_validation passes to cluster_requirements by default.
CLUSTER_REQUIREMENTS_ARGS = {
    "min_kubernetes_version": COMMON["gitpod_k3s_min_kubernetes"],
    "min_kernel_version": COMMON["gitpod_k3s_min_kernel"],
    "min_containerd_version": COMMON["gitpod_k3s_min_containerd"],
    "os_images": gitpod_constants.os_images(SUPPORTED_OS),
    "labels": COMMON["gitpod_k3s_labels"],
    "required_labels": COMMON["gitpod_k3s_required_labels"],
}
