"""Reliability: bad input rejected before any host is touched, and faults survived.

Three systemd containers (prefix gk3s-rel-), used in order by the tests of this module:

1. every bad input of the issue is given to playbooks/site.yml: each run fails with a message
   naming the variable and what is allowed, and `docker diff` of every container is unchanged;
2. a converge of the host layer (playbooks/prepare.yml) is killed mid-run;
3. the next converge loses a container mid-run: the other two finish, the lost one is reported;
4. the container comes back: a re-run converges all three with no manual step;
5. one more run changes nothing on the hosts (the controller's preflight report may be rewritten).

A download that fails or mismatches its checksum is covered by molecule/k3s_install
(tests/test_2_checksums.py): the previous binary and unit stay in place.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from containers import RELAXED_PREFLIGHT, ContainerFleet, docker_available

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# playbooks/prepare.yml's one host_state call per host (host_prep's and containerd's changes).
HOST_STATE_TASK = "TASK [Apply host preparation and container runtime in one host_state call]"
PREFIX = "gk3s-rel-"
NAMES = [f"{PREFIX}{n}" for n in (1, 2, 3)]

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def fleet():
    ok, why = docker_available()
    if not ok:
        pytest.skip(why)
    with ContainerFleet(PREFIX, {"k3s_servers": 1, "k3s_agents": 2},
                        extra_groups={"gitpod_meta": ["k3s_servers"], "gitpod_workspace": ["k3s_agents"]}) as f:
        yield f


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("reliability")
    with open(path / "relaxed.json", "w", encoding="utf-8") as handle:
        json.dump(dict(RELAXED_PREFLIGHT, gitpod_k3s_artifacts_dir=str(path / "artifacts")), handle)
    return path


def playbook_cmd(playbook, inventory, workdir, extra=None):
    cmd = ["ansible-playbook", "-i", str(inventory), "-e", f"@{workdir / 'relaxed.json'}"]
    if extra is not None:
        cmd += ["-e", json.dumps(extra)]  # after the relaxed settings: the bad value wins
    return cmd + [os.path.join(REPO, "playbooks", playbook)]


def env():
    e = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return e


def run(cmd, timeout=900):
    return subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=timeout, check=False)


def diffs(fleet):
    """What each container's filesystem holds that the image does not (docker diff)."""
    return {name: sorted(f"{c['Kind']} {c['Path']}" for c in (fleet.client.api.diff(name) or [])) for name in fleet.names}


def recap(output):
    """PLAY RECAP counts per host."""
    found = {}
    for line in output.splitlines():
        m = re.match(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", line)
        if m:
            found[m.group(1)] = {"ok": int(m.group(2)), "changed": int(m.group(3)),
                                 "unreachable": int(m.group(4)), "failed": int(m.group(5))}
    return found


def failures(output):
    """Each 'fatal:' block of an ansible-playbook output, for assertion messages."""
    lines = output.splitlines()
    blocks = [("\n".join(lines[i:i + 25])) for i, line in enumerate(lines) if line.startswith("fatal:")]
    return "\n...\n".join(blocks) or output[-4000:]


# --- bad input --------------------------------------------------------------------------------

def inventory_variant(fleet, path, servers, agents, extra_groups=None):
    inv = fleet.inventory()
    children = {"k3s_servers": {"hosts": {n: None for n in servers}},
                "k3s_agents": {"hosts": {n: None for n in agents}},
                "gitpod_meta": {"hosts": {n: None for n in (servers or agents)[:1]}},
                "gitpod_workspace": {"hosts": {n: None for n in (agents or servers)}}}
    children.update(extra_groups or {})
    inv["all"]["children"] = children
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(inv, handle)
    return path


BAD_INPUTS = [
    # id, inventory shape (servers, agents, extra groups), extra vars, texts the message must hold
    ("invalid-cidr", None, {"k3s_cluster_cidr": "10.42.0.0/33"}, ["k3s_cluster_cidr", "10.42.0.0/33"]),
    ("overlapping-cidrs", None, {"k3s_cluster_cidr": "10.0.0.0/8", "k3s_service_cidr": "10.43.0.0/16"},
     ["k3s_cluster_cidr = 10.0.0.0/8 overlaps k3s_service_cidr = 10.43.0.0/16", "allowed: two disjoint networks"]),
    ("even-servers", ([0, 1], [2], None), {}, ["inventory group k3s_servers has 2 hosts", "odd number >= 3"]),
    ("no-server", ([], [0, 1, 2], None), {}, ["inventory group k3s_servers has 0 hosts", "allowed: 1 server, or an odd number"]),
    ("host-in-both-groups", ([0], [0, 1, 2], None), {}, [f"host {NAMES[0]} is in both k3s_servers and k3s_agents",
                                                         "allowed: exactly one of them"]),
    ("unknown-group", None, {}, ["inventory group 'gitpod_workspaces' is not a Gitpod group", "allowed: gitpod_headless, gitpod_meta"]),
    ("unknown-label", None, {"gitpod_k3s_labels": {
        "meta": "gitpod.io/workload_mta", "ide": "gitpod.io/workload_ide",
        "workspace_services": "gitpod.io/workload_workspace_services",
        "workspace_regular": "gitpod.io/workload_workspace_regular",
        "workspace_headless": "gitpod.io/workload_workspace_headless"}},
     ["gitpod_k3s_labels.meta = 'gitpod.io/workload_mta' is not a label Gitpod knows"]),
    ("invalid-domain", None, {"gitpod_k3s_domain": "https://gitpod.example.com"},
     ["gitpod_k3s_domain = 'https://gitpod.example.com' is not a valid domain"]),
    ("malformed-k3s-version", None, {"k3s_version": "1.28"}, ["k3s_version = '1.28' is not a k3s release tag", "v1.MINOR.PATCH+k3sN"]),
    ("non-numeric-threshold", None, {"preflight_min_vcpus": "lots"}, ["argument 'preflight_min_vcpus' is of type str",
                                                                      "unable to convert to float"]),
    ("negative-threshold", None, {"preflight_min_memory_gib": -4},
     ["preflight_min_memory_gib = -4 is not a usable threshold; allowed: a number >= 0"]),
    ("unknown-containerd-mode", None, {"gitpod_k3s_containerd_mode": "docker"},
     ["value of gitpod_k3s_containerd_mode must be one of: system, embedded, got: docker"]),
    # Issue 14's classes: each reached the hosts before the one validator.
    ("kernel-minimum-not-a-version", None, {"preflight_min_kernel": "five"}, ["preflight_min_kernel = 'five' is not a version"]),
    ("misspelt-choice", None, {"calico_encapsulation": "vxlan"}, ["value of calico_encapsulation must be one of", "got: vxlan"]),
    ("token-with-newline", None, {"k3s_token": "0123456789abcdefghij\n"}, ["k3s_token holds whitespace or a line break"]),
    ("ipv6-cluster-cidr", None, {"k3s_cluster_cidr": "fd00:42::/56"}, ["k3s_cluster_cidr = 'fd00:42::/56' is an IPv6 network"]),
    ("pool-not-cluster-cidr", None, {"calico_ipv4_pool_cidr": "10.50.0.0/16"},
     ["calico_ipv4_pool_cidr = '10.50.0.0/16' is not k3s_cluster_cidr = '10.42.0.0/16'"]),
    ("kubernetes-too-old", None, {"k3s_version": "v1.20.15+k3s1"}, ["is Kubernetes 1.20.15; allowed: 1.21.0 or newer"]),
    ("empty-workspace-pool", ([0], [1, 2], {"gitpod_workspace": {"hosts": {}}}), {},
     ["no host of k3s_servers or k3s_agents carries gitpod.io/workload_workspace_services"]),
    ("url-without-scheme", None, {"k3s_release_url": "github.com/k3s-io/k3s/releases/download"},
     ["k3s_release_url = 'github.com/k3s-io/k3s/releases/download' is not a URL"]),
    ("airgap-dir-missing-a-file", None, {"k3s_airgap_dir": "AIRGAP"}, ["k3s_airgap_dir", "lacks sha256sum-*.txt"]),
]


@pytest.mark.parametrize("case, shape, extra, texts", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_1_bad_input_is_rejected_before_any_host_is_touched(fleet, workdir, case, shape, extra, texts):
    servers, agents, groups = shape or ([0], [1, 2], None)
    extra_groups = {"gitpod_workspaces": {"hosts": {NAMES[2]: None}}} if case == "unknown-group" else groups
    inventory = inventory_variant(fleet, workdir / f"{case}.json", [NAMES[i] for i in servers], [NAMES[i] for i in agents], extra_groups)
    if extra.get("k3s_airgap_dir") == "AIRGAP":
        airgap = workdir / "airgap-incomplete"
        airgap.mkdir(exist_ok=True)
        (airgap / "k3s").write_text("not a release\n")
        extra = dict(extra, k3s_airgap_dir=str(airgap))
    before = diffs(fleet)
    proc = run(playbook_cmd("site.yml", inventory, workdir, extra), timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    for text in texts:
        assert text in output, f"{text!r} missing from:\n{output[-4000:]}"
    # Nothing connected: only controller-side tasks ran before the rejection.
    assert "Gathering Facts" not in output
    assert diffs(fleet) == before


# --- faults -----------------------------------------------------------------------------------

def start_converge(inventory, workdir, log):
    handle = open(log, "w", encoding="utf-8")  # noqa: SIM115  closed by the caller through the process
    return subprocess.Popen(playbook_cmd("prepare.yml", inventory, workdir), cwd=REPO, env=env(),
                            stdout=handle, stderr=subprocess.STDOUT, text=True, start_new_session=True), handle


def wait_for(log, marker, proc, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log, encoding="utf-8") as handle:
            if marker in handle.read():
                return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {marker!r}:\n{open(log, encoding='utf-8').read()[-3000:]}")
        time.sleep(0.5)
    raise AssertionError(f"{marker!r} did not appear in {timeout}s")


def wait_for_process(fleet, pattern, proc, timeout=600):
    """Until a process matching ``pattern`` runs in one of the containers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name in NAMES:
            rc, _out = fleet.exec(name, ["pgrep", "-f", pattern])
            if rc == 0:
                return name
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {pattern!r} ran on a host")
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} did not run on a host within {timeout}s")


def test_2_interrupted_converge(fleet, workdir):
    inventory = fleet.write_inventory(workdir / "hosts.yml")
    log = workdir / "interrupted.log"
    proc, handle = start_converge(inventory, workdir, log)
    try:
        wait_for(log, HOST_STATE_TASK, proc)
        wait_for_process(fleet, "apt-get install", proc)
        time.sleep(1)  # inside the package installation
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        handle.close()
    assert proc.returncode == -signal.SIGKILL
    assert "PLAY RECAP" not in log.read_text()


def test_3_lost_host_is_reported_and_the_others_finish(fleet, workdir):
    inventory = workdir / "hosts.yml"
    log = workdir / "lost.log"
    proc, handle = start_converge(inventory, workdir, log)
    try:
        wait_for(log, HOST_STATE_TASK, proc)
        fleet.pause(NAMES[2])
        proc.wait(timeout=900)
    finally:
        handle.close()
    output = log.read_text()
    counts = recap(output)
    assert proc.returncode != 0
    lost = counts[NAMES[2]]
    assert lost["unreachable"] + lost["failed"] >= 1, output[-3000:]
    # Reported by name: "fatal: [gk3s-rel-3]: UNREACHABLE! => ..." (or FAILED when the stop
    # lands inside a module run).
    assert any(f"[{NAMES[2]}]" in line and ("UNREACHABLE!" in line or "FAILED!" in line) for line in output.splitlines()), output[-3000:]
    for name in NAMES[:2]:
        assert counts[name]["failed"] == 0 and counts[name]["unreachable"] == 0, output[-3000:]
    # The survivors ran the whole host layer: containerd is there and running.
    for name in NAMES[:2]:
        rc, out = fleet.exec(name, ["systemctl", "is-active", "containerd"])
        assert out.strip() == "active", (name, out)


def test_4_rerun_after_the_host_came_back_converges(fleet, workdir):
    fleet.resume(NAMES[2])
    proc = run(playbook_cmd("prepare.yml", workdir / "hosts.yml", workdir))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, failures(output)
    counts = recap(output)
    assert set(NAMES) <= set(counts)
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in counts.values())
    rc, out = fleet.exec(NAMES[2], ["systemctl", "is-active", "containerd"])
    assert out.strip() == "active"


def changed_tasks(output):
    """(task, host) pairs that reported changed."""
    task, found = None, []
    for line in output.splitlines():
        m = re.match(r"^TASK \[(.*)\] \**$", line)
        if m:
            task = m.group(1)
        m = re.match(r"^changed: \[([^\]]+)\]", line)
        if m:
            found.append((task, m.group(1)))
    return found


def test_5_then_nothing_changes_on_the_hosts(fleet, workdir):
    proc = run(playbook_cmd("prepare.yml", workdir / "hosts.yml", workdir))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, failures(output)
    # The preflight report on the controller may be rewritten: it was taken at the start of the
    # previous run, before containerd was installed on the host that came back. Nothing else may change.
    changed = [(task, host) for task, host in changed_tasks(output)
               if task != "selfhosted.gitpod_k3s.report : Write report.json and report.md"]
    assert changed == [], changed
    assert set(NAMES) <= set(recap(output))
