import pytest

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import checks


def test_pass_check_drops_hint():
    c = checks.check("vcpus", "pass", ">= 4", 8, "add CPUs")
    assert c == {"id": "vcpus", "status": "pass", "expected": ">= 4", "actual": "8", "hint": ""}


def test_unknown_status_is_rejected():
    with pytest.raises(ValueError, match="status must be one of"):
        checks.check("x", "ok", "", "")


def test_warn_does_not_fail_but_fail_does():
    warn = checks.check("a", "warn", "x", "y", "h")
    fail = checks.check("b", "fail", ">= 4", "2", "add CPUs")
    assert checks.passed([warn])
    assert not checks.passed([warn, fail])
    assert checks.counts([warn, fail]) == {"pass": 0, "warn": 1, "fail": 1}


def test_failure_message_lists_every_failure_with_hint():
    msg = checks.failure_message([
        checks.check("vcpus", "fail", ">= 4", "2", "add CPUs"),
        checks.check("memory", "fail", ">= 16 GiB", "8 GiB", "add memory"),
        checks.check("kernel", "pass", ">= 5.4.0", "6.8.0"),
    ])
    assert msg.splitlines() == [
        "2 host requirement(s) not met:",
        "- vcpus: expected >= 4, found 2. Fix: add CPUs",
        "- memory: expected >= 16 GiB, found 8 GiB. Fix: add memory",
    ]
    assert checks.failure_message([checks.check("k", "pass", "", "")]) == ""
