"""Every play of every playbook names its hosts through the collection's group settings.

Derived from the list of all plays in playbooks/*.yml: a play added with a literal group name
(``hosts: k3s_servers``) would ignore gitpod_k3s_server_group / gitpod_k3s_agent_group, and fails
here. The fallback a play states (``default('k3s_servers')``: hosts are templated before any role
default is loaded) must be the common role's default, the one source of the group names.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMMON = yaml.safe_load((REPO / "roles" / "common" / "defaults" / "main.yml").read_text())
GROUP_SETTINGS = {"gitpod_k3s_server_group": COMMON["gitpod_k3s_server_group"],
                  "gitpod_k3s_agent_group": COMMON["gitpod_k3s_agent_group"]}
EXPRESSION = re.compile(r"\{\{\s*(\w+)\s*\|\s*default\('([^']*)'\)\s*\}\}")
# Patterns a play may name literally: every host (the stage-0 play), the controller.
LITERAL = {"all", "localhost"}


def plays():
    for path in sorted((REPO / "playbooks").glob("*.yml")):
        for index, play in enumerate(yaml.safe_load(path.read_text()) or []):
            if "hosts" in play:
                yield pytest.param(play["hosts"], id=f"{path.name}[{index}]")


def check(hosts: str) -> list[str]:
    """What is wrong with one play's ``hosts:`` value (empty: nothing)."""
    problems = []
    for setting, fallback in EXPRESSION.findall(hosts):
        if setting not in GROUP_SETTINGS:
            problems.append(f"{setting} is not a group setting")
        elif fallback != GROUP_SETTINGS[setting]:
            problems.append(f"{setting} falls back to {fallback!r}, the common role's default is {GROUP_SETTINGS[setting]!r}")
    rest = EXPRESSION.sub("", hosts)
    if "{{" in rest:
        problems.append(f"an expression other than '{{{{ <group setting> | default(...) }}}}': {rest!r}")
    for word in re.split(r"[:,&!]+", re.sub(r"\[[^\]]*\]", "", rest)):
        if word.strip() and word.strip() not in LITERAL:
            problems.append(f"literal group or host {word.strip()!r}")
    return problems


@pytest.mark.parametrize("hosts", list(plays()))
def test_play_hosts_come_from_the_group_settings(hosts):
    assert check(hosts) == []


def test_the_check_bites():
    assert check("k3s_servers") == ["literal group or host 'k3s_servers'"]
    assert check("{{ gitpod_k3s_server_group | default('servers') }}")[0].startswith("gitpod_k3s_server_group falls back to")
    assert check("{{ gitpod_k3s_server_group | default('k3s_servers') }}:k3s_agents") == ["literal group or host 'k3s_agents'"]
    assert check("{{ gitpod_k3s_server_group | default('k3s_servers') }}[0]") == []
