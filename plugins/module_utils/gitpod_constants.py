# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Gitpod's constants, for module_utils code that is called without the roles.

The one source of these values is ``roles/common/defaults/main.yml`` (``gitpod_k3s_min_kernel``,
``gitpod_k3s_min_kubernetes``, ``gitpod_k3s_min_containerd``, ``gitpod_k3s_supported_os``,
``gitpod_k3s_known_labels``, ``gitpod_k3s_labels``, ``gitpod_k3s_required_labels``). The roles pass
them to the modules, whose options for them are required, so a value set in the inventory reaches
every check. Only direct calls of module_utils (unit tests) fall back to this copy, and
``tests/unit/test_constants.py`` fails when it differs from the common role's defaults.

Every other module_utils file imports these names; none writes the values again.
"""

from __future__ import annotations

MIN_KERNEL = "5.4.0"
MIN_KUBERNETES = "1.21.0"
MIN_CONTAINERD = "1.5.0"

# One entry per release; the flags are explained in roles/common/defaults/main.yml.
SUPPORTED_OS = (
    {"id": "ubuntu", "version": "18.04", "name": "Ubuntu", "codename": "bionic", "gitpod": True, "gitpod_tested": True, "roles": False},
    {"id": "ubuntu", "version": "20.04", "name": "Ubuntu", "codename": "focal", "gitpod": True, "gitpod_tested": True, "roles": True},
    {"id": "ubuntu", "version": "22.04", "name": "Ubuntu", "codename": "jammy", "gitpod": True, "gitpod_tested": True, "roles": True},
    {"id": "ubuntu", "version": "24.04", "name": "Ubuntu", "codename": "noble", "gitpod": True, "gitpod_tested": False, "roles": True},
    {"id": "debian", "version": "12", "name": "Debian", "codename": "bookworm", "gitpod": False, "gitpod_tested": False, "roles": True},
)

KNOWN_LABELS = (
    "gitpod.io/workload_meta",
    "gitpod.io/workload_ide",
    "gitpod.io/workload_workspace_services",
    "gitpod.io/workload_services",
    "gitpod.io/workload_workspace_regular",
    "gitpod.io/workload_workspace_headless",
)

# gitpod_k3s_labels (label key -> name) and gitpod_k3s_required_labels.
LABELS = {
    "meta": "gitpod.io/workload_meta",
    "ide": "gitpod.io/workload_ide",
    "workspace_services": "gitpod.io/workload_workspace_services",
    "workspace_regular": "gitpod.io/workload_workspace_regular",
    "workspace_headless": "gitpod.io/workload_workspace_headless",
}
REQUIRED_LABELS = ("meta", "ide", "workspace_services", "workspace_regular", "workspace_headless")


# The role defaults derive their lists from gitpod_k3s_supported_os with these rules (in Jinja);
# test_constants.py renders the role defaults and compares them with these functions.

def allowed_distributions(supported_os=SUPPORTED_OS):
    """preflight_allowed_distributions: the os-release IDs of the releases Gitpod runs on."""
    return list(dict.fromkeys(r["id"] for r in supported_os if r["gitpod"]))


def tested_distributions(supported_os=SUPPORTED_OS):
    """preflight_tested_distributions: ``ID:VERSION_ID`` of the releases Gitpod's tests ran on."""
    return [f"{r['id']}:{r['version']}" for r in supported_os if r["gitpod_tested"]]


def os_images(supported_os=SUPPORTED_OS):
    """cluster_validation_os_images: ``<name> <version>``, how a node's osImage begins, for the releases Gitpod runs on."""
    return [f"{r['name']} {r['version']}" for r in supported_os if r["gitpod"]]
