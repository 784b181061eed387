"""Every object each inventory renders, checked as the API server, Helm and k3s would check it.

Inventories: inventories/example; a single node; air-gapped with a mirror and ACME Cloudflare;
3 servers + 2 agents with everything bring-your-own and ACME Route53; 3 + 2 on k3s's embedded
containerd with the registry on a PVC, MySQL 8.0 and ACME Google Cloud DNS; the in-cluster registry
on the user's S3. Each is rendered once (conftest.py); zero violations are allowed.
"""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from apirules import RULES
from renders import FIGURES, INVENTORIES, ok
from rendering import rendered_files


@pytest.mark.parametrize("name", INVENTORIES)
def test_every_rendered_object_conforms(renders, checker, name):
    render = ok(renders, name)
    objects = render.objects()
    violations = checker.check_all(objects, render.k8s_version())
    kinds = Counter(o["kind"] for o in objects)
    custom = sum(1 for o in objects if checker.is_custom(o))
    FIGURES[f"{name}"] = (f"{len(objects)} objects ({custom} custom, {len(objects) - custom} core; "
                          f"{', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}), "
                          f"{len(RULES)} API-server rules, Kubernetes {render.k8s_version()}")
    assert violations == [], "\n".join(violations)


def test_the_inventories_cover_every_variant(renders):
    """The renders hold what the issue names: both containerd modes, every ACME provider, each storage choice."""
    seen = Counter()
    for name in INVENTORIES:
        render = ok(renders, name)
        files = render.files()
        for obj in (o for objs in files.values() for o in objs):
            if obj["kind"] == "ClusterIssuer" and "acme" in obj["spec"]:
                seen[next(iter(obj["spec"]["acme"]["solvers"][0]["dns01"]))] += 1
            if obj["kind"] == "HelmChart" and "chartContent" in obj["spec"]:
                seen["chartContent " + obj["metadata"]["name"]] += 1
            if obj["kind"] == "StatefulSet" and obj["metadata"]["name"] == "registry":
                on_pvc = obj["spec"].get("volumeClaimTemplates") or any(
                    "persistentVolumeClaim" in v for v in obj["spec"]["template"]["spec"].get("volumes", []))
                seen["registry on pvc" if on_pvc else "registry on s3"] += 1
            if obj["kind"] == "Secret" and obj["metadata"]["name"] == "gitpod-k3s-registry":
                storage = yaml.safe_load(obj["stringData"]["config.yml"])["storage"]
                if "s3" in storage and "minio" not in storage["s3"]["regionendpoint"]:
                    seen["registry on external s3"] += 1
        if not any(o["kind"] == "StatefulSet" for objs in files.values() for o in objs):
            seen["all external"] += 1
        config = yaml.safe_load(rendered_files(render.out, render.initial)["config.yaml"])
        seen["containerd " + ("system" if "container-runtime-endpoint" in config else "embedded")] += 1
    for variant in ("cloudflare", "route53", "cloudDNS", "chartContent cert-manager", "chartContent tigera-operator",
                    "registry on pvc", "registry on s3", "registry on external s3", "all external",
                    "containerd system", "containerd embedded"):
        assert seen[variant], f"no inventory renders {variant}: {dict(seen)}"
