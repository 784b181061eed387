"""host_prep on every node: sysctls, kernel modules, swap, packages, directories, time sync."""

import json

import pytest

from conftest import run_module

SYSCTL_FILE = "/etc/sysctl.d/90-gitpod-k3s.conf"
WANTED = {
    "net.ipv4.ip_forward": "1",
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
    "net.core.somaxconn": "4096",
    "net.ipv4.ip_local_port_range": "5000 65000",
    "net.ipv4.tcp_tw_reuse": "1",
    "fs.inotify.max_user_watches": "1000000",
    "kernel.dmesg_restrict": "1",
    "vm.unprivileged_userfaultfd": "0",
}
# fs.inotify.max_user_watches is not namespaced: a container can neither set it nor be given it.
LIVE_SETTABLE = {k: v for k, v in WANTED.items() if k != "fs.inotify.max_user_watches"}


def live(host, key):
    return " ".join(host.file("/proc/sys/" + key.replace(".", "/")).content_string.split())


def test_sysctl_file_persists_every_parameter(host):
    f = host.file(SYSCTL_FILE)
    assert f.is_file and f.user == "root" and f.mode == 0o644
    lines = {line.split(" = ", 1)[0]: line.split(" = ", 1)[1]
             for line in f.content_string.splitlines() if " = " in line and not line.startswith("#")}
    assert lines == WANTED
    assert "Ansible managed" in f.content_string


@pytest.mark.parametrize("key", sorted(LIVE_SETTABLE))
def test_sysctl_live_value(host, key):
    assert live(host, key) == LIVE_SETTABLE[key]


def sysctl_args(settings, **options):
    return json.dumps({"sysctl": dict(options, settings=settings)})


def test_unsettable_sysctl_is_reported_and_fatal_on_request(host):
    # /proc/sys is read-only here: host_state reports the parameter it cannot write, only warns
    # by default (the converge succeeded with it) and fails with on_unapplied=fail.
    name = host.backend.get_hostname()
    assert live(host, "fs.inotify.max_user_watches") != "1000000"
    settings = {"fs.inotify.max_user_watches": 1000000}
    rc, out = run_module(name, "selfhosted.gitpod_k3s.host_state", sysctl_args(settings))
    assert rc == 0 and "[WARNING]: kernel parameters not applied" in out and "not writable" in out, out
    rc, out = run_module(name, "selfhosted.gitpod_k3s.host_state", sysctl_args(settings, on_unapplied="fail"))
    assert rc == 2 and "fs.inotify.max_user_watches (wanted '1000000'" in out, out


def test_required_sysctl_that_does_not_hold_fails(host):
    rc, out = run_module(host.backend.get_hostname(), "selfhosted.gitpod_k3s.host_state",
                         sysctl_args({"net.ipv4.ip_forward": 0}, required=["net.ipv4.ip_forward"]))
    assert rc == 2 and "required kernel parameters do not hold" in out, out


def test_modules_load_file(host):
    f = host.file("/etc/modules-load.d/gitpod-k3s.conf")
    assert f.is_file and f.mode == 0o644
    names = [line for line in f.content_string.splitlines() if line and not line.startswith("#")]
    assert names == ["overlay", "br_netfilter", "nf_conntrack", "ip_tables", "ip_set", "vxlan", "fuse"]


def test_kernel_modules_all_present_without_modprobe(host):
    # This kernel builds everything in and has no /lib/modules: nothing may need loading
    # (asked in check mode: host_state would load what is only loadable).
    out = host.ansible("selfhosted.gitpod_k3s.host_state",
                       "kernel_modules=overlay,br_netfilter,nf_conntrack,ip_tables,ip_set,vxlan,fuse")
    assert out["kernel_modules"]["to_load"] == [] and out["kernel_modules"]["unavailable"] == []
    assert out["changed"] is False


def test_swap_off_now_and_at_boot(host):
    assert host.file("/proc/swaps").content_string.strip().splitlines()[1:] == []
    fstab = host.file("/etc/fstab").content_string.splitlines()
    active_swap = [line for line in fstab if line.split()[2:3] == ["swap"] and not line.lstrip().startswith("#")]
    assert active_swap == []
    assert host.run("systemctl is-enabled swap.target").stdout.strip() == "masked"


def test_swap_line_in_fstab_was_commented_out(host):
    # prepare.yml gave gk3s-prep-2 an Ubuntu-style swap line; the others have none.
    commented = [line for line in host.file("/etc/fstab").content_string.splitlines()
                 if line.startswith("# /swap.img none swap sw 0 0")]
    assert len(commented) == (1 if host.backend.get_hostname() == "gk3s-prep-2" else 0)


@pytest.mark.parametrize("name", ["apparmor", "conntrack", "ebtables", "ethtool", "ipset", "iptables", "socat",
                                  "systemd-timesyncd"])
def test_package_installed(host, name):
    assert host.package(name).is_installed


def test_no_kernel_headers_for_a_kernel_the_archive_lacks(host):
    kernel = host.run("uname -r").stdout.strip()
    assert not host.package(f"linux-headers-{kernel}").is_installed


@pytest.mark.parametrize("path", ["/usr/src", "/var/gitpod/workspaces", "/var/lib/kubelet/seccomp"])
def test_gitpod_directories(host, path):
    d = host.file(path)
    assert d.is_directory and d.user == "root" and d.mode == 0o755


def test_time_sync_enabled_and_honest_about_containers(host):
    svc = host.service("systemd-timesyncd")
    assert svc.is_enabled
    assert not svc.is_running
    # ConditionVirtualization=!container: never runs in a container, by systemd's design.
    assert host.run("systemctl show -p ConditionResult --value systemd-timesyncd").stdout.strip() == "no"
