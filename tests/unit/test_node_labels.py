"""node_labels: the planning logic, and the module run through main() against a kubectl test double.

Only the kubectl calls are faked (tests/unit/kubectl_double.py, a TEST DOUBLE that keeps node
objects in memory and answers `get nodes -o json` / `label node` the way kubectl does).
"""

import copy
import json
import os

import pytest

from kubectl_double import KubectlDouble, run_module

from ansible_collections.selfhosted.gitpod_k3s.plugins.filter.gitpod_labels import gitpod_node_labels
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import node_labels as nl
from ansible_collections.selfhosted.gitpod_k3s.plugins.modules import node_labels as module
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import gitpod_constants

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "k8s")
# gitpod_k3s_labels, the common role's default (one Python copy, checked by test_constants.py).
LABELS = dict(gitpod_constants.LABELS)
GROUPS = {
    "gitpod_meta": ["meta", "ide"],
    "gitpod_workspace": ["workspace_services", "workspace_regular", "workspace_headless"],
    "gitpod_headless": ["workspace_headless"],
}
MANAGED = sorted(LABELS.values())
META = [LABELS["meta"], LABELS["ide"]]
WORKSPACE = [LABELS["workspace_services"], LABELS["workspace_regular"], LABELS["workspace_headless"]]


def fixture_items(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return json.load(handle)["items"]


def unlabelled(items):
    """The nodes as k3s registers them without node-label: every gitpod.io label stripped."""
    items = copy.deepcopy(items)
    for item in items:
        item["metadata"]["labels"] = {k: v for k, v in item["metadata"]["labels"].items() if not k.startswith("gitpod.io/")}
    return items


def five_double(labelled=False):
    items = fixture_items("nodes-five.json")
    return KubectlDouble({"nodes": items if labelled else unlabelled(items)})


def five_nodes_args(**extra):
    args = {
        "managed_labels": MANAGED,
        "nodes": [{"name": f"gitpod-server-{i}", "labels": META} for i in (1, 2, 3)]
        + [{"name": f"gitpod-agent-{i}", "labels": WORKSPACE} for i in (1, 2)],
    }
    args.update(extra)
    return args


# ---------------------------------------------------------------- module_utils

@pytest.mark.parametrize("key", ["gitpod.io/workload_meta", "example.com/a.b_c-d", "plain", "a" * 63])
def test_valid_label_keys_pass(key):
    nl.validate_label_key(key)


@pytest.mark.parametrize("key,fragment", [
    ("", "non-empty"),
    ("Gitpod.io/x", "invalid prefix"),
    ("gitpod.io/-x", "invalid name part"),
    ("a/b/c", "at most one '/'"),
    ("/x", "at most one '/'"),
    ("x" * 64, "invalid name part"),
])
def test_invalid_label_keys_name_the_option_and_value(key, fragment):
    with pytest.raises(nl.LabelError, match=fragment) as err:
        nl.validate_label_key(key)
    assert "managed_labels" in str(err.value)


def test_desired_label_outside_managed_set_is_refused():
    with pytest.raises(nl.LabelError, match=r"nodes\[0\] \(n1\)\.labels: example.com/x not in managed_labels"):
        nl.normalise_desired([{"name": "n1", "labels": ["example.com/x"]}], MANAGED)


def test_node_listed_twice_is_refused():
    with pytest.raises(nl.LabelError, match="listed twice"):
        nl.normalise_desired([{"name": "n1", "labels": []}, {"name": "n1", "labels": META}], MANAGED)


def test_invalid_value_is_refused():
    with pytest.raises(nl.LabelError, match="not a valid label value"):
        nl.normalise_desired([], MANAGED, value="not valid!")


def test_plan_adds_missing_and_leaves_other_labels_alone():
    items = unlabelled(fixture_items("nodes-five.json"))
    desired = nl.normalise_desired([{"name": "gitpod-server-1", "labels": META}], MANAGED)
    changes, missing = nl.plan(items, desired, MANAGED)
    assert missing == []
    assert list(changes) == ["gitpod-server-1"]
    assert changes["gitpod-server-1"]["set"] == {LABELS["ide"]: "true", LABELS["meta"]: "true"}
    assert changes["gitpod-server-1"]["remove"] == []
    args = nl.label_args("gitpod-server-1", changes["gitpod-server-1"])
    assert args == ["label", "node", "gitpod-server-1", "--overwrite",
                    "gitpod.io/workload_ide=true", "gitpod.io/workload_meta=true"]


def test_plan_fixes_a_wrong_value():
    items = fixture_items("nodes-single.json")
    items[0]["metadata"]["labels"][LABELS["meta"]] = "false"
    desired = nl.normalise_desired([{"name": "gitpod-1", "labels": MANAGED}], MANAGED)
    changes, _missing = nl.plan(items, desired, MANAGED)
    assert changes["gitpod-1"]["set"] == {LABELS["meta"]: "true"}
    assert changes["gitpod-1"]["before"][LABELS["meta"]] == "false"


def test_plan_reports_nodes_the_cluster_lacks():
    desired = nl.normalise_desired([{"name": "server-1.example.com", "labels": META}], MANAGED)
    changes, missing = nl.plan(fixture_items("nodes-five.json"), desired, MANAGED)
    assert missing == ["server-1.example.com"] and changes == {}


def test_unlisted_nodes_are_ignored_by_default_and_stripped_on_request():
    items = fixture_items("nodes-five.json")
    desired = nl.normalise_desired([{"name": "gitpod-server-1", "labels": META}], MANAGED)
    assert nl.plan(items, desired, MANAGED)[0] == {}
    changes, _missing = nl.plan(items, desired, MANAGED, unlisted="remove")
    assert sorted(changes) == ["gitpod-agent-1", "gitpod-agent-2", "gitpod-server-2", "gitpod-server-3"]
    assert changes["gitpod-agent-1"]["remove"] == sorted(WORKSPACE)


def test_diff_shows_managed_labels_before_and_after():
    changes = {"n1": {"set": {}, "remove": [LABELS["ide"]], "before": {LABELS["ide"]: "true", LABELS["meta"]: "true"},
                      "after": {LABELS["meta"]: "true"}}}
    assert nl.diffs(changes) == [{
        "before_header": "node/n1 (managed labels)", "after_header": "node/n1 (managed labels)",
        "before": "gitpod.io/workload_ide=true\ngitpod.io/workload_meta=true\n",
        "after": "gitpod.io/workload_meta=true\n"}]


# ---------------------------------------------------------------- the module, kubernetes.core pattern

def test_check_mode_reports_changed_and_changes_nothing():
    double = five_double()
    code, result = run_module(module.main, five_nodes_args(_ansible_check_mode=True), double)
    assert code == 0 and result["changed"] is True
    assert result["changed_nodes"] == ["gitpod-agent-1", "gitpod-agent-2", "gitpod-server-1", "gitpod-server-2",
                                       "gitpod-server-3"]
    assert double.label_calls() == []
    assert LABELS["meta"] not in double.node_labels("gitpod-server-1")


def test_apply_then_check_and_apply_again_are_unchanged():
    double = five_double()
    code, first = run_module(module.main, five_nodes_args(), double)
    assert code == 0 and first["changed"] is True and len(first["changed_nodes"]) == 5
    assert len(double.label_calls()) == 5
    assert double.node_labels("gitpod-server-2")[LABELS["ide"]] == "true"
    assert double.node_labels("gitpod-agent-1")[LABELS["workspace_headless"]] == "true"
    assert LABELS["meta"] not in double.node_labels("gitpod-agent-1")

    code, check = run_module(module.main, five_nodes_args(_ansible_check_mode=True), double)
    assert code == 0 and check["changed"] is False and check["changed_nodes"] == []
    code, again = run_module(module.main, five_nodes_args(), double)
    assert code == 0 and again["changed"] is False
    assert len(double.label_calls()) == 5  # no new label call


def test_node_leaving_a_group_loses_only_managed_labels():
    double = five_double(labelled=True)
    double.objects["nodes"][3]["metadata"]["labels"]["example.com/rack"] = "r7"  # gitpod-agent-1, not managed
    before = double.node_labels("gitpod-agent-1")
    args = five_nodes_args()
    args["nodes"][3] = {"name": "gitpod-agent-1", "labels": []}  # left gitpod_workspace
    code, result = run_module(module.main, dict(args, _ansible_diff=True), double)
    assert code == 0 and result["changed_nodes"] == ["gitpod-agent-1"]
    after = double.node_labels("gitpod-agent-1")
    assert {k: v for k, v in before.items() if k not in MANAGED} == after
    assert after["example.com/rack"] == "r7" and after["kubernetes.io/hostname"] == "gitpod-agent-1"
    assert result["diff"][0]["after"] == ""
    assert result["diff"][0]["before"].count("=true\n") == 3


def test_headless_pool_keeps_only_headless():
    double = five_double(labelled=True)
    args = five_nodes_args()
    args["nodes"][4] = {"name": "gitpod-agent-2", "labels": [LABELS["workspace_headless"]]}
    code, result = run_module(module.main, args, double)
    assert code == 0 and result["nodes"]["gitpod-agent-2"]["remove"] == sorted(
        [LABELS["workspace_services"], LABELS["workspace_regular"]])
    assert {k for k in double.node_labels("gitpod-agent-2") if k in MANAGED} == {LABELS["workspace_headless"]}


def test_labels_from_registration_and_from_the_module_agree():
    """k3s registers nodes with node-label from gitpod_node_labels(group_names); the module uses the same filter."""
    inventory = {"gitpod-server-1": ["k3s_servers", "gitpod_meta"], "gitpod-server-2": ["k3s_servers", "gitpod_meta"],
                 "gitpod-server-3": ["k3s_servers", "gitpod_meta"], "gitpod-agent-1": ["k3s_agents", "gitpod_workspace"],
                 "gitpod-agent-2": ["k3s_agents", "gitpod_workspace"]}
    items = unlabelled(fixture_items("nodes-five.json"))
    for item in items:  # what k3s applies at registration from config.yaml node-label
        for label in gitpod_node_labels(inventory[item["metadata"]["name"]], GROUPS, LABELS):
            item["metadata"]["labels"][label] = "true"
    double = KubectlDouble({"nodes": items})
    nodes = [{"name": host, "labels": gitpod_node_labels(groups, GROUPS, LABELS)} for host, groups in inventory.items()]
    code, result = run_module(module.main, {"managed_labels": MANAGED, "nodes": nodes}, double)
    assert code == 0 and result["changed"] is False and double.label_calls() == []


def test_renamed_label_moves_nodes_to_the_new_name():
    renamed = dict(LABELS, workspace_services="gitpod.io/workload_services")
    double = five_double(labelled=True)
    managed = sorted(set(MANAGED) | set(renamed.values()))
    nodes = [{"name": f"gitpod-agent-{i}", "labels": gitpod_node_labels(["gitpod_workspace"], GROUPS, renamed)} for i in (1, 2)]
    code, result = run_module(module.main, {"managed_labels": managed, "nodes": nodes}, double)
    assert code == 0 and result["changed_nodes"] == ["gitpod-agent-1", "gitpod-agent-2"]
    labels = double.node_labels("gitpod-agent-1")
    assert labels["gitpod.io/workload_services"] == "true" and LABELS["workspace_services"] not in labels


def test_missing_node_fails_before_any_change():
    double = five_double()
    args = five_nodes_args()
    args["nodes"].append({"name": "server-1.example.com", "labels": META})
    code, result = run_module(module.main, args, double)
    assert code == 1 and result["failed"] is True
    assert "server-1.example.com not found in the cluster" in result["msg"]
    assert "node_labels_node_name" in result["msg"] and "gitpod-server-1" in result["msg"]
    assert double.label_calls() == []


def test_missing_node_warns_and_labels_the_rest_when_asked(capsys):
    double = five_double()
    args = five_nodes_args(missing_nodes="warn")
    args["nodes"].append({"name": "gone", "labels": META})
    code, result = run_module(module.main, args, double)
    assert code == 0 and result["missing_nodes"] == ["gone"] and len(result["changed_nodes"]) == 5
    # ansible-core 2.19 shows a warning raised outside a controller run on stderr
    assert "gone not found in the cluster" in capsys.readouterr().err


def test_unmanaged_desired_label_fails_without_calling_kubectl():
    double = five_double()
    code, result = run_module(module.main, {"managed_labels": META, "nodes": [
        {"name": "gitpod-agent-1", "labels": WORKSPACE}]}, double)
    assert code == 1 and "not in managed_labels" in result["msg"] and double.calls == []


def test_kubectl_failure_is_reported_with_command_and_stderr():
    double = KubectlDouble({"nodes": []}, unreachable=True)
    code, result = run_module(module.main, five_nodes_args(), double)
    assert code == 1
    assert "get nodes -o json failed (rc=1)" in result["msg"] and "connection to the server" in result["stderr"]
    assert result["cmd"].endswith("get nodes -o json")


def test_missing_kubectl_command_names_the_option():
    code, result = run_module(module.main, five_nodes_args(kubectl="/nonexistent/kubectl"), five_double())
    assert code == 1 and "kubectl='/nonexistent/kubectl'" in result["msg"]


def test_kubeconfig_and_timeout_reach_kubectl():
    double = five_double(labelled=True)
    code, _result = run_module(module.main, five_nodes_args(kubeconfig="/tmp/kc.yaml", timeout=5), double)
    assert code == 0
    assert double.calls[0][1:5] == ["--kubeconfig", "/tmp/kc.yaml", "--request-timeout=5s", "get"]


# --- taints: k3s sets node-taint only at registration; the module keeps them in line afterwards -------

HEADLESS = "gitpod.io/headless=true:NoSchedule"


def taint_double():
    """agent-1 registered with HEADLESS (config.yaml's node-taint), and cordoned by hand."""
    double = five_double(labelled=True)
    node = double.objects["nodes"][3]
    node["spec"]["taints"] = [{"key": "gitpod.io/headless", "value": "true", "effect": "NoSchedule"},
                              {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
    return double


def taints_args(taints, **extra):
    args = five_nodes_args(**extra)
    args["nodes"][3] = dict(args["nodes"][3], taints=taints)
    return args


def taints_of(double, name="gitpod-agent-1"):
    node = next(n for n in double.objects["nodes"] if n["metadata"]["name"] == name)
    return sorted(f"{t['key']}={t.get('value', '')}:{t['effect']}" for t in node["spec"].get("taints") or [])


def test_registration_taints_are_adopted_then_a_removed_one_goes_and_others_stay():
    double = taint_double()
    code, first = run_module(module.main, taints_args([HEADLESS]), double)
    # The taint k3s set at registration is recorded, not set again.
    assert code == 0 and first["taints"]["gitpod-agent-1"]["add"] == [] and first["taints"]["gitpod-agent-1"]["record"] == [
        "gitpod.io/headless:NoSchedule"]
    code, again = run_module(module.main, taints_args([HEADLESS]), double)
    assert code == 0 and again["changed"] is False
    # Taken out of k3s_node_taints: removed; the hand-made cordon stays.
    code, removed = run_module(module.main, taints_args([]), double)
    assert code == 0 and removed["taints"]["gitpod-agent-1"]["remove"] == ["gitpod.io/headless:NoSchedule"]
    assert taints_of(double) == ["node.kubernetes.io/unschedulable=:NoSchedule"]


def test_a_new_or_changed_taint_is_set_and_a_taint_never_recorded_is_never_removed():
    double = taint_double()
    code, result = run_module(module.main, taints_args(["gitpod.io/headless=false:NoSchedule", "dedicated=ws:NoExecute"],
                                                       _ansible_diff=True), double)
    added = sorted(result["taints"]["gitpod-agent-1"]["add"])
    assert code == 0 and added == ["dedicated=ws:NoExecute", "gitpod.io/headless=false:NoSchedule"]
    assert taints_of(double) == ["dedicated=ws:NoExecute", "gitpod.io/headless=false:NoSchedule",
                                 "node.kubernetes.io/unschedulable=:NoSchedule"]
    assert "dedicated=ws:NoExecute" in result["diff"][-1]["after"]
    # A node given no taints option keeps whatever it has.
    code, result = run_module(module.main, five_nodes_args(), double)
    assert code == 0 and result["taints"] == {}


def test_check_mode_plans_taints_and_changes_nothing():
    double = taint_double()
    code, result = run_module(module.main, taints_args(["dedicated=ws:NoExecute"], _ansible_check_mode=True), double)
    assert code == 0 and result["changed"] is True and result["taints"]["gitpod-agent-1"]["add"] == ["dedicated=ws:NoExecute"]
    assert taints_of(double) == ["gitpod.io/headless=true:NoSchedule", "node.kubernetes.io/unschedulable=:NoSchedule"]


def test_a_bad_taint_is_refused_by_name_before_kubectl():
    double = taint_double()
    code, result = run_module(module.main, taints_args(["gitpod.io/headless=true"]), double)
    assert code == 1 and "nodes[gitpod-agent-1].taints" in result["msg"] and "NoSchedule" in result["msg"]
    assert double.calls == []
