"""benchmarks/bench.py without Docker: the package floor's apt decisions, its check against the
converge, and the ratios and targets of the table."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "benchmarks"))

import bench  # noqa: E402

SPECS = [
    {"name": "ca-certificates"},
    {"name": "curl"},
    {"name": "linux-headers-6.1.0-1-amd64", "optional": True},
    {"name": "systemd-timesyncd", "unless_installed": ["chrony", "ntp"]},
    {"name": "containerd"},
]


def test_fresh_host_installs_every_missing_required_package_and_asks_for_the_optional_one():
    assert bench.apt_steps(SPECS, {"ca-certificates"}) == (
        ["curl", "systemd-timesyncd", "containerd"], ["linux-headers-6.1.0-1-amd64"])


def test_time_daemon_is_left_out_when_an_alternative_is_installed():
    required, optional = bench.apt_steps(SPECS, {"chrony"})
    assert "systemd-timesyncd" not in required
    assert required == ["ca-certificates", "curl", "containerd"]
    assert optional == ["linux-headers-6.1.0-1-amd64"]


def _out(tasks):
    """A json callback output with one play of ``tasks``: [(task name, {host: result})]."""
    return {"plays": [{"tasks": [{"task": {"name": name}, "hosts": hosts} for name, hosts in tasks]}],
            "stats": {}}


def test_package_specs_come_from_the_packages_playbook_task_of_each_host():
    out = _out([("Gather", {"h1": {"msg": "x"}}),
                (bench.PACKAGES_TASK, {"h1": {"msg": SPECS, "action": "ansible.builtin.debug"},
                                       "h2": {"msg": SPECS[:1], "action": "ansible.builtin.debug"}})])
    assert bench.package_specs(out) == {"h1": SPECS, "h2": SPECS[:1]}


@pytest.mark.parametrize("msg", ["not a list", [{"optional": True}], [None]])
def test_a_host_without_a_package_list_stops_the_bench_naming_it(msg):
    out = _out([(bench.PACKAGES_TASK, {"h7": {"msg": msg}})])
    with pytest.raises(SystemExit) as err:
        bench.package_specs(out)
    assert "h7" in str(err.value)


def _converge(installed_by_host):
    return _out([("Apply", {h: {"action": bench.HOST_STATE_ACTION, "packages": {"installed": names}}
                            for h, names in installed_by_host.items()})])


def test_package_floor_matching_the_converge_reports_nothing():
    floor = {"p1": ["curl", "containerd"], "p2": ["curl", "containerd"]}
    assert bench.compare_packages(floor, _converge({"c1": ["containerd", "curl"], "c2": ["curl", "containerd"]})) == []


def test_converge_installing_other_packages_is_reported_naming_the_host():
    floor = {"p1": ["curl", "containerd"]}
    problems = bench.compare_packages(floor, _converge({"c1": ["curl", "containerd"], "c2": ["curl", "containerd", "jq"]}))
    assert len(problems) == 1
    assert "c2" in problems[0] and "jq" in problems[0]


def test_package_floor_hosts_that_disagree_are_reported():
    problems = bench.compare_packages({"p1": ["curl"], "p2": ["curl", "jq"]}, _converge({"c1": ["curl"]}))
    assert any("p2" in p for p in problems)


def test_converge_without_a_host_state_result_is_reported():
    problems = bench.compare_packages({"p1": ["curl"]}, _out([("Ping", {"c1": {"action": "ansible.builtin.ping"}})]))
    assert problems and bench.HOST_STATE_ACTION in problems[0]


def _rows(n, floor, package_floor, converge, rerun):
    return [
        {"n": n, "stage": "floor", "wall_s": floor, "tasks": 2, "changed": 0},
        {"n": n, "stage": "package_floor", "wall_s": package_floor, "tasks": None, "changed": n, "packages": ["curl"]},
        {"n": n, "stage": "preflight", "wall_s": 1.0, "tasks": 16, "changed": 1},
        {"n": n, "stage": "converge", "wall_s": converge, "tasks": 30, "changed": n},
        {"n": n, "stage": "rerun", "wall_s": rerun, "tasks": 30, "changed": 1},
    ]


def test_rerun_target_applies_at_ten_and_twenty_hosts_only():
    marks = bench.ratios(_rows(1, 2.0, 8.0, 12.0, 4.0) + _rows(10, 10.0, 40.0, 60.0, 15.0) + _rows(20, 20.0, 80.0, 140.0, 31.0))
    assert marks[(1, "rerun")]["target"] is None and marks[(1, "rerun")]["met"] is None
    assert marks[(10, "rerun")] == {"ratio": 1.5, "ratio_to": "floor", "target": 1.5, "met": True}
    assert marks[(20, "rerun")]["ratio"] == 1.55 and marks[(20, "rerun")]["met"] is False


def test_converge_is_measured_against_floor_plus_package_floor_at_every_size():
    marks = bench.ratios(_rows(1, 2.0, 8.0, 13.0, 3.0) + _rows(10, 10.0, 40.0, 66.0, 15.0))
    assert marks[(1, "converge")] == {"ratio": 1.3, "ratio_to": "floor + package_floor", "target": 1.3, "met": True}
    assert marks[(10, "converge")]["ratio"] == 1.32 and marks[(10, "converge")]["met"] is False


def test_table_marks_each_row_and_targets_name_the_sizes():
    rows = _rows(1, 2.0, 8.0, 13.0, 3.0) + _rows(10, 10.0, 40.0, 70.0, 14.0)
    lines = bench.table(rows).splitlines()
    assert lines[2] == "| 1 | 2.0 | 8.0 | 1.0 | 13.0 | 3.0 | 2/16/30/30 | 0/1/1/1 | 1.50 | - | 1.30 | <= 1.3: met |"
    assert lines[3] == "| 10 | 10.0 | 40.0 | 1.0 | 70.0 | 14.0 | 2/16/30/30 | 0/1/10/1 | 1.40 | <= 1.5: met | 1.40 | <= 1.3: NOT met |"
    assert bench.targets(rows) == [
        "rerun <= 1.5 x floor at N = 10 and 20: N=10 1.40 met",
        "converge <= 1.3 x (floor + package floor): N=1 1.30 met; N=10 1.40 NOT met",
    ]


def test_latest_json_rows_carry_the_ratios_and_the_package_check():
    rows = bench.record(_rows(10, 10.0, 40.0, 70.0, 14.0), {10: ["converge host c2: ..."]})
    assert [r["stage"] for r in rows] == bench.STAGE_ORDER
    by = {r["stage"]: r for r in rows}
    assert by["rerun"]["met"] is True and by["converge"]["met"] is False
    assert by["package_floor"]["matches_converge"] is False and by["package_floor"]["packages"] == ["curl"]
    assert "ratio" not in by["floor"]
