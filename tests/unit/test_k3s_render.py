"""Render tests for the k3s and calico roles.

Each inventory below is rendered by tests/render/render.yml, which runs the roles' own validate
and facts tasks and templates on the controller (no host is touched), into <tmp>/<host>/:
config.yaml, the systemd unit, facts.json (computed URLs and names) and, on the initial server,
Calico's three manifests. Core kinds are validated with kubernetes-validate; the custom resources
(HelmChart, Installation) are checked against the fields their upstream Go types declare.

Inventories: single node, 3 servers + 2 agents with the system containerd, the same with the
embedded containerd and an API VIP, an air-gapped single node; plus inventories that must fail.
"""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "render"))
from rendering import (  # noqa: E402  (tests/render is not a package)
    REPO, example_overlay, host, inventory, stage0_errors, k3s_order, load, order_problems, rendered_files, run_render,
    write_airgap_dir)

K8S_VERSION = "1.31.0"  # the minor of the default k3s_version (v1.31.4+k3s1)

# Fields of helm.cattle.io/v1 HelmChartSpec (k3s-io/helm-controller pkg/apis/helm.cattle.io/v1/types.go).
HELMCHART_SPEC_FIELDS = {
    "targetNamespace", "createNamespace", "chart", "version", "repo", "repoCA", "repoCAConfigMap", "set",
    "valuesContent", "helmVersion", "bootstrap", "chartContent", "jobImage", "backOffLimit", "timeout",
    "failurePolicy", "authSecret", "authPassCredentials", "dockerRegistrySecret",
}
# Fields of operator.tigera.io/v1 InstallationSpec, CalicoNetworkSpec and IPPool that the role sets
# (tigera/operator api/v1/installation_types.go).
INSTALLATION_SPEC_FIELDS = {
    "variant", "registry", "imagePath", "imagePrefix", "imagePullSecrets", "kubernetesProvider", "cni",
    "calicoNetwork", "typhaAffinity", "controlPlaneNodeSelector", "controlPlaneTolerations",
    "controlPlaneReplicas", "nodeMetricsPort", "typhaMetricsPort", "flexVolumePath", "kubeletVolumePluginPath",
    "nodeUpdateStrategy", "componentResources", "certificateManagement", "nonPrivileged", "calicoNodeDaemonSet",
    "csiNodeDriverDaemonSet", "calicoKubeControllersDeployment", "typhaDeployment",
    "calicoWindowsUpgradeDaemonSet", "fipsMode", "logging",
}
CALICO_NETWORK_FIELDS = {
    "linuxDataplane", "bgp", "ipPools", "mtu", "nodeAddressAutodetectionV4", "nodeAddressAutodetectionV6",
    "hostPorts", "multiInterfaceMode", "containerIPForwarding",
}
IPPOOL_FIELDS = {"name", "cidr", "encapsulation", "natOutgoing", "nodeSelector", "blockSize", "disableBGPExport"}
ENCAPSULATIONS = {"IPIP", "IPIPCrossSubnet", "VXLAN", "VXLANCrossSubnet", "None"}

SERVER_KEYS_GITPOD = {"flannel-backend": "none", "disable-network-policy": True, "disable": ["traefik"]}
AGENT_FORBIDDEN = {"flannel-backend", "disable-network-policy", "disable", "cluster-cidr", "service-cidr",
                   "cluster-init", "tls-san", "write-kubeconfig-mode", "https-listen-port"}


def unit_directives(text: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            directives.setdefault(key, []).append(value)
    return directives


# --- rendered inventories (one ansible-playbook run each, all started together) ----------------

META_WS = {"gitpod_meta": ["s1"], "gitpod_workspace": ["s1"]}


def scenarios(tmp: Path) -> dict[str, dict]:
    """Every inventory the tests render, by name."""
    three = {**host("s1", "192.0.2.11"), **host("s2", "192.0.2.12"), **host("s3", "192.0.2.13")}
    # Hosts whose kernel host name is a full name: k3s registers it whole, lower-cased.
    fqdn_three = {**host("s1", "192.0.2.11", nodename="S1.Cluster.Example.COM"),
                  **host("s2", "192.0.2.12", nodename="s2.cluster.example.com"),
                  **host("s3", "192.0.2.13", nodename="s3.cluster.example.com", k3s_node_name="Etcd-Three")}
    airgap_dir = tmp / "airgap-files"
    write_airgap_dir(airgap_dir)
    missing_dir = tmp / "airgap-missing"
    write_airgap_dir(missing_dir, omit="k3s-airgap-images-amd64.tar.zst")
    (missing_dir / "k3s").unlink()
    corrupt_dir = tmp / "airgap-corrupt"
    write_airgap_dir(corrupt_dir, corrupt="tigera-operator-v3.30.3.tgz")
    return {
        "single": inventory(host("s1", "192.0.2.11"), {}, META_WS),
        "ha_system": inventory(
            three,
            {**host("a1", "192.0.2.21", k3s_kubelet_args=["max-pods=200"]),
             **host("a2", "192.0.2.22", arch="aarch64", k3s_node_taints=["gitpod.io/headless=true:NoSchedule"],
                    k3s_node_labels_extra={"example.com/rack": "r2"},
                    # As the containerd role publishes it (system mode).
                    gitpod_k3s_containerd={"mode": "system", "socket": "/run/custom/containerd.sock",
                                           "endpoint": "unix:///run/custom/containerd.sock",
                                           "runtime_dir": "/run/custom/io.containerd.runtime.v2.task/k8s.io",
                                           "cgroup_driver": "cgroupfs", "cni_bin_dir": "/opt/cni/bin",
                                           "cni_conf_dir": "/etc/cni/net.d"})},
            {"gitpod_meta": ["s1", "s2", "s3"], "gitpod_workspace": ["a1", "a2"], "gitpod_headless": ["a2"]}),
        "ha_embedded": inventory(
            three, {**host("a1", "192.0.2.21"), **host("a2", "192.0.2.22")},
            {"gitpod_meta": ["s1", "s2", "s3"], "gitpod_workspace": ["a1", "a2"]},
            {"gitpod_k3s_containerd_mode": "embedded", "k3s_api_endpoint": "192.0.2.100",
             # As the containerd role publishes it in embedded mode (no cgroup driver, no CNI dirs).
             "gitpod_k3s_containerd": {"mode": "embedded", "socket": "/run/k3s/containerd/containerd.sock",
                                       "endpoint": "unix:///run/k3s/containerd/containerd.sock",
                                       "runtime_dir": "/run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io",
                                       "cgroup_driver": None, "cni_bin_dir": None, "cni_conf_dir": None},
             "k3s_cluster_cidr": "10.244.0.0/16", "k3s_service_cidr": "10.96.0.0/12",
             "k3s_tls_san": ["k3s.example.com"], "calico_mtu": 8950, "calico_encapsulation": "VXLAN"}),
        "airgap": inventory(
            host("s1", "192.0.2.11"), {}, META_WS,
            {"k3s_airgap_dir": str(airgap_dir), "calico_airgap_dir": str(airgap_dir),
             "k3s_airgap_extra_images": ["calico-images-amd64.tar"], "calico_registry": "mirror.example.com:5000/"}),
        # One valid server and agents that each carry one bad value.
        "bad": inventory(host("s1", "192.0.2.11"), {
            **host("bad-version", "192.0.2.31", k3s_version="1.31.4"),
            **host("bad-taint", "192.0.2.32", k3s_node_taints=["gitpod=true"]),
            **host("bad-mode", "192.0.2.33", k3s_containerd_mode="docker"),
            **host("bad-extra", "192.0.2.34", k3s_agent_config_extra={"flannel-backend": "vxlan"}),
            **host("bad-mtu", "192.0.2.35", calico_mtu=100),
            **host("bad-encap", "192.0.2.36", calico_encapsulation="GRE"),
            **host("bad-arch", "192.0.2.37", arch="sparc64"),
            **host("bad-kubelet", "192.0.2.38", k3s_kubelet_args=["--max-pods=10"]),
            # The operator refuses IPIP and unencapsulated pools without BGP.
            **host("bad-ipip", "192.0.2.40", calico_encapsulation="IPIP"),
            **host("bad-none", "192.0.2.41", calico_encapsulation="None", calico_bgp="Disabled"),
            **host("good-agent", "192.0.2.39"),
            **host("good-ipip-bgp", "192.0.2.42", calico_encapsulation="IPIPCrossSubnet", calico_bgp="Enabled"),
        }),
        "fqdn": inventory(fqdn_three, {**host("a1", "192.0.2.21", nodename="a1.cluster.example.com"),
                                       **host("a2", "192.0.2.22", nodename="a2.cluster.example.com")},
                          {"gitpod_meta": ["s1", "s2", "s3"], "gitpod_workspace": ["a1", "a2"]},
                          {"k3s_api_port": 7443}),
        "bad_node_name": inventory(host("s1", "192.0.2.11"), {
            **host("bad-underscore", "192.0.2.41", k3s_node_name="gitpod_agent"),
            **host("bad-nodename", "192.0.2.42", nodename="-agent-.example.com")}),
        "servers2": inventory({**host("s1", "192.0.2.11"), **host("s2", "192.0.2.12")}, {}),
        "servers4": inventory({**three, **host("s4", "192.0.2.14")}, {}),
        "both_groups": inventory(three, host("s3", "192.0.2.13")),
        "initial_agent": inventory(host("s1", "192.0.2.11"), host("a1", "192.0.2.21"),
                                   all_vars={"k3s_initial_server": "a1"}),
        "airgap_missing": inventory(host("s1", "192.0.2.11"), {}, all_vars={"k3s_airgap_dir": str(missing_dir)}),
        "chart_mismatch": inventory(host("s1", "192.0.2.11"), {}, META_WS,
                                    all_vars={"k3s_airgap_dir": str(corrupt_dir), "calico_airgap_dir": str(corrupt_dir)}),
    }


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    """name -> (output dir, completed process, airgap files), rendered three at a time."""
    tmp = tmp_path_factory.mktemp("render")
    todo = scenarios(tmp)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(run_render, tmp / name, inv, False) for name, inv in todo.items()}
        # inventories/example with stand-in facts for its five hosts.
        futures["example"] = pool.submit(run_render, tmp / "example", example_overlay(), False,
                                         REPO / "inventories" / "example")
        results = {name: future.result() for name, future in futures.items()}
    return {name: (out, proc, tmp) for name, (out, proc) in results.items()}


def rendered(renders, name: str) -> Path:
    out, proc, _tmp = renders[name]
    assert proc.returncode == 0, f"render {name} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    return out


def refused(renders, name: str) -> subprocess.CompletedProcess:
    proc = renders[name][1]
    assert proc.returncode != 0, f"render {name} should have failed"
    return proc


@pytest.fixture(scope="module")
def single(renders):
    return rendered(renders, "single")


@pytest.fixture(scope="module")
def ha_system(renders):
    return rendered(renders, "ha_system")


@pytest.fixture(scope="module")
def ha_embedded(renders):
    return rendered(renders, "ha_embedded")


@pytest.fixture(scope="module")
def example(renders):
    return rendered(renders, "example")


@pytest.fixture(scope="module")
def airgap(renders):
    out = rendered(renders, "airgap")
    files = {p.name: p.read_bytes() for p in (renders["airgap"][2] / "airgap-files").iterdir()}
    return out, files


# --- config.yaml --------------------------------------------------------------------------------

def test_single_server_config_has_gitpod_settings(single):
    config = load(single, "s1", "config.yaml")
    for key, value in SERVER_KEYS_GITPOD.items():
        assert config[key] == value
    assert config["cluster-cidr"] == "10.42.0.0/16"
    assert config["service-cidr"] == "10.43.0.0/16"
    assert config["node-ip"] == "192.0.2.11"
    assert config["write-kubeconfig-mode"] == "0600"


def test_single_server_has_no_etcd_and_no_join(single):
    config = load(single, "s1", "config.yaml")
    assert "cluster-init" not in config
    assert "server" not in config


def test_token_is_referenced_never_inlined(single, ha_system):
    for out, hosts in ((single, ["s1"]), (ha_system, ["s1", "s2", "a1"])):
        for h in hosts:
            config = load(out, h, "config.yaml")
            assert config["token-file"] == "/etc/rancher/k3s/token"
            assert "token" not in config and "agent-token" not in config


def test_single_server_labels_from_groups(single):
    labels = load(single, "s1", "config.yaml")["node-label"]
    assert labels == sorted([
        "gitpod.io/workload_ide=true", "gitpod.io/workload_meta=true",
        "gitpod.io/workload_workspace_headless=true", "gitpod.io/workload_workspace_regular=true",
        "gitpod.io/workload_workspace_services=true"])


def test_system_containerd_sets_runtime_endpoint_and_cgroup_driver(single, ha_system):
    for out, h in ((single, "s1"), (ha_system, "a1")):
        config = load(out, h, "config.yaml")
        assert config["container-runtime-endpoint"] == "unix:///run/containerd/containerd.sock"
        assert "cgroup-driver=systemd" in config["kubelet-arg"]


def test_ha_initial_server_initialises_etcd(ha_system):
    config = load(ha_system, "s1", "config.yaml")
    assert config["cluster-init"] is True
    assert "server" not in config
    assert load(ha_system, "s1", "facts.json")["initial_server"] is True


@pytest.mark.parametrize("name", ["s2", "s3"])
def test_ha_other_servers_join_the_initial_server(ha_system, name):
    config = load(ha_system, name, "config.yaml")
    assert config["server"] == "https://192.0.2.11:6443"
    assert "cluster-init" not in config
    assert config["flannel-backend"] == "none"
    assert load(ha_system, name, "facts.json")["initial_server"] is False


@pytest.mark.parametrize("name", ["a1", "a2"])
def test_agents_join_and_carry_no_server_flags(ha_system, name):
    config = load(ha_system, name, "config.yaml")
    assert config["server"] == "https://192.0.2.11:6443"
    assert not AGENT_FORBIDDEN & set(config), AGENT_FORBIDDEN & set(config)


def test_ha_labels_follow_inventory_groups(ha_system):
    server_labels = load(ha_system, "s2", "config.yaml")["node-label"]
    assert server_labels == ["gitpod.io/workload_ide=true", "gitpod.io/workload_meta=true"]
    a1 = load(ha_system, "a1", "config.yaml")["node-label"]
    assert a1 == ["gitpod.io/workload_workspace_headless=true", "gitpod.io/workload_workspace_regular=true",
                  "gitpod.io/workload_workspace_services=true"]
    a2 = load(ha_system, "a2", "config.yaml")["node-label"]
    assert "example.com/rack=r2" in a2
    assert "gitpod.io/workload_meta=true" not in a2


def test_taints_and_kubelet_args_per_host(ha_system):
    assert load(ha_system, "a2", "config.yaml")["node-taint"] == ["gitpod.io/headless=true:NoSchedule"]
    assert "node-taint" not in load(ha_system, "a1", "config.yaml")
    assert load(ha_system, "a1", "config.yaml")["kubelet-arg"] == ["max-pods=200", "cgroup-driver=systemd"]


def test_containerd_roles_fact_sets_socket_and_cgroup_driver(ha_system):
    config = load(ha_system, "a2", "config.yaml")
    assert config["container-runtime-endpoint"] == "unix:///run/custom/containerd.sock"
    assert "cgroup-driver=cgroupfs" in config["kubelet-arg"]


def test_embedded_containerd_has_no_runtime_endpoint(ha_embedded):
    for h in ("s1", "s2", "a1"):
        config = load(ha_embedded, h, "config.yaml")
        assert "container-runtime-endpoint" not in config
        assert not any(arg.startswith("cgroup-driver=") for arg in config.get("kubelet-arg", []))


def test_api_port_is_where_servers_listen_and_every_node_dials(fqdn, ha_embedded):
    for server in ("s1", "s2", "s3"):
        assert load(fqdn, server, "config.yaml")["https-listen-port"] == 7443
    for joining in ("s2", "s3", "a1", "a2"):
        assert load(fqdn, joining, "config.yaml")["server"].endswith(":7443")
    assert "https-listen-port" not in load(fqdn, "a1", "config.yaml")
    # k3s's own default is not written: a cluster on it keeps its config.yaml (no restart).
    assert "https-listen-port" not in load(ha_embedded, "s1", "config.yaml")


def test_api_endpoint_vip_is_used_for_joins_and_sans(ha_embedded):
    assert load(ha_embedded, "s2", "config.yaml")["server"] == "https://192.0.2.100:6443"
    assert load(ha_embedded, "a1", "config.yaml")["server"] == "https://192.0.2.100:6443"
    sans = load(ha_embedded, "s1", "config.yaml")["tls-san"]
    assert sans == ["192.0.2.100", "192.0.2.11", "k3s.example.com"]
    assert load(ha_embedded, "s1", "facts.json")["api_url"] == "https://192.0.2.100:6443"


def test_custom_cidrs_reach_config(ha_embedded):
    config = load(ha_embedded, "s3", "config.yaml")
    assert config["cluster-cidr"] == "10.244.0.0/16"
    assert config["service-cidr"] == "10.96.0.0/12"


def test_config_starts_with_ansible_managed_header(single):
    assert rendered_files(single, "s1")["config.yaml"].startswith("#\n# Ansible managed")


def test_example_inventory_renders_an_ha_cluster_behind_its_vip(example):
    initial = load(example, "server1", "config.yaml")
    assert initial["cluster-init"] is True and "server" not in initial
    assert "k3s.example.com" in initial["tls-san"] and "10.0.0.10" in initial["tls-san"]
    for h in ("server2", "server3", "agent1", "agent2"):
        assert load(example, h, "config.yaml")["server"] == "https://10.0.0.10:6443"
    assert "gitpod.io/workload_meta=true" in load(example, "server2", "config.yaml")["node-label"]
    assert "gitpod.io/workload_workspace_regular=true" in load(example, "agent2", "config.yaml")["node-label"]
    check_installation(load(example, "server1", "gitpod-calico-20-installation.yaml"), "10.42.0.0/16")


# --- release URLs -------------------------------------------------------------------------------

def test_release_urls_encode_the_version_and_pick_the_arch_asset(ha_system):
    amd = load(ha_system, "a1", "facts.json")
    assert amd["binary_url"] == "https://github.com/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1/k3s"
    assert amd["checksum_url"] == "https://github.com/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1/sha256sum-amd64.txt"
    arm = load(ha_system, "a2", "facts.json")
    assert arm["binary_url"].endswith("/v1.31.4%2Bk3s1/k3s-arm64")
    assert arm["checksum_url"].endswith("/sha256sum-arm64.txt")
    assert arm["images_patterns"][0] == "k3s-airgap-images-arm64.tar.zst"


# --- node names ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fqdn(renders):
    return rendered(renders, "fqdn")


@pytest.mark.parametrize("hostname,expected", [("s1", "s1.cluster.example.com"), ("s2", "s2.cluster.example.com"),
                                               ("s3", "etcd-three"), ("a1", "a1.cluster.example.com")])
def test_node_name_is_the_full_host_name_and_written_into_config(fqdn, hostname, expected):
    # k3s registers the whole kernel host name, lower-cased, not the facts' short hostname; the one
    # name the role waits for, drains and labels is the one config.yaml gives k3s as node-name.
    assert load(fqdn, hostname, "facts.json")["node_name"] == expected
    assert load(fqdn, hostname, "config.yaml")["node-name"] == expected


def test_node_name_is_written_for_plain_host_names_too(single):
    assert load(single, "s1", "config.yaml")["node-name"] == load(single, "s1", "facts.json")["node_name"] == "s1"


@pytest.mark.parametrize("hostname,expected", [
    ("bad-underscore", ["host bad-underscore: node name 'gitpod_agent' (from k3s_node_name)", "DNS-1123 subdomain"]),
    ("bad-nodename", ["host bad-nodename: node name '-agent-.example.com' (from its host name, lower-cased)", "set k3s_node_name"]),
])
def test_invalid_node_name_is_refused(renders, hostname, expected):
    found = [m for m in stage0_errors(renders["bad_node_name"][1]) if hostname in m]
    assert any(all(text in m for text in expected) for m in found), found


# --- systemd units ------------------------------------------------------------------------------

def test_server_unit(single):
    text = load(single, "s1", "k3s.service")
    d = unit_directives(text)
    assert d["ExecStart"] == ["/usr/local/bin/k3s server"]
    assert d["Type"] == ["notify"]
    assert "containerd.service" in d["After"]
    assert "[Install]" in text and d["WantedBy"] == ["multi-user.target"]


def test_agent_unit(ha_system):
    assert load(ha_system, "a1", "facts.json")["service_name"] == "k3s-agent"
    d = unit_directives(load(ha_system, "a1", "k3s-agent.service"))
    assert d["ExecStart"] == ["/usr/local/bin/k3s agent"]
    # k3s's install.sh writes Type=notify for servers and agents alike (the agent reports ready).
    assert d["Type"] == ["notify"]


# Environment files k3s's install.sh lists in every unit, in this order (later files win).
UPSTREAM_ENVIRONMENT_FILES = ["-/etc/default/%N", "-/etc/sysconfig/%N", "-/etc/systemd/system/{unit}.env"]


@pytest.mark.parametrize("fixture,hostname,unit", [("single", "s1", "k3s.service"), ("ha_system", "a1", "k3s-agent.service"),
                                                   ("ha_system", "s2", "k3s.service")])
def test_units_read_the_environment_files_upstream_reads(request, fixture, hostname, unit):
    d = unit_directives(load(request.getfixturevalue(fixture), hostname, unit))
    assert d["EnvironmentFile"] == [f.format(unit=unit) for f in UPSTREAM_ENVIRONMENT_FILES]
    assert d["Type"] == ["notify"]


def test_embedded_unit_does_not_wait_for_system_containerd(ha_embedded):
    d = unit_directives(load(ha_embedded, "s1", "k3s.service"))
    assert "containerd.service" not in d["After"]


def test_units_hold_no_token(single, ha_system):
    for out, h, unit in ((single, "s1", "k3s.service"), (ha_system, "a1", "k3s-agent.service")):
        d = unit_directives(load(out, h, unit))
        assert not any("TOKEN" in k.upper() or "--token" in v for k, values in d.items() for v in values)
        assert not any("K3S_TOKEN" in v for v in d.get("Environment", []))


# --- manifests ----------------------------------------------------------------------------------

MANIFESTS = ["gitpod-calico-00-namespace.yaml", "gitpod-calico-10-operator.yaml", "gitpod-calico-20-installation.yaml"]


def test_manifests_only_on_the_initial_server(ha_system):
    assert set(MANIFESTS) <= set(rendered_files(ha_system, "s1"))
    for h in ("s2", "s3", "a1", "a2"):
        assert not set(MANIFESTS) & set(rendered_files(ha_system, h))


def calico_manifests(out: Path, hostname: str) -> dict[str, list[dict]]:
    """The manifests rendered for the host's k3s directory, file name -> objects: every rendered
    YAML file but k3s's config.yaml, under the names the calico role gives them."""
    return {name: [yaml.safe_load(text)] for name, text in rendered_files(out, hostname).items()
            if name.endswith(".yaml") and name != "config.yaml"}


@pytest.mark.parametrize("fixture", ["single", "ha_embedded", "airgap"])
def test_calico_files_sort_so_a_first_pass_applies_them_in_order(request, fixture):
    """Issue 13, defect 15 (Calico): k3s applies its manifests directory in byte order of the file
    names on every pass. The namespace (its Pod Security label) must come before the operator's chart
    that installs into it, and the Installation after the chart that brings its CRD."""
    out = request.getfixturevalue(fixture)
    out = out[0] if isinstance(out, tuple) else out
    docs = calico_manifests(out, "s1")
    order = k3s_order(docs)
    assert [[obj["kind"] for obj in docs[name]] for name in order] == [["Namespace"], ["HelmChart"], ["Installation"]], order
    assert order_problems(docs) == []


def test_calico_order_check_bites_on_the_old_names(single):
    """The check itself, on the rendered objects under the names before issue 13 (the Installation
    sorted first) and under names that put the namespace after the chart."""
    docs = calico_manifests(single, "s1")
    by_kind = {objs[0]["kind"]: objs for objs in docs.values()}
    old = {"gitpod-calico-namespace.yaml": by_kind["Namespace"], "gitpod-calico-operator.yaml": by_kind["HelmChart"],
           "gitpod-calico-installation.yaml": by_kind["Installation"]}
    assert k3s_order(old)[0] == "gitpod-calico-installation.yaml"
    problems = order_problems(old)
    assert problems == ["gitpod-calico-installation.yaml: Installation default needs the CRDs of operator.tigera.io, "
                        "made later"], problems
    late_ns = {"gitpod-calico-20-namespace.yaml": by_kind["Namespace"], "gitpod-calico-10-operator.yaml": by_kind["HelmChart"],
               "gitpod-calico-30-installation.yaml": by_kind["Installation"]}
    problems = order_problems(late_ns)
    assert problems == ["gitpod-calico-10-operator.yaml: HelmChart tigera-operator installs into namespace tigera-operator, "
                        "made by a later file"], problems


@pytest.mark.parametrize("fixture", ["single", "ha_system", "ha_embedded"])
def test_namespace_is_a_valid_core_object(request, fixture):
    ns = load(request.getfixturevalue(fixture), "s1", "gitpod-calico-00-namespace.yaml")
    kubernetes_validate.validate(ns, K8S_VERSION, strict=True)
    assert ns["metadata"]["name"] == "tigera-operator"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def check_helmchart(chart: dict) -> dict:
    assert chart["apiVersion"] == "helm.cattle.io/v1"
    assert chart["kind"] == "HelmChart"
    assert chart["metadata"]["name"] == "tigera-operator"
    assert chart["metadata"]["namespace"] == "kube-system"
    spec = chart["spec"]
    assert set(spec) <= HELMCHART_SPEC_FIELDS, set(spec) - HELMCHART_SPEC_FIELDS
    assert spec["targetNamespace"] == "tigera-operator"
    # No CNI exists before Calico: the Helm job must run on the host network (bootstrap).
    assert spec["bootstrap"] is True
    values = yaml.safe_load(spec["valuesContent"])
    assert values["installation"]["enabled"] is False
    assert values["apiServer"]["enabled"] is False
    return spec


def test_helmchart_online_pins_chart_and_version(single):
    spec = check_helmchart(load(single, "s1", "gitpod-calico-10-operator.yaml"))
    assert spec["chart"] == "tigera-operator"
    assert spec["repo"] == "https://docs.tigera.io/calico/charts"
    assert spec["version"] == "v3.30.3"
    assert "chartContent" not in spec


def test_helmchart_airgap_embeds_the_verified_chart(airgap):
    out, files = airgap
    spec = check_helmchart(load(out, "s1", "gitpod-calico-10-operator.yaml"))
    assert not {"chart", "repo", "version"} & set(spec)
    content = base64.b64decode(spec["chartContent"])
    assert content == files["tigera-operator-v3.30.3.tgz"]
    with tarfile.open(fileobj=io.BytesIO(content)) as tar:
        assert "tigera-operator/Chart.yaml" in tar.getnames()


def check_installation(inst: dict, cidr: str) -> dict:
    assert inst["apiVersion"] == "operator.tigera.io/v1"
    assert inst["kind"] == "Installation"
    assert inst["metadata"]["name"] == "default"  # the operator only reconciles "default"
    spec = inst["spec"]
    assert set(spec) <= INSTALLATION_SPEC_FIELDS, set(spec) - INSTALLATION_SPEC_FIELDS
    assert spec["cni"] == {"type": "Calico", "ipam": {"type": "Calico"}}
    net = spec["calicoNetwork"]
    assert set(net) <= CALICO_NETWORK_FIELDS, set(net) - CALICO_NETWORK_FIELDS
    assert net["containerIPForwarding"] == "Enabled"
    assert isinstance(net.get("mtu", 0), int)
    assert len(net["ipPools"]) == 1
    pool = net["ipPools"][0]
    assert set(pool) <= IPPOOL_FIELDS
    assert pool["cidr"] == cidr
    assert pool["encapsulation"] in ENCAPSULATIONS
    assert isinstance(pool["blockSize"], int)
    return spec


def test_installation_defaults(single):
    spec = check_installation(load(single, "s1", "gitpod-calico-20-installation.yaml"), "10.42.0.0/16")
    net = spec["calicoNetwork"]
    assert net["ipPools"][0]["encapsulation"] == "VXLANCrossSubnet"
    assert "mtu" not in net  # Calico detects the MTU from the node's interfaces
    assert "registry" not in spec
    values = yaml.safe_load(load(single, "s1", "gitpod-calico-10-operator.yaml")["spec"]["valuesContent"])
    assert "tigeraOperator" not in values  # the chart's own quay.io
    assert net["nodeAddressAutodetectionV4"] == {"kubernetes": "NodeInternalIP"}
    assert spec["flexVolumePath"] == "None"
    assert spec["kubeletVolumePluginPath"] == "None"


def test_installation_follows_cluster_cidr_and_variables(ha_embedded):
    spec = check_installation(load(ha_embedded, "s1", "gitpod-calico-20-installation.yaml"), "10.244.0.0/16")
    assert spec["calicoNetwork"]["mtu"] == 8950
    assert spec["calicoNetwork"]["ipPools"][0]["encapsulation"] == "VXLAN"


def test_installation_airgap(airgap):
    out, _files = airgap
    check_installation(load(out, "s1", "gitpod-calico-20-installation.yaml"), "10.42.0.0/16")


def test_calico_registry_reaches_the_operator_image_and_calicos_images(airgap):
    """calico_registry sets the chart's tigeraOperator.registry (the operator's own image) and the
    Installation's registry (every image the operator deploys)."""
    out, _unused = airgap
    values = yaml.safe_load(load(out, "s1", "gitpod-calico-10-operator.yaml")["spec"]["valuesContent"])
    # The chart joins registry and image with a '/' of its own.
    assert values["tigeraOperator"] == {"registry": "mirror.example.com:5000"}
    assert load(out, "s1", "gitpod-calico-20-installation.yaml")["spec"]["registry"] == "mirror.example.com:5000/"


def test_airgap_config_matches_online(airgap, single):
    out, _files = airgap
    assert load(out, "s1", "config.yaml") == load(single, "s1", "config.yaml")


# --- inputs that must be refused ------------------------------------------------------------------

@pytest.mark.parametrize("hostname, expected", [
    ("bad-version", ["k3s_version = '1.31.4' is not a k3s release tag", "v1.31.4+k3s1"]),
    ("bad-taint", ["host bad-taint: k3s_node_taints entry 'gitpod=true' is not a taint", "NoSchedule"]),
    ("bad-mode", ["value of k3s_containerd_mode must be one of: system, embedded, got: docker"]),
    ("bad-extra", ["k3s_agent_config_extra sets flannel-backend, which the k3s role manages", "reserved"]),
    ("bad-mtu", ["calico_mtu = 100 is not usable", "576 to 9000"]),
    ("bad-encap", ["value of calico_encapsulation must be one of", "VXLANCrossSubnet", "got: GRE"]),
    ("bad-kubelet", ["k3s_kubelet_args entry '--max-pods=10' is not name=value"]),
    # A gathered fact (render.yml stands in for them): the same rules read it when it is there.
    ("bad-arch", ["host bad-arch has architecture 'sparc64'; allowed: x86_64"]),
    ("bad-ipip", ["calico_encapsulation = 'IPIP' needs calico_bgp = 'Enabled' (given 'Disabled')", "VXLANCrossSubnet"]),
    ("bad-none", ["calico_encapsulation = 'None' needs calico_bgp = 'Enabled' (given 'Disabled')"]),
])
def test_bad_input_is_refused_with_the_variable_and_allowed_values(renders, hostname, expected):
    # One message per problem, from the k3s role's one check on the controller; a value only this
    # host has names the host.
    messages = [m for m in stage0_errors(refused(renders, "bad")) if hostname in m]
    assert any(all(text in m for text in expected) for m in messages), f"{expected!r} not in {messages!r}"


def test_good_hosts_pass_beside_bad_ones(renders):
    messages = " ".join(stage0_errors(refused(renders, "bad")))
    assert "good-agent" not in messages and "good-ipip-bgp" not in messages and "host s1" not in messages


@pytest.mark.parametrize("name, count", [("servers2", 2), ("servers4", 4)])
def test_even_server_count_is_refused(renders, name, count):
    messages = " ".join(stage0_errors(refused(renders, name)))
    assert f"inventory group k3s_servers has {count} hosts" in messages
    assert "odd number" in messages


def test_host_in_both_groups_is_refused(renders):
    assert "host s3 is in both k3s_servers and k3s_agents" in " ".join(stage0_errors(refused(renders, "both_groups")))


def test_initial_server_must_be_a_server(renders):
    assert "k3s_initial_server = 'a1' is not a server" in " ".join(stage0_errors(refused(renders, "initial_agent")))


def test_airgap_dir_missing_files_is_refused(renders):
    message = " ".join(stage0_errors(refused(renders, "airgap_missing")))
    assert "lacks" in message and "k3s," in message and "k3s-airgap-images-amd64.tar.zst" in message


def test_airgap_chart_checksum_mismatch_is_refused(renders):
    message = " ".join(stage0_errors(refused(renders, "chart_mismatch")))
    assert "tigera-operator-v3.30.3.tgz has sha256" in message and "0" * 64 in message
