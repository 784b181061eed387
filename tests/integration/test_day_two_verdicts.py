"""Every day-two verdict marked ``check: render`` in docs/day-two.yml, judged by rendering before and after.

For each context of the table, playbooks/components.yml installs once (tests/render/rendering.py: the
first server is this machine, the k3s manifests directory a temporary one, the cluster's Secrets from the
kubectl TEST DOUBLE). Each entry then runs again on a copy of its context's install with the option set
to its ``to`` (and ``with``), so the deployed manifests and credentials are the install's, as on a real
cluster. The pair is judged:

- refused: the run failed in the day-two check, and no manifest changed;
- rolls: the pods whose template changed are exactly the entry's ``pods``;
- live: objects changed, no pod template did;
- gitpod_config: only the Gitpod config fragment on the controller changed;
- none: nothing changed.

Every accepted pair must also pass the tests' own reading of the API server's update rules
(tests/conformance/apirules.py), so a change the runtime check let through would fail here.
"""

from __future__ import annotations

import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "render"))
sys.path.insert(0, str(HERE.parent / "conformance"))
from apirules import immutable_changes  # noqa: E402  (the tests' own reading of the API server)
from rendering import REPO, by_identity, cluster_double, failure_messages, run_components_many, workloads  # noqa: E402

TABLE = REPO / "docs" / "day-two.yml"
BASE = {"gitpod_k3s_domain": "gitpod.example.com"}
FRAGMENT = Path("artifacts") / "gitpod" / "gitpod.config.fragment.yaml"
# Words only the day-two check's messages (apply_rules.refusals) use.
REFUSAL_WORDS = ("the API server refuses once the object exists", "components_confirm_delete_claims:", "an older release")


def entries():
    table = yaml.safe_load(TABLE.read_text())
    return table["contexts"], [(role, name, entry) for role, options in table["roles"].items()
                               for name, entry in options.items() if entry.get("check") == "render"]


CONTEXTS, ENTRIES = entries()


def run_one(job):
    (result,) = run_components_many([job])
    return result


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    base = tmp_path_factory.mktemp("verdicts")
    used = sorted({entry.get("context", "default") for _r, _n, entry in ENTRIES})
    with ThreadPoolExecutor(max_workers=2) as pool:
        installs = dict(zip(used, pool.map(run_one, [(base / f"install-{c}", {**BASE, **CONTEXTS[c]}, False) for c in used])))
        for context, (rc, out) in installs.items():
            assert rc == 0, (context, failure_messages(out))
        # One re-render per entry; the entries whose verdict is none share one per context: changed together,
        # they change nothing, so none of them does (a change cannot be undone by a check or a wait).
        jobs, job_of = {}, {}
        for role, name, entry in ENTRIES:
            context = entry.get("context", "default")
            key = f"none-{context}" if entry["verdict"] == "none" else f"{role}-{name}"
            job_of[(role, name)] = key
            if key not in jobs:
                tmp = base / key
                shutil.copytree(base / f"install-{context}", tmp)
                cluster_double(tmp, {})
                jobs[key] = (tmp, {**BASE, **CONTEXTS[context]}, False)
            jobs[key][1].update({**(entry.get("with") or {}), name: entry["to"]})
        results = dict(zip(jobs, pool.map(run_one, jobs.values())))
    return {(role, name): (base / f"install-{entry.get('context', 'default')}", jobs[job_of[(role, name)]][0],
                           *results[job_of[(role, name)]])
            for role, name, entry in ENTRIES}


def fragment(tmp):
    path = tmp / FRAGMENT
    return path.read_text() if path.exists() else None


def judge(before, after, rc, out):
    """(verdict, rolled pods, problems) of one pair."""
    if rc != 0:
        message = " ".join(failure_messages(out))
        unchanged = by_identity(after) == by_identity(before)
        ok = any(w in message for w in REFUSAL_WORDS) and unchanged
        return "refused", set(), [] if ok else [f"failed other than by the day-two check, or wrote files: {message[:600]}"]
    old, new = by_identity(before), by_identity(after)
    problems = [msg for key in old.keys() & new.keys() for msg in immutable_changes(old[key], new[key])]
    old_pods, new_pods = workloads(old), workloads(new)
    rolled = {w[2] for w in new_pods if w in old_pods and new_pods[w] != old_pods[w]}
    if rolled:
        return "rolls", rolled, problems
    if old != new:
        return "live", set(), problems
    if fragment(before) != fragment(after):
        return "gitpod_config", set(), problems
    return "none", set(), problems


@pytest.mark.parametrize("role, name, entry", ENTRIES, ids=[f"{r}.{n}" for r, n, _e in ENTRIES])
def test_the_verdict_is_what_the_render_shows(verdicts, role, name, entry):
    before, after, rc, out = verdicts[(role, name)]
    verdict, rolled, problems = judge(before, after, rc, out)
    assert problems == [], problems
    assert verdict == entry["verdict"], (verdict, sorted(rolled), failure_messages(out) if rc else "")
    if verdict == "rolls":
        assert rolled == set(entry["pods"]), sorted(rolled)


def test_the_judge_tells_each_verdict_apart(verdicts):
    """Each verdict of the vocabulary that the renders can show is shown at least once (the judge is not blind)."""
    shown = {judge(*verdicts[key])[0] for key in verdicts}
    assert shown == {"none", "gitpod_config", "live", "rolls", "refused"}, shown
