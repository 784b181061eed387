"""Reset with the system containerd: roles/k3s/files/reset-k3s-pods.sh and the order of
playbooks/reset.yml.

The script runs for real against a TEST DOUBLE of the k3s binary's `crictl` and `ctr` (a small
program below that keeps containerd's pods and containers in a JSON file). As on a real node,
`crictl rmp` has the CNI plugin tear each pod's network down, and Calico's plugin fails that when no
API server answers; `ctr` removes containers without CNI and without the API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "roles" / "k3s" / "files" / "reset-k3s-pods.sh"
CALICO_DOWN = ('rpc error: code = Unknown desc = failed to destroy network for sandbox "{id}": plugin type="calico" '
               'failed (delete): error getting ClusterInformation: Get "https://10.43.0.1:443/apis/crd.projectcalico.org/'
               'v1/clusterinformations/default": dial tcp 10.43.0.1:443: connect: connection refused')

DOUBLE = textwrap.dedent('''\
    #!{python}
    """TEST DOUBLE of `k3s crictl` / `k3s ctr` (pods and containers in $GK3S_CRI_STATE)."""
    import json, os, sys
    path = os.environ["GK3S_CRI_STATE"]
    state = json.load(open(path))
    args = sys.argv[1:]
    state["calls"].append(args)
    def save():
        json.dump(state, open(path, "w"))
    def words(skip_valued):
        out, i = [], 0
        while i < len(args):
            if args[i] in skip_valued:
                i += 2
                continue
            out.append(args[i]); i += 1
        return out
    tool = args[0]
    if tool == "crictl":
        w = words({{"--runtime-endpoint", "--timeout"}})[1:]
        if w == ["pods", "-q"]:
            print("\\n".join(state["pods"])); save(); sys.exit(0)
        if w[:2] == ["rmp", "--force"]:
            for pod in w[2:]:
                if not state["api"]:
                    save(); print({calico!r}.replace("{{id}}", pod), file=sys.stderr); sys.exit(1)
                for c in state["pods"].pop(pod):
                    state["containers"].remove(c)
            save(); sys.exit(0)
    if tool == "ctr":
        w = words({{"--address", "--namespace", "--signal"}})[1:]
        if w == ["containers", "ls", "-q"]:
            print("\\n".join(state["containers"])); save(); sys.exit(0)
        if w[:2] == ["tasks", "kill"] or w[:2] == ["tasks", "delete"]:
            save(); sys.exit(0)
        if w[:2] == ["containers", "delete"]:
            if w[2] in state.get("stuck", []):
                save(); print("ctr: cannot delete a non stopped container", file=sys.stderr); sys.exit(1)
            state["containers"].remove(w[2])
            for pod, cs in list(state["pods"].items()):
                if w[2] in cs:
                    cs.remove(w[2])
                    if not cs:
                        del state["pods"][pod]
            save(); sys.exit(0)
    save(); print("test double: not implemented: " + " ".join(args), file=sys.stderr); sys.exit(2)
''').format(python=sys.executable, calico=CALICO_DOWN)


def node_state(api: bool, stuck=()):
    # Two pods (a sandbox and its containers each), as a workspace node has them.
    return {"api": api, "calls": [], "stuck": list(stuck),
            "pods": {"sb-ws": ["sb-ws", "ws-main", "ws-supervisor"], "sb-daemon": ["sb-daemon", "ws-daemon"]},
            "containers": ["sb-ws", "ws-main", "ws-supervisor", "sb-daemon", "ws-daemon"]}


def run_script(tmp_path: Path, state: dict):
    binary = tmp_path / "k3s"
    binary.write_text(DOUBLE)
    binary.chmod(0o755)
    state_file = tmp_path / "cri.json"
    state_file.write_text(json.dumps(state))
    proc = subprocess.run(["sh", str(SCRIPT), str(binary), "unix:///run/containerd/containerd.sock"],
                          env=dict(os.environ, GK3S_CRI_STATE=str(state_file)), capture_output=True, text=True,
                          timeout=60, check=False)
    return proc, json.loads(state_file.read_text())


def test_pods_go_through_crictl_while_the_api_answers(tmp_path):
    proc, state = run_script(tmp_path, node_state(api=True))
    assert proc.returncode == 0, proc.stderr
    assert "RESULT=changed" in proc.stdout and "DIRECT=used" not in proc.stdout
    assert state["pods"] == {} and state["containers"] == []
    assert not [c for c in state["calls"] if c[:1] == ["ctr"] and "delete" in c]
    assert ["crictl", "--runtime-endpoint", "unix:///run/containerd/containerd.sock", "--timeout", "30s",
            "rmp", "--force", "sb-ws", "sb-daemon"] in state["calls"]


def test_pods_are_removed_through_containerd_when_no_api_answers(tmp_path):
    proc, state = run_script(tmp_path, node_state(api=False))
    assert proc.returncode == 0, proc.stderr
    assert "RESULT=changed" in proc.stdout and "DIRECT=used" in proc.stdout
    assert "error getting ClusterInformation" in proc.stderr, "the refusal is reported"
    assert state["pods"] == {} and state["containers"] == []
    kills = [c for c in state["calls"] if c[:1] == ["ctr"] and "kill" in c]
    assert len(kills) == 5 and all("--all" in c and "SIGKILL" in c for c in kills), "every process of each container"
    assert all("--namespace" in c and c[c.index("--namespace") + 1] == "k8s.io" for c in kills)


def test_nothing_left_changes_nothing(tmp_path):
    proc, state = run_script(tmp_path, {"api": False, "calls": [], "pods": {}, "containers": []})
    assert proc.returncode == 0 and "RESULT=unchanged" in proc.stdout and "DIRECT" not in proc.stdout


def test_a_container_that_cannot_be_removed_fails_the_reset_with_its_name(tmp_path):
    proc, _unused = run_script(tmp_path, node_state(api=False, stuck=["ws-daemon"]))
    assert proc.returncode == 1
    assert "containers left in containerd's k8s.io namespace" in proc.stderr and "ws-daemon" in proc.stderr


def test_reset_playbook_resets_agents_before_servers(tmp_path):
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {
        "k3s_servers": {"hosts": {h: {} for h in ("s1", "s2", "s3")}},
        "k3s_agents": {"hosts": {h: {} for h in ("a1", "a2")}}}}}))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inv),
                           str(REPO / "playbooks" / "reset.yml"), "--list-hosts"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plays = []  # (play name, its hosts), in the order the playbook runs them
    for line in proc.stdout.splitlines():
        if line.strip().startswith("play #"):
            plays.append((line.split("): ", 1)[1].split("\t")[0], []))
        elif plays and line.startswith("      ") and line.strip():
            plays[-1][1].append(line.strip())
    # The plays that remove k3s (the inventory check and the workspace check before them change nothing).
    reset_plays = [sorted(hosts) for name, hosts in plays if name.startswith("Reset - the ")]
    assert reset_plays == [["a1", "a2"], ["s1", "s2", "s3"]], proc.stdout
