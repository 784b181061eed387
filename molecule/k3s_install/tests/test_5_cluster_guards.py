"""The guards that keep a run from splitting or hijacking a cluster, with stand-in cluster data.

No k3s runs here: the tests create the directories and token file a running k3s server leaves
(/var/lib/rancher/k3s/server/db/etcd, /var/lib/rancher/k3s/server/token) and check that
playbooks/k3s.yml stops before changing anything."""

import subprocess

import pytest
import yaml
from conftest import AGENT, EPHEMERAL, SERVER

DATA = "/var/lib/rancher/k3s/server/db/etcd"
SERVER_TOKEN = "/var/lib/rancher/k3s/server/token"
CONFIG = "/etc/rancher/k3s/config.yaml"


def write_inventory(tmp_path, servers: dict, host_vars: dict | None = None) -> str:
    common = {"ansible_connection": "community.docker.docker", "ansible_python_interpreter": "/usr/bin/python3"}
    inv = {"all": {
        "vars": {"gitpod_k3s_artifacts_dir": str(EPHEMERAL / "artifacts"), "k3s_version": "v1.30.99+k3s1",
                 "k3s_start_service": False, "k3s_release_url": "http://127.0.0.1:8765/releases"},
        # Each inventory host its own node name: two of them may stand in on one container.
        "children": {"k3s_servers": {"hosts": {name: {**common, "ansible_host": target, "k3s_node_name": name,
                                                      **(host_vars or {}).get(name, {})}
                                               for name, target in servers.items()}},
                     "k3s_agents": {"hosts": {}},
                     # Every Gitpod label on the servers: stage 0 refuses an inventory whose pools are empty.
                     "gitpod_meta": {"hosts": {name: None for name in servers}},
                     "gitpod_workspace": {"hosts": {name: None for name in servers}}}}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inv))
    return str(path)


@pytest.fixture
def cleanup(server, agent):
    yield
    for h in (server, agent):
        h.run_expect([0], "rm -rf /var/lib/rancher/k3s/server")


def test_second_initialising_server_is_refused(server, agent, run_playbook, tmp_path, cleanup):
    # Three servers: the initial one (server container) has no cluster data, the two others
    # (both addressing the agent container) hold a cluster.
    # Stage 0 refuses two inventory hosts at one address: the second addresses the same container
    # by its ID, which the check cannot tell from another machine (it compares addresses as written).
    agent_id = subprocess.run(["docker", "inspect", "-f", "{{.Id}}", AGENT], capture_output=True, text=True, check=True).stdout.strip()
    inventory = write_inventory(tmp_path, {"first": SERVER, "member-a": AGENT, "member-b": agent_id})
    agent.run_expect([0], f"mkdir -p {DATA}")
    config_before = server.file(CONFIG).content_string
    proc = run_playbook("playbooks/k3s.yml", inventory=inventory)
    assert proc.returncode != 0
    assert "would start a second" in proc.stdout
    assert "Set k3s_initial_server to one of member-a, member-b" in proc.stdout
    assert server.file(CONFIG).content_string == config_before


def test_token_differing_from_the_running_cluster_is_refused(server, run_playbook, tmp_path, cleanup):
    inventory = write_inventory(tmp_path, {"only": SERVER})
    server.run_expect([0], f"mkdir -p {DATA} && echo 'K10abc::server:not-our-token' > {SERVER_TOKEN}")
    token_before = server.file("/etc/rancher/k3s/token").content_string
    proc = run_playbook("playbooks/k3s.yml", inventory=inventory)
    assert proc.returncode != 0
    assert "differs" in proc.stdout and SERVER_TOKEN in proc.stdout
    assert "not-our-token" not in proc.stdout  # the token is never printed
    assert server.file("/etc/rancher/k3s/token").content_string == token_before


def test_a_controller_without_the_token_file_reads_the_clusters_back(server, run_playbook, tmp_path, cleanup):
    # A controller without artifacts/k3s-token (an upgraded collection, a fresh clone): the run takes the
    # running cluster's token instead of generating one that the cluster would refuse, and keeps it.
    controller = EPHEMERAL / "artifacts" / "k3s-token"
    token = controller.read_text().strip()
    full = f"K10abc::server:{token}"
    # The same cluster from another controller: the inventory names the node and its runtime as the
    # first one did (roles/k3s/tasks/fixed.yml refuses anything else).
    inventory = write_inventory(tmp_path, {"only": SERVER},
                                {"only": {"k3s_node_name": SERVER, "gitpod_k3s_containerd_mode": "embedded"}})
    server.run_expect([0], f"mkdir -p {DATA} && echo '{full}' > {SERVER_TOKEN}")
    node_token = server.file("/etc/rancher/k3s/token").content_string
    saved = tmp_path / "k3s-token.saved"
    controller.rename(saved)
    try:
        proc = run_playbook("playbooks/k3s.yml", inventory=inventory)
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert controller.read_text().strip() == full
        assert controller.stat().st_mode & 0o777 == 0o600
        assert token not in proc.stdout  # the token is never printed
    finally:
        saved.replace(controller)
        server.run_expect([0], f"printf '%s' '{node_token}' > /etc/rancher/k3s/token")
