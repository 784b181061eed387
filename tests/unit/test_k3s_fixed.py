"""What k3s fixes once the cluster or the node exists is refused before any node changes.

The rule is upstream's list (plugins/module_utils/k3s_flags.py CRITICAL_SERVER: the cli tags of
k3s's CriticalControlArgs), so the tests are derived from it: every key of it, changed, is refused
on a server and let through on an agent; the node name is refused on both. Then the role's task file
(roles/k3s/tasks/fixed.yml) runs in ansible-playbook against a config.yaml in a temporary directory.
"""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils.k3s_flags import (
    CRITICAL_DEFAULTS, CRITICAL_SERVER, FIXED_NODE, FIXED_NODE_RUNTIME, LATER_SERVER, SERVER, fixed_setting_changes)
from double_playbook import include, run

RUNNING = {"node-name": "s1", "cluster-cidr": "10.42.0.0/16", "service-cidr": "10.43.0.0/16",
           "flannel-backend": "none", "disable-network-policy": True, "disable": ["traefik"]}


def changed(key):
    """A value for ``key`` that differs from the running one, of the flag's own kind."""
    old = RUNNING.get(key, CRITICAL_DEFAULTS.get(key))
    if old is None or isinstance(old, bool):
        return "10.43.0.53" if key == "cluster-dns" else not old
    return "10.99.0.0/16" if "cidr" in key else f"other-{old}"


def test_the_list_is_made_of_k3s_server_flags():
    assert CRITICAL_SERVER - {"disable-service-lb"} <= SERVER | LATER_SERVER, "each key is a flag config.yaml may name"


@pytest.mark.parametrize("key", sorted(CRITICAL_SERVER | FIXED_NODE))
def test_each_fixed_key_changed_is_refused_on_a_server_and_only_the_name_on_an_agent(key):
    after = dict(RUNNING, **{key: changed(key)})
    assert [c[0] for c in fixed_setting_changes(RUNNING, after, server=True)] == [key]
    assert [c[0] for c in fixed_setting_changes(RUNNING, after, server=False)] == ([key] if key in FIXED_NODE else [])


@pytest.mark.parametrize("server", [True, False])
def test_moving_a_node_to_the_other_containerd_is_refused(server):
    system = dict(RUNNING, **{FIXED_NODE_RUNTIME: "unix:///run/containerd/containerd.sock"})
    assert fixed_setting_changes(system, RUNNING, server) == [
        (FIXED_NODE_RUNTIME, "unix:///run/containerd/containerd.sock", "k3s's own containerd")]
    assert [c[0] for c in fixed_setting_changes(RUNNING, system, server)] == [FIXED_NODE_RUNTIME]
    assert fixed_setting_changes(system, dict(system), server) == []


def test_k3s_defaults_and_spellings_are_no_change():
    # An older config.yaml that left k3s's defaults unnamed; the service LB disabled by either spelling.
    assert fixed_setting_changes({"flannel-backend": "none"}, dict(RUNNING, **{"node-name": "s1"}), True) == [
        ("disable-network-policy", False, True)]
    assert fixed_setting_changes({"disable": ["servicelb"]}, {"disable-service-lb": True}, True) == []
    assert fixed_setting_changes({"token-file": "t"}, {"node-name": "s1"}, False) == [], "no node-name before: k3s used the host name"
    assert fixed_setting_changes({}, dict(RUNNING, **{"cluster-cidr": "10.52.0.0/16"}), True) == [], "a first install"
    assert fixed_setting_changes(RUNNING, dict(RUNNING, **{"node-label": ["a=b"], "tls-san": ["x"]}), True) == []


def play(tmp_path, before, after, server=True):
    tmp_path.mkdir(parents=True)
    config = tmp_path / "config.yaml"
    if before is not None:
        config.write_text(yaml.safe_dump(before))
    variables = {"__k3s_config_file": str(config), "__k3s_config": after, "__k3s_is_server": server}
    proc, _unused, _state = run(tmp_path, [include("k3s", "fixed")], variables, {"objects": {}})
    return proc, " ".join(proc.stdout.split())


def test_the_role_refuses_a_new_pod_network_and_names_the_settings(tmp_path):
    proc, out = play(tmp_path / "refused", RUNNING, dict(RUNNING, **{"cluster-cidr": "10.52.0.0/16"}))
    assert proc.returncode != 0
    assert "No node was changed. localhost: cluster-cidr 10.42.0.0/16 -> 10.52.0.0/16." in out
    assert "k3s_cluster_cidr" in out


def test_the_role_lets_a_first_install_and_a_label_change_through(tmp_path):
    assert play(tmp_path / "first", None, RUNNING)[0].returncode == 0
    proc, out = play(tmp_path / "label", RUNNING, dict(RUNNING, **{"node-label": ["gitpod.io/workload_meta=true"]}))
    assert proc.returncode == 0, out[-2000:]
