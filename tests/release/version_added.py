"""Check every plugin's version_added in an ``ansible-doc --metadata-dump`` (read from stdin).

Usage: ansible-doc --metadata-dump selfhosted.gitpod_k3s | python version_added.py CHANGELOG VERSION

Only the collection's own plugins count (the dump also holds keywords and ansible.builtin's).

A plugin's version_added must be a version already released (a key of ``releases`` in
changelogs/changelog.yaml) or VERSION, the one being built: anything else makes the release's
changelog announce the plugin as new in the wrong version, or not at all.
"""

import json
import sys

import yaml

COLLECTION = "selfhosted.gitpod_k3s."


def main():
    """Print the plugins checked, or exit non-zero naming each bad version_added."""
    changelog, version = sys.argv[1], sys.argv[2]
    with open(changelog, encoding="utf-8") as handle:
        releases = set((yaml.safe_load(handle) or {}).get("releases") or {})
    allowed = releases | {version}
    dump = json.load(sys.stdin)["all"]
    bad, seen = [], 0
    for plugin_type, plugins in dump.items():
        if plugin_type in ("role", "keyword"):
            continue
        for name, data in plugins.items():
            if not name.startswith(COLLECTION):
                continue
            doc = (data or {}).get("doc") or {}
            if "version_added" not in doc:
                bad.append(f"{plugin_type} {name}: no version_added")
                continue
            seen += 1
            if str(doc["version_added"]) not in allowed:
                bad.append(f"{plugin_type} {name}: version_added {doc['version_added']}")
    if bad:
        sys.exit("FAIL: version_added must be one of %s:\n  %s" % (sorted(allowed), "\n  ".join(bad)))
    print(f"version_added: {seen} plugins, each in {sorted(allowed)}")


if __name__ == "__main__":
    main()
