"""Secrets: the k3s install path run with -vvv shows no token, and every file holding it is 0600 root.

One systemd container (prefix gk3s-sec-) gets playbooks/k3s.yml with a TEST DOUBLE of the k3s
binary (molecule/k3s_install/files/k3s-test-double.sh, air-gapped from the controller, started
never: k3s_start_service false). Nothing here runs k3s. The components path (MySQL, MinIO,
registry and ACME credentials) is covered the same way by tests/unit/test_components_render.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import stat
import subprocess

import pytest

from containers import ContainerFleet, docker_available

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOUBLE = os.path.join(REPO, "molecule", "k3s_install", "files", "k3s-test-double.sh")
VERSION = "v1.30.99+k3s1"

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    ok, why = docker_available()
    if not ok:
        pytest.skip(why)
    if platform.machine() != "x86_64":
        pytest.skip("the air-gap fixture is built for amd64")
    work = tmp_path_factory.mktemp("secrets")
    airgap = work / "airgap"
    airgap.mkdir()
    with open(DOUBLE, encoding="utf-8") as handle:
        double = handle.read().replace("__TEST_DOUBLE_VERSION__", VERSION)
    (airgap / "k3s").write_text(double)
    (airgap / "k3s-airgap-images-amd64.tar").write_text("stand-in for the k3s images archive\n")
    sums = "".join(f"{hashlib.sha256((airgap / n).read_bytes()).hexdigest()}  {n}\n" for n in ("k3s", "k3s-airgap-images-amd64.tar"))
    (airgap / "sha256sum-amd64.txt").write_text(sums)
    extra = {
        "gitpod_k3s_containerd_mode": "embedded",
        "gitpod_k3s_artifacts_dir": str(work / "artifacts"),
        "k3s_version": VERSION,
        "k3s_airgap_dir": str(airgap),
        "k3s_start_service": False,
        # k3s_token unset: the role generates the token on the controller and keeps it there.
    }
    with ContainerFleet("gk3s-sec-", {"k3s_servers": 1},
                        extra_groups={"gitpod_meta": ["k3s_servers"], "gitpod_workspace": ["k3s_servers"]}) as fleet:
        inventory = fleet.write_inventory(work / "hosts.yml")
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        proc = subprocess.run(["ansible-playbook", "-vvv", "-i", inventory, "-e", json.dumps(extra),
                               os.path.join(REPO, "playbooks", "k3s.yml")],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
        token_file = work / "artifacts" / "k3s-token"
        token = token_file.read_text().strip() if token_file.exists() else ""
        yield fleet, proc, work, token


def test_install_path_ran_and_generated_a_token(installed):
    fleet, proc, work, token = installed
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    rc, out = fleet.exec(fleet.names[0], ["/usr/local/bin/k3s", "--version"])
    assert "TEST DOUBLE" in out  # the double was installed; k3s itself never ran
    assert len(token) >= 16, "the generated token is kept in artifacts/k3s-token"


def test_verbose_output_shows_no_token(installed):
    _unused, proc, _unused, token = installed
    output = proc.stdout + proc.stderr
    assert len(output) > 10000  # -vvv really was verbose
    assert token and token not in output


def test_files_holding_the_token_are_0600_root_on_the_host(installed):
    fleet, _unused, _unused, token = installed
    rc, out = fleet.exec(fleet.names[0], ["grep", "-rlsF", token, "/etc", "/var/lib/rancher", "/var/log", "/usr/local", "/run", "/root"])
    holders = [line for line in out.splitlines() if line.strip()]
    assert holders, "the token is on the host somewhere (token-file)"
    for path in holders:
        rc, mode = fleet.exec(fleet.names[0], ["stat", "-c", "%a %U %G", path])
        assert mode.split() == ["600", "root", "root"], (path, mode)
    rc, unit = fleet.exec(fleet.names[0], ["sh", "-c", "cat /etc/systemd/system/k3s*.service"])
    assert token not in unit


def test_files_holding_the_token_are_0600_on_the_controller(installed):
    _unused, _unused, work, token = installed
    holders = []
    for root, _unused, files in os.walk(work):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                if token.encode() in handle.read():
                    holders.append(path)
    assert str(work / "artifacts" / "k3s-token") in holders
    for path in holders:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
