"""Wall-clock budgets of the waits (k3s, calico, cert_manager), against a time-scripted kubectl TEST
DOUBLE (tests/unit/kubectl_double.py): its objects appear only seconds after the first call, the way
k3s's deploy controller (15 s poll), helm-controller's install Job and a chart download make them
appear on a real cluster. A check that fails at once (NotFound, no such resource type yet) must be
tried again until the budget is spent, and a wait that runs out must say which budget it spent.

No API server runs; the roles' own wait tasks run for real in ansible-playbook on localhost.
"""

from __future__ import annotations

from double_playbook import KUBECTL, include, node, run


def crd(name, established=True):
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name},
            "status": {"conditions": [{"type": "Established", "status": "True" if established else "False"}]}}


def deployment(name, namespace, available):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 1},
            "status": {"updatedReplicas": 1, "availableReplicas": 1 if available else 0}}


CERT_MANAGER_CRDS = ["certificates.cert-manager.io", "issuers.cert-manager.io", "clusterissuers.cert-manager.io"]


def cert_manager_vars(timeout):
    return {"cert_manager_kubectl": KUBECTL, "cert_manager_wait_timeout": timeout, "__cert_manager_wait_delay": 2}


def test_cert_manager_wait_outlasts_objects_that_appear_late(tmp_path):
    # Nothing exists at first: the Deployment appears after 15 s and is available 5 s later, the
    # CRDs are established at 22 s and the webhook answers at 25 s.
    schedule = [
        {"at": 15, "resource": "deployments", "object": deployment("cert-manager-webhook", "cert-manager", False)},
        {"at": 20, "resource": "deployments", "object": deployment("cert-manager-webhook", "cert-manager", True)},
        *({"at": 22, "resource": "customresourcedefinitions", "object": crd(n)} for n in CERT_MANAGER_CRDS),
        {"at": 25, "flags": {"webhook": True}},
    ]
    proc, _, state = run(tmp_path, [include("cert_manager", "wait")], cert_manager_vars(120),
                         {"objects": {}, "schedule": schedule})
    assert proc.returncode == 0, proc.stdout[-3000:]
    rollouts = [c for c in state["calls"] if "rollout" in c]
    assert len(rollouts) >= 3, "the rollout status that failed with NotFound was tried again"
    dry_runs = [t for c, t in zip(state["calls"], state["call_times"]) if "--dry-run=server" in c]
    assert dry_runs and dry_runs[-1] >= 25, "the wait ended only when the webhook answered"


def test_cert_manager_wait_gives_up_at_its_budget_and_names_it(tmp_path):
    proc, _, state = run(tmp_path, [include("cert_manager", "wait")], cert_manager_vars(10), {"objects": {}, "schedule": []})
    assert proc.returncode != 0
    out = " ".join(proc.stdout.split())
    assert "cert_manager_wait_timeout (10s" in out and "cert-manager-webhook" in out and "NotFound" in out
    times = state["call_times"]
    assert len(times) >= 3, "retried within the budget"
    # The last try starts before the deadline (10 s after the budget began) plus one delay.
    assert times[-1] <= 10 + 2 + 3, times


def test_calico_wait_outlasts_an_operator_that_comes_late(tmp_path):
    # The operator's CRD and tigerastatus appear after 40 s of a 60 s budget; calico-node is ready
    # 2 s later. (Counted tries of 5 s each, a quarter of the budget, ended after about 25 s.)
    status = {"apiVersion": "operator.tigera.io/v1", "kind": "TigeraStatus", "metadata": {"name": "calico"},
              "status": {"conditions": [{"type": "Available", "status": "True"}]}}
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "calico-node", "namespace": "calico-system"},
          "status": {"desiredNumberScheduled": 1, "numberReady": 1}}
    schedule = [{"at": 40, "resource": "customresourcedefinitions", "object": crd("tigerastatuses.operator.tigera.io")},
                {"at": 40, "resource": "tigerastatuses", "object": status},
                {"at": 42, "resource": "daemonsets", "object": ds}]
    proc, _, state = run(tmp_path, [include("calico", "wait")],
                         {"calico_wait_timeout": 60, "__calico_kubectl": KUBECTL, "__calico_wait_delay": 2},
                         {"objects": {"nodes": [node("localhost")]}, "schedule": schedule})
    assert proc.returncode == 0, proc.stdout[-3000:]
    waits = [t for c, t in zip(state["calls"], state["call_times"]) if "tigerastatus/calico" in c]
    assert len(waits) >= 3 and waits[-1] >= 40
    assert any(c[:1] == ["wait"] and "nodes" in c for c in state["calls"]), "nodes Ready checked last"


def test_k3s_waits_for_a_late_api_and_node_and_names_the_budget_when_the_node_never_comes(tmp_path):
    base = {"__k3s_kubectl": KUBECTL, "__k3s_node_name_fact": "s1.cluster.example.com", "__k3s_wait_delay": 1,
            "k3s_initial_server": "localhost"}
    late = [{"at": 6, "flags": {"readyz": True}},
            {"at": 10, "resource": "nodes", "object": node("s1.cluster.example.com")}]
    proc, _, state = run(tmp_path / "late", [include("k3s", "wait")], {**base, "k3s_wait_timeout": 60},
                         {"objects": {}, "schedule": late})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert state["calls"][-1][-3:] == ["node", "s1.cluster.example.com", "name"] or "node" in state["calls"][-1]
    assert state["call_times"][-1] >= 10

    never = [{"at": 0, "flags": {"readyz": True}}]
    proc, _, state = run(tmp_path / "never", [include("k3s", "wait")], {**base, "k3s_wait_timeout": 8},
                         {"objects": {}, "schedule": never})
    assert proc.returncode != 0
    out = " ".join(proc.stdout.split())
    assert "Node s1.cluster.example.com (localhost) did not register within k3s_wait_timeout (8s)" in out
    assert state["call_times"][-1] <= 8 + 1 + 3
