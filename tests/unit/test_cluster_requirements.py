"""cluster_requirements: every check's pass, warn and fail path on API objects shaped as `kubectl get -o json`.

The module runs through main(); only kubectl is replaced, by tests/unit/kubectl_double.py (a TEST
DOUBLE answering from the fixtures in tests/unit/fixtures/k8s/).
"""

import copy
import json
import os

import pytest

from common_defaults import CLUSTER_REQUIREMENTS_ARGS
from kubectl_double import KubectlDouble, run_module

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import cluster_requirements as cr
from ansible_collections.selfhosted.gitpod_k3s.plugins.modules import cluster_requirements as module

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "k8s")
SECRET_KEYS = {
    "gitpod-database": ["encryptionKeys", "host", "password", "port", "username"],
    "gitpod-storage": ["accessKeyId", "secretAccessKey"],
    "gitpod-registry": [".dockerconfigjson"],
    "https-certificates": ["tls.crt", "tls.key"],
}
ALL_SECRETS = [{"name": n, "keys": k} for n, k in SECRET_KEYS.items()]


def load(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return json.load(handle)


def items(name):
    return load(name)["items"]


def cluster(size="five", **files):
    """A kubectl double holding a healthy k3s cluster (`single` or `five` nodes) unless ``files`` replace parts."""
    chosen = {
        "nodes": f"nodes-{size}.json",
        "customresourcedefinitions": "crds.json",
        "deployments": "deployments.json",
        "daemonsets": f"daemonsets-{size}.json",
        "pods": f"pods-calico-{size}.json",
        "storageclasses": "storageclasses.json",
        "namespaces": "namespaces.json",
        "services": "services.json",
        "clusterissuers": "clusterissuers.json",
        "secrets": "secrets-gitpod.json",
    }
    chosen.update(files)
    objects = {res: (items(f) if isinstance(f, str) else copy.deepcopy(f)) for res, f in chosen.items()}
    return KubectlDouble(objects, version=load("version.json"))


def node(double, name):
    return next(n for n in double.objects["nodes"] if n["metadata"]["name"] == name)


def run(double, **args):
    """main() with ``args``; Gitpod's constants and labels are added as the cluster_validation role passes them."""
    args.setdefault("fail_on_error", False)
    for key, value in CLUSTER_REQUIREMENTS_ARGS.items():
        args.setdefault(key, copy.deepcopy(value))
    code, result = run_module(module.main, args, double)
    return code, result


def by_id(result):
    return {c["id"]: c for c in result["checks"]}


def statuses(result):
    return {c["id"]: c["status"] for c in result["checks"]}


# ---------------------------------------------------------------- healthy clusters

@pytest.mark.parametrize("size,nodes", [("single", 1), ("five", 5)])
def test_healthy_cluster_passes_every_check(size, nodes):
    code, result = run(cluster(size))
    assert code == 0 and result["passed"] is True and result["changed"] is False
    assert {c["id"]: (c["status"], c["actual"]) for c in result["checks"] if c["status"] != "pass"} == {}
    assert result["counts"] == {"pass": len(result["checks"]), "warn": 0, "fail": 0}
    assert len(result["node_checks"]) == nodes
    for checks in result["node_checks"].values():
        assert [c["id"] for c in checks] == ["ready", "kubelet_version", "container_runtime", "kernel_version",
                                             "os_image", "vcpus", "memory", "calico_node"]
    got = by_id(result)
    assert got["kubernetes_version"]["actual"] == "v1.28.5+k3s1"
    assert got["kubelet_version"]["actual"] == f"v1.28.5+k3s1 ({nodes} node{'s' if nodes > 1 else ''})"
    assert got["calico"]["actual"] == f"{nodes}/{nodes} ready"
    assert got["default_storage_class"]["actual"] == "local-path"


def test_five_node_label_checks_name_the_carrying_nodes():
    got = by_id(run(cluster())[1])
    assert got["label_meta"]["actual"] == "gitpod-server-1, gitpod-server-2, gitpod-server-3"
    assert got["label_workspace_headless"]["actual"] == "gitpod-agent-1, gitpod-agent-2"
    assert got["label_meta"]["expected"] == "gitpod.io/workload_meta=true on >= 1 node"


def test_module_reads_the_cluster_in_a_fixed_number_of_kubectl_calls():
    double = cluster()
    run(double)
    verbs = [" ".join(c[2:4]) for c in double.calls]
    assert verbs == ["version -o", "get nodes", "get customresourcedefinitions", "get deployments", "get daemonsets",
                     "get pods", "get storageclasses", "get namespace", "get pods", "get services",
                     "get clusterissuers.cert-manager.io"]
    assert all("--request-timeout=30s" in c for c in double.calls)
    workspace_call = double.calls[8]
    assert workspace_call[workspace_call.index("--namespace") + 1] == "gitpod"
    assert workspace_call[workspace_call.index("--selector") + 1] == "component=workspace"


def test_no_workspace_pod_call_without_gitpods_namespace():
    double = cluster(namespaces="namespaces-no-gitpod.json")
    run(double)
    assert [c for c in double.calls if "component=workspace" in c] == []


# ---------------------------------------------------------------- versions, runtime, kernel, OS

def test_old_single_node_k3s_fails_version_runtime_and_kernel():
    double = cluster("single", nodes="nodes-single-v1.20-docker.json")
    double.version = load("version-v1.20.json")
    code, result = run(double)
    got = by_id(result)
    assert code == 0 and result["passed"] is False
    assert got["kubernetes_version"]["status"] == "fail" and got["kubernetes_version"]["actual"] == "v1.20.15+k3s1"
    assert got["kubelet_version"]["status"] == "fail"
    assert got["kubelet_version"]["actual"] == "legacy-1: v1.20.15+k3s1 (fail)"
    assert got["container_runtime"]["status"] == "fail" and "docker://20.10.7" in got["container_runtime"]["actual"]
    assert "without --docker" in got["container_runtime"]["hint"]
    assert got["kernel_version"]["status"] == "fail" and got["kernel_version"]["actual"] == "legacy-1: 4.15.0-213-generic (fail)"
    assert got["os_image"]["status"] == "pass"  # Ubuntu 18.04 is on the default list


def test_one_old_kubelet_in_five_nodes_is_named():
    double = cluster()
    node(double, "gitpod-agent-2")["status"]["nodeInfo"]["kubeletVersion"] = "v1.20.15+k3s1"
    got = by_id(run(double)[1])
    assert got["kubelet_version"]["status"] == "fail"
    assert got["kubelet_version"]["actual"] == "gitpod-agent-2: v1.20.15+k3s1 (fail)"
    assert got["kubernetes_version"]["status"] == "pass"


def test_minimum_version_is_an_option():
    got = by_id(run(cluster(), min_kubernetes_version="1.29.0")[1])
    assert got["kubernetes_version"]["status"] == "fail" and got["kubernetes_version"]["expected"] == ">= 1.29.0"


def test_unreadable_kubelet_version_fails_clearly():
    double = cluster("single")
    node(double, "gitpod-1")["status"]["nodeInfo"]["kubeletVersion"] = "unknown"
    got = by_id(run(double)[1])
    assert got["kubelet_version"]["status"] == "fail" and "cannot read kubelet version 'unknown'" in got["kubelet_version"]["hint"]


def test_docker_runtime_on_one_node_fails():
    double = cluster()
    node(double, "gitpod-agent-1")["status"]["nodeInfo"]["containerRuntimeVersion"] = "docker://24.0.7"
    got = by_id(run(double)[1])
    assert got["container_runtime"]["status"] == "fail"
    assert got["container_runtime"]["actual"] == "gitpod-agent-1: docker://24.0.7 (fail)"


def test_old_containerd_fails():
    double = cluster("single")
    node(double, "gitpod-1")["status"]["nodeInfo"]["containerRuntimeVersion"] = "containerd://1.4.13"
    assert by_id(run(double)[1])["container_runtime"]["status"] == "fail"


def test_kernel_4_15_fails_and_gcp_style_plus_suffix_passes():
    double = cluster()
    node(double, "gitpod-server-3")["status"]["nodeInfo"]["kernelVersion"] = "4.15.0-213-generic"
    node(double, "gitpod-agent-1")["status"]["nodeInfo"]["kernelVersion"] = "6.1.0+"
    got = by_id(run(double)[1])
    assert got["kernel_version"]["status"] == "fail"
    assert got["kernel_version"]["actual"] == "gitpod-server-3: 4.15.0-213-generic (fail)"


def test_other_os_image_fails_by_default_and_warns_when_relaxed():
    double = cluster("single")
    node(double, "gitpod-1")["status"]["nodeInfo"]["osImage"] = "Debian GNU/Linux 12 (bookworm)"
    assert by_id(run(double)[1])["os_image"]["status"] == "fail"
    got = by_id(run(double, os_image_status="warn")[1])
    assert got["os_image"]["status"] == "warn" and "Debian GNU/Linux 12" in got["os_image"]["actual"]
    assert by_id(run(double, os_images=[])[1])["os_image"]["status"] == "pass"


def test_not_ready_node_fails_with_reason():
    double = cluster()
    ready = next(c for c in node(double, "gitpod-agent-2")["status"]["conditions"] if c["type"] == "Ready")
    ready.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.")
    got = by_id(run(double)[1])
    assert got["ready"]["status"] == "fail"
    assert got["ready"]["actual"] == ("gitpod-agent-2: Ready=Unknown (NodeStatusUnknown: Kubelet stopped posting node "
                                      "status.) (fail)")


# ---------------------------------------------------------------- labels

def test_missing_labels_fail_each_label():
    double = cluster()
    for n in double.objects["nodes"]:
        n["metadata"]["labels"] = {k: v for k, v in n["metadata"]["labels"].items() if not k.startswith("gitpod.io/")}
    got = by_id(run(double)[1])
    for key in cr.DEFAULT_LABELS:
        assert got[f"label_{key}"]["status"] == "fail" and got[f"label_{key}"]["actual"] == "no node"
        assert "playbooks/labels.yml" in got[f"label_{key}"]["hint"]


def test_label_with_another_value_does_not_count():
    double = cluster("single")
    node(double, "gitpod-1")["metadata"]["labels"]["gitpod.io/workload_ide"] = "false"
    got = by_id(run(double)[1])
    assert got["label_ide"]["status"] == "fail" and got["label_ide"]["actual"] == "no node (other values: gitpod-1=false)"


def test_renamed_label_set_is_followed():
    double = cluster("single")
    labels = node(double, "gitpod-1")["metadata"]["labels"]
    labels["gitpod.io/workload_services"] = labels.pop("gitpod.io/workload_workspace_services")
    renamed = dict(cr.DEFAULT_LABELS, workspace_services="gitpod.io/workload_services")
    assert by_id(run(double)[1])["label_workspace_services"]["status"] == "fail"
    assert by_id(run(double, labels=renamed)[1])["label_workspace_services"]["status"] == "pass"


def test_required_labels_subset():
    double = cluster()
    for n in double.objects["nodes"]:
        n["metadata"]["labels"].pop("gitpod.io/workload_workspace_headless", None)
    result = run(double, required_labels=["meta", "ide", "workspace_services", "workspace_regular"])[1]
    assert "label_workspace_headless" not in by_id(result) and result["passed"] is True


# ---------------------------------------------------------------- vCPU and memory by label

def set_capacity(double, name, cpu=None, memory=None, labels=None):
    n = node(double, name)
    if cpu is not None:
        n["status"]["capacity"]["cpu"] = cpu
    if memory is not None:
        n["status"]["capacity"]["memory"] = memory
    if labels is not None:
        n["metadata"]["labels"] = {k: v for k, v in n["metadata"]["labels"].items() if not k.startswith("gitpod.io/")}
        n["metadata"]["labels"].update({f"gitpod.io/workload_{k}": "true" for k in labels})


def node_check(result, name, check_id):
    return next(c for c in result["node_checks"][name] if c["id"] == check_id)


def test_meta_node_with_3_vcpus_warns():
    double = cluster()
    set_capacity(double, "gitpod-server-2", cpu="3")
    result = run(double)[1]
    assert by_id(result)["vcpus"]["status"] == "warn" and result["passed"] is True
    assert by_id(result)["vcpus"]["actual"] == "gitpod-server-2: 3 (warn)"
    assert "meta" in node_check(result, "gitpod-server-2", "vcpus")["hint"]


def test_ide_only_node_is_exempt_from_the_vcpu_warning_but_not_the_failure():
    double = cluster()
    set_capacity(double, "gitpod-server-2", cpu="3", labels=["ide"])
    assert node_check(run(double)[1], "gitpod-server-2", "vcpus")["status"] == "pass"
    set_capacity(double, "gitpod-server-2", cpu="1500m")
    result = run(double)[1]
    assert node_check(result, "gitpod-server-2", "vcpus")["status"] == "fail"
    assert node_check(result, "gitpod-server-2", "vcpus")["actual"] == "1.5"


def test_unlabelled_node_below_2_vcpus_fails():
    double = cluster()
    set_capacity(double, "gitpod-agent-2", cpu="1", labels=[])
    got = by_id(run(double)[1])
    assert got["vcpus"]["status"] == "fail" and got["vcpus"]["actual"] == "gitpod-agent-2: 1 (fail)"


def test_workspace_node_with_3_vcpus_warns():
    double = cluster()
    set_capacity(double, "gitpod-agent-1", cpu="3")
    assert by_id(run(double)[1])["vcpus"]["status"] == "warn"


def test_16_gb_machine_passes_the_16G_threshold_but_not_16Gi():
    # The servers report 16371172Ki (15.6 GiB, 16.8e9 bytes), what a VM sold as 16 GB gives.
    result = run(cluster())[1]
    assert node_check(result, "gitpod-server-1", "memory")["status"] == "pass"
    assert node_check(result, "gitpod-server-1", "memory")["actual"] == "15.6 GiB (16.8 G)"
    result = run(cluster(), thresholds={"meta": {"warn_memory": "16Gi"}})[1]
    assert node_check(result, "gitpod-server-1", "memory")["status"] == "warn"


@pytest.mark.parametrize("labels,memory,status", [
    (["meta", "ide"], "12000000Ki", "warn"),   # 12.3e9: meta warns below 16G
    (["meta", "ide"], "7000000Ki", "fail"),    # 7.2e9: meta fails below 8G
    (["ide"], "7000000Ki", "pass"),            # ide only fails below 4G
    (["ide"], "3500000Ki", "fail"),
    (["workspace_regular"], "15000000Ki", "fail"),  # workspace fails below 16G
    ([], "2000000Ki", "pass"),                 # no label: no memory threshold
])
def test_memory_thresholds_follow_the_labels(labels, memory, status):
    double = cluster()
    set_capacity(double, "gitpod-agent-2", memory=memory, labels=labels)
    result = run(double)[1]
    assert node_check(result, "gitpod-agent-2", "memory")["status"] == status
    assert by_id(result)["memory"]["status"] == status


def test_partial_threshold_override_keeps_other_defaults():
    result = run(cluster(), thresholds={"meta": {"warn_vcpus": 8}})[1]
    assert node_check(result, "gitpod-server-1", "vcpus")["status"] == "warn"
    assert node_check(result, "gitpod-server-1", "vcpus")["expected"] == "any: fail < 2; meta: fail < 2, warn < 8; ide: fail < 2"
    assert node_check(result, "gitpod-agent-1", "vcpus")["status"] == "pass"


def test_relaxed_thresholds_let_a_small_test_cluster_pass():
    double = cluster("single")
    set_capacity(double, "gitpod-1", cpu="2", memory="4030184Ki")
    assert run(double)[1]["passed"] is False
    relaxed = {p: {"fail_vcpus": 1, "warn_vcpus": 0, "fail_memory": "2G", "warn_memory": "0"} for p in ("meta", "ide", "workspace")}
    result = run(double, thresholds=relaxed)[1]
    assert result["passed"] is True and by_id(result)["vcpus"]["status"] == "pass"


@pytest.mark.parametrize("thresholds,message", [
    ({"meta": {"fail_vcpus": -1}}, "thresholds.meta.fail_vcpus = -1 is negative"),
    ({"meta": {"fail_vcpus": "many"}}, "thresholds.meta.fail_vcpus = 'many' is not a number"),
    ({"workspace": {"fail_memory": "16"}}, "thresholds.workspace.fail_memory = '16' has no unit"),
    ({"workspace": {"fail_memory": "16 bananas"}}, "is not a Kubernetes quantity"),
    ({"gpu": {"fail_vcpus": 2}}, "unknown profile(s) gpu; allowed: any, meta, ide, workspace"),
    ({"meta": {"min_cpus": 2}}, "thresholds.meta: unknown key(s) min_cpus"),
])
def test_bad_thresholds_are_rejected_before_kubectl_runs(thresholds, message):
    double = cluster()
    code, result = run(double, thresholds=thresholds)
    assert code == 1 and message in result["msg"] and double.calls == []


def test_gitpods_constants_and_labels_are_required_options():
    """No default copy in the module: the cluster_validation role passes the common role's values."""
    code, result = run_module(module.main, {"fail_on_error": False}, cluster())
    assert code == 1
    assert result["msg"] == ("missing required arguments: labels, min_containerd_version, min_kernel_version, "
                             "min_kubernetes_version, os_images, required_labels")


def test_bad_minimum_version_is_rejected():
    code, result = run(cluster(), min_kernel_version="five")
    assert code == 1 and "min_kernel_version = 'five' is not a version" in result["msg"]


@pytest.mark.parametrize("text,value", [("16331164Ki", 16331164 * 1024), ("16G", 16e9), ("16Gi", 2 ** 34),
                                        ("3500m", 3.5), ("8", 8.0), ("1e3", 1000.0), ("0.5Ti", 2 ** 39)])
def test_quantities(text, value):
    assert cr.parse_quantity(text) == pytest.approx(value)


def test_unreadable_capacity_fails_the_check():
    double = cluster("single")
    set_capacity(double, "gitpod-1", memory="lots")
    got = by_id(run(double)[1])
    assert got["memory"]["status"] == "fail" and "not a Kubernetes quantity" in got["memory"]["hint"]


# ---------------------------------------------------------------- Calico

def test_calico_degraded_names_the_node():
    result = run(cluster(daemonsets="daemonsets-five-calico-degraded.json", pods="pods-calico-five-degraded.json"))[1]
    got = by_id(result)
    assert got["calico"]["status"] == "fail" and got["calico"]["actual"] == "4/5 ready"
    assert got["calico_node"]["status"] == "fail"
    assert got["calico_node"]["actual"].startswith("gitpod-agent-2: calico-node-")
    assert got["calico_node"]["actual"].endswith("Running, not Ready (fail)")


def test_no_calico_fails_both_checks():
    got = by_id(run(cluster(daemonsets=[], pods=[]))[1])
    assert got["calico"]["status"] == "fail" and got["calico"]["actual"] == "not found"
    assert got["calico_node"]["status"] == "fail" and "no pod" in got["calico_node"]["actual"]


def test_calico_node_missing_on_one_node():
    double = cluster()
    double.objects["pods"] = [p for p in double.objects["pods"] if p["spec"]["nodeName"] != "gitpod-server-3"]
    got = by_id(run(double)[1])
    assert got["calico_node"]["actual"] == "gitpod-server-3: no pod (fail)"


def test_calico_namespace_is_an_option():
    double = cluster("single")
    for obj in double.objects["daemonsets"] + double.objects["pods"]:
        obj["metadata"]["namespace"] = "kube-system"
    assert by_id(run(double)[1])["calico"]["status"] == "fail"
    result = run(double, calico_namespace="kube-system")[1]
    assert by_id(result)["calico"]["status"] == "pass" and by_id(result)["calico_node"]["status"] == "pass"


# ---------------------------------------------------------------- cert-manager

def test_no_cert_manager_fails_crds_webhook_and_issuer():
    double = cluster(customresourcedefinitions="crds-no-cert-manager.json",
                     deployments="deployments-no-cert-manager.json")
    code, result = run(double)
    got = by_id(result)
    assert got["cert_manager_crds"]["status"] == "fail"
    assert got["cert_manager_crds"]["actual"] == ("missing: certificates.cert-manager.io, issuers.cert-manager.io, "
                                                  "clusterissuers.cert-manager.io")
    assert got["cert_manager_webhook"]["status"] == "fail" and got["cert_manager_webhook"]["actual"] == "not found"
    assert got["cluster_issuer"]["status"] == "fail"
    assert not any("clusterissuers" in " ".join(c) for c in double.calls)  # not asked for an unknown type


def test_crd_not_established_fails():
    double = cluster()
    crd = next(c for c in double.objects["customresourcedefinitions"] if c["metadata"]["name"] == "certificates.cert-manager.io")
    crd["status"]["conditions"][1]["status"] = "False"
    got = by_id(run(double)[1])
    assert got["cert_manager_crds"]["actual"] == "not established: certificates.cert-manager.io"


def test_webhook_unavailable_fails():
    got = by_id(run(cluster(deployments="deployments-webhook-unavailable.json"))[1])
    assert got["cert_manager_webhook"]["status"] == "fail"
    assert got["cert_manager_webhook"]["actual"] == "not Available, 0/1 ready"


def test_no_cluster_issuer_warns():
    result = run(cluster(clusterissuers="clusterissuers-empty.json"))[1]
    got = by_id(result)
    assert got["cluster_issuer"]["status"] == "warn" and got["cluster_issuer"]["actual"] == "none"
    assert result["passed"] is True


def test_cluster_issuer_not_ready_warns():
    got = by_id(run(cluster(clusterissuers="clusterissuers-not-ready.json"))[1])
    assert got["cluster_issuer"]["status"] == "warn" and got["cluster_issuer"]["actual"] == "none Ready (gitpod-ca)"


def test_named_cluster_issuer_must_exist_and_be_ready():
    assert by_id(run(cluster(), cluster_issuer="gitpod-ca")[1])["cluster_issuer"]["status"] == "pass"
    got = by_id(run(cluster(), cluster_issuer="letsencrypt")[1])["cluster_issuer"]
    assert got["status"] == "fail" and got["actual"] == "letsencrypt not found (found: gitpod-ca, gitpod-selfsigned)"
    got = by_id(run(cluster(clusterissuers="clusterissuers-not-ready.json"), cluster_issuer="gitpod-ca")[1])["cluster_issuer"]
    assert got["status"] == "fail" and got["actual"] == "gitpod-ca not Ready"


# ---------------------------------------------------------------- storage, Pod Security, LoadBalancer

def test_no_default_storage_class_fails():
    got = by_id(run(cluster(storageclasses="storageclasses-no-default.json"))[1])
    assert got["default_storage_class"]["status"] == "fail"
    assert got["default_storage_class"]["actual"] == "none (classes: local-path, nfs-client)"


def test_two_default_storage_classes_warn():
    double = cluster(storageclasses="storageclasses-no-default.json")
    for sc in double.objects["storageclasses"]:
        sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] = "true"
    got = by_id(run(double)[1])
    assert got["default_storage_class"]["status"] == "warn"


def test_beta_default_annotation_counts():
    double = cluster(storageclasses="storageclasses-no-default.json")
    double.objects["storageclasses"][1]["metadata"]["annotations"]["storageclass.beta.kubernetes.io/is-default-class"] = "true"
    assert by_id(run(double)[1])["default_storage_class"]["actual"] == "nfs-client"


@pytest.mark.parametrize("fixture,status,actual", [
    ("namespaces.json", "pass", "enforce=unset"),
    ("namespaces-no-gitpod.json", "pass", "namespace gitpod absent (created without a restriction)"),
    ("namespaces-gitpod-restricted.json", "fail", "enforce=restricted"),
])
def test_privileged_pods(fixture, status, actual):
    got = by_id(run(cluster(namespaces=fixture))[1])["privileged_pods"]
    assert (got["status"], got["actual"]) == (status, actual)


def test_baseline_namespace_fails_and_privileged_passes():
    double = cluster(namespaces="namespaces-gitpod-restricted.json")
    ns = next(n for n in double.objects["namespaces"] if n["metadata"]["name"] == "gitpod")
    ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "baseline"
    got = by_id(run(double)[1])["privileged_pods"]
    assert got["status"] == "fail" and "pod-security.kubernetes.io/enforce=privileged" in got["hint"]
    ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "privileged"
    assert by_id(run(double)[1])["privileged_pods"]["status"] == "pass"


# ---------------------------------------------------------------- Gitpod's namespace and its workspaces

def test_gitpods_namespace_exists():
    got = by_id(run(cluster())[1])["namespace"]
    assert (got["status"], got["expected"], got["actual"]) == ("pass", "namespace gitpod exists", "gitpod Active")


def test_missing_namespace_fails_even_though_privileged_pods_pass():
    result = run(cluster(namespaces="namespaces-no-gitpod.json"))[1]
    got = by_id(result)
    assert got["namespace"]["status"] == "fail" and got["namespace"]["actual"] == "not found"
    assert "playbooks/components.yml" in got["namespace"]["hint"]
    assert got["privileged_pods"]["status"] == "pass" and result["passed"] is False


def test_namespace_being_deleted_fails():
    got = by_id(run(cluster(namespaces="namespaces-gitpod-terminating.json"))[1])["namespace"]
    assert got["status"] == "fail" and got["actual"] == "gitpod is Terminating"


def test_namespace_option_is_followed():
    got = by_id(run(cluster(), namespace="gitpod-prod")[1])["namespace"]
    assert got["status"] == "fail" and got["expected"] == "namespace gitpod-prod exists"


def with_workspaces(fixture="pods-gitpod-workspaces.json", **files):
    double = cluster(**files)
    double.objects["pods"] = double.objects["pods"] + items(fixture)
    return double


def test_no_workspace_pod_passes():
    got = by_id(run(cluster())[1])["workspace_pods"]
    assert (got["status"], got["actual"]) == ("pass", "none running")
    assert got["expected"] == "no running pod labelled component=workspace in namespace gitpod"


def test_running_workspaces_are_reported_as_a_warning_by_default():
    code, result = run(with_workspaces(), fail_on_error=True)
    got = by_id(result)["workspace_pods"]
    assert code == 0 and result["passed"] is True and got["status"] == "warn"
    # the regular workspace and the prebuild; the finished one and Gitpod's server pod are not counted
    assert got["actual"].startswith("2 workspace pods running: prebuild-") and ", ws-" in got["actual"]
    assert got["actual"].endswith("(1 finished pod not counted)")
    assert "server-" not in got["actual"]


def test_running_workspaces_fail_before_an_upgrade_or_reset():
    code, result = run(with_workspaces(), workspace_pods="fail", fail_on_error=True)
    got = by_id(result)["workspace_pods"]
    assert code == 1 and result["passed"] is False and got["status"] == "fail"
    assert "unsaved work" in got["hint"] and "workspace_pods: report" in got["hint"]
    assert "- workspace_pods: expected no running pod labelled component=workspace" in result["msg"]


def test_only_finished_workspace_pods_pass_in_fail_mode():
    got = by_id(run(with_workspaces("pods-gitpod-finished.json"), workspace_pods="fail")[1])["workspace_pods"]
    assert (got["status"], got["actual"]) == ("pass", "none running (1 finished pod not counted)")


def test_pending_workspace_pod_counts_as_running():
    double = with_workspaces("pods-gitpod-finished.json")
    pod = next(p for p in double.objects["pods"] if p["metadata"]["name"].startswith("ws-"))
    pod["status"]["phase"] = "Pending"
    got = by_id(run(double, workspace_pods="fail")[1])["workspace_pods"]
    assert got["status"] == "fail" and got["actual"].startswith("1 workspace pod running: ws-")


def test_workspace_pods_of_another_namespace_do_not_count():
    double = with_workspaces()
    for pod in double.objects["pods"]:
        if pod["metadata"]["namespace"] == "gitpod":
            pod["metadata"]["namespace"] = "gitpod-staging"
    assert by_id(run(double, workspace_pods="fail")[1])["workspace_pods"]["status"] == "pass"


def test_many_workspaces_are_summarised():
    double = cluster()
    template = items("pods-gitpod-workspaces.json")[0]
    for i in range(7):
        pod = copy.deepcopy(template)
        pod["metadata"]["name"] = f"ws-{i:02d}"
        double.objects["pods"].append(pod)
    got = by_id(run(double, workspace_pods="fail")[1])["workspace_pods"]
    assert got["actual"] == "7 workspace pods running: ws-00, ws-01, ws-02, ws-03, ws-04 and 2 more"


def test_workspace_pods_without_the_namespace_pass():
    got = by_id(run(with_workspaces(namespaces="namespaces-no-gitpod.json"), workspace_pods="fail")[1])["workspace_pods"]
    assert (got["status"], got["actual"]) == ("pass", "namespace gitpod absent: no workspace")


def test_bad_workspace_pods_mode_is_rejected_before_kubectl_runs():
    double = cluster()
    code, result = run(double, workspace_pods="ignore")
    assert code == 1 and "value of workspace_pods must be one of: fail, report, got: ignore" in result["msg"]
    assert double.calls == []
    with pytest.raises(cr.ConfigError, match="workspace_pods = 'warn'; allowed: fail, report"):
        cr.normalise_options({"workspace_pods": "warn"})


# ---------------------------------------------------------------- distribution

def test_k3s_is_a_supported_distribution():
    got = by_id(run(cluster())[1])["distribution"]
    assert (got["status"], got["expected"], got["actual"]) == ("pass", "not OpenShift", "k3s (v1.28.5+k3s1)")


def test_openshift_crds_fail_the_distribution():
    got = by_id(run(cluster(customresourcedefinitions="crds-openshift.json"))[1])["distribution"]
    assert got["status"] == "fail"
    assert got["actual"] == "OpenShift (API groups config.openshift.io, security.openshift.io)"
    assert "does not support OpenShift" in got["hint"]


def test_openshift_node_labels_fail_the_distribution():
    double = cluster()
    node(double, "gitpod-agent-1")["metadata"]["labels"]["node.openshift.io/os_id"] = "rhcos"
    got = by_id(run(double)[1])["distribution"]
    assert got["status"] == "fail" and got["actual"] == "OpenShift (node.openshift.io/* labels on gitpod-agent-1)"


def test_another_distribution_passes_without_being_called_k3s():
    double = cluster("single")
    double.version["serverVersion"]["gitVersion"] = "v1.28.5"
    node(double, "gitpod-1")["spec"].pop("providerID")
    got = by_id(run(double)[1])["distribution"]
    assert (got["status"], got["actual"]) == ("pass", "not OpenShift (v1.28.5)")


def test_servicelb_enabled_passes_before_any_loadbalancer_service():
    got = by_id(run(cluster())[1])["load_balancer"]
    assert got["status"] == "pass"
    assert got["actual"] == "k3s ServiceLB on gitpod-server-1, gitpod-server-2, gitpod-server-3 (no LoadBalancer Service yet)"


def test_loadbalancer_service_with_address_passes():
    got = by_id(run(cluster(services="services-gitpod-proxy.json", daemonsets="daemonsets-five-svclb.json"))[1])["load_balancer"]
    assert got["status"] == "pass"
    assert got["actual"].startswith("gitpod/proxy has 10.0.10.11, 10.0.10.12") and got["actual"].endswith("via k3s ServiceLB")


def test_pending_loadbalancer_service_fails():
    got = by_id(run(cluster(services="services-gitpod-proxy-pending.json"))[1])["load_balancer"]
    assert got["status"] == "fail" and got["actual"] == "pending: gitpod/proxy (providers: k3s ServiceLB)"


def test_one_served_one_pending_warns():
    double = cluster(services="services-gitpod-proxy.json", daemonsets="daemonsets-five-svclb.json")
    pending = copy.deepcopy(items("services-gitpod-proxy-pending.json")[-1])
    pending["metadata"]["name"] = "ssh-gateway"
    double.objects["services"].append(pending)
    got = by_id(run(double)[1])["load_balancer"]
    assert got["status"] == "warn" and got["actual"].endswith("pending: gitpod/ssh-gateway")


def disable_servicelb(double, style):
    for n in double.objects["nodes"]:
        ann = n["metadata"]["annotations"]
        args = json.loads(ann["k3s.io/node-args"])
        if args[0] == "server":
            args += {"pair": ["--disable", "servicelb"], "equals": ["--disable=traefik,servicelb"],
                     "legacy": ["--no-deploy", "servicelb"]}[style]
            ann["k3s.io/node-args"] = json.dumps(args)


@pytest.mark.parametrize("style", ["pair", "equals", "legacy"])
def test_servicelb_disabled_and_no_other_provider_fails(style):
    double = cluster()
    disable_servicelb(double, style)
    got = by_id(run(double)[1])["load_balancer"]
    assert got["status"] == "fail" and "no provider" in got["actual"]


def test_metallb_counts_as_a_provider():
    double = cluster()
    disable_servicelb(double, "pair")
    metallb = copy.deepcopy(double.objects["deployments"][0])
    metallb["metadata"].update(name="controller", namespace="metallb-system",
                               labels={"app": "metallb", "component": "controller"})
    double.objects["deployments"].append(metallb)
    got = by_id(run(double)[1])["load_balancer"]
    assert got["status"] == "pass" and got["actual"] == "MetalLB (metallb-system/controller) (no LoadBalancer Service yet)"


# ---------------------------------------------------------------- Secrets

def test_secrets_are_not_read_unless_asked():
    double = cluster()
    result = run(double)[1]
    assert not any(c["id"].startswith("secret_") for c in result["checks"])
    assert not any("secret" in c for call in double.calls for c in call)


def test_all_gitpod_secrets_pass_and_values_never_leave_the_module():
    double = cluster()
    code, result = run(double, secrets=ALL_SECRETS)
    got = by_id(result)
    for name in SECRET_KEYS:
        assert got[f"secret_{name}"]["status"] == "pass"
    assert got["secret_gitpod-registry"]["actual"] == "kubernetes.io/dockerconfigjson, 1 key present"
    text = json.dumps(result)
    for secret in double.objects["secrets"]:
        for value in secret["data"].values():
            assert value not in text


def test_missing_secret_and_missing_key_fail():
    double = cluster()
    double.objects["secrets"] = [s for s in double.objects["secrets"] if s["metadata"]["name"] != "gitpod-storage"]
    db = next(s for s in double.objects["secrets"] if s["metadata"]["name"] == "gitpod-database")
    del db["data"]["encryptionKeys"]
    got = by_id(run(double, secrets=ALL_SECRETS)[1])
    assert got["secret_gitpod-storage"]["status"] == "fail" and got["secret_gitpod-storage"]["actual"] == "not found"
    assert got["secret_gitpod-database"]["status"] == "fail"
    assert got["secret_gitpod-database"]["actual"] == "missing encryptionKeys (has: host, password, port, username)"


def test_secret_in_another_namespace():
    double = cluster()
    code, result = run(double, secrets=[{"name": "gitpod-storage", "keys": ["accessKeyId"], "namespace": "minio"}])
    assert by_id(result)["secret_gitpod-storage"]["status"] == "fail"
    assert ["--namespace", "minio"] == [c for c in double.calls if "secret" in c][0][5:7]


# ---------------------------------------------------------------- module behaviour

def test_failing_cluster_fails_the_task_with_every_failure_and_hint():
    double = cluster(storageclasses="storageclasses-no-default.json", namespaces="namespaces-gitpod-restricted.json")
    code, result = run(double, fail_on_error=True)
    assert code == 1 and result["failed"] is True and result["passed"] is False
    lines = result["msg"].splitlines()
    assert lines[0] == "2 cluster requirement(s) not met:"
    assert lines[1].startswith("- default_storage_class: expected exactly one default StorageClass, found none")
    assert lines[2].startswith("- privileged_pods: expected namespace gitpod: Pod Security enforce absent or privileged, "
                               "found enforce=restricted. Fix: ")
    assert result["checks"] and result["node_checks"]


def test_warnings_do_not_fail_the_task():
    code, result = run(cluster(clusterissuers="clusterissuers-empty.json"), fail_on_error=True)
    assert code == 0 and result["counts"]["warn"] == 1 and result["passed"] is True


def test_check_mode_runs_the_same_reads():
    double = cluster()
    code, result = run(double, _ansible_check_mode=True)
    assert code == 0 and result["changed"] is False and result["passed"] is True
    assert not any("label" in c for c in double.calls)


def test_unreachable_api_server_fails_with_kubectl_output():
    double = cluster()
    double.unreachable = True
    code, result = run(double)
    assert code == 1 and "kubectl version -o json failed (rc=1)" in result["msg"]
    assert "connection to the server 127.0.0.1:6443 was refused" in result["msg"]


def test_no_nodes_fails_the_node_checks():
    got = by_id(run(cluster(nodes=[], pods=[]))[1])
    assert got["kubelet_version"]["status"] == "fail" and got["kubelet_version"]["actual"] == "no nodes"


def test_node_facts_summarise_each_node_for_the_report():
    facts = run(cluster())[1]["node_facts"]
    assert sorted(facts) == ["gitpod-agent-1", "gitpod-agent-2", "gitpod-server-1", "gitpod-server-2", "gitpod-server-3"]
    assert facts["gitpod-server-1"] == {
        "role": "server", "kubelet": "v1.28.5+k3s1", "runtime": "containerd://1.7.2", "kernel": "5.15.0-97-generic",
        "os": "Ubuntu 22.04.4 LTS", "vcpus": "4", "memory": "15.6 GiB (16.8 G)", "gitpod_labels": "meta, ide"}
    assert facts["gitpod-agent-1"]["role"] == "agent"
    assert facts["gitpod-agent-1"]["gitpod_labels"] == "workspace_services, workspace_regular, workspace_headless"
