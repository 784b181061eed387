"""The workspace check of roles/cluster_validation through ansible-playbook: validate.yml, and the
plays upgrade.yml and reset.yml run before they touch a node.

kubectl is the TEST DOUBLE tests/unit/kubectl_double.py run as a program over a JSON state file
built from the recorded-shape fixtures in tests/unit/fixtures/k8s/; everything else runs for real.
kubectl runs on the controller (Ansible's implicit localhost, not in the inventory, whose checks
want every host in a k3s group); the cluster's hosts point at a closed port on the loopback address, so nothing after the pre-check can change this machine: a
play that gets past the check finds its hosts unreachable (rc 4), one the check stops fails (rc 2).
"""

import json
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOUBLE = os.path.join(REPO, "tests", "unit", "kubectl_double.py")
FIXTURES = os.path.join(REPO, "tests", "unit", "fixtures", "k8s")
CLOSED_PORT = 1  # nothing listens on tcpmux; an ssh connection to it is refused at once

# Each node has its own loopback address (stage 0 refuses two hosts at one address and port); the
# closed port refuses every connection.
INVENTORY = """
[k3s_servers]
gitpod-server-1 ansible_host=127.0.0.11
gitpod-server-2 ansible_host=127.0.0.12
gitpod-server-3 ansible_host=127.0.0.13

[k3s_agents]
gitpod-agent-1 ansible_host=127.0.0.21
gitpod-agent-2 ansible_host=127.0.0.22

[gitpod_meta]
gitpod-server-[1:3]

[gitpod_workspace]
gitpod-agent-[1:2]

[k3s_servers:vars]
ansible_connection=ssh
ansible_port={port}

[k3s_agents:vars]
ansible_connection=ssh
ansible_port={port}
"""


def items(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return json.load(handle)["items"]


def objects(workspaces=True, storageclasses="storageclasses.json"):
    return {
        "nodes": items("nodes-five.json"), "customresourcedefinitions": items("crds.json"),
        "deployments": items("deployments.json"), "daemonsets": items("daemonsets-five.json"),
        "pods": items("pods-calico-five.json") + (items("pods-gitpod-workspaces.json") if workspaces else []),
        "storageclasses": items(storageclasses), "namespaces": items("namespaces.json"),
        "services": items("services.json"), "clusterissuers": items("clusterissuers.json"),
        "secrets": items("secrets-gitpod.json"),
    }


@pytest.fixture
def world(tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(INVENTORY.format(port=CLOSED_PORT))
    state = tmp_path / "cluster.json"

    def run(name, objs, *extra, unreachable=False):
        with open(os.path.join(FIXTURES, "version.json"), encoding="utf-8") as handle:
            state.write_text(json.dumps({"objects": objs, "version": json.load(handle), "calls": [],
                                         "unreachable": unreachable}))
        env = dict(os.environ, KUBECTL_DOUBLE_STATE=str(state), ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
                   ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_LOCALHOST_WARNING="false",
                   ANSIBLE_HOST_KEY_CHECKING="false", ANSIBLE_TIMEOUT="5", ANSIBLE_RETRY_FILES_ENABLED="false")
        cmd = ["ansible-playbook", os.path.join(REPO, "playbooks", name), "-i", str(inventory),
               "-e", json.dumps({"cluster_validation_kubectl": DOUBLE, "cluster_validation_become": False,
                                 "cluster_validation_kubectl_host": "localhost",
                                 "gitpod_k3s_artifacts_dir": str(tmp_path / "artifacts")}), *extra]
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
        try:
            doc = json.loads(proc.stdout[proc.stdout.index("{"):])
        except ValueError:
            pytest.fail(f"ansible-playbook gave no JSON (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc.returncode, doc

    run.tmp_path = tmp_path
    run.state = state
    return run


def tasks(doc):
    """(play name, task name, {host: result}) for every task that ran."""
    return [(play["play"]["name"], task["task"]["name"].split(" : ")[-1], task["hosts"])
            for play in doc["plays"] for task in play["tasks"]]


def result_of(doc, name):
    for _play, task, hosts in tasks(doc):
        if task == name and hosts:
            return next(iter(hosts.values()))
    raise KeyError(name)


def report(world, directory):
    return json.loads((world.tmp_path / "artifacts" / directory / "report.json").read_text())


def workspace_check(rep):
    return next(c for c in rep["scopes"]["cluster"]["checks"] if c["id"] == "workspace_pods")


def kubectl_calls(world):
    return json.loads(world.state.read_text())["calls"]


# ---------------------------------------------------------------- validate.yml

def test_plain_validation_reports_running_workspaces_as_a_warning(world):
    rc, doc = world("validate.yml", objects())
    assert rc == 0, json.dumps(doc["stats"])
    got = workspace_check(report(world, "validate"))
    assert got["status"] == "warn" and got["actual"].startswith("2 workspace pods running: prebuild-")


def test_before_an_upgrade_running_workspaces_fail_after_the_report(world):
    rc, doc = world("validate.yml", objects(), "-e", "cluster_validation_before=upgrade")
    assert rc == 2
    msg = result_of(doc, "Fail when the cluster misses a requirement")["msg"]
    assert msg.startswith("workspace_pods failed. The upgrade would stop the running Gitpod workspaces: 2 workspace pods")
    assert "cluster_validation_workspace_pods=report" in msg
    assert workspace_check(report(world, "validate-before-upgrade"))["status"] == "fail"
    assert not (world.tmp_path / "artifacts" / "validate").exists()  # the plain report is left alone


def test_before_an_upgrade_other_failures_are_only_reported(world):
    rc, doc = world("validate.yml", objects(workspaces=False, storageclasses="storageclasses-no-default.json"),
                    "-e", "cluster_validation_before=upgrade")
    assert rc == 0, json.dumps(doc["stats"])
    rep = report(world, "validate-before-upgrade")
    assert rep["passed"] is False
    assert [c["id"] for c in rep["scopes"]["cluster"]["checks"] if c["status"] == "fail"] == ["default_storage_class"]
    assert workspace_check(rep)["status"] == "pass"


def test_before_a_reset_report_goes_ahead_despite_workspaces(world):
    rc, doc = world("validate.yml", objects(), "-e", "cluster_validation_before=reset",
                    "-e", "cluster_validation_workspace_pods=report")
    assert rc == 0, json.dumps(doc["stats"])
    assert workspace_check(report(world, "validate-before-reset"))["status"] == "warn"


def test_before_an_upgrade_an_unreachable_api_server_stops_unless_told_to_go_ahead(world):
    rc, doc = world("validate.yml", objects(), "-e", "cluster_validation_before=upgrade", unreachable=True)
    assert rc == 2
    msg = result_of(doc, "Stop when the checks could not run")["msg"]
    assert msg.startswith("kubectl version -o json failed (rc=1)")
    assert msg.endswith("Cannot tell whether Gitpod workspaces run before the upgrade; to go ahead anyway, set "
                        "cluster_validation_workspace_pods=report.")
    rc, doc = world("validate.yml", objects(), "-e", "cluster_validation_before=upgrade",
                    "-e", "cluster_validation_workspace_pods=report", unreachable=True)
    assert rc == 0, json.dumps(doc["stats"])
    assert "goes ahead (cluster_validation_workspace_pods is report)" in result_of(
        doc, "Go ahead without knowing whether Gitpod workspaces run")["msg"]
    assert not (world.tmp_path / "artifacts" / "validate-before-upgrade").exists()


@pytest.mark.parametrize("why,extra,unreachable", [
    ("API server down", [], True),
    ("k3s already removed", ["-e", "cluster_validation_kubectl=/nonexistent/k3s kubectl"], False),
    ("a kubectl that prints nothing", ["-e", "cluster_validation_kubectl=/bin/true"], False),
])
def test_before_a_reset_an_unreadable_cluster_does_not_stop_it(world, why, extra, unreachable):
    rc, doc = world("validate.yml", objects(), "-e", "cluster_validation_before=reset", *extra, unreachable=unreachable)
    assert rc == 0, json.dumps(doc["stats"])
    msg = result_of(doc, "Go ahead without knowing whether Gitpod workspaces run")["msg"]
    assert msg.startswith("WARNING: the cluster could not be read") and "a reset does not need" in msg
    assert not (world.tmp_path / "artifacts" / "validate-before-reset").exists()


def test_plain_validation_still_stops_when_kubectl_is_missing(world):
    rc, doc = world("validate.yml", objects(), "-e", "cluster_validation_kubectl=/nonexistent/k3s kubectl")
    assert rc == 2
    assert "'/nonexistent/k3s' (from kubectl=" in result_of(doc, "Stop when the checks could not run")["msg"]


def test_a_bad_workspace_mode_names_the_role_variable(world):
    rc, doc = world("validate.yml", objects(), "-e", "cluster_validation_workspace_pods=ignore")
    assert rc == 2
    assert "cluster_validation_workspace_pods" in json.dumps(doc) and "fail, report" in json.dumps(doc)
    assert kubectl_calls(world) == []


# ---------------------------------------------------------------- upgrade.yml and reset.yml

@pytest.mark.parametrize("name,stage,extra", [("upgrade.yml", "upgrade", []),
                                              ("reset.yml", "reset", ["-e", "k3s_reset_confirm=true"])])
def test_running_workspaces_stop_the_playbook_before_any_node_is_touched(world, name, stage, extra):
    rc, doc = world(name, objects(), *extra)
    assert rc == 2
    ran = tasks(doc)
    failed = result_of(doc, "Fail when the cluster misses a requirement")
    assert failed["failed"] is True and failed["msg"].startswith(f"workspace_pods failed. The {stage} would stop")
    plays = [play for play, _task, _hosts in ran]
    assert plays[-1] == f"{stage.capitalize()} - no Gitpod workspace may be running"  # nothing ran after it
    assert workspace_check(report(world, f"validate-before-{stage}"))["status"] == "fail"


# The nodes the playbook reaches for first after the check: the upgrade starts with the servers
# (and, none of them reachable, goes on to the agents); the reset starts with the agents, and with
# every agent lost Ansible ends the run before the servers' play.
@pytest.mark.parametrize("name,stage,extra,first_nodes", [
    ("upgrade.yml", "upgrade", [], "gitpod-"),
    ("reset.yml", "reset", ["-e", "k3s_reset_confirm=true"], "gitpod-agent-")])
def test_without_workspaces_the_playbook_goes_on_to_the_nodes(world, name, stage, extra, first_nodes):
    rc, doc = world(name, objects(workspaces=False), *extra)
    # The next play reaches for the nodes, which (on purpose) cannot be reached.
    assert rc == 4, json.dumps(doc["stats"])
    reached = sorted(h for h, s in doc["stats"].items() if s["unreachable"] > 0)
    assert reached == sorted(h for h in doc["stats"] if h.startswith(first_nodes)), json.dumps(doc["stats"])
    plays = [play for play, _task, _hosts in tasks(doc)]
    check_play = f"{stage.capitalize()} - no Gitpod workspace may be running"
    assert check_play in plays and plays[-1] != check_play
    assert workspace_check(report(world, f"validate-before-{stage}"))["status"] == "pass"


def test_reset_without_confirmation_stops_at_the_confirmation_not_the_cluster(world):
    rc, doc = world("reset.yml", objects())
    assert rc == 2
    assert "k3s_reset_confirm=true" in json.dumps(doc)
    assert kubectl_calls(world) == []  # the workspace check waited for the confirmation
