"""containerd_mode=system: the distribution's containerd, its configuration and the registries."""

import os
import re

import pytest

from conftest import GITPOD_REGISTRIES, PKI, REGISTRIES

testinfra_hosts = ["ansible://gk3s-prep-1", "ansible://gk3s-prep-2"]

CERTS = "/etc/containerd/certs.d"


def test_containerd_running_enabled_and_at_least_1_5(host):
    svc = host.service("containerd")
    assert svc.is_running and svc.is_enabled
    out = host.check_output("containerd --version")
    m = re.search(r"\s(\d+)\.(\d+)\.(\d+)", out)
    assert m, out
    assert tuple(int(x) for x in m.groups()) >= (1, 5, 0), out
    assert host.socket("unix:///run/containerd/containerd.sock").is_listening


def test_config_file(host):
    f = host.file("/etc/containerd/config.toml")
    assert f.is_file and f.user == "root" and f.mode == 0o644
    assert "Ansible managed" in f.content_string


@pytest.mark.parametrize("line", [
    "SystemdCgroup = true",
    'bin_dir = "/opt/cni/bin"',
    'conf_dir = "/etc/cni/net.d"',
    f'config_path = "{CERTS}"',
])
def test_running_config_has(host, line):
    # `containerd config dump` prints the configuration containerd loaded, not the file.
    assert line in [x.strip() for x in host.check_output("containerd config dump").splitlines()]


def test_cri_plugin_loaded(host):
    cri = [line.split() for line in host.check_output("ctr plugins ls").splitlines() if " cri " in f" {line} "]
    assert cri and all(fields[-1] == "ok" for fields in cri), cri


@pytest.mark.parametrize("path", ["/opt/cni/bin", "/etc/cni/net.d"])
def test_cni_directories(host, path):
    assert host.file(path).is_directory


def test_one_hosts_toml_per_registry(host):
    # prepare.yml left on gk3s-prep-1 a registry this role wrote in an earlier run (removed) and
    # one the user wrote by hand (kept).
    user = ["user.example.test"] if host.backend.get_hostname() == "gk3s-prep-1" else []
    assert sorted(host.file(CERTS).listdir()) == sorted(REGISTRIES + user)
    for reg in REGISTRIES:
        f = host.file(f"{CERTS}/{reg}/hosts.toml")
        assert f.is_file and f.mode == 0o644


def test_docker_io_mirror(host):
    text = host.file(f"{CERTS}/docker.io/hosts.toml").content_string
    assert 'server = "https://registry-1.docker.io"' in text
    assert '[host."https://mirror.gitpod.example.test:5000"]' in text
    assert "ca =" not in text
    assert not host.file(f"{CERTS}/docker.io/ca.crt").exists


@pytest.mark.parametrize("reg", GITPOD_REGISTRIES + ["quay.io"])
def test_ca_given_once_is_trusted_for_each_registry(host, reg, test_ca):
    ca = host.file(f"{CERTS}/{reg}/ca.crt")
    assert ca.is_file and ca.mode == 0o644 and ca.content_string == test_ca
    assert f'ca = "{CERTS}/{reg}/ca.crt"' in host.file(f"{CERTS}/{reg}/hosts.toml").content_string


DOUBLE = os.path.join(os.path.dirname(__file__), "files", "registry_double.py")


@pytest.fixture(scope="module")
def registry_double(host):
    """Test double of Gitpod's registries: TLS with a certificate from the test CA, every manifest 404."""
    host.ansible("file", "path=/root/regtest state=directory mode=0700", check=False)
    host.ansible("copy", f"src={PKI}/registry.crt dest=/root/regtest/registry.crt mode=0644", check=False)
    host.ansible("copy", f"src={PKI}/registry.key dest=/root/regtest/registry.key mode=0600", check=False)
    host.ansible("copy", f"src={DOUBLE} dest=/root/regtest/registry.py mode=0644", check=False)
    for name in ("registry.crt", "registry.key", "registry.py"):
        assert host.file(f"/root/regtest/{name}").is_file
    # Docker bind-mounts /etc/hosts: append in place (an atomic rename would fail).
    names = "127.0.0.1 reg.gitpod.example.test registry.gitpod.example.test"
    host.check_output(f"grep -qxF '{names}' /etc/hosts || echo '{names}' >> /etc/hosts")
    for port in (20000, 443):
        host.run(f"systemctl stop regtest-{port}.service")
        host.check_output(f"systemd-run --unit=regtest-{port} python3 /root/regtest/registry.py {port}")
    for port in (20000, 443):
        host.run(f"timeout 10 sh -c 'until ss -ltn | grep -q :{port}; do sleep 0.2; done'")
    yield
    for port in (20000, 443):
        host.run(f"systemctl stop regtest-{port}.service")


@pytest.mark.parametrize("ref", ["reg.gitpod.example.test:20000/gitpod/ws:latest", "registry.gitpod.example.test/gitpod/ws:latest"])
def test_self_signed_registry_is_trusted_through_certs_d(host, registry_double, ref):
    # With certs.d (as the CRI plugin uses it), TLS succeeds and the registry answers 404.
    trusted = host.run(f"ctr -n k8s.io images pull --hosts-dir {CERTS} {ref}")
    assert trusted.rc != 0
    assert "not found" in trusted.stderr, trusted.stderr
    assert "x509" not in trusted.stderr and "certificate" not in trusted.stderr, trusted.stderr
    # Control: without certs.d the same pull fails on the certificate.
    untrusted = host.run(f"ctr -n k8s.io images pull {ref}")
    assert untrusted.rc != 0 and "x509" in untrusted.stderr, untrusted.stderr
