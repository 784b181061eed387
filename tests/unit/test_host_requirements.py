"""host_requirements: every check's pass, warn and fail paths, on a recorded host (HostDouble)."""

import gzip

import pytest

from host_probe_double import DEBIAN_12, GIB, MOUNTS_HYBRID, MOUNTS_V1, HostDouble, tcp_line

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import host_requirements as hr


def run(host, **options):
    return hr.run(host, options)


def check(host, check_id, **options):
    options.setdefault("only", [check_id])
    result = run(host, **options)
    (found,) = [c for c in result["checks"] if c["id"] == check_id]
    return found


def test_healthy_ubuntu_host_passes_every_check():
    result = run(HostDouble.ubuntu())
    assert [c["id"] for c in result["checks"]] == list(hr.CHECK_IDS)
    assert {c["id"]: c["status"] for c in result["checks"] if c["status"] != "pass"} == {}
    assert result["passed"] is True
    assert result["facts"]["hostname"] == "node1"


# --- os -----------------------------------------------------------------------------------------

def test_debian_fails_the_default_allow_list_and_says_how_to_relax_it():
    host = HostDouble.ubuntu()
    host.files["/etc/os-release"] = DEBIAN_12
    c = check(host, "os")
    assert c["status"] == "fail"
    assert c["actual"] == "debian 12"
    assert "preflight_allowed_distributions" in c["hint"] and "preflight_warn_only" in c["hint"]


def test_warn_only_turns_a_failure_into_a_warning_and_the_run_passes():
    host = HostDouble.ubuntu()
    host.files["/etc/os-release"] = DEBIAN_12
    result = run(host, only=["os"], warn_only=["os"])
    assert result["checks"][0]["status"] == "warn"
    assert "preflight_warn_only" in result["checks"][0]["hint"]
    assert result["passed"] is True


def test_allowed_but_untested_release_warns():
    host = HostDouble.ubuntu()
    host.files["/etc/os-release"] = 'ID=ubuntu\nVERSION_ID="24.04"\n'
    c = check(host, "os")
    assert (c["status"], c["actual"]) == ("warn", "ubuntu 24.04")


def test_pinned_release_rejects_other_releases():
    host = HostDouble.ubuntu()
    host.files["/etc/os-release"] = 'ID=ubuntu\nVERSION_ID="20.04"\n'
    assert check(host, "os", allowed_distributions=["ubuntu:22.04"])["status"] == "fail"
    assert check(host, "os", allowed_distributions=["ubuntu:20.04"])["status"] == "pass"


def test_empty_allow_list_allows_any_distribution():
    host = HostDouble.ubuntu()
    host.files["/etc/os-release"] = DEBIAN_12
    assert check(host, "os", allowed_distributions=[], tested_distributions=[])["status"] == "pass"


def test_missing_os_release_fails_as_unknown():
    host = HostDouble.ubuntu()
    del host.files["/etc/os-release"]
    c = check(host, "os")
    assert c["status"] == "fail" and "unknown" in c["actual"]


# --- kernel -------------------------------------------------------------------------------------

@pytest.mark.parametrize("release, status", [
    ("5.4.0-1045-aws", "pass"),
    ("6.1.0+", "pass"),
    ("5.10.0-28-cloud-amd64", "pass"),
    ("4.15.0-213-generic", "fail"),
])
def test_kernel_release_against_the_minimum(release, status):
    host = HostDouble.ubuntu()
    host.release = release
    assert check(host, "kernel")["status"] == status


def test_unreadable_kernel_release_fails_clearly():
    host = HostDouble.ubuntu()
    host.release = "mystery-kernel"
    c = check(host, "kernel")
    assert c["status"] == "fail"
    assert "cannot read kernel release 'mystery-kernel'" in c["hint"]


def test_minimum_kernel_is_an_option():
    host = HostDouble.ubuntu()
    assert check(host, "kernel", min_kernel="6.0")["status"] == "fail"


# --- vcpus --------------------------------------------------------------------------------------

def test_two_vcpus_fail_the_default_floor_and_the_hint_shows_the_relaxation():
    host = HostDouble.ubuntu()
    host.cpus = 2
    c = check(host, "vcpus")
    assert c["status"] == "fail"
    assert "-e preflight_min_vcpus=2" in c["hint"]


def test_relaxed_floor_leaves_the_profile_warning_for_meta_and_workspace():
    host = HostDouble.ubuntu()
    host.cpus = 2
    c = check(host, "vcpus", min_vcpus=2, workloads=["meta"])
    assert c["status"] == "warn"
    assert "preflight_profiles.meta.warn_vcpus" in c["hint"]


def test_ide_only_host_is_exempt_from_the_vcpu_warning():
    host = HostDouble.ubuntu()
    host.cpus = 2
    assert check(host, "vcpus", min_vcpus=2, workloads=["ide"])["status"] == "pass"


def test_profile_minimum_applies_below_a_lowered_floor():
    host = HostDouble.ubuntu()
    host.cpus = 1
    c = check(host, "vcpus", min_vcpus=1, workloads=["ide"])
    assert c["status"] == "fail"
    assert "preflight_profiles.ide.min_vcpus" in c["hint"]


def test_cgroup_cpu_quota_caps_usable_vcpus():
    host = HostDouble.ubuntu()
    host.files["/proc/self/cgroup"] = "4:cpu,cpuacct:/docker/abc\n0::/docker/abc\n"
    host.files["/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us"] = "150000\n"
    host.files["/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us"] = "100000\n"
    c = check(host, "vcpus")
    assert (c["status"], c["actual"]) == ("fail", "1.5")


def test_cgroup_v2_cpu_max_on_a_parent_caps_usable_vcpus():
    host = HostDouble.ubuntu()
    host.files["/proc/self/cgroup"] = "0::/machine.slice/vm/inner\n"
    host.files["/sys/fs/cgroup/machine.slice/vm/cpu.max"] = "400000 100000\n"
    host.files["/sys/fs/cgroup/machine.slice/vm/inner/cpu.max"] = "max 100000\n"
    assert check(host, "vcpus")["actual"] == "4"


# --- memory -------------------------------------------------------------------------------------

@pytest.mark.parametrize("workloads, gib, status", [
    (["meta"], 6, "fail"),
    (["meta"], 12, "warn"),
    (["meta"], 16, "pass"),
    (["ide"], 3, "fail"),
    (["ide"], 5, "pass"),
    (["workspace"], 12, "fail"),
    (["workspace"], 16, "pass"),
    (["ide", "workspace"], 12, "fail"),
    ([], 3, "fail"),
    ([], 5, "pass"),
])
def test_memory_thresholds_follow_the_workloads_once_the_floor_is_lowered(workloads, gib, status):
    host = HostDouble.ubuntu().memory(gib)
    assert check(host, "memory", min_memory_gib=4, workloads=workloads)["status"] == status


def test_default_floor_fails_below_16_gib_whatever_the_workloads():
    host = HostDouble.ubuntu().memory(12)
    c = check(host, "memory", workloads=["ide"])
    assert c["status"] == "fail" and "-e preflight_min_memory_gib=" in c["hint"]


def test_a_16_gib_machine_showing_15_6_gib_passes():
    host = HostDouble.ubuntu().memory(15.6)
    assert check(host, "memory")["status"] == "pass"


def test_cgroup_v1_memory_limit_caps_memory():
    host = HostDouble.ubuntu()
    host.files["/proc/self/cgroup"] = "4:memory:/docker/abc\n"
    host.files["/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes"] = str(3 * GIB)
    host.files["/sys/fs/cgroup/memory/memory.limit_in_bytes"] = "9223372036854771712"
    c = check(host, "memory")
    assert (c["status"], c["actual"]) == ("fail", "3.0 GiB")


def test_unreadable_meminfo_fails_the_memory_check():
    host = HostDouble.ubuntu()
    host.files["/proc/meminfo"] = "garbage\n"
    assert check(host, "memory")["actual"] == "unknown"


# --- disk ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("free, status", [(10, "fail"), (50, "warn"), (200, "pass")])
def test_free_space_under_the_data_dir(free, status):
    host = HostDouble.ubuntu()
    host.free["/var/lib"] = free * GIB
    assert check(host, "disk")["status"] == status


def test_missing_data_dir_is_measured_at_its_nearest_parent():
    host = HostDouble.ubuntu()
    host.free["/srv"] = 500 * GIB
    c = check(host, "disk", data_dir="/srv/gitpod/data")
    assert c["status"] == "pass" and "/srv" in c["actual"]


def test_unstatable_data_dir_fails():
    host = HostDouble.ubuntu()
    host.free.clear()
    host.dirs.add("/")
    assert check(host, "disk")["status"] == "fail"


# --- swap, cgroup, systemd ----------------------------------------------------------------------

def test_swap_warns_when_on_and_passes_when_off():
    assert check(HostDouble.ubuntu().memory(32, swap_gib=2), "swap")["status"] == "warn"
    assert check(HostDouble.ubuntu(), "swap")["status"] == "pass"


@pytest.mark.parametrize("mounts, version, status", [
    ("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n", "v2", "pass"),
    (MOUNTS_HYBRID, "hybrid", "pass"),
    (MOUNTS_V1, "v1", "pass"),
    ("proc /proc proc rw 0 0\n", "none", "fail"),
])
def test_cgroup_version_is_reported(mounts, version, status):
    host = HostDouble.ubuntu()
    host.files["/proc/self/mounts"] = mounts
    c = check(host, "cgroup")
    assert (c["status"], version in c["actual"] or c["actual"].startswith("no cgroup")) == (status, True)


def test_host_without_systemd_fails_and_names_pid_1():
    host = HostDouble.ubuntu()
    host.dirs.discard("/run/systemd/system")
    host.files["/proc/1/comm"] = "process_api\n"
    c = check(host, "systemd")
    assert c["status"] == "fail" and "process_api" in c["actual"]


# --- kernel features ----------------------------------------------------------------------------

def bare_kernel_host():
    """A host where no feature is live: detection must come from /lib/modules or the config."""
    host = HostDouble.ubuntu()
    host.dirs = {d for d in host.dirs if not d.startswith("/sys/module") and d != "/proc/sys/net/bridge"}
    host.files = {p: v for p, v in host.files.items() if not p.startswith("/sys/module")}
    host.files["/proc/filesystems"] = "nodev\tsysfs\n\text4\n"
    del host.files["/proc/net/ip_tables_names"]
    return host


def test_features_loadable_from_modules_dep_pass():
    host = bare_kernel_host()
    host.files[f"/lib/modules/{host.release}/modules.dep"] = "\n".join([
        "kernel/fs/overlayfs/overlay.ko.zst:",
        "kernel/net/bridge/br_netfilter.ko.zst: kernel/net/bridge/bridge.ko.zst",
        "kernel/drivers/net/vxlan/vxlan.ko.zst: kernel/net/ipv4/udp_tunnel.ko.zst",
        "kernel/net/ipv4/netfilter/ip_tables.ko.zst: kernel/net/netfilter/x_tables.ko.zst",
        "kernel/net/netfilter/ipset/ip_set.ko.zst:",
        "kernel/fs/fuse/fuse.ko:",
    ]) + "\n"
    result = run(host, only=["kernel_features"])
    assert result["checks"][0]["status"] == "pass"
    assert result["facts"]["kernel_features"]["overlay"]["state"] == "loadable"


def test_features_built_in_per_modules_builtin_pass():
    host = bare_kernel_host()
    host.files[f"/lib/modules/{host.release}/modules.builtin"] = "\n".join(
        f"kernel/x/{m}.ko" for m in ("overlay", "br_netfilter", "vxlan", "ip_tables", "ip_set", "fuse")) + "\n"
    result = run(host, only=["kernel_features"])
    assert result["checks"][0]["status"] == "pass"
    assert result["facts"]["kernel_features"]["vxlan"]["state"] == "builtin"


def test_features_built_in_per_the_kernel_config_pass():
    host = bare_kernel_host()
    config = "\n".join(f"CONFIG_{s}=y" for s in ("OVERLAY_FS", "BRIDGE_NETFILTER", "NET_IPIP", "IP_NF_IPTABLES", "IP_SET"))
    host.files["/proc/config.gz"] = config + "\nCONFIG_FUSE_FS=m\n# CONFIG_VXLAN is not set\n"
    result = run(host, only=["kernel_features"])
    assert result["checks"][0]["status"] == "pass"
    feats = result["facts"]["kernel_features"]
    assert (feats["ipip"]["state"], feats["vxlan"]["state"], feats["fuse"]["state"]) == ("builtin", "missing", "loadable")


def test_the_real_probe_reads_a_gzipped_kernel_config(tmp_path):
    path = tmp_path / "config.gz"
    path.write_bytes(gzip.compress(b"CONFIG_VXLAN=y\n"))
    assert hr.Probe().read(str(path)) == "CONFIG_VXLAN=y\n"


def test_missing_features_fail_and_are_listed():
    host = HostDouble.ubuntu()
    host.dirs -= {"/proc/sys/net/bridge", "/sys/module/br_netfilter", "/sys/module/vxlan"}
    c = check(host, "kernel_features")
    assert c["status"] == "fail"
    assert c["actual"] == "missing: br_netfilter, vxlan or ipip"
    assert "modprobe br_netfilter vxlan" in c["hint"]


def test_ipip_alone_satisfies_calico_encapsulation():
    host = HostDouble.ubuntu()
    host.dirs.discard("/sys/module/vxlan")
    host.dirs.add("/sys/class/net/tunl0")
    assert check(host, "kernel_features")["status"] == "pass"


def test_shiftfs_without_fuse_satisfies_workspaces():
    host = HostDouble.ubuntu()
    host.dirs.discard("/sys/module/fuse")
    host.files["/proc/filesystems"] = "nodev\toverlay\nnodev\tshiftfs\n"
    assert check(host, "kernel_features")["status"] == "pass"


def test_fuse_is_required_on_workspace_hosts_only():
    host = HostDouble.ubuntu()
    host.dirs.discard("/sys/module/fuse")
    host.files["/proc/filesystems"] = "nodev\toverlay\n"
    assert check(host, "kernel_features", workloads=["workspace"])["status"] == "fail"
    assert check(host, "kernel_features", workloads=["meta", "ide"])["status"] == "pass"


# --- containerd ---------------------------------------------------------------------------------

def with_containerd(output, rc=0, path="/usr/bin/containerd"):
    host = HostDouble.ubuntu()
    host.files[path] = ""
    host.commands[(path, "--version")] = (rc, output, "boom" if rc else "")
    return host


def test_no_containerd_passes_unless_required():
    assert check(HostDouble.ubuntu(), "containerd")["status"] == "pass"
    c = check(HostDouble.ubuntu(), "containerd", require_containerd=True)
    assert (c["status"], c["actual"]) == ("fail", "not installed")


@pytest.mark.parametrize("output, status", [
    ("containerd containerd.io 1.6.28 ae07eda36dd25f8a1b98dfbf587313b99c0190bb\n", "pass"),
    ("containerd github.com/containerd/containerd 1.4.13 9cc61520f4cd876b86e77edfeb88fbcd536d1f9d\n", "fail"),
    ("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1\n", "pass"),
])
def test_installed_containerd_against_the_minimum(output, status):
    assert check(with_containerd(output), "containerd")["status"] == status


def test_k3s_embedded_containerd_is_found():
    host = with_containerd("containerd github.com/k3s-io/containerd v1.7.11-k3s2\n",
                           path="/var/lib/rancher/k3s/data/current/bin/containerd")
    c = check(host, "containerd", min_containerd_version="1.7")
    assert (c["status"], c["actual"]) == ("pass", "1.7.11")


def test_unparseable_containerd_output_fails_without_a_traceback():
    c = check(with_containerd("containerd (devel)\n"), "containerd")
    assert c["status"] == "fail" and "cannot read containerd version" in c["hint"]


def test_failing_containerd_command_fails_with_rc_and_stderr():
    c = check(with_containerd("", rc=127), "containerd")
    assert c["status"] == "fail" and "exited 127: boom" in c["hint"]


def test_only_containerd_collects_nothing_else_and_runs_one_command():
    host = with_containerd("containerd github.com/containerd/containerd 1.7.12\n")
    result = run(host, only=["containerd"], min_containerd_version="1.7.0", require_containerd=True)
    assert [c["id"] for c in result["checks"]] == ["containerd"]
    assert set(result["facts"]) == {"hostname", "architecture", "kernel", "containerd"}
    assert host.calls == [["/usr/bin/containerd", "--version"]]


# --- ports --------------------------------------------------------------------------------------

def test_free_ports_pass_and_other_listeners_are_ignored():
    c = check(HostDouble.ubuntu(), "ports")
    assert (c["status"], c["actual"]) == ("pass", "all free")


def test_port_held_by_another_process_fails_and_names_it():
    host = HostDouble.ubuntu().listen(6443, owner="nginx")
    c = check(host, "ports")
    assert c["status"] == "fail" and "6443/tcp by nginx" in c["actual"]


def test_ports_held_by_k3s_and_calico_only_warn():
    host = HostDouble.ubuntu().listen(6443, owner="k3s-server", pid=10).listen(179, owner="bird", pid=11)
    host.listen(4789, proto="udp")
    host.dirs.add("/sys/class/net/vxlan.calico")
    c = check(host, "ports")
    assert c["status"] == "warn"
    assert "4789/udp by calico vxlan (kernel)" in c["actual"]


def test_owner_list_is_an_option():
    host = HostDouble.ubuntu().listen(6443, owner="k3s-server")
    assert check(host, "ports", port_owners_expected=["haproxy"])["status"] == "warn"  # k3s* always counts
    host = HostDouble.ubuntu().listen(6443, owner="haproxy")
    assert check(host, "ports", port_owners_expected=["haproxy"])["status"] == "warn"


def test_agents_do_not_check_server_ports():
    host = HostDouble.ubuntu().listen(6443, owner="nginx")
    assert check(host, "ports", k3s_server=False)["status"] == "pass"


def test_established_connections_are_not_listeners():
    host = HostDouble.ubuntu()
    host.files["/proc/net/tcp"] += tcp_line(10250, state="01")  # ESTABLISHED
    assert check(host, "ports")["status"] == "pass"


def test_listener_whose_owner_cannot_be_found_fails():
    host = HostDouble.ubuntu().listen(10250, owner="kubelet")
    host.links.clear()
    c = check(host, "ports")
    assert c["status"] == "fail" and "unknown process" in c["actual"]


# --- /usr/src and headers -----------------------------------------------------------------------

def test_missing_usr_src_fails_on_workspace_hosts_only():
    host = HostDouble.ubuntu()
    host.dirs.discard("/usr/src")
    assert check(host, "usr_src")["status"] == "fail"
    assert check(host, "usr_src", workloads=["meta"])["status"] == "pass"


def test_missing_kernel_headers_warn():
    host = HostDouble.ubuntu()
    host.dirs.discard(f"/lib/modules/{host.release}/build")
    c = check(host, "kernel_headers")
    assert c["status"] == "warn" and f"linux-headers-{host.release}" in c["hint"]


# --- options and results ------------------------------------------------------------------------

@pytest.mark.parametrize("options, message", [
    ({"only": ["cpu"]}, "only: unknown check id(s) cpu"),
    ({"warn_only": ["bogus"]}, "warn_only: unknown check id(s) bogus"),
    ({"workloads": ["gpu"]}, "workloads: unknown workload(s) gpu"),
    ({"profiles": {"meta": {"min_cpus": 1}}}, "profiles.meta.min_cpus: unknown threshold"),
    ({"profiles": {"meta": {"min_vcpus": "many"}}}, "profiles.meta.min_vcpus: expected a number"),
    ({"ports": ["6443/sctp"]}, "ports: entries look like"),
    ({"min_kernel": "latest"}, "min_kernel: cannot read"),
    ({"min_vcpus": -1}, "min_vcpus: expected a number >= 0"),
    ({"allowed_distributions": [":22.04"]}, "allowed_distributions: entries look like"),
])
def test_bad_options_raise_an_error_naming_the_option(options, message):
    with pytest.raises(hr.OptionError) as err:
        run(HostDouble.ubuntu(), **options)
    assert message in str(err.value)


def test_failure_message_lists_every_failing_check_with_its_hint():
    host = HostDouble.ubuntu().memory(4)
    host.cpus = 2
    result = run(host)
    assert result["passed"] is False
    lines = result["msg"].splitlines()
    assert lines[0] == "2 host requirement(s) not met:"
    assert lines[1].startswith("- vcpus: expected >= 4") and "Fix:" in lines[1]
    assert lines[2].startswith("- memory: expected >= 16 GiB")


def test_the_real_host_is_read_without_errors():
    class LiveProbe(hr.Probe):
        def run(self, args):
            import subprocess
            p = subprocess.run(args, capture_output=True, text=True, check=False)
            return p.returncode, p.stdout, p.stderr

    result = hr.run(LiveProbe(), {})
    assert [c["id"] for c in result["checks"]] == list(hr.CHECK_IDS)
    assert all(c["status"] in ("pass", "warn", "fail") for c in result["checks"])


@pytest.mark.parametrize("comm, dirs, expected", [
    ("systemd\n", {"/run/systemd/system/"}, "systemd"),
    ("process_api\n", set(), "process_api"),                 # PID 1's own name, as setup reports it
    ("init\n", {"/run/systemd/system/"}, "systemd"),          # init: ask systemd's canaries
    ("bash\n", {"/etc/init.d"}, "sysvinit"),                  # a shell as PID 1 says nothing
    (None, set(), "service"),
])
def test_host_facts_as_setup_decides_them(comm, dirs, expected):
    host = HostDouble()
    host.release, host.machine = "6.8.0-31-generic", "aarch64"
    if comm is not None:
        host.files["/proc/1/comm"] = comm
    host.dirs |= dirs
    assert hr.host_facts(host) == {"kernel": "6.8.0-31-generic", "architecture": "aarch64", "service_mgr": expected}


def test_host_facts_match_setup_on_this_machine():
    """The facts setup's own collectors return on the machine running the tests."""
    from ansible.module_utils.facts.system.platform import PlatformFactCollector
    from ansible.module_utils.facts.system.service_mgr import ServiceMgrFactCollector

    class Module:
        def get_bin_path(self, name, *args, **kwargs):
            import shutil
            return shutil.which(name)

        def run_command(self, args, **kwargs):
            import subprocess
            proc = subprocess.run(args, capture_output=True, text=True, check=False)
            return proc.returncode, proc.stdout, proc.stderr

    platform = PlatformFactCollector().collect(module=Module())
    manager = ServiceMgrFactCollector().collect(module=Module(), collected_facts={"ansible_system": "Linux"})
    ours = hr.host_facts(hr.Probe())
    assert ours == {"kernel": platform["kernel"], "architecture": platform["architecture"],
                    "service_mgr": manager["service_mgr"]}
