# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Filter that gathers per-host preflight results and adds the cross-host (fleet) checks."""

from __future__ import annotations

DOCUMENTATION = r"""
name: preflight_results
short_description: Per-host preflight checks plus the fleet checks, ready for checks_report
version_added: "0.1.0"
description:
  - Reads each host's registered M(selfhosted.gitpod_k3s.host_requirements) result from C(hostvars)
    and returns the per-host checks, the fleet checks, a facts table and one failure message per host and for the fleet.
  - A host that was unreachable, or never ran the module, gets a failing C(reachable) check.
  - "Fleet checks, on the controller: C(unique_hostnames) among the checked hosts; C(server_count),
    at least one server and an odd number when more than one, from the whole inventory; C(labels),
    every required Gitpod label carried by at least one host, from inventory groups, so C(--limit)
    does not hide a label; C(architecture), one CPU architecture."
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  hosts:
    description: Hosts of the run (C(ansible_play_hosts_all)).
    type: list
    elements: str
    required: true
  groups:
    description: Inventory groups (the C(groups) magic variable).
    type: dict
    required: true
  result_var:
    description: Name of the registered host_requirements result.
    type: str
    required: true
  server_group:
    description: Inventory group of the k3s servers.
    type: str
    required: true
  agent_group:
    description: Inventory group of the k3s agents.
    type: str
    required: true
  label_groups:
    description: C(gitpod_k3s_label_groups).
    type: dict
    required: true
  labels:
    description: C(gitpod_k3s_labels).
    type: dict
    required: true
  required_labels:
    description: Label keys (of O(labels)) every cluster needs on at least one host.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Build the preflight report input
  ansible.builtin.set_fact:
    report_input: >-
      {{ hostvars | selfhosted.gitpod_k3s.preflight_results(ansible_play_hosts_all, groups, 'requirements',
         'k3s_servers', 'k3s_agents', gitpod_k3s_label_groups, gitpod_k3s_labels, gitpod_k3s_required_labels) }}
"""

RETURN = r"""
_value:
  description:
    - "A mapping with C(results) (host to its checks), C(scopes) (C(fleet) to the fleet checks), C(facts) (host to
      role, labels, os, kernel, arch, vcpus, memory) and C(messages) (host or C(fleet) to its failure message, empty
      when nothing failed): the input of M(selfhosted.gitpod_k3s.checks_report)."
  type: dict
"""

from collections import Counter

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.gitpod_k3s.plugins.filter.gitpod_labels import gitpod_node_labels
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import checks as C
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import inventory_validation as iv

FLEET = "fleet"
GIB = 1024 ** 3


def _host_record(hostvars, host, result_var):
    try:
        hv = hostvars[host]
    except KeyError:
        return None
    try:
        return hv[result_var] if result_var in hv else None
    except Exception:  # noqa: BLE001  lazily templated hostvars may raise anything; treat as missing
        return None


def host_checks(record):
    """The checks of one registered result, or a failing 'reachable' / 'module' check."""
    if not isinstance(record, dict):
        return [C.check("reachable", C.FAIL, "host checked", "not checked: the host failed or was skipped before preflight ran",
                        "See the errors above for this host.")]
    if record.get("unreachable"):
        return [C.check("reachable", C.FAIL, "reachable over its connection", record.get("msg", "unreachable"),
                        "Check ansible_host, the user, the key and that Python 3 is installed.")]
    checks = record.get("checks")
    if isinstance(checks, list) and checks:
        return [C.check(c.get("id"), c.get("status"), c.get("expected"), c.get("actual"), c.get("hint")) for c in checks]
    if record.get("skipped"):
        return [C.check("reachable", C.FAIL, "host checked", "skipped", "The preflight task was skipped for this host.")]
    return [C.check("module", C.FAIL, "host_requirements ran", record.get("msg", "no result"),
                    "Read the error above; it names the option or the host problem.")]


def _group_names(groups, host):
    return sorted(g for g, members in groups.items() if g not in ("all", "ungrouped") and host in (members or []))


def host_facts(record, host, groups, server_group, agent_group, label_groups, labels):
    names = _group_names(groups, host)
    role = "server" if host in (groups.get(server_group) or []) else "agent" if host in (groups.get(agent_group) or []) else ""
    short = [lbl.split("/", 1)[-1].replace("workload_", "") for lbl in gitpod_node_labels(names, label_groups, labels)]
    out = {"role": role, "labels": ", ".join(short)}
    facts = record.get("facts") if isinstance(record, dict) else None
    if isinstance(facts, dict):
        os_info = facts.get("os") or {}
        out["os"] = f"{os_info.get('id', '')} {os_info.get('version_id', '')}".strip()
        out["kernel"] = facts.get("kernel", "")
        out["arch"] = facts.get("architecture", "")
        if facts.get("vcpus") is not None:
            out["vcpus"] = facts["vcpus"]
        if facts.get("memory_bytes") is not None:
            out["memory"] = f"{facts['memory_bytes'] / GIB:.1f} GiB"
    return out


def fleet_checks(records, groups, server_group, agent_group, label_groups, labels, required_labels):
    """Cross-host checks. ``records`` maps host -> registered result (or None)."""
    out = []
    facts = {h: r.get("facts") for h, r in records.items() if isinstance(r, dict) and isinstance(r.get("facts"), dict)}

    names = Counter(f.get("hostname", "") for f in facts.values() if f.get("hostname"))
    dupes = sorted(n for n, k in names.items() if k > 1)
    expected = "every host has its own hostname"
    if dupes:
        detail = "; ".join(f"{n}: " + ", ".join(sorted(h for h, f in facts.items() if f.get("hostname") == n)) for n in dupes)
        out.append(C.check("unique_hostnames", C.FAIL, expected, f"shared: {detail}",
                           "k3s registers nodes by hostname: give each host its own (hostnamectl set-hostname NAME)."))
    else:
        out.append(C.check("unique_hostnames", C.PASS, expected, f"{len(names)} distinct"))

    servers = list(groups.get(server_group) or [])
    expected = f"at least one host in {server_group}, an odd number when more than one"
    if not servers:
        out.append(C.check("server_count", C.FAIL, expected, "0",
                           f"Put at least one host in the inventory group {server_group}."))
    elif not iv.server_count_ok(len(servers)):
        out.append(C.check("server_count", C.FAIL, expected, str(len(servers)),
                           "Embedded etcd needs a majority to keep quorum: use 1, 3 or 5 servers "
                           f"(move one host of {server_group} to {agent_group})."))
    else:
        out.append(C.check("server_count", C.PASS, expected, str(len(servers))))

    cluster_hosts = list(dict.fromkeys(servers + list(groups.get(agent_group) or [])))
    unknown = [k for k in required_labels if k not in labels]
    if unknown:
        raise AnsibleFilterError(
            f"preflight_results: required label key(s) {', '.join(unknown)} are not in gitpod_k3s_labels "
            f"(defined: {', '.join(sorted(labels))})")
    required = [labels[k] for k in required_labels]
    # The same rule as stage 0's (plugins/module_utils/inventory_validation.py), shown in the report.
    missing = iv.missing_labels(groups, cluster_hosts, label_groups, labels, required_labels)
    expected = "each on at least one host: " + ", ".join(required)
    if missing:
        givers = sorted({g for g, keys in label_groups.items()
                         for k in (keys or []) if labels.get(k) in missing})
        out.append(C.check("labels", C.FAIL, expected, "missing: " + ", ".join(missing),
                           "Add hosts of " + "/".join([server_group, agent_group])
                           + " to the inventory group(s) " + ", ".join(givers) + "."))
    else:
        out.append(C.check("labels", C.PASS, expected, f"all {len(required)} carried"))

    arches = Counter(f.get("architecture", "") for f in facts.values() if f.get("architecture"))
    expected = "one CPU architecture"
    if len(arches) > 1:
        detail = ", ".join(f"{a}: {n} host(s)" for a, n in sorted(arches.items()))
        out.append(C.check("architecture", C.FAIL, expected, detail,
                           "The collection installs one set of binaries and images: use hosts of one architecture."))
    else:
        out.append(C.check("architecture", C.PASS, expected, next(iter(arches), "unknown")))
    return out


def preflight_results(hostvars, hosts, groups, result_var, server_group, agent_group, label_groups, labels, required_labels):
    """{results: {host: checks}, scopes: {fleet: checks}, facts: {host: {...}}, messages: {host or fleet: failure message or ""}}."""
    if not isinstance(groups, dict):
        raise AnsibleFilterError(f"preflight_results: groups must be the inventory groups mapping, got {type(groups).__name__}")
    records = {h: _host_record(hostvars, h, result_var) for h in hosts}
    results, facts = {}, {}
    for host, record in records.items():
        results[host] = host_checks(record)
        facts[host] = host_facts(record, host, groups, server_group, agent_group, label_groups, labels)
    scopes = {FLEET: fleet_checks(records, groups, server_group, agent_group, label_groups, labels, required_labels)}
    messages = {host: C.failure_message(items, "host") for host, items in results.items()}
    messages[FLEET] = C.failure_message(scopes[FLEET], "fleet")
    return {"results": results, "scopes": scopes, "facts": facts, "messages": messages}


class FilterModule:
    """Preflight filters."""

    def filters(self):
        return {"preflight_results": preflight_results}
