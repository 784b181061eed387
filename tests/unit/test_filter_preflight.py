"""preflight_results filter: per-host results from hostvars and the cross-host (fleet) checks."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.gitpod_k3s.plugins.filter.preflight import preflight_results
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import gitpod_constants

# gitpod_k3s_labels, the common role's default (one Python copy, checked by test_constants.py).
LABELS = dict(gitpod_constants.LABELS)
LABEL_GROUPS = {
    "gitpod_meta": ["meta", "ide"],
    "gitpod_workspace": ["workspace_services", "workspace_regular", "workspace_headless"],
    "gitpod_headless": ["workspace_headless"],
}
REQUIRED = list(LABELS)


def record(hostname, arch="x86_64", status="pass"):
    return {"changed": False, "passed": status != "fail",
            "checks": [{"id": "vcpus", "status": status, "expected": ">= 4", "actual": "8", "hint": "h" if status != "pass" else ""}],
            "facts": {"hostname": hostname, "architecture": arch, "kernel": "5.15.0-91-generic",
                      "os": {"id": "ubuntu", "version_id": "22.04"}, "vcpus": 8, "memory_bytes": 32 * 1024 ** 3}}


def groups_for(servers, agents, meta=None, workspace=None):
    return {"all": servers + agents, "ungrouped": [], "k3s_servers": servers, "k3s_agents": agents,
            "gitpod_meta": servers if meta is None else meta,
            "gitpod_workspace": agents if workspace is None else workspace, "gitpod_headless": []}


def run(hostvars, groups, hosts=None):
    hosts = list(hostvars) if hosts is None else hosts
    return preflight_results(hostvars, hosts, groups, "r", "k3s_servers", "k3s_agents", LABEL_GROUPS, LABELS, REQUIRED)


def fleet(out):
    return {c["id"]: c for c in out["scopes"]["fleet"]}


def healthy():
    hv = {h: {"r": record(h)} for h in ("s1", "s2", "s3", "a1", "a2")}
    return hv, groups_for(["s1", "s2", "s3"], ["a1", "a2"])


def test_healthy_fleet_passes_and_keeps_each_hosts_checks():
    hv, groups = healthy()
    out = run(hv, groups)
    assert list(out["results"]) == ["s1", "s2", "s3", "a1", "a2"]
    assert all(c["status"] == "pass" for c in fleet(out).values())
    assert out["messages"] == {h: "" for h in ["s1", "s2", "s3", "a1", "a2", "fleet"]}
    assert out["facts"]["s1"]["role"] == "server" and out["facts"]["a1"]["role"] == "agent"
    assert out["facts"]["a1"]["labels"] == "workspace_headless, workspace_regular, workspace_services"
    assert out["facts"]["s1"]["memory"] == "32.0 GiB"


def test_failing_host_gets_a_failure_message():
    hv, groups = healthy()
    hv["a2"]["r"] = record("a2", status="fail")
    out = run(hv, groups)
    assert out["messages"]["a2"].startswith("1 host requirement(s) not met:")
    assert out["messages"]["a1"] == ""


def test_unreachable_and_unchecked_hosts_fail_a_reachable_check():
    hv, groups = healthy()
    hv["a1"]["r"] = {"unreachable": True, "msg": "Failed to connect to the host via ssh", "changed": False}
    del hv["a2"]["r"]
    out = run(hv, groups)
    assert out["results"]["a1"][0]["id"] == "reachable"
    assert out["results"]["a1"][0]["actual"] == "Failed to connect to the host via ssh"
    assert out["results"]["a2"][0]["status"] == "fail" and "not checked" in out["results"]["a2"][0]["actual"]


def test_module_error_becomes_a_failing_check():
    hv, groups = healthy()
    hv["s1"]["r"] = {"failed": True, "msg": "host_requirements: only: unknown check id(s) cpu", "checks": []}
    c = run(hv, groups)["results"]["s1"][0]
    assert (c["id"], c["status"], c["actual"]) == ("module", "fail", "host_requirements: only: unknown check id(s) cpu")


def test_shared_hostnames_fail_and_name_the_hosts():
    hv, groups = healthy()
    hv["a2"]["r"] = record("a1")
    c = fleet(run(hv, groups))["unique_hostnames"]
    assert c["status"] == "fail" and c["actual"] == "shared: a1: a1, a2"


@pytest.mark.parametrize("servers, status", [([], "fail"), (["s1"], "pass"), (["s1", "s2"], "fail"), (["s1", "s2", "s3"], "pass"),
                                             (["s1", "s2", "s3", "a1"], "fail")])
def test_server_count_must_be_odd_when_more_than_one(servers, status):
    hv, _groups = healthy()
    agents = [h for h in hv if h not in servers]
    c = fleet(run(hv, groups_for(servers, agents, meta=["s1"], workspace=["a2"])))["server_count"]
    assert (c["status"], c["actual"]) == (status, str(len(servers)))


def test_missing_labels_fail_and_name_the_groups_that_give_them():
    hv, _groups = healthy()
    c = fleet(run(hv, groups_for(["s1", "s2", "s3"], ["a1", "a2"], workspace=[])))["labels"]
    assert c["status"] == "fail"
    assert c["actual"] == ("missing: gitpod.io/workload_workspace_services, gitpod.io/workload_workspace_regular, "
                           "gitpod.io/workload_workspace_headless")
    assert "gitpod_headless, gitpod_workspace" in c["hint"]


def test_labels_come_from_the_inventory_not_from_the_limited_hosts():
    hv, groups = healthy()
    out = run({"s1": hv["s1"]}, groups, hosts=["s1"])
    assert fleet(out)["labels"]["status"] == "pass"
    assert list(out["results"]) == ["s1"]


def test_mixed_architectures_fail():
    hv, groups = healthy()
    hv["a1"]["r"] = record("a1", arch="aarch64")
    c = fleet(run(hv, groups))["architecture"]
    assert c["status"] == "fail" and c["actual"] == "aarch64: 1 host(s), x86_64: 4 host(s)"
    assert run(healthy()[0], groups)["messages"]["fleet"] == ""
    assert run(hv, groups)["messages"]["fleet"].startswith("1 fleet requirement(s) not met:")


def test_unknown_required_label_key_is_an_error():
    hv, groups = healthy()
    with pytest.raises(AnsibleFilterError, match="required label key"):
        preflight_results(hv, list(hv), groups, "r", "k3s_servers", "k3s_agents", LABEL_GROUPS, LABELS, ["gpu"])
