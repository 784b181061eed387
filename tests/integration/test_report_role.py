"""roles/report (checks_report action) through ansible-playbook on the controller: writes, idempotence,
check mode and diff. No containers: the report is written on the controller whatever the hosts."""

import json
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PLAYBOOK = """---
- name: Report
  hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: selfhosted.gitpod_k3s.report
      vars:
        report_dir: "{dir}"
        report_title: Validation
        report_results:
          node1:
            - {{id: vcpus, status: "{status}", expected: ">= 4", actual: "2", hint: add CPUs}}
        report_scopes:
          cluster:
            - {{id: storage, status: pass, expected: a default StorageClass, actual: local-path, hint: ""}}
  post_tasks:
    - name: Show what the role registered
      ansible.builtin.debug:
        msg: "RESULT {{{{ {{'changed': report_written.changed, 'passed': report_written.passed}} | to_json }}}}"
"""


def play(tmp_path, status="fail", *args):
    book = tmp_path / "report.yml"
    book.write_text(PLAYBOOK.format(dir=tmp_path / "out", status=status))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", str(book), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(x for x in proc.stdout.splitlines() if "RESULT " in x)
    return json.loads(line.split("RESULT ", 1)[1].rstrip("'\"")), proc.stdout


def test_writes_both_files_then_changes_nothing(tmp_path):
    first, _unused = play(tmp_path)
    assert first == {"changed": True, "passed": False}
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["hosts"]["node1"]["checks"][0]["status"] == "fail"
    assert doc["scopes"]["cluster"]["passed"] is True
    assert "| node1 | ❌ |" in (tmp_path / "out" / "report.md").read_text()
    second, _unused = play(tmp_path)
    assert second == {"changed": False, "passed": False}


def test_check_mode_reports_the_change_with_a_diff_and_writes_nothing(tmp_path):
    play(tmp_path)
    before = (tmp_path / "out" / "report.json").read_text()
    result, out = play(tmp_path, "pass", "--check", "--diff")
    assert result == {"changed": True, "passed": True}
    assert '-          "status": "fail",' in out and '+          "status": "pass",' in out
    assert '-| node1 | ❌ |' in out and '+| node1 | ✅ |' in out
    assert (tmp_path / "out" / "report.json").read_text() == before
