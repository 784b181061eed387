"""Stage 0 in-process: the inventory_check action's own code on an inventory, without a playbook run.

It builds what ansible-playbook builds (DataLoader, InventoryManager from an inventory file,
VariableManager with the extra vars, HostVars, a Templar) and calls
plugins/action/inventory_check.py's check_settings, the function the action runs. Nothing
here connects anywhere.
"""

from __future__ import annotations

import json
import os
import tempfile

from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from ansible.vars.hostvars import HostVars
from ansible.vars.manager import VariableManager

from ansible_collections.selfhosted.gitpod_k3s.plugins.action import inventory_check as action

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SITE_ROLES = ["preflight", "host_prep", "containerd", "k3s", "calico", "node_labels", "cert_manager", "components", "gitpod_config",
              "cluster_validation"]


def check(inventory: dict, extra_vars: dict | None = None, roles=None, hosts=None):
    """(messages, values) for an inventory (YAML-shaped dict) and extra vars."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hosts.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(inventory, handle)
        # The .json extension makes the yaml inventory plugin read it.
        loader = DataLoader()
        loader.set_basedir(os.path.join(REPO, "playbooks"))
        manager = InventoryManager(loader=loader, sources=[path])
        variables = VariableManager(loader=loader, inventory=manager)
        # What `-e @file.json` sets: loaded as ansible-playbook loads it (trusted as templates).
        extra_path = os.path.join(tmp, "extra.json")
        with open(extra_path, "w", encoding="utf-8") as handle:
            json.dump(extra_vars or {}, handle)
        variables._extra_vars = loader.load_from_file(extra_path, trusted_as_template=True)  # pylint: disable=protected-access
        hostvars = HostVars(inventory=manager, variable_manager=variables, loader=loader)
        templar = Templar(loader=loader, variables={})
        groups = {name: [h.name for h in group.get_hosts()] for name, group in manager.groups.items()}
        names = hosts if hosts is not None else [h.name for h in manager.get_hosts()]
        return action.check_settings(SITE_ROLES if roles is None else roles, names, hostvars.raw_get, groups, loader, templar)


def example_inventory(servers=1, agents=2):
    """A valid inventory: servers carry meta, agents the workspace labels; addresses in TEST-NET-1."""
    hosts = {f"server{i}": {"ansible_host": f"192.0.2.{i}"} for i in range(1, servers + 1)}
    agent_hosts = {f"agent{i}": {"ansible_host": f"192.0.2.{100 + i}"} for i in range(1, agents + 1)}
    return {"all": {"children": {
        "k3s_servers": {"hosts": hosts},
        "k3s_agents": {"hosts": agent_hosts},
        "gitpod_meta": {"hosts": {h: None for h in hosts}},
        "gitpod_workspace": {"hosts": {h: None for h in (agent_hosts or hosts)}},
    }}}
