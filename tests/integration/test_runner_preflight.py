"""playbooks/preflight.yml driven by ansible_runner.run() against three systemd containers.

Each host's checks are read back from the runner's events (the host_requirements task's result),
the fleet report from the files on disk. The containers are Debian 12 on a 2-vCPU machine: the
default run must fail (os, vcpus) and a relaxed run must pass.
"""

import json
import os
import time

import pytest

from containers import REPO, ContainerFleet, docker_available

ansible_runner = pytest.importorskip("ansible_runner")

pytestmark = pytest.mark.docker

CHECK_TASK = "Check the host against Gitpod's requirements"
HOST_CHECK_IDS = ["os", "kernel", "vcpus", "memory", "disk", "swap", "cgroup", "systemd", "kernel_features",
                  "containerd", "ports", "usr_src", "kernel_headers"]
RELAXED = {"preflight_min_vcpus": 2, "preflight_allowed_distributions": ["ubuntu", "debian"]}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    ok, why = docker_available()
    if not ok:
        pytest.skip(why)
    with ContainerFleet("gk3s-rt-", {"k3s_servers": 1, "k3s_agents": 2},
                        extra_groups={"gitpod_meta": ["k3s_servers"], "gitpod_workspace": ["k3s_agents"]}) as f:
        f.inventory_path = f.write_inventory(tmp_path_factory.mktemp("inventory") / "hosts.yml")
        yield f


def run_preflight(fleet, tmp_path, **extravars):
    report_dir = tmp_path / "report"
    private = tmp_path / f"runner-{time.monotonic_ns()}"
    private.mkdir()
    extravars = dict(extravars, preflight_report_dir=str(report_dir))
    started = time.monotonic()
    runner = ansible_runner.run(
        private_data_dir=str(private),
        project_dir=REPO,
        playbook="playbooks/preflight.yml",
        inventory=fleet.inventory_path,
        extravars=extravars,
        envvars={"ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg")},
        quiet=True,
    )
    runner.wall_time = time.monotonic() - started
    runner.report_dir = report_dir
    return runner


def host_checks(runner):
    """host -> {check id: check} from the host_requirements task's events."""
    out = {}
    for event in runner.events:
        data = event.get("event_data", {})
        if event.get("event") == "runner_on_ok" and data.get("task") == CHECK_TASK:
            out[data["host"]] = {c["id"]: c for c in data["res"]["checks"]}
    return out


def read_report(runner):
    with open(runner.report_dir / "report.json", encoding="utf-8") as handle:
        doc = json.load(handle)
    with open(runner.report_dir / "report.md", encoding="utf-8") as handle:
        md = handle.read()
    return doc, md


def test_default_thresholds_fail_every_host_on_vcpus_and_os(fleet, tmp_path):
    runner = run_preflight(fleet, tmp_path)
    assert runner.status == "failed" and runner.rc != 0
    checks = host_checks(runner)
    assert sorted(checks) == fleet.names
    for host, by_id in checks.items():
        assert list(by_id) == HOST_CHECK_IDS, host
        assert by_id["vcpus"]["status"] == "fail", host
        assert by_id["os"]["actual"] == "debian 12" and by_id["os"]["status"] == "fail"
        assert by_id["systemd"]["status"] == "pass" and by_id["kernel_features"]["status"] == "pass"
    assert sorted(runner.stats["failures"]) == fleet.names
    failures = [e["event_data"]["res"]["msg"] for e in runner.events
                if e.get("event") == "runner_on_failed" and e["event_data"].get("task") == "Fail the hosts that miss a requirement"]
    assert len(failures) == 3
    assert all("- vcpus: expected >= 4" in m and "preflight_min_vcpus" in m for m in failures)
    doc, md = read_report(runner)
    assert doc["passed"] is False and sorted(doc["hosts"]) == fleet.names
    assert [c["id"] for c in doc["scopes"]["fleet"]["checks"]] == ["unique_hostnames", "server_count", "labels", "architecture"]
    assert "| gk3s-rt-1 |" in md and "❌" in md
    print(f"preflight, 3 containers, failing run: {runner.wall_time:.1f}s")


def test_relaxed_thresholds_pass_and_the_report_says_so(fleet, tmp_path):
    runner = run_preflight(fleet, tmp_path, **RELAXED)
    assert runner.status == "successful" and runner.rc == 0
    checks = host_checks(runner)
    assert sorted(checks) == fleet.names
    for host, by_id in checks.items():
        assert [c for c in by_id.values() if c["status"] == "fail"] == [], host
        assert by_id["vcpus"]["status"] == "warn"  # meta / workspace hosts: Gitpod recommends 4
    doc, _unused = read_report(runner)
    assert doc["passed"] is True and doc["counts"]["fail"] == 0
    assert all(doc["hosts"][h]["facts"]["os"] == "debian 12" for h in fleet.names)
    assert doc["hosts"]["gk3s-rt-1"]["facts"]["role"] == "server"
    print(f"preflight, 3 containers, passing run: {runner.wall_time:.1f}s")


def test_a_second_identical_run_changes_nothing(fleet, tmp_path):
    run_preflight(fleet, tmp_path, **RELAXED)
    runner = run_preflight(fleet, tmp_path, **RELAXED)
    assert runner.status == "successful"
    assert sum(runner.stats["changed"].values()) == 0


def test_a_stopped_host_is_reported_unreachable_and_the_others_still_checked(fleet, tmp_path):
    victim = fleet.names[-1]
    fleet.pause(victim)
    runner = run_preflight(fleet, tmp_path, **RELAXED)
    assert runner.status == "failed"
    checks = host_checks(runner)
    assert sorted(checks) == fleet.names[:-1]
    doc, _unused = read_report(runner)
    (reachable,) = doc["hosts"][victim]["checks"]
    assert (reachable["id"], reachable["status"]) == ("reachable", "fail")
    assert all(doc["hosts"][h]["passed"] for h in fleet.names[:-1])
