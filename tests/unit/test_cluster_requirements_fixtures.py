"""The recorded-shape fixtures are valid Kubernetes objects: every core and apps kind is checked
against the Kubernetes 1.28 OpenAPI schemas (kubernetes-validate, strict: no unknown fields), and
each file has the List envelope `kubectl get -o json` prints."""

import glob
import json
import os

import pytest

kubernetes_validate = pytest.importorskip("kubernetes_validate")

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "k8s")
FILES = sorted(glob.glob(os.path.join(FIXTURES, "*.json")))
# Custom resources have no schema in kubernetes-validate; their CRDs (in crds.json) are validated.
CUSTOM = ("cert-manager.io/v1",)


def test_there_are_fixtures():
    assert len(FILES) >= 20


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_fixture_is_what_kubectl_prints(path):
    with open(path, encoding="utf-8") as handle:
        doc = json.load(handle)
    if os.path.basename(path).startswith("version"):
        assert doc["serverVersion"]["gitVersion"].startswith("v1.")
        return
    assert doc["apiVersion"] == "v1" and doc["kind"] == "List" and doc["metadata"] == {"resourceVersion": ""}
    for obj in doc["items"]:
        if obj["apiVersion"] in CUSTOM:
            assert obj["metadata"]["name"] and obj["status"]["conditions"]
            continue
        kubernetes_validate.validate(obj, "1.28", strict=True)
