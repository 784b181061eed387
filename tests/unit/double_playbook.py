"""Run a few of the roles' own tasks against localhost, every kubectl call answered by the TEST
DOUBLE tests/unit/kubectl_double.py in program mode (its state in a JSON file).

No API server runs: the double stands in for `k3s kubectl` only. The tasks, their retries,
deadlines and failure messages run for real in ansible-playbook.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DOUBLE = REPO / "tests" / "unit" / "kubectl_double.py"
KUBECTL = f"{sys.executable} {DOUBLE}"


def run(tmp: Path, tasks: list, variables: dict, state: dict, timeout: int = 600):
    """Play `tasks` on localhost with `variables` (extra vars); returns (proc, seconds, final state)."""
    tmp.mkdir(parents=True, exist_ok=True)
    state_file = tmp / "kubectl-state.json"
    state_file.write_text(json.dumps(state))
    inventory = tmp / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {
        "k3s_servers": {"hosts": {"localhost": {"ansible_connection": "local",
                                                "ansible_python_interpreter": sys.executable}}},
        "k3s_agents": {"hosts": {}}}}}))
    playbook = tmp / "play.yml"
    playbook.write_text(yaml.safe_dump([{"name": "Tasks under test", "hosts": "localhost", "gather_facts": False,
                                         "tasks": tasks}], sort_keys=False))
    extra = tmp / "extra.json"
    extra.write_text(json.dumps(variables))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), KUBECTL_DOUBLE_STATE=str(state_file),
               ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
               ANSIBLE_CALLBACK_RESULT_FORMAT="yaml", ANSIBLE_LOCALHOST_WARNING="0")
    start = time.monotonic()
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
                           str(playbook), "-e", f"@{extra}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return proc, time.monotonic() - start, json.loads(state_file.read_text())


def include(role: str, tasks_from: str) -> dict:
    return {"name": f"{role} {tasks_from}", "ansible.builtin.include_role": {
        "name": f"selfhosted.gitpod_k3s.{role}", "tasks_from": tasks_from}}


def node(name: str, ready: bool = True) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {}},
            "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                                   "nodeInfo": {"kubeletVersion": "v1.31.4+k3s1"}}}


def pod(name: str, node_name: str, namespace: str = "default", owner: str | None = None, empty_dir=False) -> dict:
    meta = {"name": name, "namespace": namespace}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner, "name": name + "-owner",
                                    "uid": "0", "controller": True}]
    spec = {"nodeName": node_name, "containers": [{"name": "c", "image": "x"}]}
    if empty_dir:
        spec["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
