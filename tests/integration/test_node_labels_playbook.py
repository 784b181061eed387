"""playbooks/labels.yml and playbooks/validate.yml through ansible-playbook, against a kubectl TEST DOUBLE.

No Kubernetes API server can run here. The playbooks, roles and modules run for real (five
inventory hosts on a local connection); the only stand-in is kubectl itself:
tests/unit/kubectl_double.py run as a program, keeping the cluster's API objects in a JSON state
file (KUBECTL_DOUBLE_STATE) built from the recorded-shape fixtures in tests/unit/fixtures/k8s/.
"""

import copy
import json
import os
import platform
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOUBLE = os.path.join(REPO, "tests", "unit", "kubectl_double.py")
FIXTURES = os.path.join(REPO, "tests", "unit", "fixtures", "k8s")
MANAGED_PREFIX = "gitpod.io/workload_"
# agent-a has no name override: its node is found by this machine's host name (ansible_nodename),
# which is what k3s registers by default.
AGENT_A_NODE = platform.node().lower()

INVENTORY = """
[k3s_servers]
gitpod-server-1 node_labels_node_name=gitpod-server-1
gitpod-server-2 k3s_node_name=GITPOD-SERVER-2
gitpod-server-3 node_labels_node_name=gitpod-server-3

[k3s_agents]
agent-a
agent-b node_labels_node_name=gitpod-agent-2

[gitpod_meta]
gitpod-server-1
gitpod-server-2
gitpod-server-3

[gitpod_workspace]
agent-a
{agent_b_workspace}

[gitpod_headless]
{agent_b_headless}

[all:vars]
ansible_connection=local
ansible_python_interpreter={python}
"""


def items(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return json.load(handle)["items"]


def write_inventory(tmp_path, headless=False):
    path = tmp_path / "hosts.ini"
    path.write_text(INVENTORY.format(python=sys.executable, agent_b_workspace="" if headless else "agent-b",
                                     agent_b_headless="agent-b" if headless else ""))
    return str(path)


def write_state(tmp_path, objects, version="version.json"):
    with open(os.path.join(FIXTURES, version), encoding="utf-8") as handle:
        state = {"objects": objects, "version": json.load(handle), "calls": []}
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps(state))
    return str(path)


def read_state(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def playbook(name, inventory, state, tmp_path, *extra):
    env = dict(os.environ, KUBECTL_DOUBLE_STATE=state, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_LOCALHOST_WARNING="false")
    cmd = ["ansible-playbook", os.path.join(REPO, "playbooks", name), "-i", inventory,
           "-e", json.dumps({"node_labels_kubectl": DOUBLE, "node_labels_become": False,
                             "cluster_validation_kubectl": DOUBLE, "cluster_validation_become": False,
                             "gitpod_k3s_artifacts_dir": str(tmp_path / "artifacts")}), *extra]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    try:
        doc = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError:
        pytest.fail(f"ansible-playbook gave no JSON (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.returncode, doc


def task_result(doc, name):
    for play in doc["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].split(" : ")[-1] == name:  # "role : task" in some versions
                return next(iter(task["hosts"].values()))
    raise KeyError(name)


def total_changed(doc):
    return sum(s["changed"] for s in doc["stats"].values())


def managed(state, node):
    obj = next(n for n in state["objects"]["nodes"] if n["metadata"]["name"] == node)
    return sorted(k for k in obj["metadata"]["labels"] if k.startswith(MANAGED_PREFIX))


def unlabelled_five():
    nodes = items("nodes-five.json")
    nodes[3]["metadata"]["name"] = AGENT_A_NODE  # was gitpod-agent-1
    nodes[3]["metadata"]["labels"]["kubernetes.io/hostname"] = AGENT_A_NODE
    for n in nodes:
        n["metadata"]["labels"] = {k: v for k, v in n["metadata"]["labels"].items() if not k.startswith(MANAGED_PREFIX)}
        n["metadata"]["labels"]["example.com/rack"] = "r1"
    return nodes


def test_labels_playbook_check_apply_idempotent_and_group_change(tmp_path):
    inventory = write_inventory(tmp_path)
    state = write_state(tmp_path, {"nodes": unlabelled_five()})

    rc, doc = playbook("labels.yml", inventory, state, tmp_path, "--check", "--diff")
    assert rc == 0
    result = task_result(doc, "Label the cluster's nodes")
    assert result["changed"] is True and len(result["changed_nodes"]) == 5
    assert len(result["diff"]) == 5
    assert managed(read_state(state), "gitpod-server-1") == []  # check mode changed nothing

    rc, doc = playbook("labels.yml", inventory, state, tmp_path)
    assert rc == 0 and total_changed(doc) == 1
    after = read_state(state)
    assert managed(after, "gitpod-server-2") == ["gitpod.io/workload_ide", "gitpod.io/workload_meta"]
    assert managed(after, "gitpod-agent-2") == ["gitpod.io/workload_workspace_headless",
                                                "gitpod.io/workload_workspace_regular",
                                                "gitpod.io/workload_workspace_services"]

    rc, doc = playbook("labels.yml", inventory, state, tmp_path, "--check")
    assert rc == 0 and total_changed(doc) == 0
    rc, doc = playbook("labels.yml", inventory, state, tmp_path)
    assert rc == 0 and total_changed(doc) == 0

    # agent-b moves from gitpod_workspace to the headless pool
    inventory = write_inventory(tmp_path, headless=True)
    rc, doc = playbook("labels.yml", inventory, state, tmp_path)
    assert rc == 0
    assert task_result(doc, "Label the cluster's nodes")["changed_nodes"] == ["gitpod-agent-2"]
    final = read_state(state)
    assert managed(final, "gitpod-agent-2") == ["gitpod.io/workload_workspace_headless"]
    node = next(n for n in final["objects"]["nodes"] if n["metadata"]["name"] == "gitpod-agent-2")
    assert node["metadata"]["labels"]["example.com/rack"] == "r1"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "gitpod-agent-2"
    assert managed(final, AGENT_A_NODE) == managed(after, AGENT_A_NODE) == [
        "gitpod.io/workload_workspace_headless", "gitpod.io/workload_workspace_regular",
        "gitpod.io/workload_workspace_services"]


def healthy_objects():
    return {
        "nodes": items("nodes-five.json"), "customresourcedefinitions": items("crds.json"),
        "deployments": items("deployments.json"), "daemonsets": items("daemonsets-five.json"),
        "pods": items("pods-calico-five.json"), "storageclasses": items("storageclasses.json"),
        "namespaces": items("namespaces.json"), "services": items("services.json"),
        "clusterissuers": items("clusterissuers.json"), "secrets": items("secrets-gitpod.json"),
    }


def test_validate_playbook_writes_the_report_and_passes(tmp_path):
    state = write_state(tmp_path, healthy_objects())
    rc, doc = playbook("validate.yml", write_inventory(tmp_path), state, tmp_path,
                       "-e", '{"cluster_validation_secrets": ["database", "storage", "registry", "tls"]}')
    assert rc == 0, json.dumps(doc["stats"])
    report_dir = tmp_path / "artifacts" / "validate"
    report = json.loads((report_dir / "report.json").read_text())
    assert report["passed"] is True
    cluster = {c["id"]: c["status"] for c in report["scopes"]["cluster"]["checks"]}
    assert cluster["secret_https-certificates"] == "pass" and cluster["load_balancer"] == "pass"
    assert sorted(report["hosts"]) == ["gitpod-agent-1", "gitpod-agent-2", "gitpod-server-1", "gitpod-server-2",
                                       "gitpod-server-3"]
    markdown = (report_dir / "report.md").read_text()
    assert "Cluster validation: gitpod" in markdown and "gitpod-agent-2" in markdown
    calls = read_state(state)["calls"]
    assert not any(c[2:4] == ["label", "node"] for c in calls)  # validation only reads


def test_validate_playbook_fails_after_writing_the_report(tmp_path):
    objects = healthy_objects()
    objects["storageclasses"] = items("storageclasses-no-default.json")
    objects["nodes"] = copy.deepcopy(objects["nodes"])
    objects["nodes"][2]["status"]["nodeInfo"]["kernelVersion"] = "4.15.0-213-generic"
    rc, doc = playbook("validate.yml", write_inventory(tmp_path), write_state(tmp_path, objects), tmp_path)
    assert rc == 2
    failed = task_result(doc, "Fail when the cluster misses a requirement")
    assert failed["failed"] is True
    assert failed["msg"].startswith("kernel_version, default_storage_class failed.")
    report = json.loads((tmp_path / "artifacts" / "validate" / "report.json").read_text())
    assert report["passed"] is False and report["counts"]["fail"] == 2  # each failure counted once
    assert [c["id"] for c in report["scopes"]["cluster"]["checks"] if c["status"] == "fail"] == ["default_storage_class"]
    node = {c["id"]: c for c in report["hosts"]["gitpod-server-3"]["checks"]}
    assert node["kernel_version"]["status"] == "fail" and node["kernel_version"]["actual"] == "4.15.0-213-generic"


def test_validate_playbook_names_the_role_variable_of_a_bad_threshold(tmp_path):
    state = write_state(tmp_path, healthy_objects())
    rc, doc = playbook("validate.yml", write_inventory(tmp_path), state, tmp_path,
                       "-e", '{"cluster_validation_thresholds": {"meta": {"fail_vcpus": -1}}}')
    assert rc == 2
    stop = task_result(doc, "Stop when the checks could not run")
    assert stop["msg"].startswith("cluster_validation_thresholds.meta.fail_vcpus = -1 is negative")
    # Rejected before any object was read: kubectl ran once, for the server choice (common role,
    # api_server.yml), which the first server answered.
    assert read_state(state)["calls"] == [["--request-timeout=10s", "get", "--raw", "/readyz"]]
    assert not (tmp_path / "artifacts" / "validate" / "report.json").exists()


def test_validate_playbook_reports_an_unreachable_api_server(tmp_path):
    state = write_state(tmp_path, healthy_objects())
    doc = read_state(state)
    doc["unreachable"] = True
    (tmp_path / "cluster.json").write_text(json.dumps(doc))
    rc, out = playbook("validate.yml", write_inventory(tmp_path), state, tmp_path)
    assert rc == 2
    msg = task_result(out, "Stop when the checks could not run")["msg"]
    assert msg.startswith("kubectl version -o json failed (rc=1)") and "6443 was refused" in msg


def test_validate_playbook_checks_the_secrets_the_components_role_made(tmp_path):
    components = {"gitpod_k3s_components": {"database": {"provider": "in_cluster"}, "storage": {"provider": "gitpod"},
                                            "registry": {"provider": "external"}},
                  "gitpod_k3s_domain": "gitpod.example.com"}
    objects = healthy_objects()
    objects["secrets"] = [s for s in objects["secrets"] if s["metadata"]["name"] != "gitpod-storage"]
    rc, doc = playbook("validate.yml", write_inventory(tmp_path), write_state(tmp_path, objects), tmp_path,
                       "-e", json.dumps(components))
    assert rc == 0, json.dumps(doc["stats"])
    report = json.loads((tmp_path / "artifacts" / "validate" / "report.json").read_text())
    ids = [c["id"] for c in report["scopes"]["cluster"]["checks"] if c["id"].startswith("secret_")]
    assert ids == ["secret_gitpod-database", "secret_gitpod-registry", "secret_https-certificates"]


def test_validate_playbook_checks_no_secret_without_the_components_role(tmp_path):
    state = write_state(tmp_path, healthy_objects())
    rc, _doc = playbook("validate.yml", write_inventory(tmp_path), state, tmp_path)
    assert rc == 0
    assert not any("secret" in call for call in read_state(state)["calls"])
