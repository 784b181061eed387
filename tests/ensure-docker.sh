#!/usr/bin/env bash
# Reuse a running Docker engine, or start one in the background; say exactly what is missing.
set -euo pipefail
if docker info >/dev/null 2>&1; then
  echo "docker: engine running ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
  exit 0
fi
if ! command -v docker >/dev/null; then
  echo "docker: no docker client; install it with: apt-get install -y docker.io" >&2; exit 1
fi
if ! command -v dockerd >/dev/null; then
  echo "docker: no engine (dockerd) on this machine and none running; install it with: apt-get install -y docker.io" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "docker: no engine running and starting dockerd needs root; start it (sudo dockerd &) or join the docker group" >&2
  exit 1
fi
log=${DOCKERD_LOG:-/var/log/gitpod-k3s-dockerd.log}
echo "docker: starting dockerd in the background (log: $log)"
nohup dockerd >"$log" 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "docker: engine running ($(docker version --format '{{.Server.Version}}'))"; exit 0
  fi
  sleep 1
done
echo "docker: dockerd did not answer within 60 s; last lines of $log:" >&2
tail -20 "$log" >&2
exit 1
