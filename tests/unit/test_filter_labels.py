import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.gitpod_k3s.plugins.filter.gitpod_labels import gitpod_node_labels
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import gitpod_constants

# gitpod_k3s_labels, the common role's default (one Python copy, checked by test_constants.py).
LABELS = dict(gitpod_constants.LABELS)
GROUPS = {
    "gitpod_meta": ["meta", "ide"],
    "gitpod_workspace": ["workspace_services", "workspace_regular", "workspace_headless"],
    "gitpod_headless": ["workspace_headless"],
}


def test_meta_host_gets_meta_and_ide():
    assert gitpod_node_labels(["k3s_servers", "gitpod_meta"], GROUPS, LABELS) == [
        "gitpod.io/workload_ide", "gitpod.io/workload_meta"]


def test_headless_pool_gets_only_headless():
    assert gitpod_node_labels(["k3s_agents", "gitpod_headless"], GROUPS, LABELS) == [
        "gitpod.io/workload_workspace_headless"]


def test_overlapping_groups_do_not_duplicate():
    got = gitpod_node_labels(["gitpod_workspace", "gitpod_headless"], GROUPS, LABELS)
    assert got == sorted(set(got)) and len(got) == 3


def test_host_in_no_gitpod_group_gets_nothing():
    assert gitpod_node_labels(["k3s_agents"], GROUPS, LABELS) == []


def test_renamed_label_is_followed():
    renamed = dict(LABELS, workspace_services="gitpod.io/workload_services")
    assert "gitpod.io/workload_services" in gitpod_node_labels(["gitpod_workspace"], GROUPS, renamed)


def test_unknown_label_key_names_the_variable():
    with pytest.raises(AnsibleFilterError, match="gitpod_k3s_labels does not define"):
        gitpod_node_labels(["gitpod_meta"], {"gitpod_meta": ["metaa"]}, LABELS)
