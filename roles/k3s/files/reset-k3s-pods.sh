#!/bin/sh
# Part of selfhosted.gitpod_k3s (k3s role, reset, system containerd): remove the pods k3s left in
# the distribution's containerd after the k3s unit stopped. Arguments: the k3s binary (its crictl
# and ctr) and the containerd socket. Prints RESULT=changed when it removed anything, and
# DIRECT=used when it had to go through containerd directly (the caller restarts containerd then).
#
# 1. `crictl rmp`, the clean way: the CRI stops each pod and has the CNI plugin tear its network
#    down. Calico's plugin needs the Kubernetes API for that, so this works only while an API
#    server answers (playbooks/reset.yml resets the agents before the servers for this reason).
# 2. Whatever is left goes directly through containerd: kill every process of each container (also
#    those of hostPID pods), delete its task and the container. That needs neither the API nor
#    the CNI plugin; the pods' network namespaces go with reset-k3s-processes.sh.
set -u
k3s=$1
socket=${2#unix://}
changed=0

crictl() { "$k3s" crictl --runtime-endpoint "unix://$socket" --timeout 30s "$@"; }
ctr() { "$k3s" ctr --address "$socket" --namespace k8s.io "$@"; }

if ! pods=$(crictl pods -q); then
  echo "cannot list the pods in containerd at $socket" >&2
  exit 1
fi
if [ -n "$pods" ]; then
  # shellcheck disable=SC2086
  if err=$(crictl rmp --force $pods 2>&1 >/dev/null); then
    changed=1
  else
    echo "crictl rmp failed, removing the pods' containers through containerd directly: $err" >&2
  fi
fi

if ! ids=$(ctr containers ls -q); then
  echo "cannot list the containers in containerd's k8s.io namespace at $socket" >&2
  exit 1
fi
for id in $ids; do
  ctr tasks kill --all --signal SIGKILL "$id" >/dev/null 2>&1
  ctr tasks delete --force "$id" >/dev/null 2>&1
  ctr containers delete "$id" >/dev/null && changed=1
done
[ -n "$ids" ] && echo DIRECT=used

left=$(ctr containers ls -q)
if [ -n "$left" ]; then
  echo "containers left in containerd's k8s.io namespace at $socket: $(echo "$left" | tr '\n' ' ')" >&2
  exit 1
fi
if [ "$changed" -eq 1 ]; then echo RESULT=changed; else echo RESULT=unchanged; fi
