import pytest

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import inventory_validation as iv
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import gitpod_constants
from ansible_collections.selfhosted.gitpod_k3s.plugins.action import inventory_check as action

# gitpod_k3s_labels, the common role's default (one Python copy, checked by test_constants.py).
LABELS = dict(gitpod_constants.LABELS)
KNOWN = sorted(LABELS.values()) + ["gitpod.io/workload_services"]
GROUPS = {"gitpod_meta": ["meta", "ide"], "gitpod_workspace": ["workspace_services", "workspace_regular", "workspace_headless"]}


def test_k3s_default_cidrs_pass():
    assert iv.check_cidrs("10.42.0.0/16", "10.43.0.0/16") == []


@pytest.mark.parametrize("cluster, service, needle", [
    ("10.42.0.0/33", "10.43.0.0/16", "k3s_cluster_cidr = '10.42.0.0/33' is not a valid network"),
    ("10.42.0.1/16", "10.43.0.0/16", "host bits zero"),
    ("10.42.0.0/16", "banana", "k3s_service_cidr = 'banana' is not a valid network"),
    ("10.42.0.0/16", "", "k3s_service_cidr is empty"),
    ("10.0.0.0/8", "10.43.0.0/16", "k3s_cluster_cidr = 10.0.0.0/8 overlaps k3s_service_cidr = 10.43.0.0/16"),
    ("10.42.0.0/16", "fd00::/108", "k3s_service_cidr = 'fd00::/108' is an IPv6 network; allowed: an IPv4 network"),
    ("fd00::/48", "10.43.0.0/16", "k3s_cluster_cidr = 'fd00::/48' is an IPv6 network; allowed: an IPv4 network"),
])
def test_bad_cidrs_are_named(cluster, service, needle):
    errors = iv.check_cidrs(cluster, service)
    assert any(needle in e for e in errors), errors


def test_cidr_holding_a_node_address_is_rejected():
    errors = iv.check_cidrs("192.168.0.0/16", "10.43.0.0/16", {"node1": "192.168.1.10", "node2": "172.16.0.5"})
    assert errors == ["k3s_cluster_cidr = 192.168.0.0/16 contains the address 192.168.1.10 of host node1; "
                      "allowed: a network that holds no node address"]


def test_default_labels_pass():
    assert iv.check_labels(GROUPS, LABELS, ["all", "k3s_servers", "gitpod_meta", "gitpod_workspace"], list(LABELS)) == []


def test_unknown_label_name_is_rejected():
    errors = iv.check_labels(GROUPS, dict(LABELS, meta="gitpod.io/workload_mta"), [], known_labels=KNOWN)
    assert len(errors) == 1 and errors[0].startswith("gitpod_k3s_labels.meta = 'gitpod.io/workload_mta' is not a label Gitpod knows")


def test_renamed_services_label_is_known():
    assert iv.check_labels(GROUPS, dict(LABELS, workspace_services="gitpod.io/workload_services"), [], known_labels=KNOWN) == []


def test_unknown_gitpod_group_is_rejected():
    errors = iv.check_labels(GROUPS, LABELS, ["gitpod_meta", "gitpod_workspaces"])
    assert errors == ["inventory group 'gitpod_workspaces' is not a Gitpod group; allowed: gitpod_meta, gitpod_workspace "
                      "(keys of gitpod_k3s_label_groups)"]


def test_label_group_naming_unknown_key_is_rejected():
    errors = iv.check_labels({"gitpod_meta": ["meta", "idee"]}, LABELS, [])
    assert errors and "gitpod_k3s_label_groups.gitpod_meta names label key 'idee'" in errors[0]


@pytest.mark.parametrize("domain", ["", "gitpod.example.com", "a.io", "gitpod-1.corp.example"])
def test_good_domains(domain):
    assert iv.check_domain(domain) == []


@pytest.mark.parametrize("domain", ["localhost", "https://gitpod.example.com", "*.example.com", "Gitpod.Example.com",
                                    "gitpod.example.com:443", "-bad.example.com", "10.0.0.1", "a..b"])
def test_bad_domains(domain):
    errors = iv.check_domain(domain)
    assert errors and errors[0].startswith(f"gitpod_k3s_domain = {domain!r} is not a valid domain")


@pytest.mark.parametrize("version", ["v1.28.5+k3s1", "v1.30.2-rc1+k3s2", "v1.21.0+k3s1"])
def test_k3s_version_at_or_above_minimum_passes(version):
    assert iv.check_k3s_version(version, "1.21.0") == []


@pytest.mark.parametrize("version", ["not-a-tag", "1.28", "v1.28.5", "v1.28.5-k3s1", "v2.0.0+k3s1", None])
def test_k3s_version_that_is_no_release_tag_is_refused(version):
    errors = iv.check_k3s_version(version, "1.21.0")
    assert errors == [f"k3s_version = {version!r} is not a k3s release tag; allowed: v1.MINOR.PATCH+k3sN, e.g. v1.31.4+k3s1 "
                      "(a release candidate: v1.31.4-rc1+k3s1)"]


def test_k3s_version_below_gitpods_minimum_is_refused():
    assert iv.check_k3s_version("v1.20.15+k3s1", "1.21.0") == [
        "k3s_version = 'v1.20.15+k3s1' is Kubernetes 1.20.15; allowed: 1.21.0 or newer (gitpod_k3s_min_kubernetes, Gitpod's minimum)"]
    # The minimum is a setting: a higher one refuses what 1.21.0 accepts.
    assert iv.check_k3s_version("v1.28.5+k3s1", "1.29.0") and not iv.check_k3s_version("v1.29.0+k3s1", "1.29.0")


def test_thresholds():
    assert iv.check_thresholds({"preflight_min_vcpus": 4, "preflight_min_memory_gib": "16", "x": 0.5}) == []
    errors = iv.check_thresholds({"preflight_min_vcpus": -1, "preflight_min_memory_gib": "lots", "preflight_min_disk_gib": True})
    assert errors == [
        "preflight_min_disk_gib = True is not a usable threshold; allowed: a number >= 0",
        "preflight_min_memory_gib = 'lots' is not a usable threshold; allowed: a number >= 0",
        "preflight_min_vcpus = -1 is not a usable threshold; allowed: a number >= 0",
    ]


def test_profile_thresholds_are_named_by_path():
    profiles = {"meta": {"min_vcpus": 2, "warn_vcpus": -4}, "ide": {"min_memory_gib": "x"}, "odd": "not a mapping"}
    assert iv.check_thresholds({}, profiles) == [
        "preflight_profiles.ide.min_memory_gib = 'x' is not a usable threshold; allowed: a number >= 0",
        "preflight_profiles.meta.warn_vcpus = -4 is not a usable threshold; allowed: a number >= 0",
    ]


def test_airgap_dir(tmp_path):
    required = [["k3s", "k3s-arm64"], "sha256sum-*.txt", "k3s-airgap-images-*"]
    assert iv.check_airgap_dir("", required) == []
    assert "is not a directory on the controller" in iv.check_airgap_dir(str(tmp_path / "nope"), required)[0]
    (tmp_path / "k3s-arm64").write_text("x")
    errors = iv.check_airgap_dir(str(tmp_path), required)
    assert errors == [f"k3s_airgap_dir = {str(tmp_path)!r} lacks sha256sum-*.txt, k3s-airgap-images-*; "
                      "allowed: a directory holding k3s or k3s-arm64, sha256sum-*.txt, k3s-airgap-images-*"]
    (tmp_path / "sha256sum-arm64.txt").write_text("x")
    (tmp_path / "k3s-airgap-images-arm64.tar.zst").mkdir()  # a directory is not a file
    assert "lacks k3s-airgap-images-*" in iv.check_airgap_dir(str(tmp_path), required)[0]
    (tmp_path / "k3s-airgap-images-arm64.tar.gz").write_text("x")
    assert iv.check_airgap_dir(str(tmp_path), required) == []


@pytest.mark.parametrize("encapsulation", ["VXLAN", "VXLANCrossSubnet"])
@pytest.mark.parametrize("bgp", ["Enabled", "Disabled"])
def test_vxlan_works_with_or_without_bgp(encapsulation, bgp):
    assert iv.check_calico_network(encapsulation, bgp) == []


@pytest.mark.parametrize("encapsulation", ["IPIP", "IPIPCrossSubnet", "None"])
def test_bgp_routed_encapsulations_pass_with_bgp(encapsulation):
    assert iv.check_calico_network(encapsulation, "Enabled") == []


@pytest.mark.parametrize("encapsulation", ["IPIP", "IPIPCrossSubnet", "None"])
def test_bgp_routed_encapsulations_without_bgp_are_rejected(encapsulation):
    errors = iv.check_calico_network(encapsulation, "Disabled")
    assert len(errors) == 1
    assert f"calico_encapsulation = {encapsulation!r} needs calico_bgp = 'Enabled' (given 'Disabled')" in errors[0]
    assert "VXLAN or VXLANCrossSubnet" in errors[0]


def test_the_facts_pass_keeps_every_setting_the_airgap_rule_reads(tmp_path):
    # The k3s role checks its rules again once facts are gathered, on the fact settings alone
    # (plugins/action/inventory_check.py _only_facts): a setting the rule reads but that pass drops
    # falls back to its default (here: the images archive required although k3s_airgap_images is false).
    (tmp_path / "k3s").write_text("x")
    (tmp_path / "sha256sum-amd64.txt").write_text("x")
    values = {"k3s_airgap_dir": str(tmp_path), "k3s_airgap_images": False, "k3s_airgap_extra_images": [],
              "ansible_architecture": "x86_64", "__k3s_arch_map": {"x86_64": "amd64"}, "__k3s_binary_assets": {"amd64": "k3s"}}
    assert iv.check_host("k3s", "s1", values) == iv.check_host("k3s", "s1", action._only_facts(values)) == []  # pylint: disable=protected-access
