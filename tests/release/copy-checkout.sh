#!/usr/bin/env bash
# tests/release/copy-checkout.sh DEST: copy this checkout's files (tracked and new ones, not
# ignored: no venvs, caches, outputs or the collections/ link) into DEST, which is emptied first.
# ansible-test and antsibull-docs want a real ansible_collections/NAMESPACE/NAME directory, and a
# copy shows what a clean clone of the current work tree holds.
set -euo pipefail
dest=$1
cd "$(dirname "$0")/../.."
rm -rf "$dest"
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi; done \
  | tar --null -T - -cf - | tar -C "$dest" -xf -
