# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Action plugin: cross-variable inventory checks, computed on the controller only.

Documented in plugins/modules/inventory_check.py.
"""

from __future__ import annotations


from ansible.plugins.action import ActionBase

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import inventory_validation as iv


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        a = self._task.args
        errors = []
        if "k3s_cluster_cidr" in a or "k3s_service_cidr" in a:
            errors += iv.check_cidrs(a.get("k3s_cluster_cidr"), a.get("k3s_service_cidr"), a.get("node_addresses") or {})
        if "labels" in a or "label_groups" in a:
            errors += iv.check_labels(a.get("label_groups"), a.get("labels"), a.get("inventory_groups"), a.get("required_labels"))
        errors += iv.check_domain(a.get("domain"))
        if a.get("k3s_version") is not None:
            errors += iv.check_k3s_version(a.get("k3s_version"))
        errors += iv.check_thresholds(a.get("thresholds"), a.get("threshold_profiles"))
        errors += iv.check_airgap_dir(a.get("airgap_dir"), a.get("airgap_files") or [])
        if "calico_encapsulation" in a:
            errors += iv.check_calico_network(a.get("calico_encapsulation"), a.get("calico_bgp"))
        result["changed"] = False
        result["errors"] = errors
        if errors:
            result["failed"] = True
            result["msg"] = "The inventory was rejected before any host was touched:\n" + "\n".join(f"- {e}" for e in errors)
        else:
            result["msg"] = "inventory accepted"
        return result
