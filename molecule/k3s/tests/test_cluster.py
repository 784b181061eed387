"""Real k3s + Calico (runs only with K3S_AIRGAP_DIR, see skip-unless.sh)."""

import json
import os
from pathlib import Path

import pytest
import testinfra
import yaml

SERVER = "gk3s-k3s-server-1"
AGENT = "gk3s-k3s-agent-1"
KUBECTL = "k3s kubectl --kubeconfig /etc/rancher/k3s/k3s.yaml"


@pytest.fixture(scope="module")
def server():
    return testinfra.get_host(f"docker://{SERVER}")


@pytest.fixture(scope="module")
def agent():
    return testinfra.get_host(f"docker://{AGENT}")


def kubectl_json(server, args: str) -> dict:
    return json.loads(server.check_output(f"{KUBECTL} {args} -o json"))


def test_both_nodes_ready(server):
    nodes = kubectl_json(server, "get nodes")["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == sorted([SERVER, AGENT])
    for node in nodes:
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", node["metadata"]["name"]
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")


def test_gitpod_labels_at_registration(server):
    labels = {n["metadata"]["name"]: n["metadata"]["labels"] for n in kubectl_json(server, "get nodes")["items"]}
    assert labels[SERVER]["gitpod.io/workload_meta"] == "true"
    assert labels[AGENT]["gitpod.io/workload_workspace_regular"] == "true"


def test_calico_available_and_node_ready_everywhere(server):
    status = kubectl_json(server, "get tigerastatus calico")
    available = [c for c in status["status"]["conditions"] if c["type"] == "Available"]
    assert available and available[0]["status"] == "True"
    ds = kubectl_json(server, "get daemonset calico-node -n calico-system")
    assert ds["status"]["numberReady"] == ds["status"]["desiredNumberScheduled"] == 2


def test_ip_pool_is_the_cluster_cidr(server):
    inst = kubectl_json(server, "get installation default")
    pools = inst["spec"]["calicoNetwork"]["ipPools"]
    assert pools[0]["cidr"] == yaml.safe_load(server.file("/etc/rancher/k3s/config.yaml").content_string).get(
        "cluster-cidr", "10.42.0.0/16")


@pytest.mark.parametrize("name", [SERVER, AGENT])
def test_cni_config_allows_ip_forwarding(name):
    conflist = json.loads(testinfra.get_host(f"docker://{name}").file("/etc/cni/net.d/10-calico.conflist").content_string)
    calico = next(p for p in conflist["plugins"] if p["type"] == "calico")
    assert calico["container_settings"]["allow_ip_forwarding"] is True


def test_kubeconfig_on_the_controller():
    path = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "artifacts" / "kubeconfig"
    assert path.stat().st_mode & 0o777 == 0o600
    config = yaml.safe_load(path.read_text())
    assert config["current-context"] == "gitpod"
    assert config["clusters"][0]["cluster"]["server"].endswith(":6443")
