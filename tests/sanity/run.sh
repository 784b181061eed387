#!/usr/bin/env bash
# tests/sanity/run.sh [ANSIBLE-TEST ARGS...]: `ansible-test sanity` (every test) on this checkout,
# offline. ansible-test refuses a symlinked ansible_collections path, so the checkout is copied to
# SANITY_ROOT/ansible_collections/selfhosted/gitpod_k3s first. Its pip bootstrap downloads
# get-pip.py from a host that may be unreachable; tests/sanity/get_pip_offline.py stands in for it.
# On failure the findings are listed once more at the end, counted per test and file.
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${SANITY_PYTHON:-3.11}
root=${SANITY_ROOT:-/tmp/gitpod-k3s-sanity}
dest=$root/ansible_collections/selfhosted/gitpod_k3s

at_dir=$(python -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',$/\1/p" "$at_dir/_internal/python_requirements.py" | head -n1)
cache=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
if [ ! -f "$cache" ]; then
  mkdir -p "$(dirname "$cache")"
  cp tests/sanity/get_pip_offline.py "$cache"
fi

tests/release/copy-checkout.sh "$dest"
log=$root/sanity.log
cd "$dest"
rc=0
# The per-test virtual environments' pip output is long; it stays in the log.
ansible-test sanity --python "$python" --color no "$@" >"$log" 2>&1 || rc=$?
grep -vE '^(WARNING: Location|Looking in|Collecting|  Downloading|  Using cached|Installing collected|Successfully installed|Processing|Requirement already|     ━)' "$log" || true
if [ "$rc" -ne 0 ]; then
  echo "=== sanity findings (test: file count), full log in $log"
  awk '/^ERROR: Found [0-9]+ .* issue\(s\)/ {test=$4}
       /^ERROR: [^ ]+:[0-9]+:[0-9]+: / {split($2, a, ":"); n[test ": " a[1]]++}
       END {for (k in n) printf "%5d  %s\n", n[k], k}' "$log" | sort -k2
fi
exit "$rc"
