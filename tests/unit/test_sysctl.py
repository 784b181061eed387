"""module_utils.sysctl (host_state's kernel parameters), on a fake /proc/sys in a temporary directory."""

import os

import pytest

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import sysctl


def make_proc(tmp_path, values):
    for key, value in values.items():
        path = sysctl.key_to_path(key, str(tmp_path))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(f"{value}\n")
    return str(tmp_path)


def test_key_to_path_dots_and_slashes():
    assert sysctl.key_to_path("net.ipv4.ip_forward", "/p") == "/p/net/ipv4/ip_forward"
    assert sysctl.key_to_path("net/ipv4/conf/eth0.100/rp_filter", "/p") == "/p/net/ipv4/conf/eth0.100/rp_filter"


@pytest.mark.parametrize("key", ["", "net..x", "net/../../etc/passwd"])
def test_key_to_path_rejects_bad_keys(key):
    with pytest.raises(ValueError, match="invalid sysctl key"):
        sysctl.key_to_path(key)


def test_normalize_collapses_whitespace_and_bools():
    assert sysctl.normalize("5000\t65000\n") == "5000 65000"
    assert sysctl.normalize(True) == "1"
    assert sysctl.normalize(4096) == "4096"


def test_plan_sorts_ok_apply_unapplied_missing(tmp_path):
    root = make_proc(tmp_path, {"a.ok": "1", "a.diff": "128", "a.ro": "192536", "a.range": "5000\t65000"})
    entries = sysctl.plan(
        {"a.ok": 1, "a.diff": 4096, "a.ro": 1000000, "a.range": "5000 65000", "a.gone": 1},
        root=root, writable=lambda path: not path.endswith("ro"))
    actions = {e["key"]: e["action"] for e in entries}
    assert actions == {"a.ok": "ok", "a.diff": "apply", "a.ro": "unapplied", "a.range": "ok", "a.gone": "missing"}


def test_apply_writes_and_rereads(tmp_path):
    root = make_proc(tmp_path, {"net.core.somaxconn": "128"})
    entries = sysctl.apply(sysctl.plan({"net.core.somaxconn": 4096}, root=root))
    assert entries[0]["action"] == "apply"
    assert open(os.path.join(root, "net/core/somaxconn")).read() == "4096\n"


def test_apply_failed_write_becomes_unapplied(tmp_path):
    root = make_proc(tmp_path, {"kernel.x": "0"})

    def refuse(path, value):
        raise OSError(30, "Read-only file system")  # EROFS

    entries = sysctl.apply(sysctl.plan({"kernel.x": 1}, root=root), write=refuse)
    assert entries[0]["action"] == "unapplied"
    assert "Read-only file system" in entries[0]["reason"]


def test_apply_value_the_kernel_does_not_keep_is_unapplied(tmp_path):
    root = make_proc(tmp_path, {"kernel.x": "0"})
    entries = sysctl.apply(sysctl.plan({"kernel.x": 5}, root=root), write=lambda path, value: None)
    assert entries[0]["action"] == "unapplied"
    assert "kernel kept '0'" in entries[0]["reason"]


def entry(key, action, expected="1", actual="0"):
    return {"key": key, "path": "/proc/sys/" + key, "expected": expected, "actual": actual, "action": action, "reason": "r"}


def test_policy_unapplied_optional_key_warns_by_default():
    errors, warnings = sysctl.policy_messages([entry("fs.inotify.max_user_watches", "unapplied")],
                                              required=["net.ipv4.ip_forward"], file_hint="/etc/sysctl.d/x.conf")
    assert errors == []
    assert len(warnings) == 1
    assert "fs.inotify.max_user_watches" in warnings[0] and "/etc/sysctl.d/x.conf" in warnings[0]


def test_policy_unapplied_optional_key_fails_when_asked():
    errors, warnings = sysctl.policy_messages([entry("fs.inotify.max_user_watches", "unapplied")], on_unapplied="fail")
    assert warnings == []
    assert "fs.inotify.max_user_watches" in errors[0]


def test_policy_unapplied_required_key_always_fails():
    errors, _unused = sysctl.policy_messages([entry("net.ipv4.ip_forward", "unapplied")], required=["net.ipv4.ip_forward"])
    assert len(errors) == 1 and "required" in errors[0] and "net.ipv4.ip_forward" in errors[0]


def test_policy_missing_key_fails_but_only_warns_in_check_mode():
    missing = [entry("net.bridge.bridge-nf-call-iptables", "missing", actual=None)]
    errors, warnings = sysctl.policy_messages(missing)
    assert errors and "br_netfilter" in errors[0] and not warnings
    errors, warnings = sysctl.policy_messages(missing, check_mode=True)
    assert not errors and "check mode" in warnings[0]


def test_policy_rejects_unknown_mode():
    with pytest.raises(ValueError):
        sysctl.policy_messages([], on_unapplied="ignore")


def read_only_proc(path):
    """Test double for sysctl.is_writable: every file reads as on a read-only /proc/sys mount."""
    return False


def test_converge_check_mode_reports_change_without_writing(tmp_path):
    root = make_proc(tmp_path, {"net.core.somaxconn": "128"})
    result, diff, errors, warnings = sysctl.converge({"net.core.somaxconn": 4096}, root=root, check_mode=True)
    assert result["applied"] == {"net.core.somaxconn": {"before": "128", "after": "4096"}} and not errors and not warnings
    assert diff == {"before": "net.core.somaxconn = 128\n", "after": "net.core.somaxconn = 4096\n"}
    assert open(os.path.join(root, "net/core/somaxconn")).read() == "128\n"


def test_converge_apply_then_again_applies_nothing(tmp_path):
    root = make_proc(tmp_path, {"net.core.somaxconn": "128"})
    result, diff, _errors, _warnings = sysctl.converge({"net.core.somaxconn": 4096}, root=root)
    assert list(result["applied"]) == ["net.core.somaxconn"] and diff["after"] == "net.core.somaxconn = 4096\n"
    result, diff, _errors, _warnings = sysctl.converge({"net.core.somaxconn": 4096}, root=root)
    assert result["applied"] == {} and diff is None and result["values"] == {"net.core.somaxconn": "4096"}


def test_converge_read_only_required_key_is_an_error_with_both_values(tmp_path, monkeypatch):
    root = make_proc(tmp_path, {"net.ipv4.ip_forward": "0"})
    monkeypatch.setattr(sysctl, "is_writable", read_only_proc)
    _result, _diff, errors, _warnings = sysctl.converge({"net.ipv4.ip_forward": 1}, root=root, required=["net.ipv4.ip_forward"])
    assert len(errors) == 1 and "net.ipv4.ip_forward (wanted '1', live '0'" in errors[0]


def test_converge_read_only_optional_key_only_warns(tmp_path, monkeypatch):
    root = make_proc(tmp_path, {"fs.inotify.max_user_watches": "192536", "net.ipv4.ip_forward": "1"})
    monkeypatch.setattr(sysctl, "is_writable", read_only_proc)
    result, _diff, errors, warnings = sysctl.converge(
        {"fs.inotify.max_user_watches": 1000000, "net.ipv4.ip_forward": 1}, root=root,
        required=["net.ipv4.ip_forward"], file_hint="/etc/sysctl.d/90-gitpod-k3s.conf")
    assert errors == [] and result["applied"] == {}
    assert result["unapplied"]["fs.inotify.max_user_watches"]["actual"] == "192536"
    assert len(warnings) == 1 and "fs.inotify.max_user_watches" in warnings[0]


def test_converge_read_only_optional_key_is_an_error_with_on_unapplied_fail(tmp_path, monkeypatch):
    root = make_proc(tmp_path, {"fs.inotify.max_user_watches": "192536"})
    monkeypatch.setattr(sysctl, "is_writable", read_only_proc)
    _result, _diff, errors, warnings = sysctl.converge({"fs.inotify.max_user_watches": 1000000}, root=root, on_unapplied="fail")
    assert warnings == [] and len(errors) == 1 and "fs.inotify.max_user_watches" in errors[0]
