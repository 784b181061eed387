# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Action plugin: write report.json and report.md of check results on the controller.

Runs in the controller process (no connection, no module transfer), so a report costs one task
whatever the number of hosts. Documentation: plugins/modules/checks_report.py.
"""

from __future__ import annotations

import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import report

ARGUMENT_SPEC = {
    "dir": {"type": "path", "required": True},
    "title": {"type": "str", "required": True},
    "results": {"type": "dict", "required": True},
    "facts": {"type": "dict", "default": {}},
    "scopes": {"type": "dict", "default": {}},
    "json_name": {"type": "str", "default": "report.json"},
    "markdown_name": {"type": "str", "default": "report.md"},
    "mode": {"type": "raw", "default": "0644"},
}

MANAGED = "Written by selfhosted.gitpod_k3s; regenerated on every run, do not edit."


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return None


def _write_atomic(path, content, mode):
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".report-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content.encode("utf-8"))
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ActionModule(ActionBase):
    """Write a fleet report of check results on the controller."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        mode = args["mode"]
        try:
            mode = int(str(mode), 8)
        except ValueError:
            raise AnsibleActionFail(f"checks_report: mode must be an octal string like '0644', got {args['mode']!r}") from None
        for key in ("json_name", "markdown_name"):
            if not args[key] or os.sep in args[key]:
                raise AnsibleActionFail(f"checks_report: {key} must be a plain file name, got {args[key]!r}")
        try:
            doc = report.build(args["title"], args["results"], args["facts"], args["scopes"])
        except report.ReportError as exc:
            raise AnsibleActionFail(f"checks_report: {exc}") from None
        directory = os.path.abspath(args["dir"])
        files = {
            os.path.join(directory, args["json_name"]): report.to_json(doc),
            os.path.join(directory, args["markdown_name"]): report.to_markdown(doc, MANAGED),
        }
        changed = False
        diffs = []
        for path, content in files.items():
            before = _read(path)
            if before == content:
                continue
            changed = True
            if self._task.diff:
                diffs.append({"before_header": path, "after_header": path,
                              "before": before or "", "after": content})
            if not self._task.check_mode:
                try:
                    _write_atomic(path, content, mode)
                except OSError as exc:
                    raise AnsibleActionFail(f"checks_report: cannot write {path}: {exc}") from None
        paths = list(files)
        result.update({
            "changed": changed,
            "passed": doc["passed"],
            "counts": doc["counts"],
            "report": doc,
            "paths": {"json": paths[0], "markdown": paths[1]},
            "summary": report.summary(doc, paths[1:]),
        })
        if diffs:
            result["diff"] = diffs
        return result
