"""roles/k3s/files/reset-k3s-processes.sh against a real process tree, in throw-away namespaces.

The script runs for real, as root, inside new PID, mount and network namespaces (`unshare`): it
sees only the processes this test starts there, its mounts and unmounts touch only the
namespace's private copies (a tmpfs over /var/lib and /run, so the real /var/lib/rancher,
/var/lib/kubelet and /run/netns are neither seen nor changed), and its `ip link` calls see only the
namespace's loopback. When the namespace's first process exits, the kernel kills whatever is left.

The tree mimics a pod of k3s's embedded containerd: a process named like a shim
(/var/lib/rancher/k3s/data/<hash>/bin/containerd-shim-runc-v2, through `exec -a`), its child (the
container's init), grandchildren and a great-grandchild (what a hostPID pod such as ws-daemon
forks). Beside it: a process that only resembles a shim path and an unrelated one; both must live.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "roles" / "k3s" / "files" / "reset-k3s-processes.sh"
SHIM = "/var/lib/rancher/k3s/data/0123abcd/bin/containerd-shim-runc-v2"

# Runs as PID 1 of the new PID namespace. Prints one JSON line: the pids by role, which of them
# still run after the script, and the script's output.
DRIVER = r"""
set -eu
mount -t tmpfs gk3s-test /var/lib
mount -t tmpfs gk3s-test /run
mkdir -p /var/lib/rancher/k3s/data/0123abcd/bin /var/lib/kubelet/pods/p1/volumes
mount -t tmpfs gk3s-test /var/lib/kubelet/pods/p1/volumes
pidfile=/run/tree.pids

# The "shim": its child is the container's init, which forks two grandchildren; one of them forks
# a great-grandchild. Every level records its pid, then waits.
bash -c 'exec -a "$0" bash -c "
  bash -c \"
    sleep 300 & echo grandchild \\\$! >> $1
    bash -c \\\"sleep 300 & echo great_grandchild \\\\\\\$! >> $1; wait\\\" & echo grandchild \\\$! >> $1
    wait\" & echo child \$! >> $1
  wait"' "$SHIM" "$pidfile" &
echo shim $! >> $pidfile
# Not shims: a lookalike path outside <data-dir>/data/<hash>/bin/ and an unrelated process.
bash -c 'exec -a /var/lib/rancher/k3s/containerd-shim-runc-v2 sleep 300' & echo lookalike $! >> $pidfile
sleep 300 & echo unrelated $! >> $pidfile

# Wait until the whole tree has started (7 pid lines).
for _ in $(seq 100); do [ "$(wc -l < $pidfile)" -ge 7 ] && break; sleep 0.05; done
out=$(sh "$SCRIPT")
sleep 0.2
alive=""
while read -r role pid; do
  state=$(awk '{print $3}' /proc/$pid/stat 2>/dev/null || echo gone)
  # A killed process this shell has not reaped yet is a zombie (Z): dead.
  case "$state" in gone|Z) ;; *) alive="$alive $role" ;; esac
done < $pidfile
mounted=$(awk '$2 ~ "^/var/lib/kubelet/" {print $2}' /proc/self/mounts)
printf '{"roles": "%s", "alive": "%s", "out": "%s", "mounted": "%s"}\n' \
  "$(cut -d' ' -f1 $pidfile | tr '\n' ' ')" "$alive" "$out" "$mounted"
"""


def run_in_namespaces():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare (util-linux) for the PID/mount/network namespaces")
    env = dict(os.environ, SHIM=SHIM, SCRIPT=str(SCRIPT))
    proc = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "--mount", "--net", "bash", "-c", DRIVER],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_reset_kills_every_process_under_a_shim_and_spares_the_rest():
    result = run_in_namespaces()
    roles = result["roles"].split()
    assert sorted(roles) == sorted(["shim", "child", "grandchild", "grandchild", "great_grandchild",
                                    "lookalike", "unrelated"]), result
    assert result["alive"].split() == ["lookalike", "unrelated"], result
    assert result["out"] == "RESULT=changed"
    assert result["mounted"] == "", "the kubelet's mounts are unmounted"
