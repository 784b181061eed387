#!/bin/sh
# TEST DOUBLE of the k3s binary for molecule/k3s_install. This is NOT k3s: it only records how it
# was called (in /var/log/gitpod-k3s-test-double.log, or GK3S_TEST_DOUBLE_LOG) and exits 0. Nothing
# it does means that k3s ran. For `ctr ... images import -` it reads and discards the archive on
# stdin. Run as `server` or `agent` (a Type=notify unit, as the role writes both) it tells systemd
# it is ready, for the main PID, and then idles until stopped.
echo "$*" >> "${GK3S_TEST_DOUBLE_LOG:-/var/log/gitpod-k3s-test-double.log}"
case "$1" in
  --version) echo "k3s-test-double (TEST DOUBLE, not k3s) __TEST_DOUBLE_VERSION__" ;;
  ctr) case " $* " in *" import - "*) cat > /dev/null ;; esac ;;
  server|agent)
    systemd-notify --pid="$$" --ready
    exec sleep infinity ;;
esac
exit 0
