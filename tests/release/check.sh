#!/usr/bin/env bash
# tests/release/check.sh STEP: the collection as its users' tools see it, offline.
#   docs-lint      antsibull-docs lint-collection-docs --plugin-docs on a copy of the checkout.
#   build          ansible-galaxy collection build (from a copy holding planted development
#                  leftovers), then: no development path in the tarball, the files
#                  meta/execution-environment.yml names are in it, it installs with its
#                  dependencies into a fresh path, ansible-doc there lists every module and role,
#                  and every plugin's version_added is a released version or galaxy.yml's.
#   galaxy-import  galaxy-importer on the tarball, as Galaxy imports it (ansible-doc, ansible-lint).
#   ee             ansible-builder introspect on the installed collection (what AWX reads from
#                  meta/execution-environment.yml), then ansible-builder create on the root
#                  execution-environment.yml, whose pins must be requirements.txt's.
# The tools come from RELEASE_VENV (requirements-release.txt); the collections the tarball depends
# on come from VENV (the `ansible` package bundles them; Galaxy is not needed).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
step=${1:?usage: tests/release/check.sh docs-lint|build|galaxy-import|ee}
bin=$repo/${RELEASE_VENV:-.cache/venv-release}/bin
main_site=$("$repo/${VENV:-.venv}/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
work=${RELEASE_WORK:-/tmp/gitpod-k3s-release}
export PATH=$bin:$PATH
# The checkout's ansible.cfg finds the checkout itself through ./collections: not wanted here.
unset ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH
cd /tmp

version=$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["version"])' "$repo/galaxy.yml")
tarball=$repo/dist/selfhosted-gitpod_k3s-$version.tar.gz
installed=$work/installed
fail() { echo "FAIL: $*" >&2; exit 1; }

case $step in
docs-lint)
  src=$work/docs/ansible_collections/selfhosted/gitpod_k3s
  "$repo/tests/release/copy-checkout.sh" "$src"
  cd "$src"
  ANSIBLE_COLLECTIONS_PATH=$work/docs:$main_site antsibull-docs lint-collection-docs --plugin-docs .
  echo "docs-lint: antsibull-docs found no error"
  ;;

build)
  src=$work/src
  "$repo/tests/release/copy-checkout.sh" "$src"
  # Planted leftovers of development runs: the tarball must not carry them.
  mkdir -p "$src/benchmarks/work" "$src/tests/output" "$src/.cache"
  echo planted > "$src/benchmarks/work/planted.json"
  echo "planted: true" > "$src/changelogs/.plugin-cache.yaml"
  echo planted > "$src/tests/output/planted.txt"
  echo planted > "$src/.cache/planted"
  mkdir -p "$src/inventories/example/artifacts" && echo planted > "$src/inventories/example/artifacts/k3s-token"
  mkdir -p "$repo/dist"
  rm -f "$tarball"
  (cd "$src" && ansible-galaxy collection build --output-path "$repo/dist" --force)
  listing=$(tar -tzf "$tarball")
  leaked=$(grep -E '^(\.venv|\.cache/|\.ci/|\.git/|\.config/|artifacts/|inventories/[^/]+/artifacts/|dist/|collections/|molecule/|benchmarks/work/|tests/output/|changelogs/\.plugin-cache\.yaml)|(^|/)(__pycache__|\.pytest_cache)(/|$)|\.tar\.gz$' <<<"$listing" || true)
  [ -z "$leaked" ] || fail "the tarball holds development files:"$'\n'"$leaked"
  # meta/execution-environment.yml names files (python, system), as ansible-builder reads it.
  ee_files=$(python -c '
import sys, yaml
deps = yaml.safe_load(open(sys.argv[1]))["dependencies"]
bad = {k: v for k, v in deps.items() if k not in ("python", "system") or not isinstance(v, str)}
if bad:
    sys.exit(f"FAIL: meta/execution-environment.yml: dependencies must be python/system file paths, not {bad}")
print(" ".join(deps.values()))' "$repo/meta/execution-environment.yml")
  for f in LICENSE README.md meta/runtime.yml meta/execution-environment.yml $ee_files; do
    grep -qx "$f" <<<"$listing" || fail "the tarball lacks $f"
  done
  echo "build: $(wc -l <<<"$listing") entries, no development file, LICENSE and the EE dependency files present"

  rm -rf "$installed"
  ANSIBLE_COLLECTIONS_PATH=$installed:$main_site ansible-galaxy collection install "$tarball" -p "$installed"
  export ANSIBLE_COLLECTIONS_PATH=$installed:$main_site
  where=$(ansible-galaxy collection list selfhosted.gitpod_k3s --format json | python -c 'import json, sys; print(" ".join(json.load(sys.stdin)))')
  [ "$where" = "$installed/ansible_collections" ] || fail "selfhosted.gitpod_k3s found in '$where', not only in $installed"
  ansible-doc -l selfhosted.gitpod_k3s
  listed=$(ansible-doc -l selfhosted.gitpod_k3s --json | python -c 'import json, sys; print("\n".join(sorted(k.split(".")[-1] for k in json.load(sys.stdin))))')
  expected=$(find "$repo/plugins/modules" -maxdepth 1 -name '*.py' -printf '%f\n' | sed 's/\.py$//' | sort)
  [ "$listed" = "$expected" ] || fail "ansible-doc lists other modules than plugins/modules holds:"$'\n'"$(diff <(echo "$expected") <(echo "$listed"))"
  roles=$(ansible-doc -t role -l selfhosted.gitpod_k3s --json | python -c 'import json, sys; print("\n".join(sorted(k.split(".")[-1] for k in json.load(sys.stdin))))')
  expected_roles=$(find "$repo/roles" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
  [ "$roles" = "$expected_roles" ] || fail "ansible-doc lists other roles than roles/ holds:"$'\n'"$(diff <(echo "$expected_roles") <(echo "$roles"))"
  ansible-doc --metadata-dump --no-fail-on-errors selfhosted.gitpod_k3s \
    | python "$repo/tests/release/version_added.py" "$repo/changelogs/changelog.yaml" "$version"
  echo "build: $tarball installs into $installed; ansible-doc lists $(wc -l <<<"$listed") modules and $(wc -l <<<"$roles") roles"
  ;;

galaxy-import)
  [ -f "$tarball" ] || "$repo/tests/release/check.sh" build
  mkdir -p "$work"
  log=$work/galaxy-importer.log
  python -m galaxy_importer.main "$tarball" >"$log" 2>&1 || { cat "$log"; fail "galaxy-importer rejected $tarball"; }
  grep -E '^(WARNING|ERROR)' "$log" || true
  grep -q '^Importer processing completed successfully' "$log" || { cat "$log"; fail "galaxy-importer did not complete"; }
  echo "galaxy-import: galaxy-importer accepted $tarball (log: $log)"
  ;;

ee)
  if [ ! -f "$tarball" ] || [ ! -d "$installed/ansible_collections/selfhosted/gitpod_k3s" ]; then
    "$repo/tests/release/check.sh" build
  fi
  deps=$(ansible-builder introspect --sanitize "$installed")
  echo "$deps"
  grep -q 'from collection selfhosted.gitpod_k3s' <<<"$deps" || fail "ansible-builder introspect found no dependency of selfhosted.gitpod_k3s"
  python "$repo/tests/release/ee_pins.py" "$repo/execution-environment.yml" "$repo/requirements.txt" "$version"
  context=$work/ee-context
  rm -rf "$context"
  (cd "$repo" && ansible-builder create -f execution-environment.yml --context "$context" --output-filename Containerfile -v 1)
  [ -f "$context/_build/collections/selfhosted-gitpod_k3s-$version.tar.gz" ] || fail "the build context lacks the collection tarball"
  grep -q "ansible-core==" "$context/Containerfile" || fail "the Containerfile does not install the pinned ansible-core"
  # The image's galaxy stage, offline: the same install from /build's place in the context, with
  # community.general taken from the main venv instead of Galaxy.
  rm -rf "$work/ee-collections"
  (cd "$context/_build" && ANSIBLE_COLLECTIONS_PATH=$work/ee-collections:$main_site \
    ansible-galaxy collection install -r requirements.yml -p "$work/ee-collections")
  [ -f "$work/ee-collections/ansible_collections/selfhosted/gitpod_k3s/MANIFEST.json" ] \
    || fail "the build context's requirements.yml does not install selfhosted.gitpod_k3s"
  echo "ee: introspection reads the collection's dependencies; ansible-builder create wrote $context"
  ;;

*) fail "unknown step $step" ;;
esac
