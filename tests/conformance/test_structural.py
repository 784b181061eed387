"""The structural-schema validator and Helm's merge on small schemas, one behaviour each.

The pinned CRDs use no `nullable` and no `x-kubernetes-embedded-resource`; these schemas show the
validator handles them (and the other extensions) the way the API server does. Needs no upstream files.
"""

from __future__ import annotations

import pytest

from helmvalues import helm_merge
from structural import StructuralValidator, prepare


def errors(schema, obj):
    return [e.message for e in StructuralValidator(prepare(schema)).iter_errors(obj)]


SPEC = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "note": {"type": "string", "nullable": True},
                "count": {"type": "integer", "format": "int32"},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                             "x-kubernetes-preserve-unknown-fields": True},
                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                          "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                "empty": {"type": "object"},
            },
        },
    },
}


def obj(**spec):
    return {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "x", "labels": {"a": "b"}}, "spec": spec}


def test_a_good_object_passes():
    assert errors(SPEC, obj(port=80, note=None, count=3, free={"any": {"thing": 1}}, labels={"k": "v"},
                            template={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}},
                            tags=["a", "b"], ports=[{"name": "a"}, {"name": "b"}], empty={})) == []


@pytest.mark.parametrize("value", [80, "http"])
def test_int_or_string_takes_both(value):
    assert errors(SPEC, obj(port=value)) == []


@pytest.mark.parametrize("value", [1.5, True, ["a"], {"a": 1}])
def test_int_or_string_refuses_the_rest(value):
    assert any("neither an integer nor a string" in e for e in errors(SPEC, obj(port=value)))


def test_nullable_takes_null_and_the_rest_does_not():
    assert errors(SPEC, obj(note=None)) == []
    assert any("None is not of type 'integer'" in e for e in errors(SPEC, obj(count=None)))


def test_unknown_fields_are_refused_unless_preserved():
    assert any("unknown field 'colour'" in e for e in errors(SPEC, obj(colour="red")))
    assert any("unknown field 'x'" in e for e in errors(SPEC, obj(empty={"x": 1})))
    assert errors(SPEC, obj(free={"colour": "red"})) == []
    assert errors(SPEC, obj(labels={"anything": "goes"})) == []


def test_root_metadata_is_object_meta():
    bad = obj()
    bad["metadata"]["lables"] = {}
    assert any("unknown field 'lables'" in e for e in errors(SPEC, bad))


def test_embedded_resource_needs_api_version_and_kind_and_object_meta():
    found = errors(SPEC, obj(template={"metadata": {"name": "p", "nme": "q"}}))
    assert any("lacks apiVersion" in e for e in found)
    assert any("lacks kind" in e for e in found)
    assert any("unknown field 'nme'" in e for e in found)


def test_list_types():
    assert any("duplicate entry 'a'" in e for e in errors(SPEC, obj(tags=["a", "a"])))
    assert any("duplicate entry for keys ['name']" in e for e in errors(SPEC, obj(ports=[{"name": "a"}, {"name": "a"}])))


def test_int32_range():
    assert any("out of the int32 range" in e for e in errors(SPEC, obj(count=2**31)))


def test_helm_merge_is_helms_coalesce():
    chart = {"a": {"b": 1, "c": 2}, "list": [1, 2], "gone": {"x": 1}, "keep": "k"}
    user = {"a": {"c": 3, "d": 4}, "list": [9], "gone": None}
    assert helm_merge(chart, user) == {"a": {"b": 1, "c": 3, "d": 4}, "list": [9], "keep": "k"}
    assert chart["a"] == {"b": 1, "c": 2}  # the chart's values are not changed
