"""Check the root execution-environment.yml against requirements.txt and galaxy.yml's version.

Usage: python ee_pins.py execution-environment.yml requirements.txt VERSION

The image must carry the ansible-core and ansible-runner the tests run with (requirements.txt is
the one place they are pinned) and this collection's tarball of VERSION.
"""

import re
import sys

import yaml

PIN = re.compile(r"([A-Za-z0-9_.-]+)==(\S+)")


def main():
    """Exit non-zero naming each mismatch."""
    ee_file, requirements, version = sys.argv[1:4]
    with open(ee_file, encoding="utf-8") as handle:
        ee = yaml.safe_load(handle)
    with open(requirements, encoding="utf-8") as handle:
        pins = dict(m.groups() for m in (PIN.match(line) for line in handle) if m)
    deps, errors = ee["dependencies"], []
    for key, package in (("ansible_core", "ansible-core"), ("ansible_runner", "ansible-runner")):
        want = f"{package}=={pins[package]}"
        if deps[key]["package_pip"] != want:
            errors.append(f"{key} is {deps[key]['package_pip']!r}, requirements.txt pins {want!r}")
    name = f"selfhosted-gitpod_k3s-{version}.tar.gz"
    if not any(c.get("name", "").endswith("/" + name) for c in deps["galaxy"]["collections"]):
        errors.append(f"dependencies.galaxy does not install {name}")
    if not any(f["src"] == "dist/" + name for f in ee.get("additional_build_files", [])):
        errors.append(f"additional_build_files do not copy dist/{name}")
    if errors:
        sys.exit("FAIL: execution-environment.yml: " + "; ".join(errors))
    print(f"ee: execution-environment.yml pins {deps['ansible_core']['package_pip']}, "
          f"{deps['ansible_runner']['package_pip']} and installs {name}")


if __name__ == "__main__":
    main()
