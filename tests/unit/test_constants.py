"""Gitpod's constants live once, in roles/common/defaults/main.yml; everything else follows them.

- Each role threshold is a reference to the common variable (defaults, argument spec, README row),
  and renders to what the common role's values give.
- The Python fallback for direct module_utils calls (module_utils/gitpod_constants.py) equals the
  common defaults, and the modules carry no default of their own for these options.
- Galaxy metadata cannot read variables: every role's meta/main.yml platforms, the README's list
  of hosts and the common README's table must equal what gitpod_k3s_supported_os says.
- No other literal copy of a minimum version is left in README.md, roles/ (outside roles/common),
  plugins/, playbooks/ or inventories/: every occurrence of the value is either a statement this file checks
  against the common value, or one of the few listed occurrences that are not the constant
  (Gitpod's own numbers quoted, examples of version parsing, sample output).
"""

import os
import re

import pytest
import yaml

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from common_defaults import COMMON, REPO, SUPPORTED_OS

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import cluster_requirements as cr
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import gitpod_constants as gc
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import host_requirements as hr
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils.versions import parse_version
from ansible_collections.selfhosted.gitpod_k3s.plugins.modules import cluster_requirements as cr_module
from ansible_collections.selfhosted.gitpod_k3s.plugins.modules import host_requirements as hr_module

ROLES = sorted(d for d in os.listdir(os.path.join(REPO, "roles")) if os.path.isdir(os.path.join(REPO, "roles", d)))

# role, variable, the common variable its default refers to, what that default must render to.
REFERENCES = [
    ("preflight", "preflight_min_kernel", "gitpod_k3s_min_kernel", COMMON["gitpod_k3s_min_kernel"]),
    ("preflight", "preflight_min_containerd_version", "gitpod_k3s_min_containerd", COMMON["gitpod_k3s_min_containerd"]),
    ("preflight", "preflight_allowed_distributions", "gitpod_k3s_supported_os", gc.allowed_distributions(SUPPORTED_OS)),
    ("preflight", "preflight_tested_distributions", "gitpod_k3s_supported_os", gc.tested_distributions(SUPPORTED_OS)),
    ("cluster_validation", "cluster_validation_min_kubernetes_version", "gitpod_k3s_min_kubernetes",
     COMMON["gitpod_k3s_min_kubernetes"]),
    ("cluster_validation", "cluster_validation_min_kernel_version", "gitpod_k3s_min_kernel", COMMON["gitpod_k3s_min_kernel"]),
    ("cluster_validation", "cluster_validation_min_containerd_version", "gitpod_k3s_min_containerd",
     COMMON["gitpod_k3s_min_containerd"]),
    ("cluster_validation", "cluster_validation_os_images", "gitpod_k3s_supported_os", gc.os_images(SUPPORTED_OS)),
    ("containerd", "containerd_min_version", "gitpod_k3s_min_containerd", COMMON["gitpod_k3s_min_containerd"]),
]
REFERENCE_IDS = [r[1] for r in REFERENCES]

# The minimum versions, and every variable that holds one (the README may show its value as
# `variable` (1.2.3)).
MINIMUMS = {
    "gitpod_k3s_min_kernel": ["preflight_min_kernel", "cluster_validation_min_kernel_version"],
    "gitpod_k3s_min_kubernetes": ["cluster_validation_min_kubernetes_version"],
    "gitpod_k3s_min_containerd": ["preflight_min_containerd_version", "cluster_validation_min_containerd_version",
                                  "containerd_min_version"],
}
# Sentences that state a minimum in words; the captured version must agree with the common value.
STATEMENTS = {
    "gitpod_k3s_min_kernel": [r"kernel (\d+(?:\.\d+)+) or newer"],
    "gitpod_k3s_min_kubernetes": [r"Kubernetes (\d+(?:\.\d+)+) or newer", r"older than Kubernetes (\d+(?:\.\d+)+)"],
    "gitpod_k3s_min_containerd": [r"containerd `?\(?>= (\d+(?:\.\d+)+)", r"containerd must be at least\s+(\d+(?:\.\d+)+)"],
}
# Occurrences of the values that are not the collection's constant, each with its reason.
NOT_THE_CONSTANT = [
    # Gitpod's own thresholds, quoted in the comparison with Gitpod's checks (they stay what Gitpod wrote).
    ("roles/cluster_validation/README.md", r"semver `>= 5\.4\.0-0`"),
    ("roles/cluster_validation/README.md", r"Kernel version is 5\.4\.0 or above \(KOTS"),
    ("roles/cluster_validation/README.md", r"every kubelet `>= 1\.21\.0-0`"),
    ("roles/cluster_validation/README.md", r"warn `< 1\.21\.0`"),
    ("roles/cluster_validation/README.md", r"asks for containerd 1\.5 or newer"),
    # Other things with the same number.
    ("roles/components/README.md", r"MinIO Helm chart 5\.4\.0"),
    ("roles/containerd/templates/config.toml.j2", r"containerd 1\.5 and later"),  # when config_path appeared
    # Examples of the version parser and of a version's format, and sample module output.
    ("plugins/module_utils/versions.py", r".*"),
    ("plugins/module_utils/cluster_requirements.py", r"allowed: e\.g\. 1\.21\.0"),
    ("plugins/modules/host_requirements.py", r'expected: ">= 5\.4\.0", actual: "5\.15\.0-91-generic"'),
    ("plugins/modules/cluster_requirements.py", r'expected: ">= 1\.21\.0", actual: v1\.28\.5\+k3s1'),
    ("plugins/modules/cluster_requirements.py", r'expected: ">= 5\.4\.0"\n\s+actual: "agent-2: 4\.15\.0'),
]
# Written once in Python for direct module_utils calls; test_python_fallback_is_the_common_defaults checks it.
PYTHON_FALLBACK = "plugins/module_utils/gitpod_constants.py"


def read(path):
    with open(os.path.join(REPO, path), encoding="utf-8") as handle:
        return handle.read()


def read_yaml(path):
    return yaml.safe_load(read(path))


def role_options(role):
    return read_yaml(f"roles/{role}/meta/argument_specs.yml")["argument_specs"]["main"]["options"]


def render(expression):
    return Templar(loader=DataLoader(), variables=COMMON).template(trust_as_template(expression))


def same_version(text, value):
    """``5.4`` and ``5.4.0`` state the same minimum."""
    return parse_version(text) == parse_version(value)


# ---------------------------------------------------------------- one definition, references elsewhere

def test_the_common_role_defines_each_constant_once_with_a_spec_and_a_readme_row():
    options = role_options("common")
    readme = read("roles/common/README.md")
    for name in ("gitpod_k3s_min_kernel", "gitpod_k3s_min_kubernetes", "gitpod_k3s_min_containerd",
                 "gitpod_k3s_supported_os", "gitpod_k3s_known_labels"):
        assert options[name]["default"] == COMMON[name], name
        assert f"| `{name}` |" in readme, name
    for name in MINIMUMS:
        row = re.search(rf"^\| `{name}` \| `\"([^\"]+)\"` \|", readme, re.M)
        assert row and row.group(1) == COMMON[name], name


def role_default(role, name):
    return read_yaml(f"roles/{role}/defaults/main.yml")[name]


@pytest.mark.parametrize("role, name, common, value", REFERENCES, ids=REFERENCE_IDS)
def test_role_threshold_is_a_reference_to_the_common_role(role, name, common, value):
    default = role_default(role, name)
    assert isinstance(default, str) and re.fullmatch(rf"\{{\{{ {common}\b.*\}}\}}", default), (
        f"roles/{role}/defaults/main.yml: {name} = {default!r} must be a template of {common} (common role)")
    assert render(default) == value
    spec = role_options(role)[name]
    if spec.get("type") in ("list", "dict"):
        # A template is no list or dict: the spec names the common variable in its description instead
        # (the rule of tests/unit/test_role_settings_drift.py).
        described = " ".join(spec["description"]) if isinstance(spec["description"], list) else spec["description"]
        assert "default" not in spec and common in described, f"roles/{role}/meta/argument_specs.yml: {name}"
    else:
        assert spec["default"] == default, f"roles/{role}/meta/argument_specs.yml: {name}"
    row = f"| `{name}` | `\"{default.replace('|', chr(92) + '|')}\"` |"
    assert row in read(f"roles/{role}/README.md"), f"roles/{role}/README.md: no row {row}"


@pytest.mark.parametrize("role, name", [(r[0], r[1]) for r in REFERENCES if r[2] == "gitpod_k3s_supported_os"])
def test_readme_row_shows_the_rendered_os_list(role, name):
    """The README row ends with what the template gives (`...: [ubuntu]`); that must be the rendered value."""
    row = next(line for line in read(f"roles/{role}/README.md").splitlines() if line.startswith(f"| `{name}` |"))
    shown = re.findall(r":\s*`(\[[^`]*\])`\s*\|$", row)
    assert len(shown) == 1, f"roles/{role}/README.md: {name} row shows no rendered list"
    assert yaml.safe_load(shown[0]) == render(role_default(role, name)), f"roles/{role}/README.md: {name} shows {shown[0]}"


def test_python_fallback_is_the_common_defaults():
    assert gc.MIN_KERNEL == COMMON["gitpod_k3s_min_kernel"]
    assert gc.MIN_KUBERNETES == COMMON["gitpod_k3s_min_kubernetes"]
    assert gc.MIN_CONTAINERD == COMMON["gitpod_k3s_min_containerd"]
    assert list(gc.SUPPORTED_OS) == COMMON["gitpod_k3s_supported_os"]
    assert list(gc.KNOWN_LABELS) == COMMON["gitpod_k3s_known_labels"]
    assert gc.LABELS == COMMON["gitpod_k3s_labels"]
    assert list(gc.REQUIRED_LABELS) == COMMON["gitpod_k3s_required_labels"]
    assert set(COMMON["gitpod_k3s_labels"].values()) <= set(COMMON["gitpod_k3s_known_labels"])


def test_module_utils_defaults_come_from_the_fallback():
    assert hr.DEFAULT_OPTIONS["min_kernel"] == cr.DEFAULT_OPTIONS["min_kernel_version"] == COMMON["gitpod_k3s_min_kernel"]
    assert hr.DEFAULT_OPTIONS["min_containerd_version"] == cr.DEFAULT_OPTIONS["min_containerd_version"] \
        == COMMON["gitpod_k3s_min_containerd"]
    assert cr.DEFAULT_OPTIONS["min_kubernetes_version"] == COMMON["gitpod_k3s_min_kubernetes"]
    assert hr.DEFAULT_OPTIONS["allowed_distributions"] == render(role_default("preflight", "preflight_allowed_distributions"))
    assert hr.DEFAULT_OPTIONS["tested_distributions"] == render(role_default("preflight", "preflight_tested_distributions"))
    assert cr.DEFAULT_OPTIONS["os_images"] == render(role_default("cluster_validation", "cluster_validation_os_images"))


@pytest.mark.parametrize("module, options", [
    (hr_module, ["allowed_distributions", "tested_distributions", "min_kernel", "min_containerd_version"]),
    (cr_module, ["min_kubernetes_version", "min_kernel_version", "min_containerd_version", "os_images", "labels",
                 "required_labels"]),
], ids=["host_requirements", "cluster_requirements"])
def test_modules_take_the_constants_as_required_options(module, options):
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    for name in options:
        assert documented[name].get("required") is True and "default" not in documented[name], name
        description = documented[name]["description"]
        assert "common role" in (description if isinstance(description, str) else " ".join(description)), name


# ---------------------------------------------------------------- what cannot read variables

def platforms(supported_os):
    """Galaxy ``platforms``: ``[{name, versions: [codename, ...]}]`` of the releases the roles run on."""
    out = {}
    for release in supported_os:
        if release["roles"]:
            out.setdefault(release["name"], []).append(release["codename"])
    return [{"name": name, "versions": codenames} for name, codenames in out.items()]


@pytest.mark.parametrize("role", ROLES)
def test_role_meta_platforms_are_the_supported_os(role):
    meta = read_yaml(f"roles/{role}/meta/main.yml")
    assert meta["galaxy_info"]["platforms"] == platforms(SUPPORTED_OS), (
        f"roles/{role}/meta/main.yml platforms disagree with gitpod_k3s_supported_os (roles: true) in roles/common")


def hosts_sentence(supported_os):
    """`Ubuntu 20.04, 22.04 or 24.04`: the releases both Gitpod and the roles run on."""
    by_name = {}
    for release in supported_os:
        if release["gitpod"] and release["roles"]:
            by_name.setdefault(release["name"], []).append(release["version"])
    parts = []
    for name, versions in by_name.items():
        listed = versions[0] if len(versions) == 1 else ", ".join(versions[:-1]) + " or " + versions[-1]
        parts.append(f"{name} {listed}")
    return " or ".join(parts)


def test_readme_names_the_supported_hosts():
    match = re.search(r"^- Hosts: (.+?) with systemd", read("README.md"), re.M)
    assert match, "README.md: no '- Hosts: ... with systemd' line"
    assert match.group(1) == hosts_sentence(SUPPORTED_OS)


def test_readme_preflight_row_shows_the_allowed_distributions():
    match = re.search(r"`preflight_allowed_distributions` \(\[([^\]]*)\]\)", read("README.md"))
    allowed = render(role_default("preflight", "preflight_allowed_distributions"))
    assert match and [s.strip() for s in match.group(1).split(",")] == allowed


def test_common_readme_table_is_the_supported_os():
    rows = re.findall(r"^\| (\w+) \| ([\d.]+) \| (\w+) \| (\w+) \| (true|false) \| (true|false) \| (true|false) \|$",
                      read("roles/common/README.md"), re.M)
    table = [{"id": i, "version": v, "name": n, "codename": c, "gitpod": g == "true", "gitpod_tested": t == "true",
              "roles": r == "true"} for i, v, n, c, g, t, r in rows]
    assert table == SUPPORTED_OS


# ---------------------------------------------------------------- no other copy of a minimum version

def scanned_files():
    paths = ["README.md"]
    for top in ("roles", "plugins", "playbooks", "inventories"):
        for directory, _dirs, files in os.walk(os.path.join(REPO, top)):
            rel = os.path.relpath(directory, REPO)
            if rel == "roles/common" or rel.startswith("roles/common/") or "__pycache__" in rel:
                continue
            paths += [os.path.join(rel, f) for f in files]
    return sorted(p for p in paths if p != PYTHON_FALLBACK)


def value_pattern(value):
    """Occurrences of a version, also as major.minor when its patch is 0: 5.4.0 and 5.4, not 15.4.0 or 5.4.1."""
    major, minor, patch = parse_version(value)[:3]
    forms = [re.escape(f"{major}.{minor}.{patch}")] + ([re.escape(f"{major}.{minor}")] if patch == 0 else [])
    return re.compile(r"(?<![\w.])(?:" + "|".join(forms) + r")(?![\w]|\.\d)")


def copies(constant, value):
    """(path, line, text, problem) for each occurrence of ``value`` that is not a checked statement or listed."""
    pattern = value_pattern(value)
    variables = "|".join([constant] + MINIMUMS[constant])
    checked = [re.compile(rf"`(?:>= )?(?:{variables})` \(\"?(\d+(?:\.\d+)+)")] + [re.compile(s) for s in STATEMENTS[constant]]
    found = []
    for path in scanned_files():
        try:
            text = read(path)
        except UnicodeDecodeError:
            continue
        covered = []
        for regex in checked:
            for match in regex.finditer(text):
                covered.append((match.start(1), match.end(1)))
                if not same_version(match.group(1), value):
                    line = text.count("\n", 0, match.start()) + 1
                    found.append((path, line, match.group(0), f"states {match.group(1)}, the common role {value}"))
        for listed_path, regex in NOT_THE_CONSTANT:
            if listed_path == path:
                covered += [m.span() for m in re.finditer(regex, text)]
        for match in pattern.finditer(text):
            if not any(start <= match.start() and match.end() <= end for start, end in covered):
                line = text.count("\n", 0, match.start()) + 1
                found.append((path, line, text.splitlines()[line - 1].strip(),
                              f"a copy of {constant}: reference the common role's variable, or state it so that "
                              "test_constants.py checks it"))
    return found


@pytest.mark.parametrize("constant", sorted(MINIMUMS))
def test_no_other_copy_of_a_minimum_version(constant):
    found = copies(constant, COMMON[constant])
    assert not found, "\n".join(f"{p}:{n}: {problem}: {text}" for p, n, text, problem in found)


def test_the_scan_sees_the_copies_it_checks():
    """Each listed occurrence matches today's files, and each constant has checked statements (a scan that
    matches nothing proves nothing)."""
    texts = {p: read(p) for p in scanned_files() if p.endswith((".md", ".py", ".j2", ".yml"))}
    for path, regex in NOT_THE_CONSTANT:
        assert re.search(regex, texts[path]), f"{path}: {regex} matches nothing; drop it from NOT_THE_CONSTANT"
    for constant, variables in MINIMUMS.items():
        rule = re.compile(rf"`(?:>= )?(?:{'|'.join([constant] + variables)})` \(\"?(\d+(?:\.\d+)+)")
        statements = [rule] + [re.compile(s) for s in STATEMENTS[constant]]
        assert any(r.search(t) for r in statements for t in texts.values()), f"no checked statement of {constant}"
