"""Each check proven to bite: a fault planted in a copy of a rendered object must be reported.

The objects come from the single-node render; each fault goes through the same Checker.check the
conformance test uses, and the report must name the check and the field. The unchanged object is
checked too, so the report is the fault's and not the object's own.
"""

from __future__ import annotations

import copy

import pytest

from apirules import immutable_changes
from renders import FIGURES, ok

CAUGHT: set[str] = set()


def setp(path, value):
    """A mutation setting a dotted path (list indexes as numbers); value None deletes the key."""
    def mutate(obj):
        parts = path.split(".")
        target = obj
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
        last = parts[-1]
        if value is None:
            target.pop(last, None)
        elif isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return mutate


def setkey(field, key, value):
    """A mutation adding key (which may hold dots) to the mapping at field."""
    def mutate(obj):
        obj.setdefault(field, {})[key] = value
    return mutate


def both(*mutations):
    def mutate(obj):
        for m in mutations:
            m(obj)
    return mutate


def values_with(text):
    def mutate(obj):
        obj["spec"]["valuesContent"] += "\n" + text
    return mutate


INST = ("Installation", "default")
CALICO_CHART = ("HelmChart", "tigera-operator")
CM_CHART = ("HelmChart", "cert-manager")
CERT = ("Certificate", "https-certificates")
ISSUER = ("ClusterIssuer", "gitpod-k3s-ca")
MYSQL = ("StatefulSet", "mysql")
REGISTRY = ("StatefulSet", "registry")
MYSQL_SVC = ("Service", "mysql")
MINIO_SVC = ("Service", "minio")
SECRET = ("Secret", "gitpod-k3s-mysql")
PULL = ("Secret", "gitpod-registry")
CONFIGMAP = ("ConfigMap", "gitpod-k3s-mysql")
JOB = ("Job", None)  # the bucket Job, whatever its name

# (id, object, mutation, check that must report it, text the report must hold)
FAULTS = [
    # CRD structural schemas (the upstream CRDs' served version)
    ("crd-unknown-field", INST, setp("spec.calicoNetwork.mtuu", 1450), "crd-schema", "unknown field 'mtuu'"),
    ("crd-unknown-spec-field", CALICO_CHART, setp("spec.valuesContnt", "x: 1"), "crd-schema", "unknown field 'valuesContnt'"),
    ("crd-unknown-metadata-field", CERT, setp("metadata.nam", "x"), "crd-schema", "unknown field 'nam'"),
    ("crd-type", INST, setp("spec.calicoNetwork.ipPools.0.blockSize", "26"), "crd-schema", "is not of type 'integer'"),
    ("crd-enum", INST, setp("spec.calicoNetwork.ipPools.0.encapsulation", "GRE"), "crd-schema", "'GRE' is not one of"),
    ("crd-int-or-string", CALICO_CHART, setp("spec.set", {"a": ["b"]}), "crd-schema", "neither an integer nor a string"),
    ("crd-required", CERT, setp("spec.secretName", None), "crd-schema", "'secretName' is a required property"),
    ("crd-served-version", CERT, setp("apiVersion", "cert-manager.io/v1alpha2"), "crd-schema", "is not served"),
    ("crd-nested-unknown", ISSUER, setp("spec.ca.secretNme", "x"), "crd-schema", "unknown field 'secretNme'"),
    # cert-manager's values, merged over values.yaml, against values.schema.json
    ("values-unknown-key", CM_CHART, values_with("webhoook:\n  replicaCount: 1"), "chart-values", "webhoook"),
    ("values-type", CM_CHART, values_with("replicaCount: two"), "chart-values", "replicaCount"),
    ("values-nested-unknown", CM_CHART, values_with("crds:\n  keepp: true"), "chart-values", "keepp"),
    # core kinds: kubernetes-validate, strict
    ("core-unknown-field", MYSQL, setp("spec.replica", 1), "core-schema", "replica"),
    ("core-type", MYSQL_SVC, setp("spec.ports.0.port", "3306"), "core-schema", "spec.ports.0.port"),
    # API-server rules
    ("name-subdomain", SECRET, setp("metadata.name", "Gitpod_Secret"), "object-name", "not a DNS-1123 subdomain"),
    ("name-service-dns1035", MYSQL_SVC, setp("metadata.name", "1mysql"), "object-name", "DNS-1035"),
    ("name-namespace-label", ("Namespace", "gitpod"), setp("metadata.name", "gitpod.io"), "object-name", "DNS-1123 label"),
    ("name-too-long", SECRET, setp("metadata.name", "a" * 254), "object-name", "longer than 253"),
    ("namespace-invalid", SECRET, setp("metadata.namespace", "Gitpod"), "namespace", "not a DNS-1123 label"),
    ("namespace-missing", SECRET, setp("metadata.namespace", None), "namespace", "not set"),
    ("namespace-on-cluster-scoped", ISSUER, setp("metadata.namespace", "cert-manager"), "namespace", "cluster-scoped"),
    ("label-key-prefix", MYSQL, setp("metadata.labels", {"bad_prefix.io/app": "x"}), "labels", "prefix 'bad_prefix.io'"),
    ("label-value", MYSQL, setp("metadata.labels", {"app": "a b"}), "labels", "value 'a b'"),
    ("label-value-too-long", MYSQL, setp("metadata.labels", {"app": "x" * 64}), "labels", "longer than 63"),
    ("label-in-pod-template", MYSQL, setp("spec.template.metadata.labels.-bad", "x"), "labels", "spec.template.metadata.labels"),
    ("label-in-claim-template", MYSQL, setp("spec.volumeClaimTemplates.0.metadata.labels", {"x/": "y"}), "labels",
     "spec.volumeClaimTemplates[0].metadata.labels"),
    ("node-selector-key", MYSQL, setp("spec.template.spec.nodeSelector", {"gitpod.io/": "true"}), "labels", "nodeSelector"),
    ("annotation-key-prefix", REGISTRY, setp("spec.template.metadata.annotations", {"selfhosted.gitpod_k3s/hash": "1"}),
     "annotations", "prefix 'selfhosted.gitpod_k3s'"),
    ("annotation-key-name", SECRET, setp("metadata.annotations", {"example.com/": "1"}), "annotations", "name part"),
    ("annotation-size", SECRET, setp("metadata.annotations", {"big": "x" * (256 * 1024)}), "annotations", "256 KiB"),
    ("selector-mismatch", MYSQL, setp("spec.selector.matchLabels", {"app.kubernetes.io/name": "other"}),
     "selector-matches-template", "does not match the template's labels"),
    ("selector-empty", MYSQL, setp("spec.selector", {}), "selector-matches-template", "spec.selector is empty"),
    ("selector-expression", MYSQL, setp("spec.selector", {"matchExpressions": [
        {"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["mysql"]}]}),
     "selector-matches-template", "does not match"),
    ("service-selects-nothing", MINIO_SVC, setp("spec.selector", {"app.kubernetes.io/name": "minoi"}),
     "service-selects-a-pod", "matches no pod template"),
    ("data-key", SECRET, setkey("stringData", "root password", "x"), "data-keys", "key 'root password'"),
    ("data-key-dotdot", CONFIGMAP, setkey("data", "..data", "x"), "data-keys", "must not be '.' or '..'"),
    ("data-base64", PULL, both(setp("data", {"x": "not base64!"})), "data-keys", "not valid base64"),
    ("configmap-key-twice", CONFIGMAP, setp("binaryData", {"gitpod.cnf": "eA=="}), "data-keys", "both data and binaryData"),
    ("secret-type-key", PULL, both(setp("stringData", {"config.json": "{}"}), setp("data", None)),
     "secret-type", "needs key '.dockerconfigjson'"),
    ("secret-type-json", PULL, both(setp("stringData", {".dockerconfigjson": "{"}), setp("data", None)),
     "secret-type", "not valid JSON"),
    ("container-name", MYSQL, setp("spec.template.spec.containers.0.name", "MySQL"), "pod-spec-names", "container name"),
    ("port-name", MYSQL, setp("spec.template.spec.containers.0.ports.0.name", "mysql-port-too-long"),
     "pod-spec-names", "IANA service name"),
    ("volume-mount", MYSQL, setp("spec.template.spec.containers.0.volumeMounts.0.name", "dta"), "pod-spec-names",
     "volumeMount 'dta' names no volume"),
    ("volume-name", MYSQL, setp("spec.template.spec.volumes.0.name", "Config"), "pod-spec-names", "volume name"),
    ("env-name", MYSQL, setp("spec.template.spec.containers.0.env.0.name", "1PASSWORD"), "pod-spec-names", "env name"),
    ("probe-port", REGISTRY, setp("spec.template.spec.containers.0.readinessProbe.tcpSocket.port", "http"),
     "pod-spec-names", "is no port of the container"),
    ("service-port-name", MYSQL_SVC, setp("spec.ports.0.name", "MySQL"), "service-ports", "spec.ports name"),
    ("service-port-unnamed", MINIO_SVC, setp("spec.ports.1.name", None), "service-ports", "need a name each"),
    ("service-target-port", MYSQL_SVC, setp("spec.ports.0.targetPort", "my_sql"), "service-ports", "targetPort"),
]


def find(objects, kind, name):
    for obj in objects:
        if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name):
            return obj
    raise AssertionError(f"the single-node render has no {kind} {name}")


@pytest.fixture(scope="module")
def single(renders):
    render = ok(renders, "single")
    return render, render.objects()


@pytest.mark.parametrize("fault", FAULTS, ids=[f[0] for f in FAULTS])
def test_planted_fault_is_reported(checker, single, fault):
    fault_id, (kind, name), mutate, check, text = fault
    render, objects = single
    original = find(objects, kind, name)
    planted = copy.deepcopy(original)
    mutate(planted)
    assert planted != original
    version = render.k8s_version()
    clean = [m for m in checker.check(original, version, checker.context(objects)) if m.startswith(check + ":")]
    assert clean == [], clean
    others = [o for o in objects if o is not original] + [planted]
    report = [m for m in checker.check(planted, version, checker.context(others)) if m.startswith(check + ":")]
    assert any(text in m for m in report), f"{fault_id}: {text!r} not reported by {check}: {report}"
    CAUGHT.add(fault_id)
    FIGURES["planted faults caught"] = f"{len(CAUGHT) + len(IMMUTABLE_CAUGHT)} of {len(FAULTS) + len(IMMUTABLE_FAULTS)}"


# Immutable fields: the changed copy applied over the rendered object must be refused.
IMMUTABLE_FAULTS = [
    ("job-template", JOB, setp("spec.template.spec.containers.0.image", "example.com/mc:2"), "spec.template changed"),
    ("statefulset-claims", MYSQL, setp("spec.volumeClaimTemplates.0.spec.storageClassName", "fast"),
     "spec.volumeClaimTemplates changed"),
    ("statefulset-selector", MYSQL, setp("spec.selector.matchLabels.tier", "db"), "spec.selector changed"),
    ("statefulset-service-name", MYSQL, setp("spec.serviceName", "db"), "spec.serviceName changed"),
    ("immutable-secret", SECRET, both(setp("immutable", True), setp("stringData.password", "other")), "immutable Secret"),
]
IMMUTABLE_CAUGHT: set[str] = set()


@pytest.mark.parametrize("fault", IMMUTABLE_FAULTS, ids=[f[0] for f in IMMUTABLE_FAULTS])
def test_planted_immutable_change_is_refused(single, fault):
    fault_id, (kind, name), mutate, text = fault
    _unused, objects = single
    original = find(objects, kind, name)
    changed = copy.deepcopy(original)
    mutate(changed)
    old = copy.deepcopy(changed) if fault_id == "immutable-secret" else original
    if fault_id == "immutable-secret":
        old["stringData"] = original["stringData"]  # created immutable with the original data
    assert immutable_changes(original, original) == []
    report = immutable_changes(old, changed)
    assert any(text in m for m in report), f"{fault_id}: {text!r} not in {report}"
    IMMUTABLE_CAUGHT.add(fault_id)
    FIGURES["planted faults caught"] = f"{len(CAUGHT) + len(IMMUTABLE_CAUGHT)} of {len(FAULTS) + len(IMMUTABLE_FAULTS)}"


@pytest.mark.parametrize("old_spec, new_spec, text", [
    ({"selector": {"matchLabels": {"a": "b"}}}, {"selector": {"matchLabels": {"a": "c"}}}, "spec.selector changed"),
])
def test_planted_deployment_selector_change_is_refused(old_spec, new_spec, text):
    old = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "n"}, "spec": old_spec}
    assert any(text in m for m in immutable_changes(old, dict(old, spec=new_spec)))
    assert immutable_changes(old, dict(old, spec=dict(old_spec, replicas=3))) == []


def test_mutable_fields_may_change(single):
    _unused, objects = single
    sts = find(objects, *MYSQL)
    changed = copy.deepcopy(sts)
    changed["spec"]["replicas"] = 2
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "example.com/mysql:9"
    assert immutable_changes(sts, changed) == []
