"""Day two on the nodes, as scenarios that walk one cluster through time (issue: node day two).

Five systemd containers run the collection's own playbooks (prepare.yml, k3s.yml, labels.yml,
upgrade.yml, reset.yml, remove.yml) in embedded-containerd mode. **k3s never runs here**: the
binary the role installs from the air-gap directory is the TEST DOUBLE tests/integration/k3s_double.py
(its docstring cites the upstream file behind each behaviour it models: tokens, etcd membership,
node passwords, what is read at registration only and what at every start). ``k3s kubectl`` is the
kubectl TEST DOUBLE over one state file all containers share. Everything else is real: Ansible,
systemd starting and restarting the units (Type=notify), the files on the hosts.

The tests run in file order and share the fleet; each one is one step in time and states the changed
counts and the restarts it saw. A start log kept by the double says, for every start of k3s on
every node, what config.yaml, registries.yaml and token it read: "every node runs what is on its
disk" is checked after each step.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "unit"))
import k3s_double  # noqa: E402
from containers import RELAXED_PREFLIGHT, ContainerFleet, docker_available  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PREFIX = "gk3s-d2-"
SERVERS = [f"{PREFIX}s1", f"{PREFIX}s2", f"{PREFIX}s3"]
AGENTS = [f"{PREFIX}a1", f"{PREFIX}a2"]
SPARE = f"{PREFIX}x1"  # in no group until step 09b adds it as a server
V1, V2 = "v1.31.4+k3s1", "v1.32.1+k3s1"
DRAINED = "gitpod-k3s.selfhosted.io/drained-for-upgrade"
STUB = """#!/usr/bin/python3
# TEST DOUBLE of k3s {version}: tests/integration/k3s_double.py, mounted at /cluster/lib.
import sys
sys.path.insert(0, "/cluster/lib")
import k3s_double
sys.exit(k3s_double.main("{version}", sys.argv))
"""

pytestmark = pytest.mark.skipif(not docker_available()[0], reason=docker_available()[1])


class World:
    """The fleet, the shared cluster state and the inventory as it changes over time."""

    def __init__(self, tmp: Path, fleet: ContainerFleet):
        self.tmp, self.fleet = tmp, fleet
        self.cluster = tmp / "cluster"
        self.servers, self.agents = list(SERVERS), AGENTS[:1]
        self.runs = 0
        self.host_vars: dict[str, dict] = {}
        self.vars = dict(RELAXED_PREFLIGHT, **{
            "gitpod_k3s_artifacts_dir": str(tmp / "artifacts"),
            "gitpod_k3s_containerd_mode": "embedded",
            "gitpod_k3s_domain": "gitpod.example.test",
            "k3s_version": V1,
            "k3s_airgap_dir": str(tmp / "airgap" / V1),
            "k3s_airgap_images": False,
            "k3s_wait_timeout": 60,
            "calico_wait_timeout": 60,
        })

    # --- the controller's side ----------------------------------------------------------------
    def inventory(self) -> Path:
        hosts = {name: {"ansible_connection": "community.docker.docker", "ansible_host": name,
                        "ansible_python_interpreter": "/usr/bin/python3", **self.host_vars.get(name, {})}
                 for name in self.servers + self.agents}
        children = {"k3s_servers": {"hosts": dict.fromkeys(self.servers)},
                    "k3s_agents": {"hosts": dict.fromkeys(self.agents)},
                    "gitpod_meta": {"hosts": dict.fromkeys(self.servers)},
                    "gitpod_workspace": {"hosts": dict.fromkeys(self.agents)}}
        path = self.tmp / "inventory" / "hosts.yml"
        path.parent.mkdir(exist_ok=True)
        # In the order given, as a user writes it: the first server is k3s_initial_server by default.
        path.write_text(yaml.safe_dump({"all": {"hosts": hosts, "children": children, "vars": self.vars}}, sort_keys=False))
        return path

    def play(self, playbook: str, *args: str, ok: bool = True) -> dict:
        """Run a playbook; returns {"proc", "changed": {host: n}, "restarts": [...], "seconds"}."""
        before = len(self.state()["k3s"].get("starts", [])) if (self.cluster / "state.json").exists() else 0
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_FORCE_COLOR="0")
        started = time.monotonic()
        proc = subprocess.run(["ansible-playbook", "-i", str(self.inventory()), str(REPO / "playbooks" / playbook), *args],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=1500, check=False)
        seconds = time.monotonic() - started
        self.runs += 1
        (self.tmp / f"run-{self.runs:02d}-{playbook}.log").write_text(proc.stdout + proc.stderr)
        if ok:
            assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
        changed = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", proc.stdout, re.M)}
        # What changed, as (task, host); the preflight report on the controller is written afresh each run.
        task, changes = "", []
        for line in proc.stdout.splitlines():
            task = (re.match(r"^TASK \[(.*)\] \**$", line) or [None, task])[1]
            hit = re.match(r"^changed: \[([^\]]+)\]", line)
            if hit and task != "selfhosted.gitpod_k3s.report : Write report.json and report.md":
                changes.append((task, hit.group(1).split(" -> ")[0]))
        starts = self.state()["k3s"].get("starts", [])[before:]
        line = (f"{playbook} {' '.join(args)}: rc {proc.returncode}, {seconds:.0f}s, changed {changed}, "
                f"k3s starts {[(s['node'].removeprefix(PREFIX), s['ok']) for s in starts]}")
        print(line)
        with open(self.tmp / "summary.txt", "a", encoding="utf-8") as summary:  # the steps' figures, kept after a passing run
            summary.write(f"{os.environ.get('PYTEST_CURRENT_TEST', '').split(' ')[0].rsplit('::', 1)[-1]}  {line}\n")
        return {"proc": proc, "changed": changed, "changes": changes, "starts": starts, "seconds": seconds}

    # --- the cluster's side -------------------------------------------------------------------
    def state(self) -> dict:
        return json.loads((self.cluster / "state.json").read_text())

    def edit_state(self, change):
        state = self.state()
        change(state)
        (self.cluster / "state.json").write_text(json.dumps(state))

    def node(self, name: str) -> dict | None:
        return next((n for n in self.state()["objects"].get("nodes", []) if n["metadata"]["name"] == name), None)

    def sh(self, host: str, command: str) -> str:
        rc, out = self.fleet.exec(host, ["sh", "-c", command])
        assert rc == 0, f"{host}: {command}: {out}"
        return out

    def file_sha(self, host: str, path: str) -> str:
        rc, out = self.fleet.exec(host, ["sha256sum", path])
        return out.split()[0] if rc == 0 else ""

    def assert_runs_what_is_on_disk(self):
        """Every node's last k3s start read the config.yaml, registries.yaml and version on its disk."""
        starts = self.state()["k3s"]["starts"]
        for host in self.servers + self.agents:
            last = [s for s in starts if s["node"] == host and s["ok"]][-1]
            assert last["config"] == self.file_sha(host, "/etc/rancher/k3s/config.yaml"), f"{host} runs an old config.yaml"
            assert last["registries"] == self.file_sha(host, "/etc/rancher/k3s/registries.yaml"), f"{host} runs old registries"
            assert last["version"] == self.vars["k3s_version"], f"{host} runs {last['version']}"
            assert self.sh(host, "systemctl is-active k3s k3s-agent || true").split().count("active") == 1
            rc, _unused = self.fleet.exec(host, ["test", "-e", "/etc/rancher/k3s/gitpod-k3s-restart-pending"])
            assert rc != 0, f"{host} still has a pending restart"

    @staticmethod
    def recap(run: dict) -> dict:
        """PLAY RECAP: host -> (failed, unreachable)."""
        return {m.group(1): (int(m.group(3)), int(m.group(2))) for m in re.finditer(
            r"^(\S+)\s+: ok=\d+\s+changed=\d+\s+unreachable=(\d+)\s+failed=(\d+)", run["proc"].stdout, re.M)}

    def members(self) -> list[str]:
        return sorted(self.state()["k3s"]["members"].values())


def write_airgap(directory: Path, version: str):
    directory.mkdir(parents=True, exist_ok=True)
    stub = STUB.format(version=version)
    (directory / "k3s").write_text(stub)
    (directory / "sha256sum-amd64.txt").write_text(f"{hashlib.sha256(stub.encode()).hexdigest()}  k3s\n")


def seed(cluster: Path):
    """The shared state before the first start: the API answers, and Calico's operator has reported
    (it does not run here; its status objects stand in for it)."""
    established = {"conditions": [{"type": "Established", "status": "True"}]}
    objects = {
        "customresourcedefinitions": [
            {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
             "metadata": {"name": name}, "status": established}
            for name in ("installations.operator.tigera.io", "tigerastatuses.operator.tigera.io")],
        "tigerastatuses": [{"apiVersion": "operator.tigera.io/v1", "kind": "TigeraStatus", "metadata": {"name": "calico"},
                            "status": {"conditions": [{"type": "Available", "status": "True"}]}}],
        "daemonsets": [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                        "metadata": {"name": "calico-node", "namespace": "calico-system"},
                        "status": {"desiredNumberScheduled": 0, "numberReady": 0}}],
        "nodes": [], "secrets": [], "pods": [],
    }
    state = {"objects": objects, "flags": {"readyz": True, "webhook": True}, "k3s": {}}
    (cluster / "state.json").write_text(json.dumps(state))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("node-day-two")
    cluster = tmp / "cluster"
    lib = cluster / "lib"
    lib.mkdir(parents=True)
    shutil.copy(REPO / "tests" / "integration" / "k3s_double.py", lib)
    shutil.copy(REPO / "tests" / "unit" / "kubectl_double.py", lib)
    shutil.copytree(Path(yaml.__file__).parent, lib / "yaml", ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    seed(cluster)
    for version in (V1, V2):
        write_airgap(tmp / "airgap" / version, version)
    with ContainerFleet(PREFIX, {"k3s_servers": list(SERVERS), "k3s_agents": list(AGENTS), "spare": [SPARE]},
                        mounts={str(cluster): "/cluster"}) as fleet:
        yield World(tmp, fleet)


# --- the scenarios, in the order time passes ----------------------------------------------------

def test_01_install(world):
    world.play("prepare.yml")
    run = world.play("k3s.yml")
    world.play("labels.yml")
    assert sorted(n["metadata"]["name"] for n in world.state()["objects"]["nodes"]) == sorted(world.servers + world.agents)
    assert world.members() == world.servers
    # One start per node, servers one after the other.
    assert sorted(s["node"] for s in run["starts"]) == sorted(world.servers + world.agents)
    # Joining nodes were given the full token: they check the cluster CA's hash (K10...).
    for host in world.servers[1:] + world.agents:
        assert world.sh(host, "cat /etc/rancher/k3s/token").startswith("K10")
    world.assert_runs_what_is_on_disk()


def test_02_rerun_changes_nothing_and_restarts_nothing(world):
    for playbook in ("prepare.yml", "k3s.yml", "labels.yml"):
        run = world.play(playbook)
        assert run["changes"] == [], run["changes"]
        assert run["starts"] == []


def ca_pem() -> str:
    """A self-signed CA certificate, as cert-manager's CA Secret's ca.crt."""
    import datetime  # pylint: disable=import-outside-toplevel
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel
    from cryptography.x509.oid import NameOID  # pylint: disable=import-outside-toplevel
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gitpod-k3s-ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_03_a_registry_mirror_and_the_cluster_ca_restart_k3s_one_node_at_a_time(world):
    # The mirror, and the cluster CA components.yml keeps on the controller (tasks/node_ca.yml).
    world.vars["gitpod_k3s_registry_mirrors"] = {"docker.io": {"endpoints": ["https://mirror.example.test"]}}
    kept = world.tmp / "artifacts" / "gitpod-k3s-ca.crt"
    kept.write_text(ca_pem())
    run = world.play("prepare.yml")
    for host in world.servers + world.agents:
        assert world.sh(host, "cat /etc/rancher/k3s/certs.d/reg.gitpod.example.test:20000/ca.crt") == kept.read_text()
    nodes = world.servers + world.agents
    assert sorted(s["node"] for s in run["starts"]) == sorted(nodes), "each node restarted once"
    # Servers first, and never two k3s down at once: each start follows the previous node's ready.
    order = [s["node"] for s in run["starts"]]
    assert order[:len(world.servers)] == world.servers
    stops = world.state()["k3s"]["stops"]
    for earlier, later in zip(run["starts"], run["starts"][1:]):
        stop_of_later = max(s["t"] for s in stops if s["node"] == later["node"])
        assert stop_of_later > earlier["t"], f"{later['node']} stopped before {earlier['node']} was back"
    world.assert_runs_what_is_on_disk()


def test_03b_a_rerun_from_a_controller_without_the_ca_keeps_it_on_the_nodes(world):
    kept = world.tmp / "artifacts" / "gitpod-k3s-ca.crt"
    pem = kept.read_text()
    kept.unlink()
    run = world.play("prepare.yml")
    # Read back from the nodes: nothing on them changes, k3s is not restarted, the copy is back.
    assert [c for c in run["changes"] if c[0] != "selfhosted.gitpod_k3s.containerd : Keep the CA read back on the controller"] == []
    assert run["starts"] == [] and kept.read_text() == pem
    for host in world.servers + world.agents:
        assert world.sh(host, "cat /etc/rancher/k3s/certs.d/reg.gitpod.example.test:20000/ca.crt") == pem


def test_04_an_interrupted_run_leaves_its_restart_to_the_next(world):
    # A changed kubelet argument reaches config.yaml on every node in the run's first play; then the
    # second server's restart fails (a planted fault that lasts past the wait), which ends the run
    # before the third server and the agent are restarted: they run the old config.yaml.
    world.vars.update(k3s_kubelet_args=["max-pods=120"], k3s_wait_timeout=15)
    world.edit_state(lambda s: s["k3s"]["faults"].update({SERVERS[1]: {"fail_start": 1000}}))
    failed = world.play("k3s.yml", ok=False)
    assert failed["proc"].returncode != 0
    starts = world.state()["k3s"]["starts"]
    for host in (SERVERS[2], AGENTS[0]):
        last = [s for s in starts if s["node"] == host and s["ok"]][-1]
        assert last["config"] != world.file_sha(host, "/etc/rancher/k3s/config.yaml"), f"{host} was restarted"
        assert world.sh(host, "cat /etc/rancher/k3s/gitpod-k3s-restart-pending").strip()
    # The fault is gone (systemd's Restart=always brings the second server up by itself); the next
    # run finds every config.yaml as it wants it, and makes the recorded restarts, one at a time.
    world.edit_state(lambda s: s["k3s"]["faults"].pop(SERVERS[1]))
    world.vars["k3s_wait_timeout"] = 60
    run = world.play("k3s.yml")
    assert {s["node"] for s in run["starts"]} == {SERVERS[1], SERVERS[2], AGENTS[0]}
    assert not [c for c in run["changes"] if "config.yaml" in c[0]], "config.yaml was written by the failed run"
    world.assert_runs_what_is_on_disk()


def test_05_an_agent_joins_without_restarting_the_others(world):
    # (Servers come in odd numbers, stage 0's rule: a server joining an existing cluster is step 08.)
    world.agents = AGENTS[:2]
    world.play("prepare.yml")
    run = world.play("k3s.yml")
    assert [s["node"] for s in run["starts"]] == [AGENTS[1]]
    assert world.members() == sorted(SERVERS)
    world.play("labels.yml")
    assert world.node(AGENTS[1])["metadata"]["labels"]["gitpod.io/workload_workspace_regular"] == "true"
    world.assert_runs_what_is_on_disk()


def test_05b_taints_follow_the_inventory_on_registered_nodes(world):
    # k3s applies node-taint only at registration: labels.yml sets and removes them on the running nodes.
    taint = {"key": "gitpod.io/headless", "value": "true", "effect": "NoSchedule"}
    world.vars["k3s_node_taints"] = ["gitpod.io/headless=true:NoSchedule"]
    run = world.play("labels.yml")
    assert all(taint in world.node(h)["spec"].get("taints", []) for h in world.servers + world.agents)
    assert run["starts"] == []
    del world.vars["k3s_node_taints"]
    world.play("labels.yml")
    assert all(taint not in world.node(h)["spec"].get("taints", []) for h in world.servers + world.agents)


def test_05c_with_the_initial_server_down_the_others_serve_the_api(world):
    # Down: the container stopped, so Ansible cannot reach it and its API is gone. Kubernetes' node
    # lifecycle controller marks its Node NotReady after node-monitor-grace-period
    # (pkg/controller/nodelifecycle/node_lifecycle_controller.go); no controller manager runs here,
    # so the test sets what it would, and the DaemonSet counts follow (k3s_double._daemonsets).
    first = SERVERS[0]
    address = world.sh(first, "hostname -I").split()[0]
    world.fleet.pause(first)

    def not_ready(state):
        for node in state["objects"]["nodes"]:
            if node["metadata"]["name"] == first:
                node["status"]["conditions"] = [{"type": "Ready", "status": "Unknown"}]
        k3s_double._daemonsets(state)
    world.edit_state(not_ready)
    live = [h for h in world.servers + world.agents if h != first]
    taint = {"key": "gitpod.io/maintenance", "value": "true", "effect": "NoSchedule"}
    try:
        # The address every config.yaml names as server came from the initial server's facts: unknown now.
        refused = world.play("k3s.yml", ok=False)
        assert f"Set k3s_node_ip for {first}" in " ".join(refused["proc"].stdout.split()), refused["proc"].stdout[-3000:]
        assert world.recap(refused)[first] == (0, 1)
        world.host_vars[first] = {"k3s_node_ip": address}
        for playbook, extra in (("k3s.yml", {}), ("labels.yml", {"k3s_node_taints": ["gitpod.io/maintenance=true:NoSchedule"]})):
            world.vars.update(extra)
            run = world.play(playbook, ok=False)
            # Ansible exits 4 when a host was unreachable; every other host went through.
            assert run["proc"].returncode == 4, run["proc"].stdout[-4000:]
            assert world.recap(run) == dict({h: (0, 0) for h in live}, **{first: (0, 1)}), world.recap(run)
            assert run["starts"] == []
            if playbook == "k3s.yml":
                assert run["changes"] == [], run["changes"]
        assert run["changes"] == [("selfhosted.gitpod_k3s.node_labels : Label the cluster's nodes", SERVERS[1])]
        assert all(taint in world.node(h)["spec"].get("taints", []) for h in live)
        # The token files kept the full token: read from a server that was up, not the one that was down.
        for host in live:
            assert world.sh(host, "cat /etc/rancher/k3s/token").startswith("K10")
        # An upgrade would restart a second server of three: refused before any node changes.
        refused = world.play("upgrade.yml", "-e", f"k3s_version={V2}", "-e", f"k3s_airgap_dir={world.tmp / 'airgap' / V2}", ok=False)
        assert "not a majority" in refused["proc"].stdout and refused["starts"] == [] and refused["changes"] == []
    finally:
        world.fleet.resume(first)
        world.host_vars.clear()
        world.vars.pop("k3s_node_taints", None)
    # Back: k3s starts with the host; the next labels run brings the taint set meanwhile into line.
    world.play("labels.yml")
    assert all(taint not in world.node(h)["spec"].get("taints", []) for h in world.servers + world.agents)
    world.assert_runs_what_is_on_disk()


def test_06_an_upgrade_cut_after_the_drain_is_finished_by_the_next_run(world):
    world.vars.update(k3s_version=V2, k3s_airgap_dir=str(world.tmp / "airgap" / V2))
    # The first agent comes back at the new version but NotReady for longer than the wait.
    world.vars["k3s_wait_timeout"] = 15
    world.edit_state(lambda s: s["k3s"]["faults"].update({world.agents[0]: {"not_ready_for": 40}}))
    failed = world.play("upgrade.yml", "-e", "k3s_upgrade_drain=true", ok=False)
    assert failed["proc"].returncode != 0
    agent = world.node(world.agents[0])
    assert agent["spec"].get("unschedulable") is True and DRAINED in agent["metadata"]["annotations"]
    world.vars["k3s_wait_timeout"] = 60
    run = world.play("upgrade.yml", "-e", "k3s_upgrade_drain=true")
    agent = world.node(world.agents[0])
    assert not agent["spec"].get("unschedulable") and DRAINED not in agent["metadata"]["annotations"]
    assert {n["status"]["nodeInfo"]["kubeletVersion"] for n in world.state()["objects"]["nodes"]} == {V2}
    assert run["starts"] == [] or all(s["node"] != world.agents[0] for s in run["starts"])
    world.assert_runs_what_is_on_disk()


def test_07_an_upgrade_that_skips_a_minor_release_changes_nothing(world):
    run = world.play("upgrade.yml", "-e", "k3s_version=v1.34.0+k3s1", ok=False)
    assert "skips a minor release" in run["proc"].stdout and run["starts"] == []


def test_08_a_partial_reset_joins_again(world):
    leaving = [SERVERS[2], AGENTS[1]]
    run = world.play("reset.yml", "-e", "k3s_reset_confirm=true", "--limit", ",".join(leaving))
    assert world.members() == sorted(SERVERS[:2]), "the reset server's etcd member is gone"
    assert all(world.node(h) is None for h in leaving)
    for host in leaving:
        world.sh(host, "test -s /etc/rancher/node/password")
    run = world.play("k3s.yml")
    assert sorted(s["node"] for s in run["starts"] if s["ok"]) == sorted(leaving)
    assert world.members() == sorted(SERVERS)
    world.assert_runs_what_is_on_disk()


def test_09_a_removed_node_leaves_a_whole_cluster(world):
    # Too many servers at once would break etcd's quorum: refused before any node changes.
    refused = world.play("remove.yml", "-e", "k3s_remove_confirm=true", "--limit", ",".join(SERVERS[1:]), ok=False)
    assert "not a majority" in refused["proc"].stdout and world.members() == sorted(SERVERS)
    world.play("remove.yml", "-e", "k3s_remove_confirm=true", "--limit", AGENTS[1])
    assert world.node(AGENTS[1]) is None
    world.agents = AGENTS[:1]
    run = world.play("k3s.yml")
    assert run["starts"] == [] and run["changes"] == [], run["changes"]
    world.assert_runs_what_is_on_disk()


def test_09b_two_servers_join_a_running_cluster(world):
    # Servers come in odd numbers (stage 0): three become five. A removed agent's host and a new one.
    # Listed first, a new server would become k3s_initial_server: refused for every node, none changed.
    world.servers = [AGENTS[1], SPARE] + SERVERS
    world.play("prepare.yml")
    refused = world.play("k3s.yml", ok=False)
    assert "No node was changed. " + AGENTS[1] + " is k3s_initial_server" in " ".join(refused["proc"].stdout.split())
    assert refused["changes"] == [] and refused["starts"] == []
    world.servers = SERVERS + [AGENTS[1], SPARE]
    run = world.play("k3s.yml")
    assert [s["node"] for s in run["starts"]] == [AGENTS[1], SPARE], "one at a time, no other node restarted"
    assert all(s["ok"] and s["role"] == "server" for s in run["starts"])
    assert world.members() == sorted(world.servers)
    world.assert_runs_what_is_on_disk()


def test_09c_a_lost_agent_is_removed_without_its_host(world):
    lost = AGENTS[0]
    world.fleet.pause(lost)
    try:
        refused = world.play("remove.yml", "-e", "k3s_remove_confirm=true", "--limit", lost, ok=False)
        assert "k3s_remove_lost=true" in refused["proc"].stdout and world.node(lost) is not None
        run = world.play("remove.yml", "-e", "k3s_remove_confirm=true", "-e", "k3s_remove_lost=true", "--limit", lost)
        assert world.node(lost) is None and run["starts"] == []
        assert run["changes"] == [("selfhosted.gitpod_k3s.k3s : Delete the Node from a server that stays", lost)]
    finally:
        world.fleet.resume(lost)
    # The host came back with k3s installed (why a lost host must be reset before it returns): the fresh
    # install of step 10 resets it with the others.


def test_10_a_full_reset_then_a_fresh_install(world):
    world.play("reset.yml", "-e", "k3s_reset_confirm=true")
    world.play("k3s.yml")
    events = [e["event"] for e in world.state()["k3s"]["events"]]
    assert events.count("new cluster") == 2
    assert world.members() == sorted(world.servers)
    world.assert_runs_what_is_on_disk()
