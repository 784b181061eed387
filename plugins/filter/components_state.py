# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Filters that judge a components run against what is already deployed.

Documented in components_credentials.yml and apply_refusals.yml beside this file; the logic is in
plugins/module_utils/credentials.py and plugins/module_utils/apply_rules.py.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import apply_rules
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import credentials


def _objects(value, what):
    if value is None:
        return []
    if not isinstance(value, list):
        raise AnsibleFilterError(f"{what} must be a list of API objects, got {type(value).__name__}")
    return [o for o in value if isinstance(o, dict)]


def components_credentials(deployed_objects, stored, overrides, generated, deployed_known, namespace, secret_names,
                           registry_host, where):
    """Every credential of this run, where it came from, and the reasons to refuse the run."""
    found = credentials.recover(_objects(deployed_objects, "deployed_objects"), namespace, secret_names, registry_host)
    return credentials.resolve(stored or {}, found, overrides or {}, generated or {}, bool(deployed_known), where or {})


def apply_refusals(new_objects, deployed_objects, confirmed_claims=None, settings=None, downgrades=None):
    """Messages for the changes of the deployed objects that must not be applied."""
    return apply_rules.refusals(_objects(deployed_objects, "deployed_objects"), _objects(new_objects, "new_objects"),
                                confirmed_claims or [], settings or {}, downgrades or {})


class FilterModule:
    def filters(self):
        return {"components_credentials": components_credentials, "apply_refusals": apply_refusals}
