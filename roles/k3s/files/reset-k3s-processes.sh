#!/bin/sh
# Part of selfhosted.gitpod_k3s (k3s role, reset): stop what k3s's embedded containerd left
# running after the k3s unit stopped (KillMode=process keeps pods alive across restarts), then
# unmount what k3s and the kubelet mounted. Prints RESULT=changed when it did anything.
set -u
changed=0
data_dir=${K3S_DATA_DIR:-/var/lib/rancher/k3s}

# Shims of the embedded containerd run from k3s's data directory (<data-dir>/data/<hash>/bin/).
getshims() {
  ps -e -o pid= -o args= | awk -v dir="$data_dir" '
    index($2, dir "/data/") == 1 && substr($2, length(dir) + 7) ~ "^[^/]+/bin/containerd-shim" {print $1}'
}

# Each given process and all its descendants, not only its children: a pod's processes are the
# shim's children, and their children (ws-daemon runs with hostPID) keep mounts busy if they live.
# One snapshot of the process table per call.
pstree() {
  table=$(ps -e -o ppid= -o pid=)
  todo="$*"
  while [ -n "$todo" ]; do
    next=""
    for pid in $todo; do
      echo "$pid"
      next="$next $(printf '%s\n' "$table" | awk -v p="$pid" '$1 == p {print $2}')"
    done
    todo=$next
  done
}

shims=$(getshims)
if [ -n "$shims" ]; then
  # Freeze the trees first so nothing forks between listing and killing, list them again (a child
  # forked before the freeze is stopped too), then kill every process of them at once.
  # shellcheck disable=SC2046,SC2086
  kill -STOP $(pstree $shims) 2>/dev/null
  # shellcheck disable=SC2086
  tree=$(pstree $shims)
  # shellcheck disable=SC2086
  kill -STOP $tree 2>/dev/null
  # shellcheck disable=SC2086
  kill -KILL $tree 2>/dev/null && changed=1
fi

# Mounts under k3s's and the kubelet's directories and the CNI network namespaces, deepest first.
mounts=$(awk '$2 ~ "^(/run/k3s|/var/lib/rancher/k3s|/var/lib/kubelet|/run/netns/cni-)" {print $2}' /proc/self/mounts | sort -r)
for m in $mounts; do
  umount -l "$m" 2>/dev/null && changed=1
done
for ns in /run/netns/cni-*; do
  [ -e "$ns" ] || continue
  rm -f "$ns" && changed=1
done

# Interfaces the flannel backend and the CNI bridge plugin create (absent with Calico, but a
# host may have run k3s's defaults before).
for link in cni0 flannel.1 flannel-v6.1 flannel-wg flannel-wg-v6; do
  if ip link show "$link" >/dev/null 2>&1; then
    ip link delete "$link" && changed=1
  fi
done

if [ "$changed" -eq 1 ]; then echo RESULT=changed; else echo RESULT=unchanged; fi
