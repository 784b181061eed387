"""Validate custom resources against a CRD's structural openAPIV3Schema, as the API server does.

jsonschema's Draft 4 validator does the JSON Schema part; the Kubernetes extensions are extra keywords:
- x-kubernetes-int-or-string: an integer or a string;
- nullable: null is accepted where the schema says so (every other keyword then lets it pass);
- x-kubernetes-preserve-unknown-fields: fields the schema does not name are kept; everywhere else
  they are reported, as `kubectl apply --validate=strict` does (the API server would prune them);
- x-kubernetes-embedded-resource: an object with apiVersion, kind and metadata;
- x-kubernetes-list-type set / map: items, or their list-map-keys, unique;
- format int32 / int64: the integer's range.
x-kubernetes-validations (CEL) rules are not evaluated: the only one in the pinned CRDs guards a
HelmChart field against change after creation, and the collection does not set that field.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml

STRICT = "x-gitpod-k3s-strict"  # added by prepare(): reject fields the schema does not name

# ObjectMeta fields a manifest may carry (k8s.io/apimachinery ObjectMeta); the values are checked by
# the API-server rules in apirules.py.
OBJECT_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string"}, "generateName": {"type": "string"}, "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
    },
    STRICT: True,
}
INT_RANGES = {"int32": (-2**31, 2**31 - 1), "int64": (-2**63, 2**63 - 1)}


def _is_object_schema(schema: dict) -> bool:
    return schema.get("type") == "object" or "properties" in schema


def prepare(schema: dict, root: bool = True) -> dict:
    """A copy of an openAPIV3Schema with the strict marker on every object that prunes unknown fields."""
    out = copy.copy(schema)
    for key in ("properties", "patternProperties"):
        if key in schema:
            out[key] = {name: prepare(sub, False) for name, sub in schema[key].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            out[key] = prepare(schema[key], False)
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            out[key] = [prepare(sub, False) for sub in schema[key]]
    if root:  # every object has these; the API server checks metadata as ObjectMeta
        out["properties"] = {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                             **out.get("properties", {}), "metadata": OBJECT_META}
    if (_is_object_schema(schema) and not schema.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in schema):
        out[STRICT] = True
    return out


def _strict(validator, value, instance, schema):
    if not value or not isinstance(instance, dict):
        return
    known = set(schema.get("properties", {}))
    if schema.get("x-kubernetes-embedded-resource"):
        known |= {"apiVersion", "kind", "metadata"}
    for field in sorted(set(instance) - known):
        yield jsonschema.ValidationError(f"unknown field {field!r} (allowed: {', '.join(sorted(known)) or 'none'})")


def _int_or_string(validator, value, instance, schema):
    if value and (isinstance(instance, bool) or not isinstance(instance, (int, str))):
        yield jsonschema.ValidationError(f"{instance!r} is neither an integer nor a string")


def _embedded(validator, value, instance, schema):
    if not value or not isinstance(instance, dict):
        return
    for field in ("apiVersion", "kind"):
        if not isinstance(instance.get(field), str) or not instance.get(field):
            yield jsonschema.ValidationError(f"embedded resource lacks {field}")
    if "metadata" in instance:
        yield from validator.descend(instance["metadata"], OBJECT_META, path="metadata")


def _list_type(validator, value, instance, schema):
    if not isinstance(instance, list):
        return
    if value == "set":
        seen = []
        for item in instance:
            if item in seen:
                yield jsonschema.ValidationError(f"duplicate entry {item!r} in a list-type set")
            seen.append(item)
    elif value == "map":
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen = set()
        for item in instance:
            if not isinstance(item, dict):
                continue
            key = tuple(repr(item.get(k)) for k in keys)
            if key in seen:
                yield jsonschema.ValidationError(f"duplicate entry for keys {keys} ({key}) in a list-type map")
            seen.add(key)


def _format(validator, value, instance, schema):
    if value in INT_RANGES and isinstance(instance, int) and not isinstance(instance, bool):
        low, high = INT_RANGES[value]
        if not low <= instance <= high:
            yield jsonschema.ValidationError(f"{instance} is out of the {value} range")


def _nullable(keyword_fn):
    def check(validator, value, instance, schema):
        if instance is None and schema.get("nullable"):
            return
        yield from keyword_fn(validator, value, instance, schema)
    return check


def _validator_class():
    base = jsonschema.Draft4Validator
    keywords = {name: _nullable(fn) for name, fn in base.VALIDATORS.items()}
    keywords.update({
        STRICT: _strict,
        "x-kubernetes-int-or-string": _nullable(_int_or_string),
        "x-kubernetes-embedded-resource": _embedded,
        "x-kubernetes-list-type": _list_type,
        "format": _format,
    })
    return jsonschema.validators.create(meta_schema=base.META_SCHEMA, validators=keywords,
                                        type_checker=base.TYPE_CHECKER, id_of=base.ID_OF)


StructuralValidator = _validator_class()


class CRDs:
    """Every CRD of a directory tree, by (group, kind)."""

    def __init__(self, directories):
        self.by_kind: dict[tuple[str, str], dict] = {}
        # One validator per served version, built on first use and kept for the session.
        self._validators: dict[tuple[str, str, str], StructuralValidator] = {}
        for directory in directories:
            for path in sorted(Path(directory).rglob("*.yaml")):
                for doc in yaml.safe_load_all(path.read_text()):
                    if doc and doc.get("kind") == "CustomResourceDefinition":
                        spec = doc["spec"]
                        self.by_kind[(spec["group"], spec["names"]["kind"])] = doc

    def find(self, api_version: str, kind: str):
        """(crd, version entry) for an object's apiVersion, or (crd or None, None) when not served."""
        group, _unused, version = api_version.rpartition("/")
        crd = self.by_kind.get((group, kind))
        if crd is None:
            return None, None
        for entry in crd["spec"]["versions"]:
            if entry["name"] == version and entry.get("served"):
                return crd, entry
        return crd, None

    def scope(self, api_version: str, kind: str):
        crd, _unused = self.find(api_version, kind)
        return crd["spec"]["scope"] if crd else None

    def validator(self, group: str, kind: str, version: str):
        key = (group, kind, version)
        if key not in self._validators:
            crd = self.by_kind[(group, kind)]
            entry = next(v for v in crd["spec"]["versions"] if v["name"] == version)
            self._validators[key] = StructuralValidator(prepare(entry["schema"]["openAPIV3Schema"]))
        return self._validators[key]

    def validate(self, obj: dict) -> list[str]:
        """Violations of the served version's schema, each with the path of the field."""
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        crd, entry = self.find(api_version, kind)
        if crd is None:
            return [f"no CRD for {api_version} {kind}"]
        if entry is None:
            served = [v["name"] for v in crd["spec"]["versions"] if v.get("served")]
            return [f"{api_version} is not served by {crd['metadata']['name']} (served: {', '.join(served)})"]
        group = api_version.rpartition("/")[0]
        validator = self.validator(group, kind, entry["name"])
        return [f"{'.'.join(str(p) for p in err.absolute_path) or '(root)'}: {err.message}"
                for err in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))]
