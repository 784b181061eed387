#!/usr/bin/python
# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Documentation for the checks_report action plugin (plugins/action/checks_report.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: checks_report
short_description: Write a fleet report of check results (report.json, report.md) on the controller
version_added: "0.1.0"
description:
  - Takes check results (C({id, status, expected, actual, hint}), as returned by
    M(selfhosted.gitpod_k3s.host_requirements)) per host (O(results)) and for wider scopes
    (O(scopes), e.g. C(fleet) or C(cluster)), and writes O(dir)/report.json
    (keys C(title), C(passed), C(counts), C(hosts) mapping each host to C(passed), C(counts), C(facts), C(checks), and
    C(scopes) mapping each scope to C(passed), C(counts), C(checks)) and O(dir)/report.md (a host x check table
    with pass/warn/fail marks, a facts table, one table
    per wider scope with expected, actual and hint, then every host warning and failure with its hint).
  - Runs on the controller as an action plugin, whatever host the task runs for; use it with
    C(run_once=true). Files change only when their content does (no timestamps).
  - Returns RV(summary), compact lines to print at the end of a run.
author:
  - selfhosted.gitpod_k3s maintainers (@selfhosted)
options:
  dir:
    description: Directory on the controller; created when missing. Relative paths are taken from the directory ansible-playbook runs in.
    type: path
    required: true
  title:
    description: Report title (the Markdown heading and the first summary line).
    type: str
    required: true
  results:
    description: Mapping of host to its list of checks, in the order to show. May be empty when only O(scopes) are reported.
    type: dict
    required: true
  scopes:
    description: Mapping of a wider scope (e.g. V(fleet), V(cluster)) to its list of checks; each gets its own table.
    type: dict
    default: {}
  facts:
    description: Optional mapping of host to a flat mapping of facts shown in a "Hosts" table.
    type: dict
    default: {}
  json_name:
    description: File name of the JSON report.
    type: str
    default: report.json
  markdown_name:
    description: File name of the Markdown report.
    type: str
    default: report.md
  mode:
    description: Permissions of the files written.
    type: raw
    default: "0644"
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
    details: Writes on the controller.
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
"""

EXAMPLES = r"""
- name: Write the validation report
  selfhosted.gitpod_k3s.checks_report:
    dir: "{{ gitpod_k3s_artifacts_dir }}/validate"
    title: "Cluster validation: gitpod"
    results: {}
    scopes:
      cluster: "{{ validation.checks }}"
  run_once: true
  register: report

- name: Print the summary
  ansible.builtin.debug:
    msg: "{{ report.summary }}"
  run_once: true
"""

RETURN = r"""
passed:
  description: True when no check failed anywhere.
  returned: always
  type: bool
counts:
  description: Checks per status over all scopes.
  returned: always
  type: dict
  sample: {pass: 30, warn: 4, fail: 2}
report:
  description: The document written to report.json.
  returned: always
  type: dict
paths:
  description: Absolute paths of the files.
  returned: always
  type: dict
  sample: {json: /work/artifacts/preflight/report.json, markdown: /work/artifacts/preflight/report.md}
summary:
  description: Compact lines, one per scope, naming failing and warning checks, then the Markdown path.
  returned: always
  type: list
  elements: str
  sample:
    - "Preflight: gitpod: FAILED: 1 host(s), 12 pass, 2 warn, 1 fail"
    - "node1  FAIL vcpus; warn disk"
    - "fleet  ok"
    - "report: /work/artifacts/preflight/report.md"
"""
