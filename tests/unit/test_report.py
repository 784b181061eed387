"""Fleet report rendering (module_utils.report): JSON document, Markdown table, summary lines."""

import json

import pytest

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import checks as C
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import report

RESULTS = {
    "node1": [C.check("os", "pass", "ubuntu", "ubuntu 22.04"),
              C.check("vcpus", "fail", ">= 4", "2", "add CPUs | or relax")],
    "node2": [C.check("os", "warn", "ubuntu", "ubuntu 24.04", "untested"),
              C.check("vcpus", "pass", ">= 4", "8"),
              C.check("disk", "pass", ">= 20", "200")],
}
SCOPES = {"fleet": [C.check("server_count", "pass", "odd", "3")]}


def test_document_counts_every_scope_and_fails_when_any_check_fails():
    doc = report.build("Preflight", RESULTS, {"node1": {"os": "ubuntu 22.04"}}, SCOPES)
    assert doc["passed"] is False
    assert doc["counts"] == {"pass": 4, "warn": 1, "fail": 1}
    assert doc["hosts"]["node1"]["passed"] is False and doc["hosts"]["node2"]["passed"] is True
    assert doc["hosts"]["node1"]["facts"] == {"os": "ubuntu 22.04"}
    assert "facts" not in doc["hosts"]["node2"]
    assert doc["scopes"]["fleet"]["counts"] == {"pass": 1, "warn": 0, "fail": 0}


def test_json_round_trips_and_is_stable():
    doc = report.build("Preflight", RESULTS, scopes=SCOPES)
    text = report.to_json(doc)
    assert json.loads(text) == doc
    assert text == report.to_json(report.build("Preflight", RESULTS, scopes=SCOPES))


def test_markdown_has_a_host_by_check_table_with_marks_and_blanks():
    md = report.to_markdown(report.build("Preflight", RESULTS, scopes=SCOPES))
    lines = md.splitlines()
    assert "| host | os | vcpus | disk |" in lines
    assert "| node1 | ✅ | ❌ |  |" in lines
    assert "| node2 | ⚠️ | ✅ | ✅ |" in lines
    assert "| server_count | ✅ pass | odd | 3 |  |" in lines


def test_markdown_lists_findings_with_hints_failures_first_and_escapes_pipes():
    md = report.to_markdown(report.build("Preflight", RESULTS))
    assert "- ❌ fail **vcpus**: expected >= 4, found 2. Fix: add CPUs \\| or relax" in md
    assert md.index("### node1") < md.index("### node2")
    assert "- ⚠️ warn **os**: expected ubuntu, found ubuntu 24.04. Fix: untested" in md


def test_markdown_says_when_everything_passed():
    md = report.to_markdown(report.build("T", {"n": [C.check("os", "pass", "", "")]}))
    assert "**PASSED**" in md and "Every host check passed." in md


def test_summary_names_failing_and_warning_checks_per_scope():
    lines = report.summary(report.build("Preflight", RESULTS, scopes=SCOPES), ["/tmp/r/report.md"])
    assert lines == [
        "Preflight: FAILED: 2 host(s), 4 pass, 1 warn, 1 fail",
        "node1  FAIL vcpus",
        "node2  warn os",
        "fleet  ok",
        "report: /tmp/r/report.md",
    ]


@pytest.mark.parametrize("results, message", [
    ([], "results must be a mapping"),
    ({"n": "x"}, "results['n'] must be a list of checks"),
    ({"n": [{"id": "a", "status": "ok"}]}, "results['n'][0] must be a check"),
])
def test_bad_input_is_rejected_with_its_path(results, message):
    with pytest.raises(report.ReportError) as err:
        report.build("T", results)
    assert message in str(err.value)
