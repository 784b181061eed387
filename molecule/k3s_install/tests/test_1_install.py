"""After converge and the idempotence run, with a TEST DOUBLE of the k3s binary (not k3s)."""

import hashlib

import yaml
from conftest import EPHEMERAL

BINARY = "/usr/local/bin/k3s"
FIXTURE = "/srv/k3s-fixture/releases/v1.30.99+k3s1/k3s"
CONFIG = "/etc/rancher/k3s/config.yaml"
TOKEN = "/etc/rancher/k3s/token"
IMPORT = "ctr --address /run/containerd/containerd.sock --namespace k8s.io images import -"


def controller_sha256(name: str) -> str:
    return hashlib.sha256((EPHEMERAL / "airgap" / name).read_bytes()).hexdigest()


def test_downloaded_binary_is_the_verified_fixture(server):
    binary = server.file(BINARY)
    assert binary.mode == 0o755 and binary.user == "root"
    assert binary.sha256sum == server.file(FIXTURE).sha256sum
    assert "TEST DOUBLE" in binary.content_string


def test_airgap_binary_is_the_controllers_copy(agent):
    binary = agent.file(BINARY)
    assert binary.mode == 0o755 and binary.user == "root"
    assert binary.sha256sum == controller_sha256("k3s")


def test_config_is_0600_and_server_has_gitpod_settings(server):
    f = server.file(CONFIG)
    assert f.mode == 0o600 and f.user == "root"
    config = yaml.safe_load(f.content_string)
    assert config["flannel-backend"] == "none"
    assert config["disable-network-policy"] is True
    assert config["disable"] == ["traefik"]
    assert "container-runtime-endpoint" not in config  # embedded containerd on this host
    assert "gitpod.io/workload_meta=true" in config["node-label"]


def test_agent_config_joins_the_server_with_system_containerd(server, agent):
    f = agent.file(CONFIG)
    assert f.mode == 0o600
    config = yaml.safe_load(f.content_string)
    server_ip = yaml.safe_load(server.file(CONFIG).content_string)["node-ip"]
    assert config["server"] == f"https://{server_ip}:6443"
    assert config["container-runtime-endpoint"] == "unix:///run/containerd/containerd.sock"
    assert config["node-taint"] == ["gitpod.io/test=true:NoSchedule"]
    assert "gitpod.io/workload_workspace_regular=true" in config["node-label"]
    assert "flannel-backend" not in config


def test_token_is_0600_everywhere_and_matches_the_controller(server, agent):
    controller = EPHEMERAL / "artifacts" / "k3s-token"
    assert controller.stat().st_mode & 0o777 == 0o600
    token = controller.read_text().strip()
    assert len(token) == 48
    for h in (server, agent):
        f = h.file(TOKEN)
        assert f.mode == 0o600 and f.user == "root"
        assert f.content_string.strip() == token


def test_token_is_in_no_other_file(server, agent):
    token = (EPHEMERAL / "artifacts" / "k3s-token").read_text().strip()
    for h, unit in ((server, "k3s"), (agent, "k3s-agent")):
        for path in (CONFIG, f"/etc/systemd/system/{unit}.service"):
            assert token not in h.file(path).content_string


def test_units_are_rendered_enabled_and_not_started(server, agent):
    for h, unit, mode in ((server, "k3s", "server"), (agent, "k3s-agent", "agent")):
        f = h.file(f"/etc/systemd/system/{unit}.service")
        assert f.mode == 0o644
        assert f"ExecStart=/usr/local/bin/k3s {mode}\n" in f.content_string
        assert h.service(unit).is_enabled
        assert not h.service(unit).is_running
        h.run_expect([0], f"systemd-analyze verify /etc/systemd/system/{unit}.service")


def test_installed_binary_reports_ready_to_a_notify_unit(agent):
    # Both units are Type=notify: a start completes only when the binary sends READY=1. The TEST
    # DOUBLE does that for its main PID; this runs it once under a transient unit of the same type
    # (its own log file, so the role's units stay provably unstarted).
    probe = "gk3s-notify-probe"
    result = agent.run(f"timeout 60 systemd-run --unit={probe} -p Type=notify -p TimeoutStartSec=30 "
                       f"-E GK3S_TEST_DOUBLE_LOG=/tmp/{probe}.log /usr/local/bin/k3s agent")
    try:
        assert result.rc == 0, result.stderr
        assert agent.run(f"systemctl is-active {probe}.service").stdout.strip() == "active"
    finally:
        agent.run(f"systemctl stop {probe}.service; systemctl reset-failed {probe}.service")


def test_agent_unit_orders_after_system_containerd(server, agent):
    assert "After=containerd.service" in agent.file("/etc/systemd/system/k3s-agent.service").content_string
    assert "containerd.service" not in server.file("/etc/systemd/system/k3s.service").content_string


def test_embedded_mode_links_k3s_cni_dir_to_calicos(server, agent):
    link = server.file("/var/lib/rancher/k3s/agent/etc/cni/net.d")
    assert link.is_symlink and link.linked_to == "/etc/cni/net.d"
    assert server.file("/etc/cni/net.d").is_directory
    assert not agent.file("/var/lib/rancher/k3s/agent/etc/cni/net.d").exists


def test_airgap_images_are_copied_verified(agent):
    for name in ("k3s-airgap-images-amd64.tar", "calico-images-stand-in.tar.gz"):
        f = agent.file(f"/var/lib/rancher/k3s/agent/images/{name}")
        assert f.mode == 0o644
        assert f.sha256sum == controller_sha256(name)


def test_system_mode_imports_each_archive_once(agent):
    log = agent.file("/var/log/gitpod-k3s-test-double.log").content_string.splitlines()
    imports = [line for line in log if line == IMPORT]
    # One per archive over converge and the idempotence run: the second run imported nothing.
    assert len(imports) == 2, log
    for name in ("k3s-airgap-images-amd64.tar", "calico-images-stand-in.tar.gz"):
        marker = agent.file(f"/var/lib/rancher/k3s/agent/images/.imported/{name}.sha256")
        assert marker.content_string.strip() == controller_sha256(name)


def test_the_test_double_was_never_started_as_k3s(server, agent):
    assert not server.file("/var/log/gitpod-k3s-test-double.log").exists
    log = agent.file("/var/log/gitpod-k3s-test-double.log").content_string.splitlines()
    assert not [line for line in log if line.split()[:1] in (["server"], ["agent"])]


def test_no_kubeconfig_without_a_started_server():
    assert not (EPHEMERAL / "artifacts" / "kubeconfig").exists()
