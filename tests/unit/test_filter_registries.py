"""Filters containerd_registries and k3s_registries."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.gitpod_k3s.plugins.filter.registries import containerd_registries, k3s_registries

GITPOD_HOSTS = ["reg.gitpod.example.test:20000", "registry.gitpod.example.test"]


def test_gitpod_ca_given_once_covers_both_gitpod_registries():
    regs = containerd_registries({}, GITPOD_HOSTS, "/pki/ca.crt")
    assert [r["host"] for r in regs] == ["reg.gitpod.example.test:20000", "registry.gitpod.example.test"]
    assert all(r["ca_file"] == "/pki/ca.crt" for r in regs)
    assert regs[0]["server"] == "https://reg.gitpod.example.test:20000"


def test_no_gitpod_ca_adds_no_gitpod_hosts():
    assert containerd_registries({}, GITPOD_HOSTS, "") == []
    assert containerd_registries(None) == []


def test_explicit_entry_keeps_its_ca_and_endpoints_over_gitpod_defaults():
    regs = containerd_registries(
        {"reg.gitpod.example.test:20000": {"endpoints": ["https://m.example.test:5000/"], "ca_file": "/own.crt"},
         "registry.gitpod.example.test": {"endpoints": ["https://m2.example.test"]}},
        GITPOD_HOSTS, "/pki/ca.crt")
    by_host = {r["host"]: r for r in regs}
    assert by_host["reg.gitpod.example.test:20000"]["ca_file"] == "/own.crt"
    assert by_host["reg.gitpod.example.test:20000"]["endpoints"] == ["https://m.example.test:5000"]
    assert by_host["reg.gitpod.example.test:20000"]["endpoint_hosts"] == ["m.example.test:5000"]
    # No ca_file of its own: the Gitpod CA stays.
    assert by_host["registry.gitpod.example.test"]["ca_file"] == "/pki/ca.crt"


def test_docker_io_is_served_by_registry_1():
    regs = containerd_registries({"docker.io": {"endpoints": ["https://mirror.example.test"]}})
    assert regs[0]["server"] == "https://registry-1.docker.io"
    assert regs[0]["ca_file"] == ""


@pytest.mark.parametrize("mirrors, message", [
    ({"reg.example.test/path": {}}, "is not a host name with an optional port"),
    ({"*": {}}, "is not a host name"),
    ({"r.example.test": {"endpoint": ["https://x"]}}, "unknown keys endpoint; allowed: endpoints, ca_file"),
    ({"r.example.test": {"endpoints": "https://x"}}, "endpoints must be a list of URLs"),
    ({"r.example.test": {"endpoints": ["ftp://x"]}}, "is not an http:// or https:// URL"),
    ({"r.example.test": ["https://x"]}, "must be a mapping with keys endpoints, ca_file"),
    (["r.example.test"], "must be a mapping of registry host to settings"),
])
def test_bad_input_names_variable_value_and_what_is_allowed(mirrors, message):
    with pytest.raises(AnsibleFilterError, match="gitpod_k3s_registry_mirrors") as exc:
        containerd_registries(mirrors)
    assert message in str(exc.value)


def test_k3s_registries_trusts_ca_for_registry_and_its_mirrors():
    regs = containerd_registries(
        {"quay.io": {"endpoints": ["https://mirror.example.test:5000"], "ca_file": "/q.crt"},
         "docker.io": {"endpoints": ["https://mirror.example.test:5000"]}},
        GITPOD_HOSTS[:1], "/pki/ca.crt")
    out = k3s_registries(regs, "/etc/rancher/k3s/certs.d/")
    assert out["mirrors"] == {
        "docker.io": {"endpoint": ["https://mirror.example.test:5000"]},
        "quay.io": {"endpoint": ["https://mirror.example.test:5000"]},
        "reg.gitpod.example.test:20000": {"endpoint": ["https://reg.gitpod.example.test:20000"]},
    }
    assert out["configs"]["reg.gitpod.example.test:20000"] == {
        "tls": {"ca_file": "/etc/rancher/k3s/certs.d/reg.gitpod.example.test:20000/ca.crt"}}
    assert out["configs"]["quay.io"]["tls"]["ca_file"] == "/etc/rancher/k3s/certs.d/quay.io/ca.crt"
    # The shared mirror host keeps the first CA that names it (quay.io's), in sorted host order.
    assert out["configs"]["mirror.example.test:5000"]["tls"]["ca_file"] == "/etc/rancher/k3s/certs.d/quay.io/ca.crt"
    assert "docker.io" not in out["configs"]


def test_k3s_registries_without_ca_has_no_configs():
    assert k3s_registries(containerd_registries({"docker.io": {"endpoints": ["https://m.example.test"]}}), "/c") == {
        "mirrors": {"docker.io": {"endpoint": ["https://m.example.test"]}}}
