"""Checksum mismatches stop the install with the previous (TEST DOUBLE) binary in place."""

import shutil

from conftest import AGENT, EPHEMERAL, SERVER

BINARY = "/usr/local/bin/k3s"


def test_download_with_a_wrong_checksum_replaces_nothing(server, run_playbook):
    before = server.file(BINARY).sha256sum
    unit_before = server.file("/etc/systemd/system/k3s.service").content_string
    proc = run_playbook("playbooks/k3s.yml", "--limit", SERVER, "-e", "k3s_version=v1.30.98+k3s1")
    assert proc.returncode != 0
    assert "did not match" in proc.stdout and "0" * 64 in proc.stdout
    assert server.file(BINARY).sha256sum == before
    assert server.file("/etc/systemd/system/k3s.service").content_string == unit_before


def test_airgap_binary_with_a_wrong_checksum_is_not_copied(agent, run_playbook, tmp_path):
    corrupt = tmp_path / "airgap"
    shutil.copytree(EPHEMERAL / "airgap", corrupt)
    (corrupt / "k3s").write_bytes(b"#!/bin/sh\n# TEST DOUBLE, tampered copy\nexit 0\n")
    before = agent.file(BINARY).sha256sum
    proc = run_playbook("playbooks/k3s.yml", "--limit", AGENT, "-e", f"k3s_airgap_dir={corrupt}")
    assert proc.returncode != 0
    assert "nothing was installed" in proc.stdout and "has sha256" in proc.stdout
    assert agent.file(BINARY).sha256sum == before
