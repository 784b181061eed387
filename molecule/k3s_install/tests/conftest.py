"""Fixtures for the k3s_install scenario (TEST DOUBLE of the k3s binary; k3s never runs here)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import testinfra

REPO = Path(__file__).resolve().parents[3]
SERVER = "gk3s-k3s-install-server"
AGENT = "gk3s-k3s-install-agent"
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]


def _host(name: str):
    # docker exec: much faster than the ansible backend for many small checks.
    return testinfra.get_host(f"docker://{name}")


@pytest.fixture(scope="session")
def server():
    return _host(SERVER)


@pytest.fixture(scope="session")
def agent():
    return _host(AGENT)


@pytest.fixture(scope="session")
def run_playbook():
    """Run a playbook of the repository against the scenario's containers (controller side)."""

    def run(playbook: str, *args: str, inventory: str = INVENTORY) -> subprocess.CompletedProcess:
        # JSON results: messages are not wrapped, so tests can look for whole sentences.
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_FORCE_COLOR="0", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
                   ANSIBLE_CALLBACK_RESULT_FORMAT="json")
        return subprocess.run(["ansible-playbook", "-i", inventory, str(REPO / playbook), *args],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)

    return run


def recap_changed(stdout: str) -> dict[str, int]:
    """changed= per host from the PLAY RECAP."""
    counts = {}
    for line in stdout.split("PLAY RECAP", 1)[-1].splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[1] == ":":
            counts[parts[0]] = int(next(p for p in parts if p.startswith("changed=")).split("=")[1])
    return counts
