"""Test double for host_requirements.Probe: a recorded host served from dicts.

``HostDouble.ubuntu()`` is a healthy Ubuntu 22.04 workspace-capable host (8 vCPUs, 32 GiB,
200 GiB free, systemd, cgroup v2, every kernel feature loaded, no containerd, nothing listening).
Tests change one thing and look at one check.
"""

from __future__ import annotations

import os

GIB = 1024 ** 3

UBUNTU_2204 = """PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
ID=ubuntu
ID_LIKE=debian
"""

DEBIAN_12 = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
"""

MOUNTS_V2 = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n"
MOUNTS_HYBRID = (
    "tmpfs /sys/fs/cgroup tmpfs ro 0 0\n"
    "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n"
    "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"
)
MOUNTS_V1 = "tmpfs /sys/fs/cgroup tmpfs ro 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"

PROC_NET_HEADER_TCP = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
PROC_NET_HEADER_UDP = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"


def tcp_line(port, state="0A", inode=12345, address="00000000"):
    return (f"   0: {address}:{port:04X} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000     0        0 "
            f"{inode} 1 0000000000000000 100 0 0 10 0\n")


def udp_line(port, inode=0, address="00000000"):
    return (f"  100: {address}:{port:04X} 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 "
            f"{inode} 2 0000000000000000 0\n")


class HostDouble:
    """Serves files, directories, symlinks, statvfs and commands from dicts."""

    def __init__(self):
        self.files = {}
        self.dirs = set()
        self.links = {}
        self.free = {}
        self.commands = {}
        self.calls = []
        self.machine = "x86_64"
        self.release = "5.15.0-91-generic"
        self.nodename = "node1"
        self.cpus = 8

    # --- Probe interface ---------------------------------------------------------------------
    def read(self, path):
        return self.files.get(path)

    def exists(self, path):
        return path in self.files or path in self.dirs or path in self.links or path in self.free

    def isdir(self, path):
        return path in self.dirs

    def listdir(self, path):
        prefix = path.rstrip("/") + "/"
        names = set()
        for p in list(self.files) + list(self.dirs) + list(self.links):
            if p.startswith(prefix):
                names.add(p[len(prefix):].split("/", 1)[0])
        return sorted(names)

    def readlink(self, path):
        return self.links.get(path)

    def uname(self):
        return {"release": self.release, "machine": self.machine, "nodename": self.nodename}

    def cpu_count(self):
        return self.cpus

    def free_bytes(self, path):
        return self.free.get(path)

    def run(self, args):
        self.calls.append(list(args))
        if tuple(args) not in self.commands:
            raise AssertionError(f"unexpected command {args}")
        return self.commands[tuple(args)]

    # --- Builders -----------------------------------------------------------------------------
    def mkdir(self, *paths):
        for p in paths:
            self.dirs.add(p)
            parent = os.path.dirname(p)
            while parent and parent != "/":
                self.dirs.add(parent)
                parent = os.path.dirname(parent)
        return self

    def memory(self, gib, swap_gib=0):
        self.files["/proc/meminfo"] = (
            f"MemTotal:       {int(gib * 1024 * 1024)} kB\n"
            f"MemFree:        {int(gib * 1024 * 512)} kB\n"
            f"SwapTotal:      {int(swap_gib * 1024 * 1024)} kB\n"
        )
        return self

    def listen(self, port, proto="tcp", owner=None, inode=None, pid=4242):
        """Something listening on ``port``; ``owner`` is its /proc/PID/comm (None: kernel socket)."""
        if inode is None:
            inode = 0 if owner is None else 50000 + port
        key = f"/proc/net/{proto}"
        header = PROC_NET_HEADER_TCP if proto == "tcp" else PROC_NET_HEADER_UDP
        line = tcp_line(port, inode=inode) if proto == "tcp" else udp_line(port, inode=inode)
        self.files[key] = self.files.get(key, header) + line
        if owner is not None:
            self.files[f"/proc/{pid}/comm"] = owner + "\n"
            self.links[f"/proc/{pid}/fd/3"] = f"socket:[{inode}]"
        return self

    @classmethod
    def ubuntu(cls):
        h = cls()
        h.files.update({
            "/etc/os-release": UBUNTU_2204,
            "/proc/sys/kernel/hostname": "node1\n",
            "/proc/self/mounts": MOUNTS_V2,
            "/proc/self/cgroup": "0::/user.slice/session-1.scope\n",
            "/proc/1/comm": "systemd\n",
            "/proc/filesystems": "nodev\tsysfs\nnodev\toverlay\nnodev\tfuse\n\text4\n",
            "/proc/net/ip_tables_names": "filter\n",
            "/proc/net/tcp": PROC_NET_HEADER_TCP + tcp_line(22),
            "/proc/net/tcp6": PROC_NET_HEADER_TCP,
            "/proc/net/udp": PROC_NET_HEADER_UDP,
            "/proc/net/udp6": PROC_NET_HEADER_UDP,
        })
        h.memory(32)
        h.mkdir("/run/systemd/system", "/usr/src", "/proc/sys/net/bridge",
                "/sys/module/overlay", "/sys/module/br_netfilter", "/sys/module/vxlan",
                "/sys/module/ip_tables", "/sys/module/ip_set", "/sys/module/fuse",
                f"/lib/modules/{h.release}/build")
        for mod in ("br_netfilter", "vxlan", "ip_tables", "ip_set"):
            h.files[f"/sys/module/{mod}/initstate"] = "live\n"
        h.free["/var/lib"] = 200 * GIB
        return h
