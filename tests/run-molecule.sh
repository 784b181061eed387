#!/usr/bin/env bash
# Run every Molecule scenario (or those named) with `molecule test`, and end with one summary line.
# A scenario may hold a `skip-unless.sh`: when it exits non-zero, the scenario is reported as
# SKIPPED with what that script printed (e.g. the k3s scenario without K3S_AIRGAP_DIR).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  for f in molecule/*/molecule.yml; do scenarios+=("$(basename "$(dirname "$f")")"); done
fi
passed=0; failed=0; skipped=0; report=()
for s in "${scenarios[@]}"; do
  if [ -x "molecule/$s/skip-unless.sh" ]; then
    if ! why=$("molecule/$s/skip-unless.sh" 2>&1); then
      echo "=== molecule scenario $s: SKIPPED: $why"
      skipped=$((skipped + 1)); report+=("SKIPPED  $s  ($why)"); continue
    fi
  fi
  echo "=== molecule scenario $s"
  start=$(date +%s)
  if molecule test -s "$s"; then
    passed=$((passed + 1)); report+=("PASSED   $s  $(( $(date +%s) - start ))s")
  else
    failed=$((failed + 1)); report+=("FAILED   $s  $(( $(date +%s) - start ))s")
  fi
done
echo "=== molecule results"
printf '%s\n' "${report[@]}"
echo "molecule: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
