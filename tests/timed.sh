#!/usr/bin/env bash
# tests/timed.sh NAME CMD...: run CMD and print how long the stage took.
name=$1; shift
start=$(date +%s)
"$@"; rc=$?
echo "=== stage $name: $(( $(date +%s) - start ))s (exit $rc)"
exit $rc
