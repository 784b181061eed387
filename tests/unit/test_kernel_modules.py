"""module_utils.kernel_modules: which modules need modprobe, on recorded /proc, /sys and /lib/modules data.

Two kernels are described: this machine's (everything built in, no /lib/modules) and a stock
Ubuntu kernel (br_netfilter, overlay loadable from /lib/modules/RELEASE).
"""

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import kernel_modules as km

# Recorded in the test containers (kernel 6.18, no /proc/modules, no /lib/modules).
BUILTIN_KERNEL = {
    "sys_modules": {"overlay", "vxlan", "ip_set", "fuse", "bridge", "nf_conntrack"},
    "filesystems": km.filesystems_from_proc("nodev\tsysfs\n\text4\nnodev\tfuse\nnodev\toverlay\n"),
    "exists": lambda path: path in {"/proc/sys/net/bridge", "/proc/net/ip_tables_names"},
    "builtin": None,
    "loadable": None,
}

UBUNTU_DEP = """kernel/net/bridge/br_netfilter.ko.zst: kernel/net/bridge/bridge.ko.zst kernel/net/802/stp.ko.zst
kernel/fs/overlayfs/overlay.ko.zst:
kernel/drivers/net/vxlan/vxlan.ko.zst: kernel/net/ipv4/udp_tunnel.ko.zst
kernel/net/netfilter/ipset/ip_set.ko.zst: kernel/net/netfilter/nfnetlink.ko.zst
"""
UBUNTU_BUILTIN = "kernel/fs/fuse/fuse.ko\nkernel/net/ipv4/netfilter/ip_tables.ko\n"

# A freshly booted Ubuntu host: nothing of the above loaded yet.
FRESH_UBUNTU = {
    "sys_modules": {"fuse"},
    "filesystems": km.filesystems_from_proc("nodev\tsysfs\n\text4\nnodev\tfuse\n"),
    "exists": lambda path: False,
    "builtin": km.names_from_module_list(UBUNTU_BUILTIN),
    "loadable": km.names_from_module_list(UBUNTU_DEP),
}


def test_builtin_kernel_needs_no_modprobe():
    out = km.decide(["overlay", "br_netfilter", "ip_tables", "ip_set", "vxlan", "fuse", "nf_conntrack"], **BUILTIN_KERNEL)
    assert out["to_load"] == []
    assert out["unavailable"] == []
    assert out["modules"]["br_netfilter"] == {"state": "loaded", "evidence": "/proc/sys/net/bridge"}
    assert out["modules"]["overlay"]["evidence"] == "/sys/module/overlay"


def test_builtin_kernel_reports_module_it_lacks_as_unavailable():
    out = km.decide(["ipip"], **BUILTIN_KERNEL)
    assert out["unavailable"] == ["ipip"]
    assert "no /lib/modules" in out["modules"]["ipip"]["evidence"]


def test_fresh_ubuntu_loads_only_loadable_modules():
    out = km.decide(["overlay", "br_netfilter", "ip_tables", "fuse", "vxlan"], **FRESH_UBUNTU)
    assert out["to_load"] == ["overlay", "br_netfilter", "vxlan"]
    assert out["modules"]["ip_tables"] == {"state": "builtin", "evidence": "modules.builtin"}
    assert out["modules"]["fuse"]["state"] == "loaded"


def test_ubuntu_module_not_shipped_is_unavailable():
    out = km.decide(["wireguard"], **FRESH_UBUNTU)
    assert out["unavailable"] == ["wireguard"]
    assert out["modules"]["wireguard"]["evidence"] == "not loaded, not built in, not in modules.dep"


def test_feature_filesystem_counts_as_loaded_without_sys_module():
    overlay_mounted = dict(FRESH_UBUNTU)
    overlay_mounted["filesystems"] = {"overlay"}
    out = km.decide(["overlay"], **overlay_mounted)
    assert out["to_load"] == [] and out["modules"]["overlay"]["state"] == "loaded"


def test_dash_and_underscore_are_one_name_and_duplicates_collapse():
    out = km.decide(["br-netfilter", "br_netfilter"], **FRESH_UBUNTU)
    assert out["to_load"] == ["br_netfilter"]
    assert list(out["modules"]) == ["br_netfilter"]


def test_module_list_parsing_handles_compression_and_deps():
    assert km.names_from_module_list(UBUNTU_DEP) == {"br_netfilter", "overlay", "vxlan", "ip_set"}
    assert km.names_from_module_list("\n") == set()


def test_gather_reads_a_fake_root(tmp_path):
    (tmp_path / "sys/module/overlay").mkdir(parents=True)
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/filesystems").write_text("nodev\tfuse\n")
    moddir = tmp_path / "lib/modules/6.8.0-1-generic"
    moddir.mkdir(parents=True)
    (moddir / "modules.dep").write_text("kernel/net/bridge/br_netfilter.ko.zst:\n")
    (moddir / "modules.builtin").write_text("")
    live = km.gather("6.8.0-1-generic", root=str(tmp_path))
    out = km.decide(["overlay", "fuse", "br_netfilter"], **live)
    assert out["to_load"] == ["br_netfilter"]
    assert out["modules"]["fuse"]["state"] == "loaded"


def test_gather_without_lib_modules_marks_lists_absent(tmp_path):
    live = km.gather("6.18.0", root=str(tmp_path))
    assert live["builtin"] is None and live["loadable"] is None and live["sys_modules"] == set()
