"""One check for every rendered object: what the API server, Helm and k3s would say about it.

- custom resources: the served version of the upstream CRD (structural.py), unknown fields rejected;
- HelmChart valuesContent: merged over the chart's values.yaml and checked against values.schema.json
  (helmvalues.py), for the charts whose schema is pinned in the upstream directory;
- core kinds: kubernetes-validate, strict, at the Kubernetes minor of k3s_version;
- every object: the API server's own rules (apirules.py).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import kubernetes_validate

from apirules import RULES  # noqa: I100  (a sibling module; tests/conformance is on sys.path)
from helmvalues import Chart
from structural import CRDs

REPO = Path(__file__).resolve().parents[2]
# The upstream schemas sit beside the checkout (see their README); GITPOD_K3S_UPSTREAM names another place.
UPSTREAM = Path(os.environ.get("GITPOD_K3S_UPSTREAM", REPO.parent / "shared" / "upstream"))
# HelmChart name -> chart directory under UPSTREAM/charts (the charts with a values.schema.json).
CHART_SCHEMAS = {"cert-manager": "cert-manager-v1.16.2"}
K3S_VERSION_RE = re.compile(r"v1\.(\d+)\.\d+(?:-rc\d+)?(?:\+|%2B)k3s\d+")


def kubernetes_minor(k3s_version: str) -> str:
    """'v1.31.4+k3s1' (or its URL-encoded form) -> '1.31.0', the schema set kubernetes-validate names."""
    match = K3S_VERSION_RE.search(k3s_version)
    if not match:
        raise ValueError(f"no k3s version in {k3s_version!r}")
    return f"1.{match.group(1)}.0"


class Checker:
    def __init__(self, upstream: Path = UPSTREAM):
        self.crds = CRDs([upstream / "crds"])
        self.charts = {name: Chart(upstream / "charts" / directory) for name, directory in CHART_SCHEMAS.items()}

    def is_custom(self, obj: dict) -> bool:
        group = obj.get("apiVersion", "").rpartition("/")[0]
        return any(g == group for g, _unused in self.crds.by_kind)

    def context(self, objects: list[dict]) -> dict:
        return {"objects": objects, "scope": lambda o: self.crds.scope(o.get("apiVersion", ""), o.get("kind", ""))}

    def check(self, obj: dict, k8s_version: str, context: dict | None = None) -> list[str]:
        """Every violation of one object, each prefixed with the check that found it."""
        name = f"{obj.get('kind')} {(obj.get('metadata') or {}).get('name')}"
        errors = []
        if self.is_custom(obj):
            errors += [f"crd-schema: {name}: {msg}" for msg in self.crds.validate(obj)]
        else:
            try:
                kubernetes_validate.validate(obj, k8s_version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path) or "(root)"
                errors.append(f"core-schema: {name}: {path}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                errors.append(f"core-schema: {name}: no schema for {obj.get('apiVersion')} {obj.get('kind')} ({exc})")
        if obj.get("apiVersion") == "helm.cattle.io/v1" and obj.get("kind") == "HelmChart":
            chart = self.charts.get((obj.get("metadata") or {}).get("name"))
            if chart is not None:
                errors += [f"chart-values: {name}: {msg}"
                           for msg in chart.validate((obj.get("spec") or {}).get("valuesContent", ""))]
        context = context if context is not None else self.context([obj])
        for rule, fn in RULES.items():
            errors += [f"{rule}: {msg}" for msg in fn(obj, context)]
        return errors

    def check_all(self, objects: list[dict], k8s_version: str) -> list[str]:
        context = self.context(objects)
        return [msg for obj in objects for msg in self.check(obj, k8s_version, context)]
