"""The API server's validation beyond the OpenAPI schema, as rule functions.

kubernetes-validate and the CRD schemas check types and field names; the API server also checks the
values (k8s.io/apimachinery/pkg/util/validation and pkg/apis/core/validation). Each rule here takes
one object (and every object of the same render, for rules across objects) and returns violations,
each naming the object and the field. RULES lists them; IMMUTABLE compares two renders of an object.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
CONFIG_MAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
ENV_VAR_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")

# Kinds whose objects have no namespace (core kinds here; custom kinds from their CRD's scope).
CLUSTER_SCOPED = {"Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass",
                  "CustomResourceDefinition", "PriorityClass"}
# DNS-1035 (must start with a letter) for these kinds, DNS-1123 label for Namespace, subdomain otherwise.
NAME_RULE = {"Namespace": "label", "Service": "dns1035"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def ident(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"


# --- value checks (apimachinery's IsDNS1123Label, IsDNS1123Subdomain, IsQualifiedName, IsValidLabelValue) -----

def dns1123_label(value) -> list[str]:
    if not isinstance(value, str) or not value:
        return ["must be a non-empty string"]
    errors = []
    if len(value) > 63:
        errors.append(f"{value!r} is longer than 63 characters")
    if not DNS1123_LABEL.match(value):
        errors.append(f"{value!r} is not a DNS-1123 label (lower-case letters, digits and '-', "
                      "starting and ending with a letter or digit)")
    return errors


def dns1035_label(value) -> list[str]:
    errors = dns1123_label(value)
    if not errors and not DNS1035_LABEL.match(value):
        errors.append(f"{value!r} is not a DNS-1035 label (must start with a letter)")
    return errors


def dns1123_subdomain(value) -> list[str]:
    if not isinstance(value, str) or not value:
        return ["must be a non-empty string"]
    if len(value) > 253:
        return [f"{value!r} is longer than 253 characters"]
    if not all(DNS1123_LABEL.match(part) for part in value.split(".")):
        return [f"{value!r} is not a DNS-1123 subdomain (lower-case labels of letters, digits and '-', joined by '.')"]
    return []


def qualified_name(key) -> list[str]:
    """A label or annotation key: an optional DNS-1123 subdomain prefix and '/', then a name of <= 63."""
    if not isinstance(key, str) or not key:
        return ["key must be a non-empty string"]
    prefix, slash, name = key.rpartition("/")
    errors = []
    if slash:
        if not prefix:
            errors.append(f"key {key!r} has an empty prefix")
        else:
            errors += [f"key {key!r}: prefix {msg}" for msg in dns1123_subdomain(prefix)]
    if len(name) > 63:
        errors.append(f"key {key!r}: name part is longer than 63 characters")
    if not QUALIFIED_NAME.match(name):
        errors.append(f"key {key!r}: name part {name!r} must be letters, digits, '-', '_' or '.', "
                      "starting and ending with a letter or digit")
    return errors


def label_value(value) -> list[str]:
    if not isinstance(value, str):
        return [f"value {value!r} is not a string"]
    errors = []
    if len(value) > 63:
        errors.append(f"value {value!r} is longer than 63 characters")
    if not LABEL_VALUE.match(value):
        errors.append(f"value {value!r} must be empty or letters, digits, '-', '_' or '.', "
                      "starting and ending with a letter or digit")
    return errors


def label_map(where: str, labels) -> list[str]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [f"{where}: not a mapping"]
    return [f"{where}: {msg}" for key, value in labels.items()
            for msg in qualified_name(key) + label_value(value)]


# --- where labels and pod specs sit in an object -----------------------------------------------------------

def pod_template(obj: dict):
    if obj.get("kind") in WORKLOADS:
        return (obj.get("spec") or {}).get("template")
    return None


def metadata_sets(obj: dict):
    """(path, metadata) of the object and of the objects embedded in it (pod template, claim templates)."""
    yield "metadata", obj.get("metadata") or {}
    template = pod_template(obj)
    if template is not None:
        yield "spec.template.metadata", template.get("metadata") or {}
    for i, claim in enumerate((obj.get("spec") or {}).get("volumeClaimTemplates") or []):
        yield f"spec.volumeClaimTemplates[{i}].metadata", claim.get("metadata") or {}


def selector_labels(obj: dict):
    """(path, label map) of every label selector and node selector in the object."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Service":
        yield "spec.selector", spec.get("selector")
    if obj.get("kind") in WORKLOADS and isinstance(spec.get("selector"), dict):
        yield "spec.selector.matchLabels", spec["selector"].get("matchLabels")
    template = pod_template(obj)
    if template is not None:
        yield "spec.template.spec.nodeSelector", (template.get("spec") or {}).get("nodeSelector")


def matches(selector: dict, labels: dict) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a label set."""
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


# --- the rules -------------------------------------------------------------------------------------------

def rule_object_name(obj, context=None):
    name = (obj.get("metadata") or {}).get("name")
    check = {"label": dns1123_label, "dns1035": dns1035_label}.get(NAME_RULE.get(obj.get("kind")), dns1123_subdomain)
    return [f"{ident(obj)}: metadata.name {msg}" for msg in check(name)]


def rule_namespace(obj, context=None):
    namespace = (obj.get("metadata") or {}).get("namespace")
    scoped = (context or {}).get("scope", lambda o: None)(obj)
    cluster = obj.get("kind") in CLUSTER_SCOPED or scoped == "Cluster"
    if cluster:
        return [f"{ident(obj)}: metadata.namespace is set on a cluster-scoped kind"] if namespace else []
    if namespace is None:
        return [f"{ident(obj)}: metadata.namespace is not set (k3s would apply it to 'default')"]
    return [f"{ident(obj)}: metadata.namespace {msg}" for msg in dns1123_label(namespace)]


def rule_labels(obj, context=None):
    errors = []
    for path, meta in metadata_sets(obj):
        errors += label_map(f"{ident(obj)}: {path}.labels", meta.get("labels"))
    for path, labels in selector_labels(obj):
        errors += label_map(f"{ident(obj)}: {path}", labels)
    return errors


def rule_annotations(obj, context=None):
    errors = []
    for path, meta in metadata_sets(obj):
        annotations = meta.get("annotations")
        if annotations is None:
            continue
        if not isinstance(annotations, dict):
            errors.append(f"{ident(obj)}: {path}.annotations is not a mapping")
            continue
        # ValidateAnnotations checks the lower-cased key as a qualified name, and the total size.
        for key in annotations:
            errors += [f"{ident(obj)}: {path}.annotations {msg}" for msg in qualified_name(str(key).lower())]
        size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
        if size > 256 * 1024:
            errors.append(f"{ident(obj)}: {path}.annotations total {size} bytes, more than 256 KiB")
    return errors


def rule_selector_matches_template(obj, context=None):
    if obj.get("kind") not in WORKLOADS:
        return []
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    if obj.get("kind") == "Job" and not spec.get("manualSelector"):
        return [f"{ident(obj)}: spec.selector is set without manualSelector"] if selector else []
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return [f"{ident(obj)}: spec.selector is empty"]
    if not matches(selector, labels):
        return [f"{ident(obj)}: spec.selector {selector} does not match the template's labels {labels}"]
    return []


def rule_service_selects_a_pod(obj, context=None):
    """A Service's selector matches the pod template of a workload rendered into its namespace."""
    if obj.get("kind") != "Service" or not (obj.get("spec") or {}).get("selector"):
        return []
    namespace = (obj.get("metadata") or {}).get("namespace")
    selector = {"matchLabels": obj["spec"]["selector"]}
    for other in (context or {}).get("objects", []):
        template = pod_template(other)
        if template is not None and (other.get("metadata") or {}).get("namespace") == namespace \
                and matches(selector, (template.get("metadata") or {}).get("labels")):
            return []
    return [f"{ident(obj)}: spec.selector {obj['spec']['selector']} matches no pod template in namespace {namespace}"]


def config_map_key(key) -> list[str]:
    if not isinstance(key, str) or not key:
        return ["key must be a non-empty string"]
    errors = []
    if len(key) > 253:
        errors.append(f"key {key!r} is longer than 253 characters")
    if not CONFIG_MAP_KEY.match(key):
        errors.append(f"key {key!r} must consist of letters, digits, '-', '_' or '.'")
    if key in (".", "..") or key.startswith(".."):
        errors.append(f"key {key!r} must not be '.' or '..' or start with '..'")
    return errors


def rule_data_keys(obj, context=None):
    kind = obj.get("kind")
    fields = {"Secret": ("data", "stringData"), "ConfigMap": ("data", "binaryData")}.get(kind)
    if not fields:
        return []
    errors = []
    for field in fields:
        for key, value in (obj.get(field) or {}).items():
            errors += [f"{ident(obj)}: {field} {msg}" for msg in config_map_key(key)]
            if field in ("binaryData",) or (kind == "Secret" and field == "data"):
                try:
                    base64.b64decode(str(value), validate=True)
                except (binascii.Error, ValueError):
                    errors.append(f"{ident(obj)}: {field}.{key} is not valid base64")
    if kind == "ConfigMap":
        for key in set(obj.get("data") or {}) & set(obj.get("binaryData") or {}):
            errors.append(f"{ident(obj)}: key {key!r} is in both data and binaryData")
    return errors


def _secret_value(obj, key):
    if key in (obj.get("stringData") or {}):
        return obj["stringData"][key]
    if key in (obj.get("data") or {}):
        try:
            return base64.b64decode(obj["data"][key]).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return None
    return None


def rule_secret_type(obj, context=None):
    """The keys the API server requires for the typed Secrets."""
    if obj.get("kind") != "Secret":
        return []
    kind = obj.get("type", "Opaque")
    required = {"kubernetes.io/dockerconfigjson": [".dockerconfigjson"], "kubernetes.io/tls": ["tls.crt", "tls.key"],
                "kubernetes.io/basic-auth": [], "kubernetes.io/ssh-auth": ["ssh-privatekey"]}.get(kind, [])
    errors = [f"{ident(obj)}: type {kind} needs key {key!r}" for key in required if _secret_value(obj, key) is None]
    if kind == "kubernetes.io/dockerconfigjson" and not errors:
        try:
            json.loads(_secret_value(obj, ".dockerconfigjson"))
        except ValueError:
            errors.append(f"{ident(obj)}: .dockerconfigjson is not valid JSON")
    return errors


def _iana_port_name(name) -> list[str]:
    if not isinstance(name, str) or not 1 <= len(name) <= 15 or not IANA_SVC_NAME.match(name) \
            or "--" in name or not re.search("[a-z]", name):
        return [f"port name {name!r} is not an IANA service name (1-15 lower-case letters, digits and '-', "
                "at least one letter, no '--')"]
    return []


def rule_pod_spec(obj, context=None):
    """Names inside a pod template: containers, ports, volumes, mounts, environment variables."""
    template = pod_template(obj)
    if template is None:
        return []
    pod = template.get("spec") or {}
    where = f"{ident(obj)}: spec.template.spec"
    errors = []
    containers = (pod.get("initContainers") or []) + (pod.get("containers") or [])
    names = [c.get("name") for c in containers]
    for name in names:
        errors += [f"{where} container name {msg}" for msg in dns1123_label(name)]
    errors += [f"{where} container name {n!r} is used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    volumes = [v.get("name") for v in pod.get("volumes") or []]
    for name in volumes:
        errors += [f"{where} volume name {msg}" for msg in dns1123_label(name)]
    errors += [f"{where} volume name {n!r} is used twice" for n in sorted({n for n in volumes if volumes.count(n) > 1})]
    claims = [((c.get("metadata") or {}).get("name")) for c in (obj.get("spec") or {}).get("volumeClaimTemplates") or []]
    for container in containers:
        cname = container.get("name")
        ports = [p.get("name") for p in container.get("ports") or [] if p.get("name") is not None]
        for name in ports:
            errors += [f"{where} container {cname}: {msg}" for msg in _iana_port_name(name)]
        for mount in container.get("volumeMounts") or []:
            if mount.get("name") not in volumes + claims:
                errors.append(f"{where} container {cname}: volumeMount {mount.get('name')!r} names no volume "
                              f"(volumes: {', '.join(map(str, volumes + claims)) or 'none'})")
        for env in container.get("env") or []:
            if not ENV_VAR_NAME.match(str(env.get("name", ""))):
                errors.append(f"{where} container {cname}: env name {env.get('name')!r} is not a valid variable name")
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            action = (container.get(probe) or {})
            for handler in ("httpGet", "tcpSocket"):
                port = (action.get(handler) or {}).get("port")
                if isinstance(port, str):
                    errors += [f"{where} container {cname}: {probe}.{handler}.port: {msg}" for msg in _iana_port_name(port)]
                    if port not in ports:
                        errors.append(f"{where} container {cname}: {probe}.{handler}.port {port!r} is no port of the container")
    return errors


def rule_service_ports(obj, context=None):
    if obj.get("kind") != "Service":
        return []
    ports = (obj.get("spec") or {}).get("ports") or []
    errors = []
    names = [p.get("name") for p in ports]
    if len(ports) > 1 and any(not n for n in names):
        errors.append(f"{ident(obj)}: spec.ports need a name each when there is more than one")
    for name in filter(None, names):
        errors += [f"{ident(obj)}: spec.ports name {msg}" for msg in dns1123_label(name)]
    errors += [f"{ident(obj)}: spec.ports name {n!r} is used twice" for n in sorted({n for n in names if n and names.count(n) > 1})]
    for port in ports:
        if isinstance(port.get("targetPort"), str):
            errors += [f"{ident(obj)}: spec.ports targetPort: {msg}" for msg in _iana_port_name(port["targetPort"])]
    return errors


RULES = {
    "object-name": rule_object_name,
    "namespace": rule_namespace,
    "labels": rule_labels,
    "annotations": rule_annotations,
    "selector-matches-template": rule_selector_matches_template,
    "service-selects-a-pod": rule_service_selects_a_pod,
    "data-keys": rule_data_keys,
    "secret-type": rule_secret_type,
    "pod-spec-names": rule_pod_spec,
    "service-ports": rule_service_ports,
}


def check(obj: dict, context: dict | None = None) -> list[str]:
    return [msg for rule in RULES.values() for msg in rule(obj, context)]


# --- fields the API server refuses to change after creation -----------------------------------------------

# StatefulSet: "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template',
# 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".
STATEFULSET_MUTABLE = {"replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                       "minReadySeconds"}


def immutable_changes(old: dict, new: dict) -> list[str]:
    """What the API server would refuse when `new` is applied over `old` (the same kind, namespace and name)."""
    kind = new.get("kind")
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    errors = []
    if kind == "StatefulSet":
        for field in sorted((set(old_spec) | set(new_spec)) - STATEFULSET_MUTABLE):
            if old_spec.get(field) != new_spec.get(field):
                errors.append(f"{ident(new)}: spec.{field} changed; a StatefulSet's spec other than "
                              f"{', '.join(sorted(STATEFULSET_MUTABLE))} is immutable")
    elif kind == "Job":
        for field in ("template", "selector", "completions", "completionMode", "podFailurePolicy"):
            if old_spec.get(field) != new_spec.get(field):
                errors.append(f"{ident(new)}: spec.{field} changed; it is immutable in a Job")
    elif kind in ("Deployment", "DaemonSet", "ReplicaSet"):
        if old_spec.get("selector") != new_spec.get("selector"):
            errors.append(f"{ident(new)}: spec.selector changed; it is immutable in apps/v1")
    elif kind == "PersistentVolumeClaim":
        def strip(spec):
            return {k: v for k, v in spec.items() if k not in ("resources", "volumeAttributesClassName")}

        if strip(old_spec) != strip(new_spec):
            errors.append(f"{ident(new)}: spec changed beyond resources; a PersistentVolumeClaim's spec is immutable")
    elif kind == "Service":
        for field in ("clusterIP", "clusterIPs", "ipFamilies"):
            if field in old_spec and old_spec.get(field) != new_spec.get(field):
                errors.append(f"{ident(new)}: spec.{field} changed; it is immutable in a Service")
    if kind in ("Secret", "ConfigMap") and old.get("immutable"):
        for field in ("data", "stringData", "binaryData", "immutable"):
            if old.get(field) != new.get(field):
                errors.append(f"{ident(new)}: {field} changed on an immutable {kind}")
    return errors
