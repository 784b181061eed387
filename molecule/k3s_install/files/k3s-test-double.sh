#!/bin/sh
# TEST DOUBLE of the k3s binary for molecule/k3s_install. This is NOT k3s: it only records how it
# was called (in /var/log/gitpod-k3s-test-double.log) and exits 0. Nothing it does means that k3s
# ran. For `ctr ... images import -` it reads and discards the archive on stdin.
echo "$*" >> /var/log/gitpod-k3s-test-double.log
case "$1" in
  --version) echo "k3s-test-double (TEST DOUBLE, not k3s) __TEST_DOUBLE_VERSION__" ;;
  ctr) case " $* " in *" import - "*) cat > /dev/null ;; esac ;;
esac
exit 0
