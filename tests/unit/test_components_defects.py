"""Issue 13, the components stage held to what k3s, cert-manager, the MySQL image and Gitpod's
installer actually do. Each test renders playbooks/components.yml against localhost (files in a
temporary directory) and checks one defect:

- 1 / 11: Gitpod's dbinit Job logs in as the Gitpod user and creates `gitpod-sessions` itself, so
  the in-cluster MySQL must create both databases utf8mb4 and grant the user both at init.
- 12: the database is always `gitpod` (Gitpod's installer never sets DB_NAME): not a setting.
- 6: a Job's pod template is immutable; the bucket Job is named after a hash of it.
- 15: k3s applies the files of its manifests directory in name order (sort.Strings over the paths,
  every 15 s; a failed file is retried on the next pass): namespaces and CRDs must come first.
- 4: the CA cert-manager makes in the cluster reaches every node's containerd configuration.

No cluster is involved; `k3s kubectl` is a small script that answers the calls the play makes.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml

from test_components_render import EXTERNAL, failure_messages, load_manifests, run_many
from rendering import order_problems  # tests/render, on sys.path through test_components_render

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOMAIN = "gitpod.example.com"
# One set of credentials for every variant, so that renders differ only by the setting each changes
# (the pods' config-sha256 annotations carry the Secrets' contents).
CREDENTIALS = {"mysql_root_password": "root-Pw-1", "mysql_password": "gitpod-Pw-1", "minio_root_user": "gitpodminio",
               "minio_root_password": "minio-Pw-12345", "registry_password": "reg-Pw-1", "registry_http_secret": "http-secret-1",
               "registry_htpasswd_salt": "abcdefghijklmnopqrstuO",
               "database_encryption_key": "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="}
BASE = {"gitpod_k3s_domain": DOMAIN, "components_credentials_overrides": CREDENTIALS}


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    base = tmp_path_factory.mktemp("defects")
    variants = {
        "default": BASE,
        "storage_size": dict(BASE, components_storage_size="60Gi"),
        "client_image": dict(BASE, components_images={
            "mysql_5_7": "docker.io/library/mysql:5.7.44", "mysql_8_0": "docker.io/library/mysql:8.0.40",
            "minio": "quay.io/minio/minio:RELEASE.2024-12-18T13-15-44Z",
            "minio_client": "quay.io/minio/mc:RELEASE.2025-01-01T00-00-00Z",
            "registry": "docker.io/library/registry:2.8.3"}),
        "region": dict(BASE, components_storage_region="eu-1"),
        "pvc_mysql8": dict(BASE, components_registry_storage="pvc", components_mysql_version="8.0",
                           components_mysql_username="gp_user"),
        "acme": dict(BASE, cert_manager_acme_provider="cloudflare", cert_manager_acme_email="ops@example.com",
                     cert_manager_cloudflare_api_token="cf-token"),
        "external": dict(EXTERNAL, **BASE),
        "no_domain": {"components_credentials_overrides": CREDENTIALS},
        "bucket_renamed": BASE,
    }
    names = list(variants)
    first = dict(zip(names, run_many([(base / n, variants[n], False) for n in names])))
    before = load_manifests(base / "bucket_renamed")
    # Render the same directory again with a changed bucket list.
    (again,) = run_many([(base / "bucket_renamed", dict(BASE, components_storage_bucket="gitpod-data"), False)])
    first["bucket_renamed_again"] = again
    out = {}
    for name, (rc, result) in first.items():
        assert rc == 0, (name, failure_messages(result))
        out[name] = base / name.replace("_again", "")
    return {"dirs": out, "bucket_renamed_before": before, "results": first}


def objects(docs):
    return [(name, obj) for name, objs in docs.items() for obj in objs]


def find(docs, kind, name=None):
    hits = [obj for _unused, obj in objects(docs) if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name)]
    assert len(hits) == 1, (kind, name, [o["metadata"]["name"] for o in hits])
    return hits[0]


# --- 1 and 11: both databases, utf8mb4, granted at init ------------------------------------------

def init_sql(docs):
    """The SQL the MySQL image runs at first start (files mounted into /docker-entrypoint-initdb.d)."""
    sts = find(docs, "StatefulSet", "mysql")
    pod = sts["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    texts = []
    for mount in pod["containers"][0]["volumeMounts"]:
        if not mount["mountPath"].startswith("/docker-entrypoint-initdb.d/"):
            continue
        assert mount["mountPath"].endswith(".sql"), mount
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            texts.append(find(docs, "ConfigMap", volume["configMap"]["name"])["data"][mount["subPath"]])
        else:
            texts.append(find(docs, "Secret", volume["secret"]["secretName"])["stringData"][mount["subPath"]])
    return "\n".join(texts)


def statements(sql):
    sql = re.sub(r"--[^\n]*", "", sql)
    return [" ".join(s.split()) for s in sql.split(";") if s.strip()]


@pytest.mark.parametrize("variant, user", [("default", "gitpod"), ("pvc_mysql8", "gp_user")])
def test_mysql_init_creates_both_databases_utf8mb4_and_grants_the_gitpod_user(renders, variant, user):
    docs = load_manifests(renders["dirs"][variant])
    stmts = statements(init_sql(docs))
    for database in ("gitpod", "gitpod-sessions"):
        assert f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4" in stmts, stmts
        assert f"GRANT ALL ON `{database}`.* TO '{user}'@'%'" in stmts, stmts
    env = {e["name"]: e for e in find(docs, "StatefulSet", "mysql")["spec"]["template"]["spec"]["containers"][0]["env"]}
    # The image would create MYSQL_DATABASE itself, in the server's default latin1 on 5.7, before the script runs.
    assert "MYSQL_DATABASE" not in env
    # The user is the collection's SQL's (escaped), not the image's MYSQL_USER (pasted into SQL unquoted).
    assert "MYSQL_USER" not in env and "MYSQL_PASSWORD" not in env
    assert f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY" in " ".join(stmts)
    # The Secret Gitpod reads names the same user.
    db = find(docs, "Secret", "gitpod-database")["stringData"]
    assert db["username"] == user


# --- 12: the database name is not a setting -----------------------------------------------------

def test_database_name_is_not_a_setting():
    with open(os.path.join(REPO, "roles", "components", "defaults", "main.yml")) as fh:
        defaults = yaml.safe_load(fh)
    with open(os.path.join(REPO, "roles", "components", "meta", "argument_specs.yml")) as fh:
        spec = yaml.safe_load(fh)["argument_specs"]["main"]["options"]
    assert "components_mysql_database" not in defaults
    assert "components_mysql_database" not in spec
    with open(os.path.join(REPO, "inventories", "example", "group_vars", "all", "components.yml")) as fh:
        assert "components_mysql_database" not in fh.read()


BAD = [
    ({"components_mysql_database": "gitpod_prod"}, "components_mysql_database = 'gitpod_prod', but Gitpod always uses the database 'gitpod'"),
    ({"components_mysql_username": "gp'; DROP"}, "components_mysql_username = \"gp'; DROP\" is not a MySQL user name"),
]


@pytest.fixture(scope="module")
def bad_renders(tmp_path_factory):
    base = tmp_path_factory.mktemp("defects-bad")
    return [(base / str(i), *res) for i, res in enumerate(run_many([(base / str(i), extra, False) for i, (extra, _unused) in enumerate(BAD)]))]


@pytest.mark.parametrize("index", range(len(BAD)), ids=[m for _unused, m in BAD])
def test_bad_database_settings_are_refused_naming_the_variable(bad_renders, index):
    tmp, rc, out = bad_renders[index]
    assert rc != 0
    messages = " ".join(failure_messages(out))
    assert BAD[index][1] in messages, messages
    assert not (tmp / "manifests").exists()


# --- 6: the bucket Job is named after its pod template -----------------------------------------

def bucket_job(docs):
    (job,) = [obj for _unused, obj in objects(docs)
              if obj["kind"] == "Job" and obj["metadata"]["name"].startswith("gitpod-k3s-minio-buckets-")]
    return job


def test_bucket_job_name_changes_when_and_only_when_its_pod_template_changes(renders):
    jobs = {name: bucket_job(load_manifests(d)) for name, d in renders["dirs"].items()
            if name not in ("external",)}
    jobs["bucket_renamed_before"] = bucket_job(renders["bucket_renamed_before"])
    for job in jobs.values():
        name = job["metadata"]["name"]
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63, name
    # Rendered twice in one directory: the second bucket list is in the new Job, under a new name.
    before, after = jobs["bucket_renamed_before"], jobs["bucket_renamed"]
    assert "gitpod/gitpod-data" in after["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert before["metadata"]["name"] != after["metadata"]["name"]
    # Across every render: equal names exactly for equal pod templates.
    items = list(jobs.items())
    for i, (a, job_a) in enumerate(items):
        for b, job_b in items[i + 1:]:
            same_template = job_a["spec"]["template"] == job_b["spec"]["template"]
            same_name = job_a["metadata"]["name"] == job_b["metadata"]["name"]
            assert same_template == same_name, (a, b, same_template, same_name)
    # The render with only a larger MinIO volume keeps the Job; the image, region and bucket list renew it.
    assert jobs["storage_size"]["metadata"]["name"] == jobs["default"]["metadata"]["name"]
    for changed in ("client_image", "region", "pvc_mysql8", "bucket_renamed"):
        assert jobs[changed]["metadata"]["name"] != jobs["default"]["metadata"]["name"], changed


# --- 15: file order as k3s applies it ------------------------------------------------------------

# The check, order_problems, is tests/render/rendering.py's (the Calico render tests use it too).


@pytest.mark.parametrize("variant", ["default", "acme", "external", "no_domain", "pvc_mysql8"])
def test_manifest_files_sort_so_a_first_pass_applies_every_file(renders, variant):
    docs = load_manifests(renders["dirs"][variant])
    assert len(docs) >= 4, sorted(docs)
    assert order_problems(docs) == []


def test_order_check_bites_on_the_old_names():
    """The check itself: the names before issue 13 put Secrets before their namespace and the
    issuers before the chart that installs their CRDs."""
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gitpod"}}
    chart = {"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart", "metadata": {"name": "cert-manager", "namespace": "kube-system"},
             "spec": {"chart": "cert-manager", "valuesContent": "crds:\n  enabled: true\n"}}
    cmns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cert-manager"}}
    issuer = {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "ca"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "gitpod-database", "namespace": "gitpod"}}
    old = {"gitpod-k3s-cert-manager-issuers.yaml": [issuer], "gitpod-k3s-cert-manager.yaml": [cmns, chart],
           "gitpod-k3s-gitpod-secrets.yaml": [secret], "gitpod-k3s-namespace.yaml": [ns]}
    problems = order_problems(old)
    assert any("ClusterIssuer ca needs the CRDs of cert-manager.io" in p for p in problems), problems
    assert any("Secret gitpod-database is in namespace gitpod" in p for p in problems), problems


def test_gitpod_namespace_is_written_before_any_file_that_uses_it(renders):
    """k3s may pass between two tasks: the namespace file must be on disk before the first file
    with an object in it (cert_manager writes https-certificates before the components role runs)."""
    manifests = renders["dirs"]["default"] / "manifests"
    docs = load_manifests(renders["dirs"]["default"])
    ns_files = [n for n, objs in docs.items() if any(o["kind"] == "Namespace" and o["metadata"]["name"] == "gitpod" for o in objs)]
    assert len(ns_files) == 1
    written = os.stat(manifests / ns_files[0]).st_mtime_ns
    users = [n for n, objs in docs.items() if any(o["metadata"].get("namespace") == "gitpod" for o in objs)]
    assert users
    for name in users:
        assert os.stat(manifests / name).st_mtime_ns >= written, f"{name} was written before {ns_files[0]}"


# --- 4: the cluster's CA reaches the nodes -----------------------------------------------------

DOUBLE = textwrap.dedent('''\
    import json, os, sys
    args = sys.argv[1:]
    with open(os.environ["CA_DOUBLE_LOG"], "a") as fh:
        fh.write(json.dumps(args) + "\\n")
    if "get" in args and "secrets" in args:
        # The components role's read of its own Secrets: a new cluster holds none (as kubectl prints it).
        print(json.dumps({"apiVersion": "v1", "kind": "List", "items": []}))
        sys.exit(0)
    if "get" in args and "secret" in args:
        ns = args[args.index("-n") + 1] if "-n" in args else "default"
        name = args[args.index("secret") + 1]
        if (ns, name) != ("cert-manager", "gitpod-k3s-ca"):
            print(f'Error from server (NotFound): secrets "{name}" not found', file=sys.stderr)
            sys.exit(1)
        jsonpath = "jsonpath={.data.ca" + chr(92) + ".crt}"
        if "-o" not in args or args[args.index("-o") + 1:args.index("-o") + 2] != [jsonpath]:
            print("the double answers only the CA certificate's jsonpath", file=sys.stderr)
            sys.exit(1)
        sys.stdout.write(os.environ["CA_DOUBLE_B64"])
        sys.exit(0)
    print("ok")
''')


# TEST DOUBLE for systemctl: on these machines systemd is not PID 1. The containerd role asks whether
# k3s runs (to restart it after registries.yaml changed); the answer is that no k3s unit is loaded.
SYSTEMCTL = textwrap.dedent('''\
    #!/bin/sh
    [ "$1" = show ] || { echo "systemctl test double: only show is answered" >&2; exit 1; }
    seen=0
    for arg in "$@"; do
        if [ "$seen" = 1 ]; then printf 'LoadState=not-found\\nUnitFileState=\\nActiveState=inactive\\n\\n'; fi
        [ "$arg" = "--" ] && seen=1
    done
    exit 0
''')


def make_ca(tmp):
    key, crt = tmp / "ca.key", tmp / "ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj", "/CN=gitpod-k3s-ca"],
                   check=True, capture_output=True)
    return crt.read_text()


def containerd_installed():
    return subprocess.run(["dpkg-query", "-W", "-f=${Status}", "containerd"], capture_output=True,
                          text=True, check=False).stdout.endswith("installed")


@pytest.fixture(scope="module")
def ca_runs(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test CA")
    base = tmp_path_factory.mktemp("ca")
    pem = make_ca(base)
    double = base / "kubectl_double.py"
    double.write_text(DOUBLE)
    kubectl = f"{sys.executable} {double}"
    bin_dir = base / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(SYSTEMCTL)
    (bin_dir / "systemctl").chmod(0o755)
    runs = {}
    cases = {
        "embedded": {"gitpod_k3s_containerd_mode": "embedded"},
        "system": {"gitpod_k3s_containerd_mode": "system"},
        "acme": {"gitpod_k3s_containerd_mode": "embedded", "cert_manager_acme_provider": "cloudflare",
                 "cert_manager_acme_email": "ops@example.com", "cert_manager_cloudflare_api_token": "cf-token"},
    }
    procs = {}
    for case, extra in cases.items():
        if case == "system" and not containerd_installed():
            continue  # reported by the test that needs it
        tmp = base / case
        tmp.mkdir()
        host = tmp / "host"
        variables = dict(BASE, **extra, **{
            "cert_manager_wait": True,
            "cert_manager_wait_timeout": 30,
            "cert_manager_kubectl": kubectl,
            "components_kubectl": kubectl,
            "cert_manager_manifests_dir": str(tmp / "manifests"),
            "components_manifests_dir": str(tmp / "manifests"),
            "gitpod_k3s_artifacts_dir": str(tmp / "artifacts"),
            "components_registry_htpasswd_rounds": 4,
            # The containerd role, writing under a directory of the test instead of /etc.
            "containerd_k3s_registries_file": str(host / "etc/rancher/k3s/registries.yaml"),
            "containerd_k3s_certs_dir": str(host / "etc/rancher/k3s/certs.d"),
            "containerd_certs_dir": str(host / "etc/containerd/certs.d"),
            "containerd_config_file": str(host / "etc/containerd/config.toml"),
            "containerd_cni_bin_dir": str(host / "opt/cni/bin"),
            "containerd_cni_conf_dir": str(host / "etc/cni/net.d"),
            "containerd_manage_service": False,
        })
        inventory = tmp / "inventory.yml"
        inventory.write_text(yaml.safe_dump({"all": {"children": {"k3s_servers": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_become": False}}}}}}))
        env = dict(os.environ, CA_DOUBLE_LOG=str(tmp / "calls.jsonl"), CA_DOUBLE_B64=base64.b64encode(pem.encode()).decode(),
                   ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        procs[case] = (tmp, host, subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory),
             os.path.join(REPO, "playbooks", "components.yml"), "-e", json.dumps(variables)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for case, (tmp, host, proc) in procs.items():
        stdout, _unused = proc.communicate(timeout=600)
        calls = [json.loads(line) for line in (tmp / "calls.jsonl").read_text().splitlines()] if (tmp / "calls.jsonl").exists() else []
        runs[case] = {"rc": proc.returncode, "stdout": stdout, "tmp": tmp, "host": host, "calls": calls}
    return pem, runs


def ca_run(ca_runs, case):
    pem, runs = ca_runs
    if case not in runs:
        pytest.skip("containerd is not installed here: the system-mode run needs Debian's containerd package")
    run = runs[case]
    assert run["rc"] == 0, run["stdout"][-4000:]
    return pem, run


def secret_reads(run):
    return [c for c in run["calls"] if "get" in c and "secret" in c]


def test_ca_from_the_cluster_reaches_k3s_registries_yaml_in_embedded_mode(ca_runs):
    pem, run = ca_run(ca_runs, "embedded")
    reads = secret_reads(run)
    assert len(reads) == 1
    # Only the certificate is read: the CA's private key (tls.key) never leaves the cluster.
    assert not any(a in ("json", "yaml") or a.startswith(("-ojson", "-oyaml", "-o=json", "-o=yaml")) for a in reads[0])
    saved = run["tmp"] / "artifacts" / "gitpod-k3s-ca.crt"
    assert saved.read_text().strip() == pem.strip()
    registries = yaml.safe_load((run["host"] / "etc/rancher/k3s/registries.yaml").read_text())
    for host in (f"reg.{DOMAIN}:20000", f"registry.{DOMAIN}"):
        ca_file = registries["configs"][host]["tls"]["ca_file"]
        assert ca_file == str(run["host"] / "etc/rancher/k3s/certs.d" / host / "ca.crt")
        with open(ca_file) as fh:
            assert fh.read().strip() == pem.strip()
    assert base64.b64encode(pem.encode()).decode() not in run["stdout"], "the Secret is read with no_log"


def test_ca_from_the_cluster_reaches_containerd_certs_d_in_system_mode(ca_runs):
    pem, run = ca_run(ca_runs, "system")
    assert len(secret_reads(run)) == 1
    certs = run["host"] / "etc/containerd/certs.d"
    for host in (f"reg.{DOMAIN}:20000", f"registry.{DOMAIN}"):
        assert (certs / host / "ca.crt").read_text().strip() == pem.strip()
        assert f'ca = "{certs / host / "ca.crt"}"' in (certs / host / "hosts.toml").read_text()


def test_no_ca_is_taken_to_the_nodes_when_acme_signs_gitpods_certificate(ca_runs):
    _unused, run = ca_run(ca_runs, "acme")
    assert secret_reads(run) == []
    assert not (run["tmp"] / "artifacts" / "gitpod-k3s-ca.crt").exists()
    assert not (run["host"] / "etc/rancher/k3s/certs.d" / f"reg.{DOMAIN}:20000").exists()
