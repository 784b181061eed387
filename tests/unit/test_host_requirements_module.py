"""The host_requirements module's main(): argument handling, failing and check mode.

The host is HostDouble (a recorded host); AnsibleModule, its argument spec and exit/fail run for real.
"""

import contextlib
import io
import json
from unittest import mock

from ansible.module_utils.testing import patch_module_args

from common_defaults import HOST_REQUIREMENTS_ARGS
from host_probe_double import DEBIAN_12, HostDouble

from ansible_collections.selfhosted.gitpod_k3s.plugins.modules import host_requirements as module


def run_module(args, host, constants=True):
    """main() with ``args``; Gitpod's constants are added as the preflight role passes them, unless not ``constants``."""
    out = io.StringIO()
    code = None
    if constants:
        args = dict(HOST_REQUIREMENTS_ARGS, **args)
    with patch_module_args(args), \
            mock.patch.object(module, "ModuleProbe", lambda _module: host), \
            contextlib.redirect_stdout(out):
        try:
            module.main()
        except SystemExit as exc:
            code = exc.code
    return code, json.loads(out.getvalue())


def small_debian_host():
    host = HostDouble.ubuntu()
    host.files["/etc/os-release"] = DEBIAN_12
    host.cpus = 2
    return host


def test_failing_host_fails_the_task_with_every_failure_in_one_message():
    code, result = run_module({}, small_debian_host())
    assert code == 1 and result["failed"] is True
    assert result["msg"].startswith("2 host requirement(s) not met:")
    assert "- os: expected one of ubuntu, found debian 12" in result["msg"]
    assert "- vcpus: expected >= 4" in result["msg"]
    assert {c["id"]: c["status"] for c in result["checks"]}["vcpus"] == "fail"
    assert result["changed"] is False


def test_fail_on_error_false_returns_the_checks_without_failing():
    code, result = run_module({"fail_on_error": False}, small_debian_host())
    assert code == 0 and "failed" not in result
    assert result["passed"] is False and result["counts"]["fail"] == 2


def test_relaxed_options_from_strings_pass():
    args = {"min_vcpus": "2", "warn_only": "os,systemd", "workloads": ["ide"]}
    code, result = run_module(args, small_debian_host())
    assert code == 0 and result["passed"] is True
    assert {c["id"]: c["status"] for c in result["checks"]}["os"] == "warn"


def test_check_mode_reads_the_same_and_changes_nothing():
    code, result = run_module({"_ansible_check_mode": True, "fail_on_error": False}, small_debian_host())
    assert code == 0 and result["changed"] is False and result["counts"]["fail"] == 2


def test_bad_option_fails_with_a_message_naming_it():
    code, result = run_module({"only": ["cpu"]}, HostDouble.ubuntu())
    assert code == 1
    assert result["msg"].startswith("host_requirements: only: unknown check id(s) cpu; known: os, kernel")


def test_workloads_choices_are_enforced_by_the_argument_spec():
    code, result = run_module({"workloads": ["gpu"]}, HostDouble.ubuntu())
    assert code == 1 and "workloads" in result["msg"] and "gpu" in result["msg"]


def test_empty_workloads_means_no_gitpod_workload():
    host = HostDouble.ubuntu()
    host.dirs.discard("/usr/src")
    code, result = run_module({"workloads": [], "only": ["usr_src"]}, host)
    assert code == 0 and result["checks"][0]["actual"] == "not a workspace node"


def test_gitpods_constants_are_required_options():
    """No default copy in the module: the preflight role passes the common role's values."""
    code, result = run_module({}, HostDouble.ubuntu(), constants=False)
    assert code == 1
    assert result["msg"] == ("missing required arguments: allowed_distributions, min_containerd_version, "
                             "min_kernel, tested_distributions")
