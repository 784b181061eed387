"""Property: whatever an inventory holds, stage 0 accepts it or refuses it with messages that each name
a variable or a host; never a traceback, a template error without a name, or a contacted host.

Hypothesis mutates a valid inventory at random: variables of every role's argument spec set to
values of any type (misspelt choices and other options' defaults among them), per host or for all,
hosts moved between groups, renamed, or pointed at another host's address.

- test_stage0_accepts_or_names_the_problem: the inventory_check action's own code in-process
  (tests/unit/stage0_harness.py), GITPOD_K3S_HYPOTHESIS_EXAMPLES examples (500 by default).
- test_stage0_through_ansible_playbook_matches_and_contacts_no_host: a few of the same examples
  through `ansible-playbook playbooks/inventory_check.yml`, whose hosts connect with an ssh
  program that leaves a mark if it is ever run; the errors must equal the in-process ones.

The seed is fixed (GITPOD_K3S_HYPOTHESIS_SEED, default 14) so CI runs the same examples every time;
`make property-test EXAMPLES=5000 SEED=random` runs a larger, new set.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, Phase, event, given, seed, settings
from hypothesis import strategies as st

from stage0_harness import REPO, SITE_ROLES, check, example_inventory

EXAMPLES = int(os.environ.get("GITPOD_K3S_HYPOTHESIS_EXAMPLES", "500"))
SEED = os.environ.get("GITPOD_K3S_HYPOTHESIS_SEED", "14")
PLAYBOOK_EXAMPLES = int(os.environ.get("GITPOD_K3S_HYPOTHESIS_PLAYBOOK_EXAMPLES", "12"))


def _specs():
    options = {}
    for role in ["common"] + SITE_ROLES:
        with open(os.path.join(REPO, "roles", role, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
            options.update(yaml.safe_load(handle)["argument_specs"]["main"]["options"] or {})
    return options


OPTIONS = _specs()
NAMES = sorted(OPTIONS)
GROUPS = ["k3s_servers", "k3s_agents", "gitpod_meta", "gitpod_workspace", "gitpod_headless", "gitpod_workspaces", "other"]


def _fixed_seed(test):
    return test if SEED == "random" else seed(int(SEED))(test)


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=24), st.sampled_from(["", " ", "five", "10.42.0.0/16", "fd00::/64", "https://x.example", "x.example",
                                           "v1.31.4+k3s1", "1.2", "Enabled", "IPIP", "a\nb", "{{ undefined_thing }}", "/tmp"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=6)


@st.composite
def option_value(draw):
    name = draw(st.sampled_from(NAMES))
    spec = OPTIONS[name]
    kinds = [values]
    if spec.get("choices"):
        choices = [c for c in spec["choices"] if isinstance(c, str)]
        if choices:
            kinds.append(st.sampled_from(choices).map(lambda c: c.lower() + draw(st.sampled_from(["", "x", "s"]))))
    other = OPTIONS[draw(st.sampled_from(NAMES))].get("default")
    kinds.append(st.just(other))
    return name, draw(st.one_of(kinds))


HOST_NAMES = st.text(alphabet="abcWXZ019_-.", min_size=1, max_size=10).filter(lambda s: s[0] not in "-.")


@st.composite
def inventories(draw):
    inv = example_inventory(draw(st.sampled_from([1, 3])), draw(st.integers(0, 2)))
    children = inv["all"]["children"]
    extra = {}
    for _unused in range(draw(st.integers(1, 4))):
        hosts = sorted({h for g in children.values() for h in (g.get("hosts") or {})})
        kind = draw(st.sampled_from(["extra", "hostvar", "group", "rename", "address"]))
        if kind == "extra":
            name, value = draw(option_value())
            extra[name] = value
        elif kind == "hostvar" and hosts:
            name, value = draw(option_value())
            host = draw(st.sampled_from(hosts))
            for group in children.values():
                if host in (group.get("hosts") or {}) and isinstance(group["hosts"][host], dict):
                    group["hosts"][host][name] = value
        elif kind == "group" and hosts:
            group, host = draw(st.sampled_from(GROUPS)), draw(st.sampled_from(hosts))
            members = children.setdefault(group, {"hosts": {}}).setdefault("hosts", {})
            if host in members and draw(st.booleans()):
                del members[host]
            else:
                members[host] = None
        elif kind == "rename" and hosts:
            old, new = draw(st.sampled_from(hosts)), draw(HOST_NAMES)
            if new not in hosts:
                for group in children.values():
                    members = group.get("hosts") or {}
                    if old in members:
                        members[new] = members.pop(old)
        elif kind == "address" and len(hosts) > 1:
            a, b = draw(st.sampled_from(hosts)), draw(st.sampled_from(hosts))
            for group in children.values():
                members = group.get("hosts") or {}
                if isinstance(members.get(a), dict):
                    members[a]["ansible_host"] = f"192.0.2.{200 + len(b)}"
                if isinstance(members.get(b), dict):
                    members[b]["ansible_host"] = f"192.0.2.{200 + len(b)}"
    return inv, extra


def _named(message, hosts):
    """A message names a variable of a spec, a host, an inventory group, or a gitpod_k3s_* setting."""
    words = set(re.findall(r"[A-Za-z0-9_]+", message))
    return bool(words & set(NAMES)) or any(h in message for h in hosts) or "inventory group" in message or "gitpod_k3s_" in message


def _hosts(inv):
    return {h for g in inv["all"]["children"].values() for h in (g.get("hosts") or {})}


def assert_accepted_or_named(inv, extra, errors):
    hosts = _hosts(inv)
    for message in errors:
        assert not message.startswith("internal error"), message
        assert "Traceback" not in message, message
        assert _named(message, hosts), f"names no variable or host: {message!r}\nextra vars: {extra!r}"


@_fixed_seed
@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(inventories())
def test_stage0_accepts_or_names_the_problem(case):
    inv, extra = case
    errors, _unused = check(inv, extra)
    assert isinstance(errors, list)
    event("refused" if errors else "accepted")
    assert_accepted_or_named(inv, extra, errors)


def test_the_property_would_catch_an_unnamed_message():
    # The assertion bites: a message naming nothing, or an internal error, fails it.
    inv = example_inventory()
    with pytest.raises(AssertionError):
        assert_accepted_or_named(inv, {}, ["something is wrong"])
    with pytest.raises(AssertionError):
        assert_accepted_or_named(inv, {}, ["internal error: the rule check_host('k3s',) could not read the settings"])
    assert_accepted_or_named(inv, {}, ["k3s_token holds whitespace", "host agent1: node name 'x'"])


def _run_playbook(tmp_path, inv, extra, playbook="playbooks/inventory_check.yml"):
    marker = tmp_path / "contacted"
    ssh = tmp_path / "ssh-marker"
    ssh.write_text(f"#!/bin/sh\necho \"$@\" >> {marker}\nexit 255\n")
    ssh.chmod(0o755)
    inv = json.loads(json.dumps(inv))
    inv["all"]["vars"] = {"ansible_connection": "ssh", "ansible_ssh_executable": str(ssh)}
    (tmp_path / "hosts.json").write_text(json.dumps(inv))
    (tmp_path / "extra.json").write_text(json.dumps(dict(extra, gitpod_k3s_check_roles=SITE_ROLES)))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(tmp_path / "hosts.json"),
         "-e", f"@{tmp_path / 'extra.json'}", os.path.join(REPO, playbook)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc, marker


def test_the_marker_shows_a_contacted_host(tmp_path):
    # The proof bites: a playbook that connects (Ansible's floor: facts and a ping) leaves the mark.
    _proc, marker = _run_playbook(tmp_path, example_inventory(1, 0), {}, playbook="benchmarks/floor.yml")
    assert marker.exists() and "192.0.2.1" in marker.read_text()


@_fixed_seed
# No shrinking: each example is a playbook run of seconds; a failure reports the example as drawn.
@settings(max_examples=PLAYBOOK_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(inventories())
def test_stage0_through_ansible_playbook_matches_and_contacts_no_host(tmp_path_factory, case):
    inv, extra = case
    tmp_path = tmp_path_factory.mktemp("stage0")
    expected, _unused = check(inv, extra)
    event("refused" if expected else "accepted")
    proc, marker = _run_playbook(tmp_path, inv, extra)
    assert not marker.exists(), f"a host was contacted: {marker.read_text()}"
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    found = []
    for play in report["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                found += result.get("errors") or []
                if result.get("failed") and not result.get("errors"):
                    found.append(result.get("msg", ""))
    assert found == expected, (proc.stderr[-2000:], extra)
    assert (proc.returncode == 0) == (not expected), proc.stderr[-2000:]
    assert_accepted_or_named(inv, extra, found)
