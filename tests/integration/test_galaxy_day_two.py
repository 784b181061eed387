"""The day-two chain a Galaxy user lives through, replayed: the collection built and installed into a fresh
path, playbooks/components.yml run by its FQCN from the user's own directory, the installed collection
upgraded (``ansible-galaxy collection install --force``), then a run with the artifacts directory gone.

It ends with the same credentials and manifests as the install. Before the artifacts moved beside the
inventory, the first run wrote them inside the installed collection, the upgrade deleted them, and the
next run generated new credentials into the manifests.

The first server is this machine (a local connection, k3s's manifests directory in the user's
directory) and the cluster's Secrets come from the kubectl TEST DOUBLE (tests/unit/kubectl_double.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "render"))
from rendering import REPO, cluster_double, failure_messages  # noqa: E402

BIN = Path(sys.executable).parent


def galaxy(*args, env):
    proc = subprocess.run([str(BIN / "ansible-galaxy"), "collection", *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    base = tmp_path_factory.mktemp("galaxy")
    src = base / "src"
    subprocess.run([str(REPO / "tests" / "release" / "copy-checkout.sh"), str(src)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    installed = base / "collections"
    env["ANSIBLE_COLLECTIONS_PATH"] = f"{installed}:{sysconfig.get_paths()['purelib']}"
    proc = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(base / "dist")],
                          cwd=src, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (tarball,) = (base / "dist").iterdir()
    galaxy("install", str(tarball), "-p", str(installed), env=env)
    # The user's own project: an inventory, and nothing of the collection.
    user = base / "project"
    user.mkdir()
    (user / "inventory.yml").write_text(yaml.safe_dump({"all": {"children": {"k3s_servers": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_become": False}}}}, "vars": {
        "cert_manager_wait": False, "cert_manager_manifests_dir": str(user / "k3s-manifests"),
        "components_manifests_dir": str(user / "k3s-manifests"), "components_registry_htpasswd_rounds": 4,
        "gitpod_k3s_domain": "gitpod.example.com", "components_kubectl": cluster_double(user)}}}))
    env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"

    def run():
        proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "inventory.yml", "selfhosted.gitpod_k3s.components"],
                              cwd=user, env=env, capture_output=True, text=True, timeout=600, check=False)
        out = json.loads(proc.stdout)
        return proc.returncode, out

    def state():
        creds = user / "artifacts" / "components-credentials.yml"
        return (yaml.safe_load(creds.read_text()) if creds.exists() else None,
                {p.name: p.read_text() for p in sorted((user / "k3s-manifests").iterdir())})

    steps = {}
    steps["install"] = (run(), state())
    collection = installed / "ansible_collections" / "selfhosted" / "gitpod_k3s"
    steps["inside_the_collection"] = sorted(str(p.relative_to(collection)) for p in collection.rglob("artifacts"))
    galaxy("install", "--force", str(tarball), "-p", str(installed), env=env)
    steps["after_upgrade"] = (run(), state())
    shutil.rmtree(user / "artifacts")
    steps["artifacts_gone"] = (run(), state())
    return steps


def test_the_artifacts_are_the_users_not_the_collections(chain):
    (rc, out), (creds, _files) = chain["install"]
    assert rc == 0, failure_messages(out)
    assert creds is not None  # in the project, beside the inventory
    assert chain["inside_the_collection"] == []


@pytest.mark.parametrize("step", ["after_upgrade", "artifacts_gone"])
def test_a_later_run_keeps_the_credentials_and_manifests(chain, step):
    (rc, out), (creds, files) = chain[step]
    assert rc == 0, failure_messages(out)
    _install, (creds_0, files_0) = chain["install"]
    assert creds == creds_0
    assert files == files_0
    if step == "after_upgrade":
        assert sum(h["changed"] for h in out["stats"].values()) == 0
