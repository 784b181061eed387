"""Verify: both preflight reports exist on the controller, parse, and say what the runs found."""

import json
import os

import pytest

REPORTS = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"), "preflight")
HOSTS = ["gk3s-pf-1", "gk3s-pf-2"]


def load(kind):
    with open(os.path.join(REPORTS, kind, "report.json"), encoding="utf-8") as handle:
        doc = json.load(handle)
    with open(os.path.join(REPORTS, kind, "report.md"), encoding="utf-8") as handle:
        md = handle.read()
    return doc, md


def statuses(doc, host):
    return {c["id"]: c["status"] for c in doc["hosts"][host]["checks"]}


@pytest.mark.parametrize("kind", ["default", "relaxed"])
def test_both_reports_exist_parse_and_cover_every_host(kind):
    doc, md = load(kind)
    assert sorted(doc["hosts"]) == HOSTS
    assert [c["id"] for c in doc["scopes"]["fleet"]["checks"]] == ["unique_hostnames", "server_count", "labels", "architecture"]
    for host in HOSTS:
        assert f"| {host} |" in md
    assert md.startswith("<!-- ") and "# Preflight: gitpod" in md


def test_default_report_fails_on_vcpus_and_os_for_each_host():
    doc, md = load("default")
    assert doc["passed"] is False
    for host in HOSTS:
        assert statuses(doc, host)["vcpus"] == "fail"
        assert statuses(doc, host)["os"] == "fail"
    assert "❌ fail **vcpus**" in md


def test_relaxed_report_passes_with_the_vcpu_recommendation_as_a_warning():
    doc, _md = load("relaxed")
    assert doc["passed"] is True and doc["counts"]["fail"] == 0
    assert statuses(doc, "gk3s-pf-1")["vcpus"] == "warn"
    assert doc["hosts"]["gk3s-pf-1"]["facts"]["role"] == "server"
    assert doc["hosts"]["gk3s-pf-2"]["facts"]["labels"] == "workspace_headless, workspace_regular, workspace_services"


def test_workspace_only_checks_apply_to_the_workspace_host_only(host):
    # testinfra's `host` fixture: this runs once per container.
    doc, _md = load("relaxed")
    name = host.backend.get_hostname()
    kernel_headers = next(c for c in doc["hosts"][name]["checks"] if c["id"] == "kernel_headers")
    if name == "gk3s-pf-1":
        assert kernel_headers["actual"] == "not a workspace node"
    else:
        assert kernel_headers["actual"] != "not a workspace node"
    assert host.file("/usr/src").is_directory
