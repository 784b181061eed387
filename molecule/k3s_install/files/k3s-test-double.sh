#!/bin/sh
# TEST DOUBLE of the k3s binary for molecule/k3s_install. This is NOT k3s: it only records how it
# was called (in /var/log/gitpod-k3s-test-double.log, or GK3S_TEST_DOUBLE_LOG) and exits 0. Nothing
# it does means that k3s ran. For `ctr ... images import -` it reads and discards the archive on
# stdin. Run as `server` or `agent` (a Type=notify unit, as the role writes both) it tells systemd
# it is ready, for the main PID, and then idles until stopped.
# Pods and containers a test puts under /var/lib/gk3s-test-double/cri (pods/<sandbox> lists the
# sandbox's container ids, containers/<id> one file each) are what `crictl pods -q` and
# `ctr containers ls -q` list; `crictl rmp` fails as Calico's CNI plugin makes it fail when no API
# server answers (none ever runs here), and `ctr containers delete` removes them.
echo "$*" >> "${GK3S_TEST_DOUBLE_LOG:-/var/log/gitpod-k3s-test-double.log}"
cri=/var/lib/gk3s-test-double/cri
last() { for a in "$@"; do :; done; echo "$a"; }
case "$1" in
  --version) echo "k3s-test-double (TEST DOUBLE, not k3s) __TEST_DOUBLE_VERSION__" ;;
  server|agent)
    systemd-notify --pid="$$" --ready
    exec sleep infinity ;;
  crictl)
    case " $* " in
      *" pods -q "*) ls "$cri/pods" 2>/dev/null ;;
      *" rmp "*)
        echo "failed to destroy network for sandbox: plugin type=\"calico\" failed (delete): error getting ClusterInformation: connection refused (TEST DOUBLE)" >&2
        exit 1 ;;
    esac ;;
  ctr)
    case " $* " in
      *" import - "*) cat > /dev/null ;;
      *" containers ls -q "*) ls "$cri/containers" 2>/dev/null ;;
      *" containers delete "*) id=$(last "$@"); rm "$cri/containers/$id" || exit 1; rm -f "$cri/pods/$id" ;;
    esac ;;
esac
exit 0
