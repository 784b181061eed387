#!/usr/bin/env bash
# Build a systemd test image with debootstrap, because no registry can be pulled from.
#
#   tests/images/build.sh [--force] [SUITE [MIRROR [TAG]]]
#
# SUITE defaults to bookworm (Debian 12); MIRROR defaults to the Debian mirror apt already uses;
# TAG defaults to gitpod-k3s-test:SUITE. Ubuntu builds the same way where its archive is reachable:
#   tests/images/build.sh jammy http://archive.ubuntu.com/ubuntu
# The image is rebuilt only when it is missing (or with --force).
set -euo pipefail

force=0
if [ "${1:-}" = "--force" ]; then force=1; shift; fi
suite="${1:-bookworm}"

default_mirror() {
  local uri=""
  if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
    uri=$(awk '/^deb / && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

mirror="${2:-$(default_mirror)}"
tag="${3:-gitpod-k3s-test:${suite}}"

if [ "$force" -eq 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  echo "image $tag present; not rebuilding (use --force to rebuild)"
  exit 0
fi

for tool in debootstrap docker; do
  command -v "$tool" >/dev/null || { echo "build.sh: '$tool' not found; install it (apt-get install -y ${tool/docker/docker.io})" >&2; exit 1; }
done

# Ubuntu keeps sudo, iproute2 and ca-certificates in main as Debian does; extra packages the
# roles would install anyway are left out so the roles are tested installing them.
include="systemd,systemd-sysv,python3,python3-apt,sudo,iproute2,ca-certificates,procps"

rootfs=$(mktemp -d /tmp/gitpod-k3s-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap $suite from $mirror into $rootfs"
start=$(date +%s)
debootstrap --variant=minbase --include="$include" "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
  tail -20 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"

# What a cloud image has and a container needs: no units that fight the container runtime.
chroot "$rootfs" systemctl mask systemd-udevd.service systemd-udevd-kernel.socket \
  systemd-udevd-control.socket getty.target console-getty.service \
  systemd-remount-fs.service systemd-firstboot.service >/dev/null 2>&1 || true
rm -f "$rootfs"/etc/machine-id && touch "$rootfs"/etc/machine-id
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

tar -C "$rootfs" -c . | docker import -c 'CMD ["/lib/systemd/systemd"]' -c 'ENV container=docker' - "$tag" >/dev/null
echo "built $tag in $(( $(date +%s) - start ))s"
