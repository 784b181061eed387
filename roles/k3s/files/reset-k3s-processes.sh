#!/bin/sh
# Part of selfhosted.gitpod_k3s (k3s role, reset): stop what k3s's embedded containerd left
# running after the k3s unit stopped (KillMode=process keeps pods alive across restarts), then
# unmount what k3s and the kubelet mounted. Prints RESULT=changed when it did anything.
set -u
changed=0

# Shims of the embedded containerd run from k3s's data directory.
pids=$(ps -e -o pid= -o args= | awk '$2 ~ "^/var/lib/rancher/k3s/data/.*/containerd-shim" {print $1}')
for pid in $pids; do
  # The shim's children are the pods' processes; take the whole tree down.
  children=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
  # $children is a list of pids, split into words on purpose.
  # shellcheck disable=SC2086
  kill -9 "$pid" $children 2>/dev/null && changed=1
done

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
