"""The server a run reads and changes the cluster through (common role, tasks/api_server.yml).

1. The class, derived from every ``delegate_to`` of every role's tasks: a task that reaches the
   cluster through a fixed server (``k3s_initial_server``, the first host of a group) makes that one
   server a single point of failure. Each delegation target allowed is listed with its reason; a new
   target fails here until it is added, with one.
2. The choice itself, in ansible-playbook against three inventory servers: one unreachable (an SSH
   port nobody listens on), one whose API does not answer, one that does. No API server runs: the
   "kubectl" is a shell test of a marker file per server.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

ALLOWED = {
    "{{ __gitpod_k3s_api_server }}": "the server api_server.yml chose",
    "{{ __gitpod_k3s_api_server | default(inventory_hostname) }}": "forget.yml: chosen among the servers that stay; "
                                                                   "the task is skipped when none stays",
    "{{ inventory_hostname if __k3s_is_server | bool else __gitpod_k3s_api_server }}": "a server waits for itself",
    "{{ node_labels_kubectl_host or __gitpod_k3s_api_server | default(inventory_hostname) }}": "the user's host, else the chosen "
    "server (the default: a task skipped by a condition on the role is still templated)",
    "{{ cluster_validation_kubectl_host or __gitpod_k3s_api_server | default(inventory_hostname) }}": "the user's host, else the chosen "
    "server (the default: a task skipped by a condition on the role is still templated)",
    "{{ components_check_delegate_to }}": "the user's own services, checked from the controller",
    "{{ item }}": "api_server.yml's probe of each server; host_prep's ufw rules of each node",
    "{{ k3s_initial_server }}": "facts.yml gathers the initial server's address (ignore_unreachable)",
    "localhost": "the controller",
}


def delegations():
    for path in sorted((REPO / "roles").glob("*/tasks/*.yml")):
        for match in re.finditer(r"^\s*delegate_to:\s*(.+?)\s*$", path.read_text(), re.M):
            yield path.relative_to(REPO).as_posix(), yaml.safe_load(match.group(1))


def test_every_delegation_is_to_a_chosen_server_or_has_a_reason():
    found = list(delegations())
    assert len(found) > 30
    unknown = [(path, target) for path, target in found if target not in ALLOWED]
    assert unknown == []
    # The one delegation to the initial server gathers its address, and may not stop the run.
    initial = [path for path, target in found if target == "{{ k3s_initial_server }}"]
    assert initial == ["roles/k3s/tasks/facts.yml"]
    assert "ignore_unreachable: true" in (REPO / initial[0]).read_text()


def choose(tmp: Path, answering: list[str], in_run: str = "all"):
    """Run api_server.yml; returns (chosen server, the servers probed in order)."""
    tmp.mkdir(parents=True, exist_ok=True)
    for name in answering:
        (tmp / name).touch()
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    unreachable = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 9,
                   "ansible_ssh_common_args": "-o ConnectTimeout=2 -o BatchMode=yes"}
    inventory = {"all": {"children": {"k3s_servers": {"hosts": {"s1": unreachable, "s2": local, "s3": local}}}}}
    (tmp / "inventory.yml").write_text(yaml.safe_dump(inventory))
    play = [{"name": "Choose", "hosts": in_run, "gather_facts": False, "tasks": [
        # As a playbook's first task does: an unreachable host leaves the run.
        {"name": "reach", "ansible.builtin.ping": {}},
        {"name": "api server", "ansible.builtin.include_role": {"name": "selfhosted.gitpod_k3s.common",
                                                                "tasks_from": "api_server"},
         "vars": {"__gitpod_k3s_api_kubectl": f"sh -c 'test -e {tmp}/$0' {{{{ item }}}}"}},
        {"name": "show", "ansible.builtin.debug": {"msg": "CHOSEN={{ __gitpod_k3s_api_server }} PROBED="
                                                   "{{ __gitpod_k3s_api_probe.results | map(attribute='item') | join(',') }}"},
         "run_once": True}]}]
    (tmp / "play.yml").write_text(yaml.safe_dump(play))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_HOST_KEY_CHECKING="0")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp / "inventory.yml"),
                           str(tmp / "play.yml")], cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    found = re.search(r"CHOSEN=(\S*) PROBED=([\w,]*)", proc.stdout)
    assert found, proc.stdout[-3000:]
    return found.group(1), found.group(2).split(",")


def test_the_first_server_that_answers_is_chosen_and_probing_stops_there(tmp_path):
    # s1 is unreachable: it fails the play's own tasks, leaves the run, and is tried last.
    assert choose(tmp_path / "one", ["s3"]) == ("s3", ["s2", "s3"])
    assert choose(tmp_path / "two", ["s2", "s3"]) == ("s2", ["s2"])
    # s1 outside the run (--limit): the servers in the run first, then s1, which is unreachable.
    assert choose(tmp_path / "three", [], in_run="s2:s3") == ("s2", ["s2", "s3", "s1"])
