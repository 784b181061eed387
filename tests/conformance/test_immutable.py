"""Fields the API server refuses to change after creation, across a re-run with a changed setting.

k3s re-applies a file of its auto-deploy directory when it changes; an object whose immutable fields
differ (a Job's pod template, a StatefulSet's selector or volumeClaimTemplates, ...) is then refused
and the cluster keeps the old one. Each change in renders.CHANGES is rendered over a copy of the
single-node render (the same credentials, as on a real re-run); every object present in both must
be accepted as an update, and the change must reach at least one object (or the test proves nothing).
"""

from __future__ import annotations

import pytest

from apirules import immutable_changes
from renders import CHANGES, FIGURES, ok


def by_identity(objects):
    return {(o["apiVersion"], o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objects}


@pytest.mark.parametrize("change", list(CHANGES))
def test_reapplying_a_changed_setting_is_accepted(renders, checker, change):
    before = by_identity(ok(renders, "single").objects())
    render = ok(renders, change)
    after_objects = render.objects()
    after = by_identity(after_objects)
    assert checker.check_all(after_objects, render.k8s_version()) == []
    changed = [key for key in before.keys() & after.keys() if before[key] != after[key]]
    assert changed, f"{CHANGES[change]} changed no rendered object"
    refused = [msg for key in sorted(before.keys() & after.keys()) for msg in immutable_changes(before[key], after[key])]
    FIGURES[f"re-apply {change}"] = (f"{len(before.keys() & after.keys())} objects in both renders, {len(changed)} changed, "
                                     f"{len(after.keys() - before.keys())} new, {len(before.keys() - after.keys())} removed")
    assert refused == [], "\n".join(refused)
