"""The calico role's CNI path alignment against stand-ins for k3s's generated containerd config.

No k3s and no Calico run here: the tests write the config.toml k3s would generate, in the two
shapes k3s releases produce with flannel off, and check what the role links or refuses."""

from conftest import AGENT, SERVER, recap_changed

CONFIG = "/var/lib/rancher/k3s/agent/etc/containerd/config.toml"
STATIC_BIN = "/var/lib/rancher/k3s/data/cni"
# Shape of releases with the static CNI bin dir (k3s-io/k3s#10868), containerd config version 3.
NEWER = """version = 3
[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dir = "/var/lib/rancher/k3s/data/cni"
  conf_dir = "/var/lib/rancher/k3s/agent/etc/cni/net.d"
"""
# Shape of older releases with flannel off: no CNI section, containerd's defaults apply.
OLDER = """version = 2
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
"""


def write_config(host, text):
    host.run_expect([0], f"mkdir -p {STATIC_BIN} $(dirname {CONFIG}) && cat > {CONFIG} <<'EOF'\n{text}EOF")


def test_static_bin_dir_gets_calicos_plugins_linked(server, run_playbook):
    write_config(server, NEWER)
    proc = run_playbook("molecule/k3s_install/cni_paths.yml", "--limit", SERVER)
    assert proc.returncode == 0, proc.stdout[-3000:]
    for plugin in ("calico", "calico-ipam"):
        # Dangling until calico-node installs the plugin, so readlink rather than realpath.
        assert server.file(f"{STATIC_BIN}/{plugin}").is_symlink
        assert server.check_output(f"readlink {STATIC_BIN}/{plugin}") == f"/opt/cni/bin/{plugin}"
    again = run_playbook("molecule/k3s_install/cni_paths.yml", "--limit", SERVER)
    assert recap_changed(again.stdout)[SERVER] == 0


def test_no_cni_section_means_containerd_defaults_and_no_links(server, run_playbook):
    server.run_expect([0], f"rm -f {STATIC_BIN}/calico {STATIC_BIN}/calico-ipam")
    write_config(server, OLDER)
    proc = run_playbook("molecule/k3s_install/cni_paths.yml", "--limit", SERVER)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert not server.file(f"{STATIC_BIN}/calico").exists


def test_unlinked_k3s_conf_dir_is_refused(agent, run_playbook):
    # The agent runs the system containerd, so the k3s role never linked k3s's CNI config dir.
    write_config(agent, NEWER)
    agent.run_expect([0], "mkdir -p /var/lib/rancher/k3s/agent/etc/cni/net.d")
    proc = run_playbook("molecule/k3s_install/cni_paths.yml", "--limit", AGENT,
                        "-e", "gitpod_k3s_containerd_mode=embedded")
    assert proc.returncode != 0
    assert "reads CNI configuration from /var/lib/rancher/k3s/agent/etc/cni/net.d" in proc.stdout
    assert "k3s_cni_conf_dir_link" in proc.stdout
