"""containerd_mode=embedded: no distribution containerd; k3s' registries.yaml with the same mirrors and CAs."""

import pytest
import yaml

from conftest import GITPOD_REGISTRIES, REGISTRIES

testinfra_hosts = ["ansible://gk3s-prep-3"]

K3S_CERTS = "/etc/rancher/k3s/certs.d"


def test_no_distribution_containerd(host):
    assert not host.package("containerd").is_installed
    assert not host.file("/etc/containerd/config.toml").exists


def test_registries_yaml_is_private(host):
    f = host.file("/etc/rancher/k3s/registries.yaml")
    assert f.is_file and f.user == "root" and f.group == "root" and f.mode == 0o600


@pytest.fixture(scope="module")
def registries(host):
    return yaml.safe_load(host.file("/etc/rancher/k3s/registries.yaml").content_string)


def test_mirrors(registries):
    assert sorted(registries["mirrors"]) == REGISTRIES
    assert registries["mirrors"]["docker.io"] == {"endpoint": ["https://mirror.gitpod.example.test:5000"]}
    assert registries["mirrors"]["reg.gitpod.example.test:20000"] == {"endpoint": ["https://reg.gitpod.example.test:20000"]}


@pytest.mark.parametrize("reg", GITPOD_REGISTRIES + ["quay.io"])
def test_ca_given_once_is_trusted_for_each_registry(host, registries, reg, test_ca):
    ca_file = registries["configs"][reg]["tls"]["ca_file"]
    assert ca_file == f"{K3S_CERTS}/{reg}/ca.crt"
    assert host.file(ca_file).content_string == test_ca


def test_mirror_endpoint_trusts_the_registry_ca(host, registries, test_ca):
    ca_file = registries["configs"]["mirror.gitpod.example.test:5000"]["tls"]["ca_file"]
    assert host.file(ca_file).content_string == test_ca
    assert "docker.io" not in registries["configs"]


def test_only_configured_ca_directories(host):
    # prepare.yml left a CA directory of a registry no longer configured: removed.
    assert sorted(host.file(K3S_CERTS).listdir()) == sorted(GITPOD_REGISTRIES + ["quay.io"])
