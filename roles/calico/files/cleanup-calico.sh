#!/bin/sh
# Part of selfhosted.gitpod_k3s (calico role, reset): remove the network state Calico created on
# this host. Prints RESULT=changed when it removed anything.
set -u
changed=0

# Rules and chains: Calico's chains are named cali-*, its rules carry "cali:" comments.
for tool in iptables ip6tables iptables-legacy ip6tables-legacy iptables-nft ip6tables-nft; do
  command -v "$tool-save" >/dev/null 2>&1 || continue
  command -v "$tool-restore" >/dev/null 2>&1 || continue
  rules=$("$tool-save" 2>/dev/null) || continue
  if printf '%s\n' "$rules" | grep -qE -- 'cali-|cali:'; then
    printf '%s\n' "$rules" | grep -vE -- 'cali-|cali:' | "$tool-restore" || exit 1
    changed=1
  fi
done

# nftables tables of Calico's nftables data plane.
if command -v nft >/dev/null 2>&1; then
  if nft list tables 2>/dev/null | awk '$3 ~ /^calico/ {print $2, $3}' | while read -r family table; do
       nft delete table "$family" "$table" && echo removed
     done | grep -q removed; then
    changed=1
  fi
fi

# IP sets (cali40..., cali60...), once no rule refers to them.
if command -v ipset >/dev/null 2>&1; then
  for set in $(ipset list -n 2>/dev/null | grep '^cali' || true); do
    ipset destroy "$set" && changed=1
  done
fi

# Interfaces: workload veths (cali*), the VXLAN, IPIP and WireGuard devices.
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 \
              | grep -E '^(cali|vxlan\.calico|vxlan-v6\.calico|wireguard\.cali|wg-v6\.cali|tunl0$)' || true); do
  # tunl0 is the kernel's fallback device while ipip is loaded and cannot be deleted then.
  if [ "$link" = tunl0 ]; then
    ip link delete tunl0 2>/dev/null && changed=1
  else
    ip link delete "$link" && changed=1
  fi
done

if [ "$changed" -eq 1 ]; then echo RESULT=changed; else echo RESULT=unchanged; fi
