"""The day-two table (docs/day-two.yml) covers every option of the roles that write cluster objects or
node files, each with a verdict from its vocabulary; no process is started.

The options come from the roles' argument specs (every entry point), so an option added to a spec
without a verdict fails here. tests/integration/test_day_two_verdicts.py renders and judges the
entries marked ``check: render``.
"""

from __future__ import annotations

import copy
import os

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TABLE = os.path.join(REPO, "docs", "day-two.yml")
ROLES = ("common", "containerd", "k3s", "calico", "cert_manager", "components", "gitpod_config")
VERDICTS = {"none", "gitpod_config", "live", "rolls", "refused", "restarts_k3s", "restarts_containerd", "install_only"}
# The roles whose every option playbooks/components.yml renders: each must be judged by a render,
# unless its entry says why no render can.
RENDERED = ("cert_manager", "components", "gitpod_config")


def spec_options(role):
    with open(os.path.join(REPO, "roles", role, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        specs = yaml.safe_load(handle)["argument_specs"]
    return {name for entry in specs.values() for name in (entry.get("options") or {})}


def load_table():
    with open(TABLE, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def problems(table, options):
    """Every way the table falls short of the options (role -> option names)."""
    found = []
    contexts = set(table.get("contexts") or {})
    for role, names in options.items():
        entries = (table.get("roles") or {}).get(role) or {}
        found += [f"{role}: {name} has no day-two verdict" for name in sorted(names - set(entries))]
        found += [f"{role}: {name} is in the table but no option of the role" for name in sorted(set(entries) - names)]
        for name, entry in entries.items():
            entry = entry or {}
            if entry.get("verdict") not in VERDICTS:
                found.append(f"{role}: {name} has verdict {entry.get('verdict')!r}; allowed: {', '.join(sorted(VERDICTS))}")
            check = entry.get("check")
            if check == "render":
                if "to" not in entry:
                    found.append(f"{role}: {name} is checked by a render but gives no value to change to (to)")
                if entry.get("context", "default") not in contexts:
                    found.append(f"{role}: {name} names the unknown context {entry.get('context')!r}")
            elif check == "reading":
                if not entry.get("why"):
                    found.append(f"{role}: {name} is a verdict by reading without a why")
            else:
                found.append(f"{role}: {name} has check {check!r}; allowed: render, reading")
            if (entry.get("verdict") == "rolls") != bool(entry.get("pods")):
                found.append(f"{role}: {name}: pods are named exactly for the verdict rolls")
    return found


def test_every_option_has_a_verdict():
    options = {role: spec_options(role) for role in ROLES}
    assert problems(load_table(), options) == []
    assert sum(len(v) for v in options.values()) >= 180


def test_the_rendered_roles_are_judged_by_a_render_wherever_one_can():
    table = load_table()["roles"]
    reading = {f"{role}.{name}" for role in RENDERED for name, entry in table[role].items() if entry["check"] == "reading"}
    # A render cannot judge a path on a node or the controller, the command that reads the cluster or
    # the host that runs the checks, what needs a running cert-manager, or the waits a render skips.
    assert len(reading) <= 14, sorted(reading)


@pytest.mark.parametrize("plant", ["new option", "verdict misspelt", "render without to", "rolls without pods"])
def test_a_planted_fault_is_found(plant):
    table = copy.deepcopy(load_table())
    options = {role: spec_options(role) for role in ROLES}
    entry = table["roles"]["components"]["components_mysql_version"]
    if plant == "new option":
        options["components"].add("components_new_setting")
    elif plant == "verdict misspelt":
        entry["verdict"] = "roll"
    elif plant == "render without to":
        del entry["to"]
    else:
        del entry["pods"]
    assert problems(table, options) != []
