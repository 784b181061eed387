"""module_utils.host_state and the host_state module, on a temporary root and a fake command runner."""

import grp
import json
import os
import pwd
import stat
import subprocess
import sys
import time

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import host_state, sysctl
from ansible_collections.selfhosted.gitpod_k3s.plugins.modules import host_state as host_state_module

USER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name
RELEASE = os.uname().release
DPKG_QUERY = ["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\t${Version}\n"]
LISTS = "var/lib/apt/lists"
PACKAGES_FILE = "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"
# Commands that only read the host: all a check-mode pass may run.
READS = {("systemd-detect-virt",), ("dpkg-query",), ("apt-cache", "show"), ("systemctl", "show")}


class FakeHost:
    """The command side of a host: records every argv (and env) and answers from small tables."""

    def __init__(self, root):
        self.root = root
        self.calls, self.envs = [], []
        self.container = False
        self.installed = {}    # package -> version (dpkg status "ii ")
        self.archive = set()   # packages apt-cache show knows
        self.units = {}        # unit -> {LoadState, UnitFileState, ActiveState}
        self.failures = {}     # argv prefix (tuple) -> (rc, out, err)
        self.containerd = "containerd github.com/containerd/containerd 1.7.12 abc123\n"

    def __call__(self, argv, env):
        self.calls.append(argv)
        self.envs.append(env)
        for prefix, answer in self.failures.items():
            if tuple(argv[:len(prefix)]) == prefix:
                return answer
        if argv[0] == "systemd-detect-virt":
            return (0, "lxc\n", "") if self.container else (1, "none\n", "")
        if argv[0] == "dpkg-query":
            names = argv[len(DPKG_QUERY):]
            return 0, "".join(f"{n}\tii \t{self.installed[n]}\n" for n in names if n in self.installed), ""
        if argv[:2] == ["apt-get", "update"]:
            write(self.root, f"{LISTS}/{PACKAGES_FILE}", "Package: x\n")
            return 0, "", ""
        if argv[:2] == ["apt-get", "install"]:
            for name in argv[len(host_state.APT_INSTALL):]:
                self.installed[name] = "1.0-1"
            return 0, "", ""
        if argv[:2] == ["apt-cache", "show"]:
            return (0, f"Package: {argv[-1]}\n", "") if argv[-1] in self.archive else (100, "", "E: No packages found")
        if argv[:2] == ["systemctl", "show"]:
            # As systemctl: one block per unit named after "--", in that order, blank-line separated.
            names = argv[argv.index("--") + 1:]
            missing = {"LoadState": "not-found", "UnitFileState": "", "ActiveState": "inactive"}
            return 0, "\n".join("".join(f"{k}={v}\n" for k, v in self.units.get(n, missing).items()) for n in names), ""
        if argv[0] == "systemctl" and argv[1] in ("enable", "start", "restart", "mask"):
            unit = self.units[argv[-1]]
            key, value = {"enable": ("UnitFileState", "enabled"), "mask": ("UnitFileState", "masked")}.get(
                argv[1], ("ActiveState", "active"))
            unit[key] = value
            return 0, "", ""
        if argv[1:] == ["--version"] and argv[0].endswith("/containerd"):
            return 0, self.containerd, ""
        if argv in (["dpkg", "--configure", "-a"], ["swapoff", "-a"]) or argv[0] == "modprobe":
            return 0, "", ""
        raise AssertionError(f"unexpected command {argv}")

    def commands(self):
        """The calls as their first two words: ("apt-get", "install"), ("systemctl", "show"), ..."""
        return [tuple(argv[:2]) if argv[0] in ("apt-get", "apt-cache", "systemctl", "dpkg") else (argv[0],)
                for argv in self.calls]

    def after_detect_virt(self):
        """commands() past the container probe, which must come first (how often it runs: see
        test_converge_probes_the_container_once)."""
        commands = self.commands()
        assert commands[0] == ("systemd-detect-virt",)
        return [c for c in commands if c != ("systemd-detect-virt",)]


def write(root, path, text, mode=None):
    full = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as handle:
        handle.write(text)
    if mode is not None:
        os.chmod(full, mode)
    return full


def read(root, path):
    with open(os.path.join(root, path.lstrip("/"))) as handle:
        return handle.read()


def lists(root, age):
    """Package lists refreshed ``age`` seconds ago (the directory's mtime, as ansible.builtin.apt reads it)."""
    write(root, f"{LISTS}/{PACKAGES_FILE}", "Package: x\n")
    then = time.time() - age
    os.utime(os.path.join(root, LISTS), (then, then))


def make_proc(root, values):
    for key, value in values.items():
        write(root, sysctl.key_to_path(key, "/proc/sys"), f"{value}\n")


def unit(file="enabled", active="active", load="loaded"):
    return {"LoadState": load, "UnitFileState": file, "ActiveState": active}


@pytest.fixture
def root(tmp_path):
    # An apt-based host: dpkg is there (the fake runner answers its queries).
    write(str(tmp_path), "/usr/bin/dpkg-query", "")
    return str(tmp_path)


@pytest.fixture
def host(root):
    return FakeHost(root)


@pytest.fixture
def ansible_module():
    """An AnsibleModule for System's file helpers (atomic_move, set_fs_attributes_if_different)."""
    with patch_module_args({}):
        return AnsibleModule(argument_spec={})


@pytest.fixture
def system(host, ansible_module, root):
    return host_state.System(host, ansible_module, root)


@pytest.fixture
def report():
    return host_state.Report()


@pytest.fixture
def check_report():
    return host_state.Report(check_mode=True)


# ---------------------------------------------------------------------------------------------
# dpkg journal and packages


def test_all_installed_runs_only_dpkg_query(host, system, report):
    host.installed = {"curl": "7.88.1-10", "socat": "1.7.4"}
    section = host_state.packages(system, report, [{"name": "socat"}, {"name": "curl"}])
    assert host.calls == [DPKG_QUERY + ["curl", "socat"]]
    assert report.changed is False and report.changes == [] and report.diffs == []
    assert section["present"] == ["socat", "curl"] and section["installed"] == []
    assert section["versions"] == {"curl": "7.88.1-10", "socat": "1.7.4"}


def test_dpkg_installed_counts_only_ii_and_strips_the_architecture(system):
    def run(argv, env):
        return 1, "libc6:amd64\tii \t2.36\nold\trc \t1.0\nbroken\tiF \t2.0\n", "no packages found matching x"
    assert host_state.dpkg_installed(host_state.System(run, system.module, system.root), ["libc6", "old", "broken", "x"]) == {"libc6": "2.36"}


@pytest.mark.parametrize("age", [None, 7200], ids=["no-lists", "stale-lists"])
def test_missing_package_refreshes_lists_then_installs(host, system, report, root, age):
    if age is not None:
        lists(root, age)
    host.installed = {"curl": "7.88"}
    section = host_state.packages(system, report, [{"name": "curl"}, {"name": "socat"}], cache_valid_time=3600)
    assert host.calls == [DPKG_QUERY + ["curl", "socat"], ["apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=600"],
                          host_state.APT_INSTALL + ["socat"], DPKG_QUERY + ["socat"]]
    assert host.envs[1] == host.envs[2] == host_state.APT_ENV
    assert section["refreshed"] is True and section["installed"] == ["socat"]
    assert section["versions"] == {"curl": "7.88", "socat": "1.0-1"}
    assert report.changed is True and report.changes == ["installed socat"]
    assert report.diffs == [{"before_header": "packages", "after_header": "packages", "before": "", "after": "+ socat\n"}]
    assert time.time() - os.path.getmtime(os.path.join(root, LISTS)) < 60  # the refresh is recorded


def test_fresh_lists_install_without_update(host, system, report, root):
    lists(root, 600)
    section = host_state.packages(system, report, [{"name": "socat"}, {"name": "conntrack"}], cache_valid_time=3600)
    assert host.commands() == [("dpkg-query",), ("apt-get", "install"), ("dpkg-query",)]
    assert host.calls[1] == host_state.APT_INSTALL + ["socat", "conntrack"]
    assert section["refreshed"] is False


def test_optional_package_not_in_archive_is_unavailable(host, system, report, root):
    lists(root, 0)
    section = host_state.packages(system, report, [{"name": "linux-headers-6.8.0-fc", "optional": True}])
    assert host.calls[1] == ["apt-cache", "show", "--no-all-versions", "linux-headers-6.8.0-fc"]
    assert host.commands() == [("dpkg-query",), ("apt-cache", "show")]
    assert section["unavailable"] == ["linux-headers-6.8.0-fc"] and section["installed"] == []
    assert report.changed is False


def test_optional_package_in_archive_is_installed(host, system, report, root):
    lists(root, 0)
    host.archive = {"linux-headers-6.8.0-fc"}
    section = host_state.packages(system, report, [{"name": "linux-headers-6.8.0-fc", "optional": True}])
    assert host.calls[2] == host_state.APT_INSTALL + ["linux-headers-6.8.0-fc"]
    assert section["installed"] == ["linux-headers-6.8.0-fc"] and report.changed is True


def test_unless_installed_alternative_skips_the_package(host, system, report):
    host.installed = {"chrony": "4.3"}
    section = host_state.packages(system, report, [{"name": "systemd-timesyncd", "unless_installed": ["chrony", "ntp"]}])
    assert host.calls == [DPKG_QUERY + ["chrony", "ntp", "systemd-timesyncd"]]
    assert section["skipped"] == {"systemd-timesyncd": "chrony"} and section["present"] == []
    assert report.changed is False


def test_check_mode_without_lists_would_refresh_and_install(host, system, check_report, root):
    specs = [{"name": "socat"}, {"name": "hdr", "optional": True}]
    section = host_state.packages(system, check_report, specs)
    assert host.calls == [DPKG_QUERY + ["hdr", "socat"]]
    assert check_report.changed is True
    assert check_report.changes == ["would refresh the package lists and install socat, hdr (if the archive has it)"]
    assert section["installed"] == ["socat", "hdr"]
    assert not os.path.exists(os.path.join(root, LISTS))


def test_check_mode_with_stale_lists_only_reads(host, system, check_report, root):
    lists(root, 7200)
    host.archive = {"hdr"}
    host_state.packages(system, check_report, [{"name": "socat"}, {"name": "hdr", "optional": True}])
    assert set(host.commands()) <= READS
    assert check_report.changes == ["would install socat, hdr"] and check_report.diffs[0]["after"] == "+ socat\n+ hdr\n"


@pytest.mark.parametrize("age, failing, match", [
    (0, ("apt-get", "install"), r"^`apt-get install -y -q .* socat` exited 100: Reading lists / E: boom$"),
    (None, ("apt-get", "update"), r"^`apt-get update -q -o DPkg::Lock::Timeout=600` exited 100: Reading lists / E: boom\. .*working apt source"),
])
def test_apt_get_failure_names_the_command(host, system, report, root, age, failing, match):
    if age is not None:
        lists(root, age)
    host.failures[failing] = (100, "", "Reading lists\nE: boom\n")
    with pytest.raises(host_state.HostStateError, match=match):
        host_state.packages(system, report, [{"name": "socat"}])
    assert host.commands()[-1] == failing  # nothing runs after the failure


def test_dpkg_journal_is_replayed_before_any_apt_call(host, system, root):
    write(root, "/var/lib/dpkg/updates/0001", "")
    lists(root, 0)
    report = host_state.converge(system, {"packages": [{"name": "socat"}]})
    assert host.after_detect_virt() == [("dpkg", "--configure"), ("dpkg-query",), ("apt-get", "install"), ("dpkg-query",)]
    assert host.envs[host.calls.index(["dpkg", "--configure", "-a"])] == host_state.APT_ENV
    assert report.sections["dpkg_recovered"] is True and "dpkg --configure -a" in report.changes[0]


def test_dpkg_journal_in_check_mode_is_reported_not_replayed(host, system, root):
    write(root, "/var/lib/dpkg/updates/0001", "")
    report = host_state.converge(system, {}, check_mode=True)
    assert ("dpkg", "--configure") not in host.commands() and report.changed is True


# ---------------------------------------------------------------------------------------------
# min_versions

CONTAINERD = {"packages": [{"name": "containerd"}],
              "min_versions": [{"package": "containerd", "command": "containerd", "min_version": "1.7.0"}]}


@pytest.mark.parametrize("output, version", [("containerd github.com/containerd/containerd 1.6.20 abc\n", None),
                                             ("containerd containerd.io 1.7.12 ae07eda\n", "1.7.12")])
def test_installed_containerd_is_checked_against_the_minimum(host, system, root, output, version):
    host.installed, host.containerd = {"containerd": "1.6.20~ds1"}, output
    write(root, "/usr/local/bin/containerd", "")
    if version is None:
        with pytest.raises(host_state.HostStateError, match=r"/usr/local/bin/containerd is version 1\.6\.20; at least 1\.7\.0"):
            host_state.converge(system, CONTAINERD)
        return
    report = host_state.converge(system, CONTAINERD)
    assert report.sections["versions"] == {"containerd": {"installed": True, "path": "/usr/local/bin/containerd",
                                                          "version": version}}


def test_containerd_installed_by_the_pass_is_checked_after_install(host, system, root):
    lists(root, 0)
    write(root, "/usr/bin/containerd", "")
    host.containerd = "containerd containerd.io 1.6.28 ae07eda\n"
    with pytest.raises(host_state.HostStateError, match="1.6.28") as exc:
        host_state.converge(system, CONTAINERD)
    assert exc.value.report.changes == ["installed containerd"]


def test_containerd_not_checked_in_check_mode_when_the_pass_would_install_it(host, system, root):
    lists(root, 0)
    host.containerd = "containerd containerd.io 1.0.0 x\n"  # would fail if it were asked
    write(root, "/usr/bin/containerd", "")
    report = host_state.converge(system, CONTAINERD, check_mode=True)
    assert not any(argv[0].endswith("containerd") for argv in host.calls)
    assert "versions" not in report.sections and report.changes == ["would install containerd"]


# ---------------------------------------------------------------------------------------------
# Kernel modules


def test_unavailable_kernel_module_fails_naming_module_and_variables(host, system, report):
    gathered = {"sys_modules": {"overlay"}, "filesystems": set(), "exists": lambda path: False,
                "builtin": set(), "loadable": set()}
    with pytest.raises(host_state.HostStateError) as exc:
        host_state.load_kernel_modules(system, report, ["overlay", "nbd"], gathered=gathered, release="6.8.0-fc")
    msg = str(exc.value)
    assert "nbd (not loaded, not built in, not in modules.dep)" in msg and "overlay (" not in msg
    assert "host_prep_kernel_modules" in msg and "host_prep_extra_kernel_modules" in msg
    assert "linux-modules-extra-6.8.0-fc" in msg
    assert host.calls == []


def fake_kernel(root, release):
    write(root, "/proc/filesystems", "nodev\tsysfs\nnodev\toverlay\n\text4\n")
    write(root, f"/lib/modules/{release}/modules.dep", "kernel/net/bridge/br_netfilter.ko.zst: kernel/net/802/stp.ko\n")
    write(root, f"/lib/modules/{release}/modules.builtin", "kernel/fs/ext4/ext4.ko\n")


def test_loadable_kernel_module_is_modprobed_but_not_in_check_mode(host, system, check_report, report, root):
    fake_kernel(root, "6.8.0-fc")
    host_state.load_kernel_modules(system, check_report, ["br_netfilter"], release="6.8.0-fc")
    assert host.calls == [] and check_report.changes == ["would load kernel module br_netfilter"]
    host_state.load_kernel_modules(system, report, ["overlay", "br-netfilter", "ext4"], release="6.8.0-fc")
    assert host.calls == [["modprobe", "br_netfilter"]]
    assert report.changes == ["loaded kernel module br_netfilter"]
    states = {n: m["state"] for n, m in report.sections["kernel_modules"]["modules"].items()}
    assert states == {"overlay": "loaded", "br_netfilter": "loadable", "ext4": "builtin"}


# ---------------------------------------------------------------------------------------------
# Kernel parameters


def test_differing_writable_sysctl_is_written_and_diffed(system, check_report, report, root):
    make_proc(root, {"net.ipv4.ip_forward": "0", "net.core.somaxconn": "4096"})
    settings = {"net.ipv4.ip_forward": 1, "net.core.somaxconn": 4096}
    host_state.apply_sysctls(system, check_report, settings)
    assert read(root, "/proc/sys/net/ipv4/ip_forward") == "0\n"
    assert check_report.changes == ["would set kernel parameters net.ipv4.ip_forward"]
    host_state.apply_sysctls(system, report, settings)
    assert read(root, "/proc/sys/net/ipv4/ip_forward") == "1\n"
    assert report.diffs == [{"before_header": "/proc/sys", "after_header": "/proc/sys",
                             "before": "net.ipv4.ip_forward = 0\n", "after": "net.ipv4.ip_forward = 1\n"}]
    again = host_state.Report()
    host_state.apply_sysctls(system, again, settings)
    assert again.changed is False and again.sections["sysctl"]["applied"] == {}


def test_read_only_required_sysctl_fails(system, report, root, monkeypatch):
    make_proc(root, {"net.ipv4.ip_forward": "0"})
    monkeypatch.setattr(sysctl, "is_writable", lambda path: False)
    with pytest.raises(host_state.HostStateError, match=r"required .*net\.ipv4\.ip_forward \(wanted '1', live '0'"):
        host_state.apply_sysctls(system, report, {"net.ipv4.ip_forward": 1}, required=["net.ipv4.ip_forward"])
    assert read(root, "/proc/sys/net/ipv4/ip_forward") == "0\n"


def test_read_only_optional_sysctl_only_warns(system, report, root, monkeypatch):
    make_proc(root, {"fs.inotify.max_user_watches": "8192"})
    monkeypatch.setattr(sysctl, "is_writable", lambda path: False)
    host_state.apply_sysctls(system, report, {"fs.inotify.max_user_watches": 1000000}, required=["net.ipv4.ip_forward"],
                             persisted_in="/etc/sysctl.d/90-gitpod-k3s.conf")
    assert report.changed is False and len(report.warnings) == 1
    assert "fs.inotify.max_user_watches" in report.warnings[0] and "/etc/sysctl.d/90-gitpod-k3s.conf" in report.warnings[0]
    assert report.sections["sysctl"]["unapplied"]["fs.inotify.max_user_watches"]["actual"] == "8192"


# ---------------------------------------------------------------------------------------------
# Swap

SWAPS = "Filename\tType\tSize\tUsed\tPriority\n/swap.img                               file\t\t2097148\t\t0\t\t-2\n"


def test_active_swap_in_a_container_fails_without_swapoff(host, system, report, root):
    write(root, "/proc/swaps", SWAPS)
    with pytest.raises(host_state.HostStateError, match=r"Swap is active \(/swap.img .*container.*host_prep_disable_swap"):
        host_state.swap_off(system, report, container=True)
    assert host.calls == []


@pytest.mark.parametrize("swaps, container, calls", [(SWAPS, False, [["swapoff", "-a"]]),
                                                     (SWAPS.splitlines()[0] + "\n", True, [])])
def test_active_swap_on_a_machine_is_turned_off(host, system, report, root, swaps, container, calls):
    write(root, "/proc/swaps", swaps)
    host_state.swap_off(system, report, container=container)
    assert host.calls == calls and report.changed is bool(calls)
    assert report.sections["swap"]["active"] == swaps.splitlines()[1:]


FSTAB = "UUID=abc / ext4 errors=remount-ro 0 1\n/swap.img\tnone\tswap\tsw\t0\t0\n# /old.swap none swap sw 0 0\n"


def test_fstab_swap_lines_are_commented_once(system, check_report, root):
    write(root, "/etc/fstab", FSTAB, mode=0o644)
    host_state.swap_off(system, check_report, container=False)
    assert read(root, "/etc/fstab") == FSTAB and check_report.changed is True
    first = host_state.Report()
    host_state.swap_off(system, first, container=False)
    lines = read(root, "/etc/fstab").splitlines()
    assert lines[0] == "UUID=abc / ext4 errors=remount-ro 0 1" and lines[2] == "# /old.swap none swap sw 0 0"
    assert lines[1] == "# /swap.img\tnone\tswap\tsw\t0\t0" + host_state.FSTAB_SWAP_NOTE
    assert first.diffs[0]["before"] == FSTAB and first.diffs[0]["after"] == read(root, "/etc/fstab")
    assert stat.S_IMODE(os.stat(os.path.join(root, "etc/fstab")).st_mode) == 0o644
    second = host_state.Report()
    host_state.swap_off(system, second, container=False)
    assert second.changed is False and second.sections["swap"]["fstab_entries"] == []


def test_fstab_swap_line_after_a_blank_line_is_commented(system, report, root):
    write(root, "/etc/fstab", "UUID=abc / ext4 defaults 0 1\n\n/swap.img none swap sw 0 0\n")
    host_state.swap_off(system, report, container=False)
    assert read(root, "/etc/fstab") == ("UUID=abc / ext4 defaults 0 1\n\n# /swap.img none swap sw 0 0"
                                        + host_state.FSTAB_SWAP_NOTE + "\n")


# ---------------------------------------------------------------------------------------------
# Directories, files, absent paths, pruned directories


def mode_of(root, path):
    return stat.S_IMODE(os.lstat(os.path.join(root, path.lstrip("/"))).st_mode)


def test_directory_is_created_then_left_alone(system, report, root):
    spec = [{"path": "/var/gitpod/workspaces", "mode": "0750", "owner": USER, "group": GROUP}]
    host_state.directories(system, report, spec)
    assert mode_of(root, "/var/gitpod/workspaces") == 0o750
    assert report.changes == ["created directory /var/gitpod/workspaces"] and report.diffs[0]["after"] == "(directory)\n"
    again = host_state.Report()
    host_state.directories(system, again, spec)
    assert again.changed is False


def test_directory_mode_is_fixed_but_not_in_check_mode(system, root):
    os.makedirs(os.path.join(root, "srv/data"), mode=0o700)
    os.chmod(os.path.join(root, "srv/data"), 0o700)
    spec = [{"path": "/srv/data", "mode": "0755", "owner": USER, "group": GROUP}]
    check = host_state.Report(check_mode=True)
    host_state.directories(system, check, spec)
    assert check.changes == ["directory /srv/data: mode 0700 -> 0755"] and mode_of(root, "/srv/data") == 0o700
    host_state.directories(system, host_state.Report(), spec)
    assert mode_of(root, "/srv/data") == 0o755


def test_bad_mode_and_unknown_owner_fail(system, report):
    with pytest.raises(host_state.HostStateError, match="not an octal mode"):
        host_state.directories(system, report, [{"path": "/x", "mode": "rwx", "owner": USER, "group": GROUP}])
    with pytest.raises(host_state.HostStateError, match="owner 'no-such-user-zz' is not a user"):
        host_state.files(system, report, [{"path": "/x", "content": "", "owner": "no-such-user-zz", "group": GROUP}])


def file_spec(content="a = 1\n", mode="0640", path="/etc/app/app.conf"):
    return {"path": path, "content": content, "mode": mode, "owner": USER, "group": GROUP}


def test_file_is_written_with_diff_then_left_alone(system, report, root):
    os.makedirs(os.path.join(root, "etc/app"))
    assert host_state.files(system, report, [file_spec()]) == ["/etc/app/app.conf"]
    assert read(root, "/etc/app/app.conf") == "a = 1\n" and mode_of(root, "/etc/app/app.conf") == 0o640
    assert report.diffs == [{"before_header": "/etc/app/app.conf", "after_header": "/etc/app/app.conf",
                             "before": "", "after": "a = 1\n"}]
    inode = os.stat(os.path.join(root, "etc/app/app.conf")).st_ino
    again = host_state.Report()
    assert host_state.files(system, again, [file_spec()]) == []
    assert again.changed is False and os.stat(os.path.join(root, "etc/app/app.conf")).st_ino == inode
    assert not [n for n in os.listdir(os.path.join(root, "etc/app")) if n.startswith(".gitpod-k3s.")]


def test_changed_file_diff_has_the_old_content_and_check_mode_writes_nothing(system, check_report, report, root):
    write(root, "/etc/app/app.conf", "a = 0\n")
    assert host_state.files(system, check_report, [file_spec()]) == ["/etc/app/app.conf"]
    assert read(root, "/etc/app/app.conf") == "a = 0\n" and check_report.changes == ["would write /etc/app/app.conf"]
    host_state.files(system, report, [file_spec()])
    assert (report.diffs[0]["before"], report.diffs[0]["after"]) == ("a = 0\n", "a = 1\n")
    assert report.changes == ["wrote /etc/app/app.conf"] and read(root, "/etc/app/app.conf") == "a = 1\n"


def test_file_with_right_content_gets_its_mode_fixed(system, report, root):
    write(root, "/etc/app/app.conf", "a = 1\n", mode=0o600)
    assert host_state.files(system, report, [file_spec(mode="0644")]) == []
    assert report.changes == ["file /etc/app/app.conf: mode 0600 -> 0644"] and mode_of(root, "/etc/app/app.conf") == 0o644


@pytest.mark.parametrize("setup, section, match", [
    ("file", "directories", "/etc/app/app.conf exists and is not a directory"),
    ("dir", "files", "/etc/app/app.conf exists and is not a regular file"),
    (None, "files", "/etc/app/app.conf: directory /etc/app does not exist"),
])
def test_wrong_kind_of_path_fails(system, report, root, setup, section, match):
    if setup == "file":
        write(root, "/etc/app/app.conf", "")
    elif setup == "dir":
        os.makedirs(os.path.join(root, "etc/app/app.conf"))
    with pytest.raises(host_state.HostStateError, match=match):
        getattr(host_state, section)(system, report, [file_spec()])
    assert report.changed is False


def test_check_mode_file_in_a_directory_the_pass_would_create(host, system, root):
    report = host_state.converge(system, {"directories": [{"path": "/etc/app", "owner": USER, "group": GROUP}],
                                          "files": [file_spec()]}, check_mode=True)
    assert report.changes == ["would create directory /etc/app", "would write /etc/app/app.conf"]


def test_absent_removes_files_and_trees(system, report, root):
    write(root, "/etc/old.conf", "x")
    write(root, "/var/lib/old/sub/file", "x")
    paths = ["/etc/old.conf", "/var/lib/old", "/never/there"]
    check = host_state.Report(check_mode=True)
    assert host_state.absent(system, check, paths) == ["/etc/old.conf", "/var/lib/old"]
    assert os.path.exists(os.path.join(root, "var/lib/old/sub/file"))
    assert host_state.absent(system, report, paths) == ["/etc/old.conf", "/var/lib/old"]
    assert not os.path.exists(os.path.join(root, "etc/old.conf")) and not os.path.exists(os.path.join(root, "var/lib/old"))
    assert report.changes == ["removed /etc/old.conf", "removed /var/lib/old"]


def test_prune_removes_only_marked_subdirectories_not_kept(system, report, root):
    base = "/etc/containerd/certs.d"
    write(root, f"{base}/old.io/hosts.toml", "# managed by gitpod-k3s\n")
    write(root, f"{base}/kept.io/hosts.toml", "# managed by gitpod-k3s\n")
    write(root, f"{base}/mine.io/hosts.toml", "# written by hand\n")
    write(root, f"{base}/bare.io/other", "")
    write(root, f"{base}/a-file", "")
    spec = [{"path": base, "keep": ["kept.io"], "marker_file": "hosts.toml", "marker": "managed by gitpod-k3s"}]
    assert host_state.prune(system, report, spec) == [f"{base}/old.io"]
    assert sorted(os.listdir(os.path.join(root, base.lstrip("/")))) == ["a-file", "bare.io", "kept.io", "mine.io"]
    assert host_state.prune(system, host_state.Report(), [{"path": base, "keep": ["kept.io"]}]) == [
        f"{base}/bare.io", f"{base}/mine.io"]
    assert sorted(os.listdir(os.path.join(root, base.lstrip("/")))) == ["a-file", "kept.io"]


# ---------------------------------------------------------------------------------------------
# Services


def test_disabled_inactive_unit_is_enabled_and_started_once(host, system, check_report, report):
    host.units["chrony"] = unit(file="disabled", active="inactive")
    spec = [{"name": "chrony", "enabled": True, "started": True}]
    host_state.services(system, check_report, spec)
    assert host.commands() == [("systemctl", "show")]
    assert check_report.changes == ["would enable chrony", "would start chrony"]
    host.calls.clear()
    host_state.services(system, report, spec)
    assert host.calls[1:] == [["systemctl", "enable", "--", "chrony"], ["systemctl", "start", "--", "chrony"]]
    assert report.sections["services"]["chrony"]["actions"] == ["enable", "start"]
    again = host_state.Report()
    host_state.services(system, again, spec)
    assert again.changed is False and host.commands()[-1] == ("systemctl", "show")


def test_unit_not_started_in_a_container_when_start_in_container_false(host, system, report):
    host.units["systemd-timesyncd"] = unit(file="disabled", active="inactive")
    host_state.services(system, report, [{"name": "systemd-timesyncd", "enabled": True, "started": True,
                                          "start_in_container": False}], container=True)
    assert report.sections["services"]["systemd-timesyncd"]["actions"] == ["enable"]


@pytest.mark.parametrize("changed, active, actions", [
    (["/etc/containerd/config.toml"], "active", ["restart"]),
    (["/etc/containerd/config.toml"], "inactive", ["start"]),
    (["/etc/other.conf"], "active", []),
    ([], "active", []),
])
def test_restart_only_when_its_file_changed_and_it_was_running(host, system, report, changed, active, actions):
    host.units["containerd"] = unit(active=active)
    host_state.services(system, report, [{"name": "containerd", "enabled": True, "started": True,
                                          "restart_on": ["/etc/containerd/config.toml"]}], changed_files=changed)
    assert report.sections["services"]["containerd"]["actions"] == actions
    assert [argv[1] for argv in host.calls if argv[1] != "show"] == actions


def test_restart_on_a_directory_follows_a_path_below_it(host, system, report):
    host.units["containerd"] = unit()
    spec = [{"name": "containerd", "restart_on": ["/etc/containerd/certs.d/"]}]
    host_state.services(system, report, spec, changed_files=["/etc/containerd/certs.d.bak/x"])
    assert report.changed is False
    host_state.services(system, report, spec, changed_files=["/etc/containerd/certs.d/old.io"])
    assert report.sections["services"]["containerd"]["actions"] == ["restart"]


def test_only_if_running_restarts_a_running_unit_and_ignores_a_missing_one(host, system, report):
    host.units["k3s"] = unit()
    spec = [{"name": "k3s", "only_if_running": True, "restart_on": ["/etc/rancher/k3s/registries.yaml"]},
            {"name": "k3s-agent", "only_if_running": True, "restart_on": ["/etc/rancher/k3s/registries.yaml"]}]
    host_state.services(system, report, spec, changed_files=["/etc/rancher/k3s/registries.yaml"])
    # One systemctl call reads both units; only the running one is restarted.
    assert host.calls == [["systemctl", "show", "--property", "LoadState,UnitFileState,ActiveState", "--", "k3s", "k3s-agent"],
                          ["systemctl", "restart", "--", "k3s"]]
    assert report.sections["services"]["k3s-agent"]["actions"] == []


@pytest.mark.parametrize("check_mode", [False, True])
def test_restart_pending_file_records_the_restart_instead_of_making_it(host, system, tmp_path, check_mode):
    report = host_state.Report(check_mode)
    host.units["k3s"] = unit()
    host.units["k3s-agent"] = unit(active="inactive")
    pending = "/etc/rancher/k3s/gitpod-k3s-restart-pending"
    spec = [{"name": name, "only_if_running": True, "restart_on": ["/etc/rancher/k3s/registries.yaml"],
             "restart_pending_file": pending} for name in ("k3s", "k3s-agent")]
    host_state.services(system, report, spec, changed_files=["/etc/rancher/k3s/registries.yaml", "/etc/other"])
    # No restart: the running unit gets the file, the stopped one nothing (it reads the file when it starts).
    assert [call[:2] for call in host.calls] == [["systemctl", "show"]]
    assert report.sections["services"]["k3s"]["actions"] == ["restart pending"]
    assert report.sections["services"]["k3s-agent"]["actions"] == []
    marker = tmp_path / pending.lstrip("/")
    assert report.changed is True
    if check_mode:
        assert not marker.exists()
    else:
        assert marker.read_text() == "/etc/rancher/k3s/registries.yaml\n"
        assert stat.S_IMODE(marker.stat().st_mode) == 0o600


def test_only_if_package_not_installed_skips_without_systemctl(host, system, report):
    host_state.services(system, report, [{"name": "systemd-timesyncd", "enabled": True,
                                          "only_if_package": "systemd-timesyncd"}], installed_packages={"chrony"})
    assert host.calls == [] and report.changed is False
    assert report.sections["services"]["systemd-timesyncd"] == {"skipped": "package systemd-timesyncd is not installed"}


@pytest.mark.parametrize("file_state, masks", [("static", True), ("masked", False)])
def test_masked_unit_is_masked_only_when_not_already(host, system, report, file_state, masks):
    host.units["swap.target"] = unit(file=file_state, active="active")
    host_state.services(system, report, [{"name": "swap.target", "masked": True}])
    assert (["systemctl", "mask", "--", "swap.target"] in host.calls) is masks
    assert len(host.calls) == 1 + masks and report.changed is masks


def test_missing_unit_fails(host, system, report):
    with pytest.raises(host_state.HostStateError, match="systemd has no unit containerd: is its package installed"):
        host_state.services(system, report, [{"name": "containerd", "enabled": True}])


# ---------------------------------------------------------------------------------------------
# converge()


def full_params(root):
    fake_kernel(root, RELEASE)
    make_proc(root, {"net.ipv4.ip_forward": "0"})
    os.makedirs(os.path.join(root, "etc/containerd"))
    return {"packages": [{"name": "curl"}, {"name": "containerd"}],
            "kernel_modules": ["overlay", "br_netfilter"],
            "sysctl": {"settings": {"net.ipv4.ip_forward": 1}, "required": ["net.ipv4.ip_forward"]},
            "files": [file_spec("version = 2\n", "0644", "/etc/containerd/config.toml")],
            "services": [{"name": "containerd", "enabled": True, "started": True, "only_if_package": "containerd",
                          "restart_on": ["/etc/containerd/config.toml"]}]}


def test_full_pass_runs_sections_in_order(host, system, root):
    lists(root, 0)
    host.installed = {"curl": "7.88"}
    host.units["containerd"] = unit(file="disabled", active="active")
    report = host_state.converge(system, full_params(root))
    assert host.after_detect_virt() == [("dpkg-query",), ("apt-get", "install"), ("dpkg-query",), ("modprobe",),
                                        ("systemctl", "show"), ("systemctl", "enable"), ("systemctl", "restart")]
    assert read(root, "/proc/sys/net/ipv4/ip_forward") == "1\n"
    assert report.sections["files_changed"] == ["/etc/containerd/config.toml"] and report.sections["container"] is False
    assert report.changes == ["installed containerd", "loaded kernel module br_netfilter",
                              "set kernel parameters net.ipv4.ip_forward", "wrote /etc/containerd/config.toml",
                              "enable containerd", "restart containerd"]


def test_converge_error_carries_the_changes_made_before_it(host, system, root):
    lists(root, 0)
    host.installed = {"curl": "7.88"}
    params = dict(full_params(root), kernel_modules=["no_such_module"])
    with pytest.raises(host_state.HostStateError, match="no_such_module") as exc:
        host_state.converge(system, params)
    assert exc.value.report.changes == ["installed containerd"] and exc.value.report.changed is True
    assert "files_changed" not in exc.value.report.sections
    assert ("systemctl", "show") not in host.commands()


def test_converge_stat_reports_existence_only(host, system, root):
    write(root, "/etc/rancher/k3s/k3s.yaml", "x")
    report = host_state.converge(system, {"stat": ["/etc/rancher/k3s/k3s.yaml", "/usr/local/bin/k3s"]})
    assert report.sections["exists"] == {"/etc/rancher/k3s/k3s.yaml": True, "/usr/local/bin/k3s": False}
    assert report.changed is False and host.after_detect_virt() == []


def test_converge_probes_the_container_once(host, system):
    host_state.converge(system, {})
    assert host.calls == [["systemd-detect-virt", "--container"]]


def test_converge_check_mode_runs_only_reads(host, system, root):
    params = full_params(root)
    report = host_state.converge(system, params, check_mode=True)
    assert set(host.commands()) <= READS
    assert report.changed is True and report.changes[0].startswith("would refresh the package lists and install")
    assert report.sections["services"]["containerd"]["skipped"] == "installed by this run (check mode)"
    assert read(root, "/proc/sys/net/ipv4/ip_forward") == "0\n"
    assert not os.path.exists(os.path.join(root, "etc/containerd/config.toml"))


# ---------------------------------------------------------------------------------------------
# The module


def run_module(args, system, capsys, check_mode=False, diff=False):
    extra = {"_ansible_check_mode": check_mode, "_ansible_diff": diff}
    warned = []
    with patch_module_args(dict(args, **extra)):
        with pytest.raises(SystemExit) as exc:
            module = host_state_module.build_module()
            module.warn = warned.append  # test double: records warnings
            host_state_module.run(module, system=system)
    out = json.loads(capsys.readouterr().out)
    out["recorded_warnings"] = warned
    return exc.value.code, out


def module_args():
    return {"directories": [{"path": "/etc/app", "mode": "0755", "owner": USER, "group": GROUP}],
            "files": [file_spec()]}


def test_module_reports_changes_and_diff_only_with_diff(system, capsys, root):
    code, out = run_module(module_args(), system, capsys, diff=True)
    assert code == 0 and out["changed"] is True and out["files_changed"] == ["/etc/app/app.conf"]
    assert out["changes"] == ["created directory /etc/app", "wrote /etc/app/app.conf"]
    assert [d["after"] for d in out["diff"]] == ["(directory)\n", "a = 1\n"]
    os.remove(os.path.join(root, "etc/app/app.conf"))
    code, out = run_module(module_args(), system, capsys)
    assert code == 0 and out["changed"] is True and "diff" not in out
    code, out = run_module(module_args(), system, capsys, diff=True)
    assert out["changed"] is False and out["changes"] == [] and "diff" not in out


def test_module_check_mode_writes_nothing(system, capsys, root):
    os.makedirs(os.path.join(root, "etc/app"))
    code, out = run_module(module_args(), system, capsys, check_mode=True)
    assert code == 0 and out["changed"] is True and out["changes"] == ["would write /etc/app/app.conf"]
    assert not os.path.exists(os.path.join(root, "etc/app/app.conf"))


def test_module_passes_warnings_on(system, capsys, root, monkeypatch):
    make_proc(root, {"fs.inotify.max_user_watches": "8192"})
    monkeypatch.setattr(sysctl, "is_writable", lambda path: False)
    code, out = run_module({"sysctl": {"settings": {"fs.inotify.max_user_watches": 1000000}}}, system, capsys)
    assert code == 0 and out["changed"] is False
    assert len(out["recorded_warnings"]) == 1 and "fs.inotify.max_user_watches" in out["recorded_warnings"][0]


def test_module_failure_returns_failed_msg_and_changes(host, system, capsys, root):
    host.units["app"] = unit(load="not-found")
    code, out = run_module(dict(module_args(), services=[{"name": "app", "started": True}]), system, capsys)
    assert code == 1 and out["failed"] is True
    assert out["msg"] == "systemd has no unit app: is its package installed?"
    assert out["changes"] == ["created directory /etc/app", "wrote /etc/app/app.conf"] and out["changed"] is True


def test_module_calls_apply_every_argument_set_in_one_pass_in_section_order(host, system, capsys, root):
    # A role's files and services, then another's packages: the module still installs first.
    host.units["app"] = unit(file="disabled", active="inactive")
    lists(root, 0)
    first = {"directories": [{"path": "/etc/app", "mode": "0755", "owner": USER, "group": GROUP}],
             "files": [file_spec()], "services": [{"name": "app", "enabled": True, "only_if_package": "app"}],
             "cache_valid_time": 7200}
    second = {"packages": [{"name": "app"}], "cache_valid_time": 600, "swap_off": False}
    code, out = run_module({"calls": [first, None, {}, second]}, system, capsys, diff=True)
    assert code == 0 and out["changed"] is True
    assert out["changes"] == ["installed app", "created directory /etc/app", "wrote /etc/app/app.conf", "enable app"]
    assert host.after_detect_virt() == [("dpkg-query",), ("apt-get", "install"), ("dpkg-query",), ("systemctl", "show"),
                                        ("systemctl", "enable")]
    assert [d["after_header"] for d in out["diff"]] == ["packages", "/etc/app", "/etc/app/app.conf"]
    code, out = run_module({"calls": [first, second]}, system, capsys, check_mode=True)
    assert code == 0 and out["changed"] is False


def test_module_calls_exclude_every_other_option(system, capsys):
    code, out = run_module({"calls": [module_args()], "swap_off": True}, system, capsys)
    assert code == 1 and "mutually exclusive: calls|swap_off" in out["msg"]


@pytest.mark.parametrize("calls, message", [
    ([{"files": [{"path": "/etc/x"}]}], "calls, merged: missing required arguments: content found in files"),
    ([{"packages": [{"name": "a"}]}, {"packages": "b"}], "calls[1].packages is 'b'; allowed: a list"),
    ([{"sysctl": {"settings": {"a": 1}}}, {"sysctl": {"settings": {"b": 1}}}], "calls[1] sets sysctl"),
])
def test_module_calls_that_do_not_merge_or_check_fail_before_any_change(host, system, capsys, calls, message):
    code, out = run_module({"calls": calls}, system, capsys)
    assert code == 1 and message in out["msg"], out["msg"]
    assert host.calls == []


def test_files_are_moved_into_place_by_atomic_move_and_get_mode_and_owner(system, report, root, monkeypatch):
    moved = []
    real_move = system.module.atomic_move

    def recording_move(src, dest, *args, **kwargs):  # test double: records, then moves for real
        moved.append((os.path.dirname(src), dest))
        return real_move(src, dest, *args, **kwargs)

    monkeypatch.setattr(system.module, "atomic_move", recording_move)
    os.makedirs(os.path.join(root, "etc/app"))
    host_state.files(system, report, [file_spec(mode="0600")])
    target = os.path.join(root, "etc/app/app.conf")
    assert moved == [(os.path.join(root, "etc/app"), target)]
    assert mode_of(root, "/etc/app/app.conf") == 0o600 and os.stat(target).st_uid == os.getuid()
    # An existing file is replaced: content, mode and owner as asked, not as they were.
    write(root, "/etc/app/app.conf", "old\n", mode=0o666)
    host_state.files(system, host_state.Report(), [file_spec(mode="0640")])
    assert read(root, "/etc/app/app.conf") == "a = 1\n" and mode_of(root, "/etc/app/app.conf") == 0o640
    assert len(moved) == 2


def test_failed_move_names_the_file_and_leaves_no_temporary_file(system, report, root, monkeypatch):
    def refuse(src, dest, *args, **kwargs):  # test double: a move the filesystem refuses
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(system.module, "atomic_move", refuse)
    os.makedirs(os.path.join(root, "etc/app"))
    with pytest.raises(host_state.HostStateError, match="cannot write /etc/app/app.conf: .*Read-only file system"):
        host_state.files(system, report, [file_spec()])
    assert os.listdir(os.path.join(root, "etc/app")) == []


def test_new_directory_gets_its_mode_despite_the_umask(system, report, root):
    old = os.umask(0o077)
    try:
        host_state.directories(system, report, [{"path": "/srv/shared", "mode": "0755", "owner": USER, "group": GROUP}])
    finally:
        os.umask(old)
    assert mode_of(root, "/srv/shared") == 0o755


# ---------------------------------------------------------------------------------------------
# The archive's answers about optional packages, the refresh rule, hosts without dpkg

HDR = [{"name": "hdr", "optional": True}]


def answers(root):
    path = os.path.join(root, host_state.ARCHIVE_ANSWERS.lstrip("/"))
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def test_absent_optional_package_is_asked_once_per_package_lists(host, system, report, root):
    lists(root, 0)
    assert host_state.packages(system, report, HDR)["unavailable"] == ["hdr"]
    assert ("apt-cache", "show") in host.commands()
    assert answers(root) == {"lists": host_state.lists_key(system), "absent": ["hdr"]}
    assert PACKAGES_FILE in answers(root)["lists"]
    host.calls.clear()
    section = host_state.packages(system, host_state.Report(), HDR)
    assert host.commands() == [("dpkg-query",)] and section["unavailable"] == ["hdr"]


@pytest.mark.parametrize("change", ["size", "mtime"])
def test_changed_package_lists_ask_the_archive_again(host, system, report, root, change):
    lists(root, 0)
    host_state.packages(system, report, HDR)
    packages_file = os.path.join(root, LISTS, PACKAGES_FILE)
    if change == "size":
        write(root, f"{LISTS}/{PACKAGES_FILE}", "Package: x\nPackage: y\n")
    else:
        then = os.stat(packages_file).st_mtime - 100
        os.utime(packages_file, (then, then))
    host.calls.clear()
    host.archive = {"hdr"}
    section = host_state.packages(system, host_state.Report(), HDR)
    assert host.commands() == [("dpkg-query",), ("apt-cache", "show"), ("apt-get", "install"), ("dpkg-query",)]
    assert section["installed"] == ["hdr"] and section["unavailable"] == []


def test_corrupt_answers_file_is_ignored(host, system, report, root):
    lists(root, 0)
    write(root, host_state.ARCHIVE_ANSWERS, '{"lists": ')
    assert host_state.packages(system, report, HDR)["unavailable"] == ["hdr"]
    assert ("apt-cache", "show") in host.commands()
    assert answers(root) == {"lists": host_state.lists_key(system), "absent": ["hdr"]}


def test_answers_file_that_is_not_a_json_object_is_ignored(host, system, report, root):
    lists(root, 0)
    write(root, host_state.ARCHIVE_ANSWERS, "[]")
    assert host_state.packages(system, report, HDR)["unavailable"] == ["hdr"]
    assert ("apt-cache", "show") in host.commands()


def test_check_mode_does_not_write_the_answers(host, system, check_report, root):
    lists(root, 0)
    assert host_state.packages(system, check_report, HDR)["unavailable"] == ["hdr"]
    assert ("apt-cache", "show") in host.commands()
    assert answers(root) is None


def test_optional_package_the_archive_has_is_not_remembered_as_absent(host, system, report, root):
    lists(root, 0)
    host.archive = {"hdr"}
    section = host_state.packages(system, report, HDR + [{"name": "hdr-extra", "optional": True}])
    assert section["installed"] == ["hdr"] and section["unavailable"] == ["hdr-extra"]
    assert host.calls[-2] == host_state.APT_INSTALL + ["hdr"]
    assert answers(root)["absent"] == ["hdr-extra"]


def test_missing_optional_package_alone_does_not_refresh_stale_lists(host, system, report, root):
    lists(root, 7200)
    section = host_state.packages(system, report, HDR, cache_valid_time=3600)
    assert host.commands() == [("dpkg-query",), ("apt-cache", "show")]
    assert section["refreshed"] is False


def test_missing_optional_package_without_lists_refreshes_them(host, system, report, root):
    section = host_state.packages(system, report, HDR)
    assert host.commands() == [("dpkg-query",), ("apt-get", "update"), ("apt-cache", "show")]
    assert section["refreshed"] is True and section["unavailable"] == ["hdr"]
    assert PACKAGES_FILE in answers(root)["lists"]  # the key of the lists the refresh fetched


@pytest.mark.parametrize("os_release, name", [('NAME="Fedora"\nPRETTY_NAME="Fedora Linux 40"\n', "Fedora Linux 40"),
                                              (None, "an unknown system")])
def test_host_without_dpkg_fails_naming_the_system(host, system, report, root, os_release, name):
    os.remove(os.path.join(root, "usr/bin/dpkg-query"))
    if os_release is not None:
        write(root, "/etc/os-release", os_release)
    with pytest.raises(host_state.HostStateError, match=rf"^this host runs {name} without dpkg: .*apt-based"):
        host_state.packages(system, report, [{"name": "socat"}])
    assert host.calls == []
    assert host_state.packages(system, report, [])["installed"] == []  # nothing asked: no dpkg needed


# ---------------------------------------------------------------------------------------------
# merge_specs


def test_merge_concatenates_every_list_option_in_call_order():
    first = {key: [f"{key}-1"] for key in host_state.LIST_OPTIONS}
    second = {key: [f"{key}-2", f"{key}-3"] for key in host_state.LIST_OPTIONS}
    merged = host_state.merge_specs([first, second])
    assert merged == {key: [f"{key}-1", f"{key}-2", f"{key}-3"] for key in host_state.LIST_OPTIONS}
    assert first["packages"] == ["packages-1"]  # the inputs are not changed


def test_merge_swap_off_cache_valid_time_sysctl_and_none():
    merged = host_state.merge_specs([{"swap_off": False, "cache_valid_time": 3600, "sysctl": None},
                                     {"swap_off": True, "cache_valid_time": "600", "packages": None},
                                     {"swap_off": False, "cache_valid_time": 7200, "sysctl": {"settings": {"a": 1}}}])
    assert merged == {"swap_off": True, "cache_valid_time": 600, "sysctl": {"settings": {"a": 1}}}
    assert host_state.merge_specs([{"swap_off": False}]) == {"swap_off": False}
    assert host_state.merge_specs([]) == {}


@pytest.mark.parametrize("specs, match", [
    ([{"sysctl": {"settings": {"a": 1}}}, {"sysctl": {"settings": {"b": 1}}}], r"calls\[1\] sets sysctl, and an earlier one did"),
    ([{"packages": []}, {"frobnicate": 1}], r"calls\[1\] has the option 'frobnicate'; allowed: packages, .*, sysctl"),
    ([{"packages": []}, ["packages"]], r"calls\[1\] is list \['packages'\]; allowed: a dict"),
    ([{"swap_off": "maybe"}], r"calls\[0\].swap_off is 'maybe'; allowed: true, false"),
    ([{"cache_valid_time": "soon"}], r"calls\[0\].cache_valid_time is 'soon'; allowed: a number"),
])
def test_merge_refuses_what_one_call_cannot_hold(specs, match):
    with pytest.raises(host_state.HostStateError, match=match):
        host_state.merge_specs(specs)


def test_unit_states_reads_every_unit_in_one_call(host, system):
    host.units = {"containerd": unit(), "swap.target": unit(file="masked", active="inactive")}
    states = host_state.unit_states(system, ["swap.target", "nope", "containerd"])
    assert len(host.calls) == 1
    assert states == {"swap.target": {"load": "loaded", "file": "masked", "active": "inactive"},
                      "nope": {"load": "not-found", "file": "", "active": "inactive"},
                      "containerd": {"load": "loaded", "file": "enabled", "active": "active"}}


def test_unit_states_refuses_an_answer_with_missing_units(host, system):
    host.failures[("systemctl", "show")] = (0, "LoadState=loaded\nUnitFileState=enabled\nActiveState=active\n", "")
    with pytest.raises(host_state.HostStateError, match="answered 1 units for 2"):
        host_state.unit_states(system, ["a", "b"])


def hold_dpkg_lock(root, seconds):
    """Another process holding dpkg's frontend lock (fcntl locks are per process), as apt does."""
    path = os.path.join(root, host_state.DPKG_FRONTEND_LOCK.lstrip("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "a").close()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time\n"
        f"f = open({path!r}, 'r+'); fcntl.lockf(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep({seconds})")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_dpkg_lock_free_or_absent_means_no_wait(system, root):
    assert host_state.wait_for_dpkg_lock(system) == 0
    write(root, host_state.DPKG_FRONTEND_LOCK, "")
    assert host_state.wait_for_dpkg_lock(system, sleep=lambda _s: pytest.fail("waited on a free lock")) == 0


def test_dpkg_lock_held_waits_until_it_is_released(system, root):
    holder = hold_dpkg_lock(root, 1.5)
    try:
        waited = host_state.wait_for_dpkg_lock(system, timeout=30, sleep=lambda s: time.sleep(0.2))
    finally:
        holder.wait()
    assert waited >= 1.0


def test_dpkg_lock_held_too_long_fails_with_the_reason(system, root):
    holder = hold_dpkg_lock(root, 30)
    try:
        with pytest.raises(host_state.HostStateError, match="another package manager has held /var/lib/dpkg/lock-frontend for 0.5 s"):
            host_state.wait_for_dpkg_lock(system, timeout=0.5, sleep=lambda s: time.sleep(0.1))
    finally:
        holder.kill()
        holder.wait()


def test_interrupted_install_waits_for_the_running_apt_which_may_finish_the_journal(host, system, report, root):
    write(root, "/var/lib/dpkg/updates/0001", "")

    def apt_finishes(_system):
        os.unlink(os.path.join(root, "var/lib/dpkg/updates/0001"))
        return 2.0

    host_state.recover_dpkg(system, report, wait=apt_finishes)
    assert host.calls == [] and report.changed is False
    assert report.sections["dpkg_lock_waited_s"] == 2.0 and report.sections["dpkg_recovered"] is False
