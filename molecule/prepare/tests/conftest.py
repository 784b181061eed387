"""Shared helpers for the prepare scenario's testinfra tests."""

import os
import subprocess

import pytest
import testinfra

INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
PKI = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ""), "pki")
DOMAIN = "gitpod.example.test"
GITPOD_REGISTRIES = [f"reg.{DOMAIN}:20000", f"registry.{DOMAIN}"]
REGISTRIES = sorted(["docker.io", "quay.io"] + GITPOD_REGISTRIES)
SYSTEM_HOSTS = ["gk3s-prep-1", "gk3s-prep-2"]
EMBEDDED_HOSTS = ["gk3s-prep-3"]


def other_host(name):
    """A testinfra host for another container of the scenario."""
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=os.path.dirname(INVENTORY))


@pytest.fixture(scope="session")
def test_ca():
    with open(os.path.join(PKI, "ca.crt"), encoding="utf-8") as f:
        return f.read()


def run_module(hostname, module, args):
    """Run one module with the `ansible` CLI against a scenario host; returns (rc, output).

    testinfra's host.ansible drops the `failed` flag of a failing module, so failures are
    checked through the CLI's return code (2 when a task failed).
    """
    proc = subprocess.run(
        ["ansible", "-i", os.path.dirname(INVENTORY), hostname, "-m", module, "-a", args],
        capture_output=True, text=True, check=False, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr
