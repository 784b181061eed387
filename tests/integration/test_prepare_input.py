"""Bad input to host_prep and containerd fails before any host changes, naming variable, value and what is allowed.

Runs ansible-playbook on localhost: each role's validate.yml (the inventory_check action on the
controller: the role's argument spec, then its rules) and, for the spec tests, validate_argument_spec
against meta/argument_specs.yml alone.
Nothing here changes the machine.
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"


def run(tmp_path, role, extra_vars, spec=False):
    """Run the role's validation on localhost; returns (rc, output)."""
    if spec:
        with open(os.path.join(REPO, "roles", role, "meta", "argument_specs.yml"), encoding="utf-8") as f:
            options = yaml.safe_load(f)["argument_specs"]["main"]["options"]
        # The spec's defaults document defaults/main.yml (some are templates of collection-wide
        # settings); the values checked here are only those provided.
        options = {name: {k: v for k, v in spec_.items() if k != "default"} for name, spec_ in options.items()}
        tasks = [{"name": "Validate against the argument spec",
                  "ansible.builtin.validate_argument_spec": {"argument_spec": options,
                                                             "provided_arguments": extra_vars}}]
    else:
        tasks = [{"name": "Validate", "ansible.builtin.include_role": {
            "name": f"selfhosted.gitpod_k3s.{role}", "tasks_from": "validate"}}]
    play = [{"name": "Validate", "hosts": "localhost", "gather_facts": True, "gather_subset": ["!all", "min"],
             "tasks": tasks}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    (tmp_path / "vars.json").write_text(json.dumps(extra_vars))
    inventory = f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    (tmp_path / "hosts").write_text(inventory)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(tmp_path / "hosts"),
         "-e", f"@{tmp_path / 'vars.json'}", str(tmp_path / "play.yml")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc.returncode, " ".join((proc.stdout + proc.stderr).split())


@pytest.fixture()
def ca_file(tmp_path):
    path = tmp_path / "ca.crt"
    path.write_text(CA_PEM)
    return str(path)


def test_containerd_valid_input_passes(tmp_path, ca_file):
    rc, out = run(tmp_path, "containerd", {
        "gitpod_k3s_domain": "gitpod.example.test", "containerd_gitpod_registry_ca_file": ca_file,
        "gitpod_k3s_registry_mirrors": {"docker.io": {"endpoints": ["https://mirror.example.test"]}}})
    assert rc == 0, out


@pytest.mark.parametrize("mirrors, message", [
    ({"reg.example.test/x": {}}, "gitpod_k3s_registry_mirrors: registry 'reg.example.test/x' is not a host name"),
    ({"docker.io": {"mirrors": ["https://m"]}}, "unknown keys mirrors; allowed: endpoints, ca_file"),
    ({"docker.io": {"endpoints": ["mirror.example.test"]}}, "is not an http:// or https:// URL"),
])
def test_containerd_bad_registry_settings(tmp_path, mirrors, message):
    rc, out = run(tmp_path, "containerd", {"gitpod_k3s_registry_mirrors": mirrors})
    assert rc == 2 and message in out, out


def test_containerd_missing_ca_file(tmp_path):
    rc, out = run(tmp_path, "containerd", {"gitpod_k3s_registry_mirrors": {
        "quay.io": {"ca_file": str(tmp_path / "nowhere.crt")}}})
    assert rc == 2 and "gitpod_k3s_registry_mirrors['quay.io'].ca_file = " in out and "cannot be read on the controller" in out, out


def test_containerd_ca_file_with_a_private_key(tmp_path):
    path = tmp_path / "bundle.pem"
    path.write_text(CA_PEM + "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
    rc, out = run(tmp_path, "containerd", {"gitpod_k3s_registry_mirrors": {"quay.io": {"ca_file": str(path)}}})
    assert rc == 2 and "must hold PEM certificates and no private key" in out, out


def test_containerd_gitpod_ca_without_domain(tmp_path, ca_file):
    rc, out = run(tmp_path, "containerd", {"containerd_gitpod_registry_ca_file": ca_file})
    assert rc == 2 and "containerd_domain (gitpod_k3s_domain) is empty" in out, out


def test_containerd_mode_outside_the_choices(tmp_path):
    rc, out = run(tmp_path, "containerd", {"containerd_mode": "docker"}, spec=True)
    assert rc == 2 and "containerd_mode" in out and "system, embedded" in out and "docker" in out, out


def test_host_prep_valid_input_passes(tmp_path):
    rc, out = run(tmp_path, "host_prep", {"host_prep_ufw": True, "host_prep_extra_kernel_modules": ["ipip"]})
    assert rc == 0, out


@pytest.mark.parametrize("extra, message", [
    ({"host_prep_sysctl_required": ["net.ipv4.ip_forward", "net.core.rmem_max"]},
     "host_prep_sysctl_required names net.core.rmem_max"),
    ({"host_prep_extra_kernel_modules": ["br_netfilter; reboot"]},
     "host_prep_extra_kernel_modules holds invalid module names ['br_netfilter; reboot']"),
    ({"host_prep_ufw": True, "host_prep_ufw_public_ports": {"tcp": ["22/tcp"]}},
     "host_prep_ufw_public_ports.tcp = ['22/tcp'] is not a list of ports; allowed: ports N or ranges N:M"),
    ({"host_prep_ufw": True, "host_prep_ufw_cluster_ports": {"sctp": ["9"]}},
     "host_prep_ufw_cluster_ports key 'sctp' is not a protocol; allowed: tcp, udp"),
    ({"host_prep_directories": [{"path": "var/gitpod"}]}, "host_prep_directories entry {'path': 'var/gitpod'} has no absolute path"),
])
def test_host_prep_bad_input(tmp_path, extra, message):
    rc, out = run(tmp_path, "host_prep", extra)
    assert rc == 2 and message in out, out


def test_host_prep_unapplied_policy_outside_the_choices(tmp_path):
    rc, out = run(tmp_path, "host_prep", {"host_prep_sysctl_unapplied": "ignore"}, spec=True)
    assert rc == 2 and "host_prep_sysctl_unapplied" in out and "warn, fail" in out and "ignore" in out, out
