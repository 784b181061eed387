"""Wall-clock budgets of the waits (k3s; calico's CRD and readiness waits; cert_manager's readiness and
CA issuer waits; issue 13, defect 3), against a time-scripted kubectl TEST
DOUBLE (tests/unit/kubectl_double.py): its objects appear only seconds after the first call, the way
k3s's deploy controller (15 s poll), helm-controller's install Job and a chart download make them
appear on a real cluster. A check that fails at once (NotFound, no such resource type yet) must be
tried again until the budget is spent, and a wait that runs out must say which budget it spent.

No API server runs; the roles' own wait tasks run for real in ansible-playbook on localhost.
"""

from __future__ import annotations

import yaml

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
    proc, _unused, state = run(tmp_path, [include("cert_manager", "wait")], cert_manager_vars(120),
                               {"objects": {}, "schedule": schedule})
    assert proc.returncode == 0, proc.stdout[-3000:]
    rollouts = [c for c in state["calls"] if "rollout" in c]
    assert len(rollouts) >= 3, "the rollout status that failed with NotFound was tried again"
    dry_runs = [t for c, t in zip(state["calls"], state["call_times"]) if "--dry-run=server" in c]
    assert dry_runs and dry_runs[-1] >= 25, "the wait ended only when the webhook answered"


def test_cert_manager_wait_gives_up_at_its_budget_and_names_it(tmp_path):
    proc, _unused, state = run(tmp_path, [include("cert_manager", "wait")], cert_manager_vars(10), {"objects": {}, "schedule": []})
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
    proc, _unused, state = run(tmp_path, [include("calico", "wait")],
                               {"calico_wait_timeout": 60, "__calico_kubectl": KUBECTL, "__calico_wait_delay": 2,
                                "__gitpod_k3s_api_server": "localhost"},
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
    proc, _unused, state = run(tmp_path / "late", [include("k3s", "wait")], {**base, "k3s_wait_timeout": 60},
                               {"objects": {}, "schedule": late})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert state["calls"][-1][-3:] == ["node", "s1.cluster.example.com", "name"] or "node" in state["calls"][-1]
    assert state["call_times"][-1] >= 10

    never = [{"at": 0, "flags": {"readyz": True}}]
    proc, _unused, state = run(tmp_path / "never", [include("k3s", "wait")], {**base, "k3s_wait_timeout": 8},
                               {"objects": {}, "schedule": never})
    assert proc.returncode != 0
    out = " ".join(proc.stdout.split())
    assert "Node s1.cluster.example.com (localhost) did not register within k3s_wait_timeout (8s)" in out
    assert state["call_times"][-1] <= 8 + 1 + 3


# --- the calico role's CRD wait before the Installation (tasks/manifests.yml) -----------------------

CALICO_LEGACY = ["gitpod-calico-namespace.yaml", "gitpod-calico-operator.yaml", "gitpod-calico-installation.yaml"]


def calico_manifests_run(tmp, timeout, schedule):
    """The calico role's manifests.yml on localhost: k3s's config.yaml and manifests directory in tmp,
    the manifests' objects given (facts.yml is not under test), kubectl the double. The directory
    holds the files an earlier release wrote under the old names."""
    manifests = tmp / "manifests"
    manifests.mkdir(parents=True)
    for name in CALICO_LEGACY:
        (manifests / name).write_text("# written by an earlier release\n")
    config = tmp / "config.yaml"
    config.write_text("cluster-cidr: 10.42.0.0/16\n")
    variables = {
        "calico_wait_timeout": timeout, "__calico_wait_delay": 2, "__calico_kubectl": KUBECTL,
        "__calico_k3s_config_file": str(config), "__calico_manifests_dir": str(manifests),
        "__calico_namespace": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tigera-operator"}},
        "__calico_helmchart": {"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
                               "metadata": {"name": "tigera-operator", "namespace": "kube-system"},
                               "spec": {"chart": "tigera-operator"}},
        "__calico_installation": {"apiVersion": "operator.tigera.io/v1", "kind": "Installation",
                                  "metadata": {"name": "default"}, "spec": {}},
    }
    proc, _unused, state = run(tmp, [include("calico", "manifests")], variables, {"objects": {}, "schedule": schedule})
    return proc, state, manifests


def test_calico_crd_wait_outlasts_a_chart_that_comes_late(tmp_path):
    # The operator's CRD is established 30 s after the chart is written, within a 60 s budget.
    # (The counted wait made calico_wait_timeout/15 = 4 tries 5 s apart and gave up after about 20 s.)
    schedule = [{"at": 30, "resource": "customresourcedefinitions", "object": crd("installations.operator.tigera.io")}]
    proc, state, manifests = calico_manifests_run(tmp_path, 60, schedule)
    assert proc.returncode == 0, proc.stdout[-3000:]
    waits = [t for c, t in zip(state["calls"], state["call_times"]) if "crd/installations.operator.tigera.io" in c]
    assert len(waits) >= 3 and waits[-1] >= 30, waits
    installation = yaml.safe_load((manifests / "gitpod-calico-20-installation.yaml").read_text())
    assert installation["kind"] == "Installation"
    # Issue 13, defect 15: the old names are gone, so no object is applied from two files.
    assert sorted(p.name for p in manifests.iterdir()) == [
        "gitpod-calico-00-namespace.yaml", "gitpod-calico-10-operator.yaml", "gitpod-calico-20-installation.yaml"]


def test_calico_crd_wait_gives_up_at_its_budget_and_names_it(tmp_path):
    proc, state, manifests = calico_manifests_run(tmp_path, 15, [])
    assert proc.returncode != 0
    out = " ".join(proc.stdout.split())
    assert "installations.operator.tigera.io) is not established within calico_wait_timeout (15s" in out, out[-3000:]
    assert 'Last kubectl answer: Error from server (NotFound): customresourcedefinitions.apiextensions.k8s.io ' \
           '"installations.operator.tigera.io" not found' in out, out[-3000:]
    times = state["call_times"]
    assert len(times) >= 3, "retried within the budget"
    # The last try starts before the deadline (15 s after the budget began) plus one delay.
    assert times[-1] <= 15 + 2 + 3, times
    assert not (manifests / "gitpod-calico-20-installation.yaml").exists(), "no Installation without its CRD"


# --- the cert_manager role's CA ClusterIssuer wait (tasks/main.yml) --------------------------------

def cluster_issuer(name, ready):
    return {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": name},
            "spec": {"ca": {"secretName": name}},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def cert_manager_main_run(tmp, timeout, schedule):
    """The whole cert_manager role on localhost, its manifests in tmp; cert-manager itself is up at
    once (webhook Deployment available, CRDs established, webhook answering)."""
    objects = {"deployments": [deployment("cert-manager-webhook", "cert-manager", True)],
               "customresourcedefinitions": [crd(n) for n in CERT_MANAGER_CRDS]}
    variables = {**cert_manager_vars(timeout), "cert_manager_manifests_dir": str(tmp / "manifests")}
    role = {"name": "cert_manager", "ansible.builtin.include_role": {"name": "selfhosted.gitpod_k3s.cert_manager"}}
    return run(tmp, [role], variables, {"objects": objects, "schedule": schedule, "flags": {"webhook": True}})


def test_cert_manager_ca_issuer_wait_outlasts_an_issuer_that_comes_late(tmp_path):
    # The CA ClusterIssuer appears 90 s after the first kubectl call, not Ready yet (its CA
    # Certificate is being issued), and is Ready at 96 s, within a 150 s budget.
    # (The counted wait made at most 12 tries 5 s apart and gave up after about 60 to 75 s; more
    # than 12 tries shows that the budget, not a count, ends the wait.)
    schedule = [{"at": 90, "resource": "clusterissuers", "object": cluster_issuer("gitpod-k3s-ca", False)},
                {"at": 96, "resource": "clusterissuers", "object": cluster_issuer("gitpod-k3s-ca", True)}]
    proc, _unused, state = cert_manager_main_run(tmp_path, 150, schedule)
    assert proc.returncode == 0, proc.stdout[-3000:]
    waits = [t for c, t in zip(state["calls"], state["call_times"]) if "clusterissuer/gitpod-k3s-ca" in c]
    assert len(waits) > 12 and waits[-1] >= 90, waits


def test_cert_manager_ca_issuer_wait_gives_up_at_its_budget_and_names_it(tmp_path):
    proc, _unused, state = cert_manager_main_run(tmp_path, 15, [])
    assert proc.returncode != 0
    out = " ".join(proc.stdout.split())
    assert "The CA ClusterIssuer gitpod-k3s-ca is not Ready within cert_manager_wait_timeout (15s" in out, out[-3000:]
    assert 'Last kubectl answer: Error from server (NotFound): clusterissuers.cert-manager.io "gitpod-k3s-ca" not found' \
        in out, out[-3000:]
    waits = [t for c, t in zip(state["calls"], state["call_times"]) if "clusterissuer/gitpod-k3s-ca" in c]
    assert len(waits) >= 3, "retried within the budget"
    # The CA wait's budget starts after cert-manager's own wait; its last try starts within one delay of it.
    assert waits[-1] - waits[0] <= 15 + 2 + 3, waits
