"""Render the cert_manager, components and gitpod_config roles for real (playbooks/components.yml
against localhost, manifests and artifacts in a temporary directory, the kubectl waits off) and
validate what they write: core kinds with kubernetes-validate, custom resources for their required
fields, the Secrets for the shapes Gitpod's installer reads, the installer config fragment; then
re-run for idempotence (zero changed, same credentials) and feed bad input.

No cluster is involved: these tests check the files k3s would apply, not a running cert-manager.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "render"))
from rendering import EXTERNAL, failure_messages  # noqa: E402  (tests/render is not a package)
from rendering import run_components_many as run_many  # noqa: E402
from rendering import load_manifests as load_directory  # noqa: E402

kubernetes_validate = pytest.importorskip("kubernetes_validate")

K8S_VERSION = "1.31.0"
CORE_KINDS = {"Namespace", "Secret", "ConfigMap", "Service", "StatefulSet", "Job", "Deployment", "PersistentVolumeClaim"}

# Required fields of the custom resources the roles write (cert-manager.io/v1 and helm.cattle.io/v1).
CR_REQUIRED = {
    ("cert-manager.io/v1", "ClusterIssuer"): ["spec"],
    ("cert-manager.io/v1", "Certificate"): ["spec.secretName", "spec.issuerRef.name"],
    ("helm.cattle.io/v1", "HelmChart"): ["spec"],
}


def stats(out):
    return out["stats"]["localhost"]


def load_manifests(tmp):
    return load_directory(tmp / "manifests")


def get(obj, dotted):
    for part in dotted.split("."):
        obj = obj[part]
    return obj


def validate_all(docs):
    """kubernetes-validate for core kinds; required fields for custom resources. Returns objects by kind/name."""
    by_key = {}
    for name, objs in docs.items():
        for obj in objs:
            kind, api = obj["kind"], obj["apiVersion"]
            if kind in CORE_KINDS:
                kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
            else:
                required = CR_REQUIRED.get((api, kind))
                assert required is not None, f"{name}: unexpected kind {api}/{kind}"
                for field in required:
                    assert get(obj, field), f"{name}: {kind} {obj['metadata']['name']} lacks {field}"
            assert obj["metadata"]["name"], f"{name}: object without a name"
            by_key[(kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])] = obj
    return by_key


def bucket_job(objs):
    """The MinIO bucket Job (its name ends in a hash of its pod template's inputs)."""
    jobs = [obj for (kind, _unused, name), obj in objs.items() if kind == "Job" and name.startswith("gitpod-k3s-minio-buckets-")]
    assert len(jobs) == 1, list(objs)
    return jobs[0]


def secret_data(obj):
    if "stringData" in obj:
        return obj["stringData"]
    return {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}


def fragment(tmp):
    with open(tmp / "artifacts" / "gitpod" / "gitpod.config.fragment.yaml") as fh:
        return yaml.safe_load(fh)


def credentials(tmp):
    with open(tmp / "artifacts" / "components-credentials.yml") as fh:
        return yaml.safe_load(fh)


# --- every variant is rendered once, all at once ------------------------------------------------

VARIANTS = {
    # everything in the cluster, a domain, the CA issuer, the real bcrypt cost
    "default": ({"gitpod_k3s_domain": "gitpod.example.com", "components_registry_htpasswd_rounds": 10}, False),
    "check_fresh": ({"gitpod_k3s_domain": "gitpod.example.com"}, True),
    "mysql8_pvc_cloudflare_mirror": ({
        "gitpod_k3s_domain": "gitpod.example.com",
        "components_mysql_version": "8.0",
        "components_registry_storage": "pvc",
        "components_storage_class": "fast",
        "components_image_registry": "mirror.example.com:5000",
        "cert_manager_image_registry": "mirror.example.com:5000",
        "cert_manager_acme_provider": "cloudflare",
        "cert_manager_acme_email": "ops@example.com",
        "cert_manager_cloudflare_api_token": "cf-token-123",
        "gitpod_k3s_containerd_mode": "embedded",
    }, False),
    "containerd_fact": ({"gitpod_k3s_containerd": {
        "mode": "system", "socket": "/custom/containerd.sock", "runtime_dir": "/custom/runtime/k8s.io"}}, False),
    "external_route53": (dict(EXTERNAL, gitpod_k3s_domain="gitpod.example.com", cert_manager_acme_provider="route53",
                              cert_manager_acme_email="ops@example.com", cert_manager_route53_access_key_id="AKIAR53",
                              cert_manager_route53_secret_access_key="r53-secret",
                              cert_manager_route53_hosted_zone_id="Z123"), False),
    "switch_to_external": ({}, False),
    "registry_on_external_s3": (dict(EXTERNAL, components_registry="in_cluster", components_storage_external=dict(
        EXTERNAL["components_storage_external"], validate_certs=False)), False),
    "gitpod_owned_clouddns": ({
        "components_mysql": "gitpod", "components_storage": "gitpod", "components_registry": "gitpod",
        "gitpod_k3s_domain": "gitpod.example.com", "cert_manager_acme_provider": "clouddns",
        "cert_manager_acme_email": "ops@example.com", "cert_manager_clouddns_project": "my-project",
        "cert_manager_clouddns_service_account_json": '{"type": "service_account"}'}, False),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("render")
    names = list(VARIANTS)
    results = run_many([(base / name, VARIANTS[name][0], VARIANTS[name][1]) for name in names])
    first = {name: (base / name, rc, out) for name, (rc, out) in zip(names, results)}
    # Second passes: the default again (idempotence) and the in-cluster run switched to external.
    snapshot = {
        "credentials": credentials(base / "default"),
        "manifests": {n: (base / "default" / "manifests" / n).read_bytes() for n in os.listdir(base / "default" / "manifests")},
        "switch_files": sorted(os.listdir(base / "switch_to_external" / "manifests")),
    }
    again, switched, verbose = run_many([
        (base / "default", VARIANTS["default"][0], False),
        (base / "switch_to_external", EXTERNAL, False),
        # -vvv on a fresh directory with every kind of secret: nothing may show in the output.
        (base / "verbose", dict(VARIANTS["mysql8_pvc_cloudflare_mirror"][0]), False, True),
    ])
    return {"first": first, "snapshot": snapshot, "again": again, "switched": switched, "verbose": verbose,
            "verbose_dir": base / "verbose"}


def ok_run(runs, name):
    tmp, rc, out = runs["first"][name]
    assert rc == 0, failure_messages(out)
    return tmp, out


@pytest.fixture()
def default_run(runs):
    return ok_run(runs, "default")


def test_default_run_writes_every_manifest(default_run):
    tmp, _out = default_run
    assert sorted(os.listdir(tmp / "manifests")) == [
        "gitpod-k3s-00-namespace.yaml", "gitpod-k3s-10-cert-manager.yaml", "gitpod-k3s-20-cert-manager-issuers.yaml",
        "gitpod-k3s-30-https-certificate.yaml", "gitpod-k3s-40-minio.yaml", "gitpod-k3s-40-mysql.yaml",
        "gitpod-k3s-40-registry.yaml", "gitpod-k3s-50-gitpod-secrets.yaml"]


def test_default_manifests_validate(default_run):
    tmp, _out = default_run
    objs = validate_all(load_manifests(tmp))
    assert ("StatefulSet", "gitpod", "mysql") in objs
    assert ("StatefulSet", "gitpod", "minio") in objs
    assert ("StatefulSet", "gitpod", "registry") in objs


def test_files_holding_secrets_are_0600_and_dirs_0700(default_run):
    tmp, _out = default_run
    for name in os.listdir(tmp / "manifests"):
        assert stat.S_IMODE(os.stat(tmp / "manifests" / name).st_mode) == 0o600, name
    assert stat.S_IMODE(os.stat(tmp / "manifests").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp / "artifacts" / "components-credentials.yml").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp / "artifacts").st_mode) == 0o700


def test_every_file_is_marked_ansible_managed(default_run):
    tmp, _out = default_run
    for name in os.listdir(tmp / "manifests"):
        assert "Ansible managed" in (tmp / "manifests" / name).read_text().splitlines()[1], name


def test_cert_manager_helmchart_is_pinned_with_crds_and_meta_placement(default_run):
    tmp, _out = default_run
    objs = validate_all(load_manifests(tmp))
    chart = objs[("HelmChart", "kube-system", "cert-manager")]
    assert chart["spec"]["version"] == "v1.16.2"
    assert chart["spec"]["repo"] == "https://charts.jetstack.io"
    assert chart["spec"]["targetNamespace"] == "cert-manager"
    values = yaml.safe_load(chart["spec"]["valuesContent"])
    assert values["crds"] == {"enabled": True, "keep": True}
    assert values["image"]["repository"] == "quay.io/jetstack/cert-manager-controller"
    for part in ("webhook", "cainjector", "startupapicheck"):
        assert values[part]["nodeSelector"]["gitpod.io/workload_meta"] == "true"


def test_ca_issuer_chain(default_run):
    tmp, _out = default_run
    objs = validate_all(load_manifests(tmp))
    assert objs[("ClusterIssuer", "", "gitpod-k3s-selfsigned")]["spec"] == {"selfSigned": {}}
    ca = objs[("Certificate", "cert-manager", "gitpod-k3s-ca")]["spec"]
    assert ca["isCA"] is True and ca["issuerRef"]["name"] == "gitpod-k3s-selfsigned"
    assert objs[("ClusterIssuer", "", "gitpod-k3s-ca")]["spec"]["ca"]["secretName"] == "gitpod-k3s-ca"
    assert not any(k[0] == "ClusterIssuer" and k[2] == "gitpod-k3s-acme" for k in objs)


def test_https_certificate_covers_domain_wildcards_from_ca(default_run):
    tmp, _out = default_run
    cert = validate_all(load_manifests(tmp))[("Certificate", "gitpod", "https-certificates")]["spec"]
    assert cert["secretName"] == "https-certificates"
    assert cert["dnsNames"] == ["gitpod.example.com", "*.gitpod.example.com", "*.ws.gitpod.example.com"]
    assert cert["issuerRef"]["name"] == "gitpod-k3s-ca"


def test_workloads_run_on_meta_nodes_with_pinned_images(default_run):
    tmp, _out = default_run
    objs = validate_all(load_manifests(tmp))
    images = {}
    for name in ("mysql", "minio", "registry"):
        pod = objs[("StatefulSet", "gitpod", name)]["spec"]["template"]["spec"]
        assert pod["nodeSelector"]["gitpod.io/workload_meta"] == "true"
        images[name] = pod["containers"][0]["image"]
    assert images == {"mysql": "docker.io/library/mysql:5.7.44",
                      "minio": "quay.io/minio/minio:RELEASE.2024-12-18T13-15-44Z",
                      "registry": "docker.io/library/registry:2.8.3"}
    for image in images.values():
        assert ":latest" not in image


def test_volumes_use_the_default_storage_class(default_run):
    tmp, _out = default_run
    objs = validate_all(load_manifests(tmp))
    for name in ("mysql", "minio"):
        claim = objs[("StatefulSet", "gitpod", name)]["spec"]["volumeClaimTemplates"][0]["spec"]
        assert "storageClassName" not in claim
    assert "volumeClaimTemplates" not in objs[("StatefulSet", "gitpod", "registry")]["spec"]


def test_mysql_runs_with_explicit_defaults_for_timestamp_off(default_run):
    tmp, _out = default_run
    objs = validate_all(load_manifests(tmp))
    cnf = objs[("ConfigMap", "gitpod", "gitpod-k3s-mysql")]["data"]["gitpod.cnf"]
    assert "explicit_defaults_for_timestamp = OFF" in cnf
    env = {e["name"]: e for e in objs[("StatefulSet", "gitpod", "mysql")]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "MYSQL_DATABASE" not in env and "MYSQL_USER" not in env
    assert env["MYSQL_ROOT_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "gitpod-k3s-mysql"


def test_gitpod_secrets_have_the_installer_shapes(default_run):
    tmp, _out = default_run
    objs = validate_all(load_manifests(tmp))
    creds = credentials(tmp)
    db = secret_data(objs[("Secret", "gitpod", "gitpod-database")])
    assert set(db) == {"encryptionKeys", "host", "password", "port", "username"}
    assert db["host"] == "mysql.gitpod.svc.cluster.local" and db["port"] == "3306"
    assert db["password"] == creds["mysql_password"]
    keys = json.loads(db["encryptionKeys"])
    assert keys[0]["primary"] is True and len(base64.b64decode(keys[0]["material"])) == 32
    storage = secret_data(objs[("Secret", "gitpod", "gitpod-storage")])
    assert storage == {"accessKeyId": creds["minio_root_user"], "secretAccessKey": creds["minio_root_password"]}
    reg = objs[("Secret", "gitpod", "gitpod-registry")]
    assert reg["type"] == "kubernetes.io/dockerconfigjson"
    auths = json.loads(secret_data(reg)[".dockerconfigjson"])["auths"]
    entry = auths["registry.gitpod.svc.cluster.local"]
    assert base64.b64decode(entry["auth"]).decode() == f"gitpod:{creds['registry_password']}"


def test_registry_uses_minio_over_s3_with_tls_and_htpasswd(default_run):
    tmp, _out = default_run
    objs = validate_all(load_manifests(tmp))
    creds = credentials(tmp)
    data = secret_data(objs[("Secret", "gitpod", "gitpod-k3s-registry")])
    config = yaml.safe_load(data["config.yml"])
    s3 = config["storage"]["s3"]
    assert s3["regionendpoint"] == "http://minio.gitpod.svc.cluster.local:9000"
    assert s3["bucket"] == "gitpod-registry" and s3["secure"] is False
    assert s3["accesskey"] == creds["minio_root_user"]
    assert config["storage"]["redirect"] == {"disable": True}
    assert config["http"]["tls"] == {"certificate": "/certs/tls.crt", "key": "/certs/tls.key"}
    assert config["auth"]["htpasswd"]["path"] == "/etc/docker/registry/htpasswd"
    user, hashed = data["htpasswd"].strip().split(":", 1)
    assert user == "gitpod" and hashed.startswith("$2b$10$")
    cert = objs[("Certificate", "gitpod", "gitpod-k3s-registry-tls")]["spec"]
    assert "registry.gitpod.svc.cluster.local" in cert["dnsNames"] and cert["issuerRef"]["name"] == "gitpod-k3s-ca"
    job = bucket_job(objs)["spec"]["template"]["spec"]["containers"][0]
    assert "gitpod/gitpod gitpod/gitpod-registry" in job["args"][0]


def test_htpasswd_hash_verifies_the_stored_password(default_run):
    tmp, _out = default_run
    creds = credentials(tmp)
    import bcrypt
    user, hashed = creds["registry_htpasswd"].split(":", 1)
    assert user == "gitpod" and hashed.startswith("$2b$10$")
    assert bcrypt.checkpw(creds["registry_password"].encode(), hashed.encode())
    assert not bcrypt.checkpw(b"not-the-password", hashed.encode())


def test_default_fragment(default_run):
    tmp, _out = default_run
    frag = fragment(tmp)
    assert frag["domain"] == "gitpod.example.com"
    assert frag["certificate"] == {"kind": "secret", "name": "https-certificates"}
    assert frag["database"] == {"inCluster": False, "external": {"certificate": {"kind": "secret", "name": "gitpod-database"}}}
    assert frag["objectStorage"]["s3"] == {
        "endpoint": "minio.gitpod.svc.cluster.local:9000", "bucket": "gitpod", "allowInsecureConnection": True,
        "credentials": {"kind": "secret", "name": "gitpod-storage"}}
    assert frag["metadata"]["region"] == "local"
    assert frag["containerRegistry"] == {"inCluster": False, "external": {
        "url": "registry.gitpod.svc.cluster.local", "certificate": {"kind": "secret", "name": "gitpod-registry"}}}
    assert frag["customCACert"] == {"kind": "secret", "name": "gitpod-k3s-ca-bundle"}
    assert frag["workspace"]["runtime"] == {
        "containerdSocket": "/run/containerd/containerd.sock",
        "containerdRuntimeDir": "/run/containerd/io.containerd.runtime.v2.task/k8s.io"}


def test_second_run_changes_nothing_and_keeps_the_secrets(runs, default_run):
    tmp, first = default_run
    rc, out = runs["again"]
    assert rc == 0, failure_messages(out)
    assert stats(first)["changed"] > 0
    assert stats(out)["changed"] == 0
    assert credentials(tmp) == runs["snapshot"]["credentials"]
    assert {n: (tmp / "manifests" / n).read_bytes() for n in os.listdir(tmp / "manifests")} == runs["snapshot"]["manifests"]


def test_no_secret_appears_in_verbose_output(runs):
    rc, text = runs["verbose"]
    assert rc == 0, text[-3000:]
    assert "TASK [selfhosted.gitpod_k3s.components : Store the credentials (mode 0600)]" in text
    secrets = dict(credentials(runs["verbose_dir"]), cloudflare="cf-token-123")
    leaked = [key for key, value in secrets.items() if str(value) in text]
    assert leaked == []


def test_check_mode_on_a_fresh_host_writes_nothing(runs):
    tmp, out = ok_run(runs, "check_fresh")
    assert stats(out)["changed"] > 0
    assert not (tmp / "manifests").exists()
    assert not (tmp / "artifacts" / "components-credentials.yml").exists()


# --- variants -----------------------------------------------------------------------------

def test_mysql_8_pvc_registry_acme_cloudflare_and_a_mirror(runs):
    tmp_path, _out = ok_run(runs, "mysql8_pvc_cloudflare_mirror")
    objs = validate_all(load_manifests(tmp_path))
    mysql = objs[("StatefulSet", "gitpod", "mysql")]["spec"]
    assert mysql["template"]["spec"]["containers"][0]["image"] == "mirror.example.com:5000/library/mysql:8.0.40"
    assert mysql["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast"
    assert "default_authentication_plugin = mysql_native_password" in objs[("ConfigMap", "gitpod", "gitpod-k3s-mysql")]["data"]["gitpod.cnf"]
    registry = objs[("StatefulSet", "gitpod", "registry")]["spec"]
    assert "volumeClaimTemplates" not in registry  # its own claim: the storage can be switched later
    volumes = {v["name"]: v for v in registry["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "registry-data"}
    assert objs[("PersistentVolumeClaim", "gitpod", "registry-data")]["spec"]["storageClassName"] == "fast"
    config = yaml.safe_load(secret_data(objs[("Secret", "gitpod", "gitpod-k3s-registry")])["config.yml"])
    assert config["storage"]["filesystem"] == {"rootdirectory": "/var/lib/registry"} and "s3" not in config["storage"]
    job = bucket_job(objs)["spec"]["template"]["spec"]["containers"][0]
    assert "gitpod-registry" not in job["args"][0]
    acme = objs[("ClusterIssuer", "", "gitpod-k3s-acme")]["spec"]["acme"]
    assert acme["email"] == "ops@example.com"
    assert acme["solvers"][0]["dns01"]["cloudflare"]["apiTokenSecretRef"] == {"name": "gitpod-k3s-acme-dns", "key": "api-token"}
    assert secret_data(objs[("Secret", "cert-manager", "gitpod-k3s-acme-dns")]) == {"api-token": "cf-token-123"}
    assert objs[("Certificate", "gitpod", "https-certificates")]["spec"]["issuerRef"]["name"] == "gitpod-k3s-acme"
    values = yaml.safe_load(objs[("HelmChart", "kube-system", "cert-manager")]["spec"]["valuesContent"])
    assert values["webhook"]["image"]["repository"] == "mirror.example.com:5000/jetstack/cert-manager-webhook"
    frag = fragment(tmp_path)
    assert frag["workspace"]["runtime"] == {
        "containerdSocket": "/run/k3s/containerd/containerd.sock",
        "containerdRuntimeDir": "/run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io"}
    # ACME signs https-certificates, but the in-cluster registry still needs Gitpod to trust the CA.
    assert frag["customCACert"]["name"] == "gitpod-k3s-ca-bundle"


def test_containerd_fact_wins_over_the_mode_default(runs):
    tmp_path, _out = ok_run(runs, "containerd_fact")
    assert fragment(tmp_path)["workspace"]["runtime"] == {
        "containerdSocket": "/custom/containerd.sock", "containerdRuntimeDir": "/custom/runtime/k8s.io"}


def test_bring_your_own_installs_nothing_and_points_gitpod_at_it(runs):
    tmp_path, _out = ok_run(runs, "external_route53")
    names = sorted(os.listdir(tmp_path / "manifests"))
    assert "gitpod-k3s-40-mysql.yaml" not in names and "gitpod-k3s-40-minio.yaml" not in names
    assert "gitpod-k3s-40-registry.yaml" not in names
    objs = validate_all(load_manifests(tmp_path))
    assert not any(k[0] == "StatefulSet" for k in objs)
    db = secret_data(objs[("Secret", "gitpod", "gitpod-database")])
    assert (db["host"], db["port"], db["username"], db["password"]) == ("db.example.com", "3307", "gp", "db-pw")
    assert secret_data(objs[("Secret", "gitpod", "gitpod-storage")]) == {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "s3-secret"}
    auths = json.loads(secret_data(objs[("Secret", "gitpod", "gitpod-registry")])[".dockerconfigjson"])["auths"]
    assert list(auths) == ["reg.example.com:5000"] and auths["reg.example.com:5000"]["username"] == "ru"
    r53 = objs[("ClusterIssuer", "", "gitpod-k3s-acme")]["spec"]["acme"]["solvers"][0]["dns01"]["route53"]
    assert r53["region"] == "us-east-1" and r53["hostedZoneID"] == "Z123"
    assert r53["secretAccessKeySecretRef"] == {"name": "gitpod-k3s-acme-dns", "key": "secret-access-key"}
    frag = fragment(tmp_path)
    assert frag["objectStorage"]["s3"]["endpoint"] == "s3.eu-central-1.amazonaws.com"
    assert frag["objectStorage"]["s3"]["allowInsecureConnection"] is False
    assert frag["metadata"]["region"] == "eu-central-1"
    assert frag["containerRegistry"]["external"]["url"] == "reg.example.com:5000"
    assert "customCACert" not in frag  # ACME certificate, no in-cluster registry


def test_switching_to_external_removes_the_in_cluster_manifests(runs):
    tmp_path, _out = ok_run(runs, "switch_to_external")
    assert "gitpod-k3s-40-mysql.yaml" in runs["snapshot"]["switch_files"]
    rc, out = runs["switched"]
    assert rc == 0, failure_messages(out)
    assert not (tmp_path / "manifests" / "gitpod-k3s-40-mysql.yaml").exists()
    assert not (tmp_path / "manifests" / "gitpod-k3s-40-registry.yaml").exists()


def test_in_cluster_registry_on_external_s3(runs):
    tmp_path, _out = ok_run(runs, "registry_on_external_s3")
    objs = validate_all(load_manifests(tmp_path))
    s3 = yaml.safe_load(secret_data(objs[("Secret", "gitpod", "gitpod-k3s-registry")])["config.yml"])["storage"]["s3"]
    assert s3["regionendpoint"] == "https://s3.eu-central-1.amazonaws.com" and s3["secure"] is True
    assert s3["skipverify"] is True and s3["region"] == "eu-central-1" and s3["accesskey"] == "AKIAEXAMPLE"
    assert ("StatefulSet", "gitpod", "minio") not in objs


def test_gitpod_owned_components_and_clouddns(runs):
    tmp_path, _out = ok_run(runs, "gitpod_owned_clouddns")
    objs = validate_all(load_manifests(tmp_path))
    assert not any(k[0] == "Secret" and k[1] == "gitpod" for k in objs)
    dns = objs[("ClusterIssuer", "", "gitpod-k3s-acme")]["spec"]["acme"]["solvers"][0]["dns01"]["cloudDNS"]
    assert dns == {"project": "my-project", "serviceAccountSecretRef": {"name": "gitpod-k3s-acme-dns", "key": "key.json"}}
    frag = fragment(tmp_path)
    assert frag["database"] == {"inCluster": True}
    assert frag["objectStorage"] == {"inCluster": True}
    assert frag["containerRegistry"] == {"inCluster": True}


def test_no_domain_no_https_certificate(runs):
    tmp_path, _out = ok_run(runs, "containerd_fact")
    assert not (tmp_path / "manifests" / "gitpod-k3s-30-https-certificate.yaml").exists()
    assert fragment(tmp_path)["domain"] == ""


# --- bad input: a clear message, nothing written ----------------------------------------------

BAD_INPUTS = [
    ({"components_mysql": "sqlite"}, "value of components_mysql must be one of: in_cluster, external, gitpod, got: sqlite"),
    ({"components_mysql_version": "5.6"}, "value of components_mysql_version must be one of: 5.7, 8.0, got: 5.6"),
    ({"components_storage": "gitpod"}, "components_registry = 'in_cluster' with components_registry_storage = 's3' needs components_storage"),
    ({"cert_manager_acme_provider": "godaddy"}, "value of cert_manager_acme_provider must be one of: , cloudflare, route53, clouddns, got: godaddy"),
    ({"cert_manager_acme_provider": "cloudflare", "gitpod_k3s_domain": "gitpod.example.com",
      "cert_manager_acme_email": "ops@example.com"},
     "cert_manager_acme_provider = 'cloudflare' needs cert_manager_cloudflare_api_token; empty: cert_manager_cloudflare_api_token"),
    ({"cert_manager_acme_provider": "route53", "cert_manager_acme_email": "ops@example.com"},
     "needs cert_manager_domain"),
    ({"components_mysql": "external", "components_mysql_external": {"host": "db", "username": "gp"}},
     "components_mysql_external needs host, username and password"),
    ({"components_registry": "external", "components_registry_external": {"url": "ftp://x/y", "username": "u", "password": "p"}},
     "components_registry_external.url = 'ftp://x/y' is not a registry address; allowed: [https://]host[:port]"),
]


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad")
    results = run_many([(base / str(i), extra, False) for i, (extra, _expected) in enumerate(BAD_INPUTS)])
    return [(base / str(i), rc, out) for i, (rc, out) in enumerate(results)]


@pytest.mark.parametrize("index", range(len(BAD_INPUTS)), ids=[expected for _extra, expected in BAD_INPUTS])
def test_bad_input_is_refused_before_anything_is_written(bad_runs, index):
    tmp_path, rc, out = bad_runs[index]
    expected = BAD_INPUTS[index][1]
    assert rc != 0
    messages = " ".join(failure_messages(out))
    assert expected in messages, messages
    assert not (tmp_path / "manifests").exists()
