"""reset.yml removes k3s and the Calico leftovers, and a fresh install works afterwards.

No Calico ever ran here: the test creates what Calico would leave behind (cali-* chains and
rules, a cali* ipset, cali* and vxlan.calico links, /var/lib/calico, its CNI config)."""

from conftest import recap_changed

LEFTOVERS = " && ".join([
    "iptables -N cali-test-chain",
    "iptables -A INPUT -m comment --comment cali:test-rule -j cali-test-chain",
    "iptables -N KUBE-TEST-CHAIN",
    "ipset create cali40test-set hash:ip",
    "ip link add cali0test type veth peer name cali0peer",
    "ip link add vxlan.calico type vxlan id 4096 dstport 4789 dev eth0",
    "mkdir -p /var/lib/calico /etc/cni/net.d",
    "touch /etc/cni/net.d/10-calico.conflist /etc/cni/net.d/calico-kubeconfig",
])
# Pods the system containerd still holds when k3s stops (agent, system mode): a sandbox and two
# containers, under the TEST DOUBLE's stand-in for containerd, behind a stand-in socket file.
PODS = " && ".join([
    "mkdir -p /var/lib/gk3s-test-double/cri/pods /var/lib/gk3s-test-double/cri/containers /run/containerd",
    "touch /run/containerd/containerd.sock /var/lib/gk3s-test-double/cri/pods/sb-ws",
    "touch /var/lib/gk3s-test-double/cri/containers/sb-ws /var/lib/gk3s-test-double/cri/containers/ws-main"
    " /var/lib/gk3s-test-double/cri/containers/ws-daemon",
])
GONE = ["/usr/local/bin/k3s", "/etc/rancher/k3s", "/var/lib/rancher/k3s", "/etc/systemd/system/k3s.service",
        "/etc/systemd/system/k3s-agent.service", "/var/lib/calico", "/etc/cni/net.d/10-calico.conflist",
        "/etc/cni/net.d/calico-kubeconfig"]


def test_reset_needs_confirmation(server, run_playbook):
    proc = run_playbook("playbooks/reset.yml")
    assert proc.returncode != 0
    assert "k3s_reset_confirm=true" in proc.stdout
    assert server.file("/usr/local/bin/k3s").exists


def test_reset_removes_k3s_and_calico_state(server, agent, run_playbook):
    server.run_expect([0], LEFTOVERS)
    agent.run_expect([0], PODS)
    proc = run_playbook("playbooks/reset.yml", "-e", "k3s_reset_confirm=true")
    agent.run("rm -f /run/containerd/containerd.sock")
    assert proc.returncode == 0, proc.stdout[-3000:]
    # No API server answers Calico's CNI plugin: crictl rmp fails, containerd removes the pods.
    log = agent.file("/var/log/gitpod-k3s-test-double.log").content_string.splitlines()
    assert [line for line in log if line.startswith("crictl ") and " rmp --force sb-ws" in line]
    kills = [line for line in log if line.startswith("ctr ") and "tasks kill --all --signal SIGKILL" in line]
    assert len(kills) == 3, log
    assert agent.check_output("ls -A /var/lib/gk3s-test-double/cri/containers /var/lib/gk3s-test-double/cri/pods"
                              " | grep -v ':$' || true").strip() == ""
    for h in (server, agent):
        for path in GONE:
            assert not h.file(path).exists, path
        assert h.run("systemctl cat k3s k3s-agent").rc != 0
    rules = server.check_output("iptables-save")
    assert "cali-" not in rules and "cali:" not in rules and "KUBE-TEST" not in rules
    assert "cali" not in server.check_output("ipset list -n")
    links = server.check_output("ip -o link show")
    assert "cali0test" not in links and "vxlan.calico" not in links


def test_reset_again_changes_nothing(run_playbook):
    proc = run_playbook("playbooks/reset.yml", "-e", "k3s_reset_confirm=true")
    assert proc.returncode == 0
    assert set(recap_changed(proc.stdout).values()) == {0}, proc.stdout[-3000:]


def test_check_mode_on_the_reset_hosts_changes_nothing(server, agent, run_playbook):
    proc = run_playbook("molecule/k3s_install/converge.yml", "--check", "--diff")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert all(n > 0 for n in recap_changed(proc.stdout).values()), "check mode should report the changes"
    for h in (server, agent):
        assert not h.file("/usr/local/bin/k3s").exists
        assert not h.file("/etc/rancher/k3s/config.yaml").exists


def test_fresh_install_after_reset(server, agent, run_playbook):
    proc = run_playbook("molecule/k3s_install/converge.yml")
    assert proc.returncode == 0, proc.stdout[-3000:]
    for h, unit in ((server, "k3s"), (agent, "k3s-agent")):
        assert h.file("/usr/local/bin/k3s").exists
        assert h.file("/etc/rancher/k3s/config.yaml").mode == 0o600
        assert h.service(unit).is_enabled
