"""The k3s role's drain before an upgrade (tasks_from: drain, as upgrade.yml includes it), against
the kubectl TEST DOUBLE (tests/unit/kubectl_double.py), which refuses pods that declare no
controller the way kubectl drain does. Gitpod's workspace pods are such pods."""

from __future__ import annotations

from double_playbook import KUBECTL, include, node, pod, run

NODE = "ws-1.cluster.example.com"
DRAINED = "gitpod-k3s.selfhosted.io/drained-for-upgrade"


def cluster():
    return {"objects": {"nodes": [node("s1"), node(NODE)], "pods": [
        pod("ws-3f2a", NODE, namespace="default"),  # a Gitpod workspace pod: no controller
        pod("ws-daemon-x1", NODE, namespace="default", owner="DaemonSet"),
        pod("proxy-7d9", NODE, namespace="default", owner="ReplicaSet", empty_dir=True),
    ]}}


def drain(tmp, **extra):
    variables = {"__k3s_kubectl": KUBECTL, "__k3s_node_name_fact": NODE, "__gitpod_k3s_api_server": "localhost",
                 "k3s_drain_timeout": 60, "k3s_version": "v1.31.4+k3s1", **extra}
    return run(tmp, [include("k3s", "drain")], variables, cluster())


def test_drain_of_a_node_with_workspace_pods_fails_and_says_why(tmp_path):
    proc, _unused, state = drain(tmp_path)
    assert proc.returncode != 0
    out = " ".join(proc.stdout.split())
    assert "no controller manages" in out and "workspace" in out
    assert "k3s_upgrade_drain_force=true" in out
    assert "default/ws-3f2a" in out, "kubectl's own list of the pods is in the message"
    assert f"uncordon {NODE}" in out
    assert {p["metadata"]["name"] for p in state["objects"]["pods"]} == {"ws-3f2a", "ws-daemon-x1", "proxy-7d9"}


def test_forced_drain_deletes_pods_without_controller(tmp_path):
    proc, _unused, state = drain(tmp_path, k3s_upgrade_drain_force=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    # The mark that survives an interrupted upgrade, then the drain.
    assert "changed=2" in proc.stdout
    marked = [n for n in state["objects"]["nodes"] if n["metadata"]["name"] == NODE][0]["metadata"]["annotations"]
    assert marked == {DRAINED: "v1.31.4+k3s1"}
    drains = [c for c in state["calls"] if c[:1] == ["drain"]]
    assert drains == [["drain", NODE, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=60s", "--force"]]
    # The DaemonSet's pod stays (--ignore-daemonsets); the others are gone, the node is cordoned.
    assert [p["metadata"]["name"] for p in state["objects"]["pods"]] == ["ws-daemon-x1"]
    assert [n for n in state["objects"]["nodes"] if n["metadata"]["name"] == NODE][0]["spec"]["unschedulable"]


def test_drain_without_unmanaged_pods_needs_no_force(tmp_path):
    state = cluster()
    proc, _unused, after = run(tmp_path, [include("k3s", "drain")],
                               {"__k3s_kubectl": KUBECTL, "__k3s_node_name_fact": "s1", "__gitpod_k3s_api_server": "localhost"},
                               state)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert [c for c in after["calls"] if c[:1] == ["drain"]][0][-1] != "--force"


def upgrade_rerun(tmp, annotations, unschedulable):
    """upgrade.yml's read of the node, then upgrade_finish.yml, on a node already at the new version."""
    state = cluster()
    target = [n for n in state["objects"]["nodes"] if n["metadata"]["name"] == NODE][0]
    target["metadata"]["annotations"] = annotations
    target["spec"]["unschedulable"] = unschedulable
    variables = {"__k3s_kubectl": KUBECTL, "__k3s_node_name_fact": NODE, "__gitpod_k3s_api_server": "localhost",
                 "k3s_version": "v1.31.4+k3s1", "k3s_upgrade_drain": True}
    proc, _unused, after = run(tmp, [include("k3s", "upgrade_node"), include("k3s", "upgrade_finish")], variables, state)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return [n for n in after["objects"]["nodes"] if n["metadata"]["name"] == NODE][0]


def test_rerun_of_an_upgrade_cut_after_the_drain_uncordons_the_node(tmp_path):
    # The earlier run drained (the mark) and upgraded the binary, then stopped: this run needs no drain.
    node_after = upgrade_rerun(tmp_path, {DRAINED: "v1.31.4+k3s1", "other": "kept"}, unschedulable=True)
    assert node_after["spec"]["unschedulable"] is False
    assert node_after["metadata"]["annotations"] == {"other": "kept"}


def test_a_node_cordoned_by_hand_stays_cordoned(tmp_path):
    node_after = upgrade_rerun(tmp_path, {}, unschedulable=True)
    assert node_after["spec"]["unschedulable"] is True


def test_the_upgrade_mark_is_asked_for_by_the_caller_not_by_another_setting(tmp_path):
    # A k3s_remove_confirm left in group_vars must not take the mark from upgrades.
    _proc, _unused, state = drain(tmp_path / "upgrade", k3s_upgrade_drain_force=True, k3s_remove_confirm=True)
    marked = [n for n in state["objects"]["nodes"] if n["metadata"]["name"] == NODE][0]["metadata"]
    assert marked.get("annotations") == {DRAINED: "v1.31.4+k3s1"}
    # remove.yml's drain (remove_drain.yml) asks for none: the node goes for good.
    _proc, _unused, state = drain(tmp_path / "remove", k3s_upgrade_drain_force=True, __k3s_drain_mark=False)
    unmarked = [n for n in state["objects"]["nodes"] if n["metadata"]["name"] == NODE][0]["metadata"]
    assert DRAINED not in (unmarked.get("annotations") or {})
