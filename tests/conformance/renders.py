"""The conformance suite's inventories and renders: every inventory once per session, k3s/Calico and
the components in one ansible-playbook run each (tests/render/rendering.py), then the re-renders with a
changed setting that the immutable-field tests compare with the first.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from conformance import kubernetes_minor
from rendering import (  # tests/render, put on sys.path by conftest.py
    EXTERNAL, REPO, example_overlay, host, inventory, make_chart_archive, rendered_files, run_render, write_airgap_dir)

CALICO_MANIFESTS = ("gitpod-calico-00-namespace.yaml", "gitpod-calico-10-operator.yaml", "gitpod-calico-20-installation.yaml")
META_WS = {"gitpod_meta": ["s1"], "gitpod_workspace": ["s1"]}
DOMAIN = {"gitpod_k3s_domain": "gitpod.example.com"}
MIRROR = {"calico_registry": "mirror.example.com:5000/", "components_image_registry": "mirror.example.com:5000",
          "cert_manager_image_registry": "mirror.example.com:5000"}
THREE = {**host("s1", "192.0.2.11"), **host("s2", "192.0.2.12"), **host("s3", "192.0.2.13")}
TWO_AGENTS = {**host("a1", "192.0.2.21"), **host("a2", "192.0.2.22")}
HA_GROUPS = {"gitpod_meta": ["s1", "s2", "s3"], "gitpod_workspace": ["a1", "a2"]}
LOCAL = {"ansible_connection": "local", "ansible_become": False}


INVENTORIES = ("example", "single", "airgap_mirror_acme_cloudflare", "ha_external_acme_route53",
               "ha_embedded_pvc_acme_clouddns", "registry_on_external_s3")


def inventories(tmp: Path) -> dict[str, tuple[dict, Path | None, str]]:
    """name -> (inventory, base inventory or None, initial server), for each of INVENTORIES."""
    airgap = tmp / "airgap-files"
    write_airgap_dir(airgap)
    (airgap / "cert-manager-v1.16.2.tgz").write_bytes(make_chart_archive("cert-manager", "v1.16.2"))
    return {
        "example": (example_overlay(), REPO / "inventories" / "example", "server1"),
        "single": (inventory(host("s1", "192.0.2.11"), {}, META_WS, {**LOCAL, **DOMAIN}), None, "s1"),
        # Air-gapped: k3s, Calico's and cert-manager's charts from the controller, images from a mirror; ACME Cloudflare.
        "airgap_mirror_acme_cloudflare": (inventory(host("s1", "192.0.2.11"), {}, META_WS, {
            **LOCAL, **DOMAIN, **MIRROR,
            "k3s_airgap_dir": str(airgap), "calico_airgap_dir": str(airgap),
            "k3s_airgap_extra_images": ["calico-images-amd64.tar"],
            "cert_manager_chart_file": str(airgap / "cert-manager-v1.16.2.tgz"),
            "cert_manager_acme_provider": "cloudflare", "cert_manager_acme_email": "ops@example.com",
            "cert_manager_cloudflare_api_token": "cf-token-123"}), None, "s1"),
        # 3 servers + 2 agents, system containerd, everything bring-your-own; ACME Route53.
        "ha_external_acme_route53": (inventory(THREE, TWO_AGENTS, HA_GROUPS, {
            **LOCAL, **DOMAIN, **EXTERNAL,
            "cert_manager_acme_provider": "route53", "cert_manager_acme_email": "ops@example.com",
            "cert_manager_route53_access_key_id": "AKIAR53", "cert_manager_route53_secret_access_key": "r53-secret",
            "cert_manager_route53_hosted_zone_id": "Z123"}), None, "s1"),
        # 3 servers + 2 agents, k3s's embedded containerd behind a VIP, own CIDRs; registry on a PVC,
        # MySQL 8.0, a storage class; ACME Google Cloud DNS.
        "ha_embedded_pvc_acme_clouddns": (inventory(THREE, TWO_AGENTS, HA_GROUPS, {
            **LOCAL, **DOMAIN,
            "gitpod_k3s_containerd_mode": "embedded", "k3s_api_endpoint": "192.0.2.100",
            "k3s_cluster_cidr": "10.244.0.0/16", "k3s_service_cidr": "10.96.0.0/12", "calico_encapsulation": "VXLAN",
            "components_registry_storage": "pvc", "components_mysql_version": "8.0", "components_storage_class": "fast",
            "cert_manager_acme_provider": "clouddns", "cert_manager_acme_email": "ops@example.com",
            "cert_manager_clouddns_project": "my-project",
            "cert_manager_clouddns_service_account_json": '{"type": "service_account"}'}), None, "s1"),
        # The in-cluster registry on the user's S3 (no MinIO), in-cluster MySQL.
        "registry_on_external_s3": (inventory(host("s1", "192.0.2.11"), {}, META_WS, {
            **LOCAL, **DOMAIN, "components_check_external": False, "components_storage": "external",
            "components_storage_external": dict(EXTERNAL["components_storage_external"], validate_certs=False)}),
            None, "s1"),
    }


# Settings changed on a cluster already installed from "single": what k3s re-applies must be accepted.
CHANGES = {
    "registry_to_pvc": {"components_registry_storage": "pvc"},
    "images_from_a_mirror": MIRROR,
    "mysql_8_and_region": {"components_mysql_version": "8.0", "components_storage_region": "eu-1"},
}


class Render:
    """The objects one inventory renders: file name -> objects, for the initial server's k3s directory."""

    def __init__(self, name: str, tmp: Path, out: Path, proc, initial: str):
        self.name, self.tmp, self.out, self.proc, self.initial = name, tmp, out, proc, initial

    @property
    def ok(self) -> bool:
        return self.proc.returncode == 0

    def files(self) -> dict[str, list[dict]]:
        files = {}
        k3s_files = rendered_files(self.out, self.initial)
        for name in CALICO_MANIFESTS:
            files[name] = [yaml.safe_load(k3s_files[name])]
        manifests = self.tmp / "manifests"
        for path in sorted(manifests.iterdir()):
            files[path.name] = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        return files

    def objects(self) -> list[dict]:
        return [obj for objs in self.files().values() for obj in objs]

    def k8s_version(self) -> str:
        facts = rendered_files(self.out, self.initial)["facts.json"]
        return kubernetes_minor(facts)


def render_inventory(name, tmp, inv, base, initial, extra=None):
    out, proc = run_render(tmp, inv, expect_ok=False, base_inventory=base, extra_vars=extra, components=True)
    return Render(name, tmp, out, proc, initial)


def rerender(first_future, name, tmp, extra):
    """The same inventory again in a copy of the first render's directory (credentials kept), one setting changed."""
    first = first_future.result()
    shutil.copytree(first.tmp, tmp)
    inv = yaml.safe_load((first.tmp / "inventory.yml").read_text())
    return render_inventory(name, tmp, inv, None, first.initial, extra)


def ok(renders, name) -> Render:
    render = renders[name]
    assert render.ok, f"render {name} failed:\n{render.proc.stdout[-4000:]}\n{render.proc.stderr[-2000:]}"
    return render


FIGURES: dict[str, object] = {}  # filled by the tests, printed at the end of the run (conftest.py)
