#!/usr/bin/env bash
# The k3s scenario runs real k3s and Calico, which cannot be downloaded here. It runs only when
# K3S_AIRGAP_DIR names a directory with the files of a k3s release and of Calico:
#   k3s (or k3s-arm64)                      the k3s binary of the release
#   k3s-airgap-images-<arch>.tar[.zst|.gz]  k3s's images
#   sha256sum-<arch>.txt                    the release's checksum file
#   tigera-operator-<CALICO_VERSION>.tgz    Calico's operator chart (CALICO_VERSION, default v3.30.3)
#   calico-images-<arch>.tar (or K3S_AIRGAP_EXTRA_IMAGES, comma-separated) Calico's images
#   sha256sum-extra.txt                     sha256sum lines for the chart and the Calico archives
# Exits 0 when everything is there, otherwise non-zero with the reason (the scenario is SKIPPED).
set -uo pipefail
case "$(uname -m)" in
  x86_64) arch=amd64; binary=k3s ;;
  aarch64) arch=arm64; binary=k3s-arm64 ;;
  *) echo "unsupported architecture $(uname -m)"; exit 1 ;;
esac
dir="${K3S_AIRGAP_DIR:-}"
if [ -z "$dir" ]; then
  echo "K3S_AIRGAP_DIR is not set: no real k3s binary, images and checksums to run k3s and Calico with (see molecule/k3s/skip-unless.sh)"
  exit 1
fi
[ -d "$dir" ] || { echo "K3S_AIRGAP_DIR=$dir is not a directory"; exit 1; }
missing=()
[ -x "$dir/$binary" ] || missing+=("$binary (executable)")
compgen -G "$dir/k3s-airgap-images-$arch.tar*" >/dev/null || missing+=("k3s-airgap-images-$arch.tar[.zst|.gz]")
[ -f "$dir/sha256sum-$arch.txt" ] || missing+=("sha256sum-$arch.txt")
[ -f "$dir/tigera-operator-${CALICO_VERSION:-v3.30.3}.tgz" ] || missing+=("tigera-operator-${CALICO_VERSION:-v3.30.3}.tgz")
IFS=',' read -r -a extra <<< "${K3S_AIRGAP_EXTRA_IMAGES:-calico-images-$arch.tar}"
for f in "${extra[@]}"; do [ -f "$dir/$f" ] || missing+=("$f"); done
[ -f "$dir/sha256sum-extra.txt" ] || missing+=("sha256sum-extra.txt")
if [ ${#missing[@]} -gt 0 ]; then
  echo "K3S_AIRGAP_DIR=$dir lacks: ${missing[*]}"
  exit 1
fi
if ! "$dir/$binary" --version 2>/dev/null | grep -qE '^k3s version v[0-9]+\.[0-9]+\.[0-9]+'; then
  echo "$dir/$binary does not report a k3s version: not a real k3s binary"
  exit 1
fi
exit 0
