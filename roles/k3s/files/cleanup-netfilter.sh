#!/bin/sh
# Part of selfhosted.gitpod_k3s (reset): remove every iptables/ip6tables rule and chain whose
# line matches the extended regular expression $1, in each backend present (legacy and nft),
# the way k3s-killall.sh does (save, filter, restore). Prints RESULT=changed when it removed anything.
set -u
pattern="$1"
changed=0
for tool in iptables ip6tables iptables-legacy ip6tables-legacy iptables-nft ip6tables-nft; do
  command -v "$tool-save" >/dev/null 2>&1 || continue
  command -v "$tool-restore" >/dev/null 2>&1 || continue
  rules=$("$tool-save" 2>/dev/null) || continue
  if printf '%s\n' "$rules" | grep -qE -- "$pattern"; then
    printf '%s\n' "$rules" | grep -vE -- "$pattern" | "$tool-restore" || exit 1
    changed=1
  fi
done
if [ "$changed" -eq 1 ]; then echo RESULT=changed; else echo RESULT=unchanged; fi
