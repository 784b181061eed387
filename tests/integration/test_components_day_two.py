"""Day two of the components: the cluster through time, from one install, through playbooks/components.yml.

One install (the first server is this machine, its k3s manifests directory a temporary one, the
cluster's Secrets served by the kubectl TEST DOUBLE, tests/unit/kubectl_double.py, which answers
``get secrets -l ...`` as kubectl does), then each later run on a copy of that state, all at once:

- a re-run with nothing changed: 0 changed;
- the controller's artifacts lost (an upgraded collection, a fresh clone): the same credentials are read
  back from the manifests, or from the cluster when the manifests are gone too; neither readable: refused;
- a controller file that disagrees with the cluster: refused, nothing written;
- a volume size, a claim taken out, a MySQL downgrade: refused before any file is written, naming the
  setting; the claim confirmed by name: applied; the same refusal from playbooks/day_two_check.yml,
  which site.yml runs before any host is changed;
- credentials changed on purpose: every pod that reads a changed Secret or ConfigMap rolls, no other
  (judged over every workload and every reference the rendered objects hold), and the MySQL apply Job
  is new, so the change reaches the running server.

What k3s and the API server do with the files is not run here (no k3s can run); the refusals are
the API server's rules as plugins/module_utils/apply_rules.py reads them, and tests/conformance judges the
accepted renders with the tests' own reading of those rules.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "render"))
from rendering import (  # noqa: E402  (tests/render is not a package)
    COMPONENTS_PLAYBOOK, REPO, ansible_env, by_identity, cluster_double, components_command, failure_messages, load_manifests,
    references, run_components_many, workloads)

BASE = {"gitpod_k3s_domain": "gitpod.example.com", "components_registry_storage": "pvc", "components_mysql_version": "8.0"}
ROTATED = {"mysql_root_password": "root-Rotated-1", "mysql_password": "gitpod-Rotated-1", "minio_root_user": "rotatedminio",
           "minio_root_password": "minio-Rotated-1", "registry_password": "reg-Rotated-1",
           "registry_http_secret": "http-Rotated-1", "registry_htpasswd_salt": "rotatedrotatedrotatedO",
           "database_encryption_key": base64.b64encode(b"r" * 32).decode()}


def changed(out) -> int:
    return sum(host["changed"] for host in out["stats"].values())


def credentials(tmp: Path) -> dict:
    return yaml.safe_load((tmp / "artifacts" / "components-credentials.yml").read_text())


def texts(tmp: Path) -> dict:
    return {p.name: p.read_text() for p in sorted((tmp / "manifests").iterdir())}


def as_cluster_secrets(tmp: Path) -> dict:
    """The Secrets of the installed manifests as the API server returns them (base64 data)."""
    secrets = []
    for objs in load_manifests(tmp / "manifests").values():
        for obj in objs:
            if obj["kind"] == "Secret":
                data = {k: base64.b64encode(str(v).encode()).decode() for k, v in (obj.get("stringData") or {}).items()}
                secrets.append({"apiVersion": "v1", "kind": "Secret", "metadata": obj["metadata"], "type": obj.get("type"),
                                "data": data})
    return {"secrets": secrets}


def copy_of(installed: Path, to: Path) -> Path:
    shutil.copytree(installed, to)
    cluster_double(to, {})  # a state file of its own (the copied one names the installed directory)
    return to


@pytest.fixture(scope="module")
def day_two(tmp_path_factory):
    base = tmp_path_factory.mktemp("day-two")
    installed = base / "installed"
    (install,) = run_components_many([(installed, BASE, False)])
    assert install[0] == 0, failure_messages(install[1])
    cases = {}

    def case(name, extra=None, prepare=None):
        tmp = copy_of(installed, base / name)
        settings = dict(BASE, **(extra or {}))
        if prepare:
            settings = dict(settings, **(prepare(tmp) or {}))
        cases[name] = (tmp, settings)

    case("rerun")

    def legacy_files(tmp):
        for name in ("gitpod-k3s-mysql.yaml", "gitpod-k3s-cert-manager.yaml"):  # names earlier releases wrote
            (tmp / "manifests" / name).write_text("# an earlier release's file\n")
    case("legacy_files", prepare=legacy_files)
    case("artifacts_lost", prepare=lambda tmp: shutil.rmtree(tmp / "artifacts"))

    def lost_all(tmp):
        cluster = as_cluster_secrets(tmp)
        shutil.rmtree(tmp / "artifacts")
        shutil.rmtree(tmp / "manifests")
        return {"components_kubectl": cluster_double(tmp, cluster)}
    case("artifacts_and_manifests_lost", prepare=lost_all)

    def unreadable(tmp):
        shutil.rmtree(tmp / "artifacts")
        shutil.rmtree(tmp / "manifests")
        kubectl = cluster_double(tmp, {})
        state = json.loads((tmp / "cluster.json").read_text())
        (tmp / "cluster.json").write_text(json.dumps(dict(state, unreachable=True)))
        return {"components_kubectl": kubectl}
    case("nothing_readable", prepare=unreadable)

    def stale_file(tmp):
        path = tmp / "artifacts" / "components-credentials.yml"
        path.write_text(yaml.safe_dump(dict(yaml.safe_load(path.read_text()), mysql_password="Zq9-stale")))
    case("stale_controller_file", prepare=stale_file)
    case("mysql_volume_resized", {"components_mysql_storage_size": "40Gi"})
    case("storage_class_changed", {"components_storage_class": "fast"})
    case("registry_claim_taken_out", {"components_registry_storage": "s3"})
    case("registry_claim_taken_out_confirmed", {"components_registry_storage": "s3",
                                                "components_confirm_delete_claims": ["registry-data"]})
    case("mysql_downgraded", {"components_mysql_version": "5.7"})
    case("all_rotated", {"components_credentials_overrides": ROTATED})
    case("minio_rotated", {"components_credentials_overrides": {"minio_root_password": "minio-Rotated-2"}})
    names = list(cases)
    results = run_components_many([(tmp, settings, False) for tmp, settings in cases.values()])
    # playbooks/day_two_check.yml, which site.yml runs before any host is changed: the same refusal.
    early = copy_of(installed, base / "early_check")
    command = components_command(early, dict(BASE, components_mysql_storage_size="40Gi"))
    command[command.index(str(COMPONENTS_PLAYBOOK))] = str(COMPONENTS_PLAYBOOK.parent / "day_two_check.yml")
    proc = subprocess.run(command, cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=600, check=False)
    cases["early_check"] = (early, None)
    names.append("early_check")
    results.append((proc.returncode, json.loads(proc.stdout)))
    return {"installed": installed, "cases": {n: (cases[n][0], rc, out) for n, (rc, out) in zip(names, results)}}


def test_a_rerun_changes_nothing(day_two):
    tmp, rc, out = day_two["cases"]["rerun"]
    assert rc == 0 and changed(out) == 0, failure_messages(out)
    assert texts(tmp) == texts(day_two["installed"])


def test_files_of_earlier_releases_are_removed(day_two):
    tmp, rc, out = day_two["cases"]["legacy_files"]
    assert rc == 0, failure_messages(out)
    assert texts(tmp) == texts(day_two["installed"])


@pytest.mark.parametrize("name", ["artifacts_lost", "artifacts_and_manifests_lost"])
def test_a_controller_without_its_artifacts_reads_the_same_credentials_back(day_two, name):
    tmp, rc, out = day_two["cases"][name]
    assert rc == 0, failure_messages(out)
    assert credentials(tmp) == credentials(day_two["installed"])
    assert texts(tmp) == texts(day_two["installed"])
    text = json.dumps(out)
    assert "Read back from" in text


def test_nothing_kept_and_nothing_readable_is_refused_before_anything_is_written(day_two):
    tmp, rc, out = day_two["cases"]["nothing_readable"]
    assert rc != 0
    message = " ".join(failure_messages(out))
    assert "neither in components_credentials_file" in message and "Restore the file" in message
    assert not (tmp / "manifests").exists() and not (tmp / "artifacts" / "components-credentials.yml").exists()


def test_a_controller_file_that_disagrees_with_the_cluster_is_refused(day_two):
    tmp, rc, out = day_two["cases"]["stale_controller_file"]
    assert rc != 0
    message = " ".join(failure_messages(out))
    assert "holds other values than the cluster for mysql_password" in message and "Zq9" not in message
    assert texts(tmp) == texts(day_two["installed"])


@pytest.mark.parametrize("name, expected", [
    ("mysql_volume_resized", "StatefulSet gitpod/mysql (set by components_mysql_storage_size, components_storage_class"),
    ("storage_class_changed", "spec.volumeClaimTemplates would change"),
    ("registry_claim_taken_out", "components_confirm_delete_claims: [registry-data]"),
    ("mysql_downgraded", "an older release than the one whose data is on the volume"),
    ("early_check", "StatefulSet gitpod/mysql (set by components_mysql_storage_size"),
])
def test_a_change_the_cluster_cannot_take_is_refused_before_any_file_is_written(day_two, name, expected):
    tmp, rc, out = day_two["cases"][name]
    assert rc != 0
    message = " ".join(failure_messages(out))
    assert expected in message, message
    assert texts(tmp) == texts(day_two["installed"])


def test_a_claim_confirmed_by_name_is_taken_out(day_two):
    tmp, rc, out = day_two["cases"]["registry_claim_taken_out_confirmed"]
    assert rc == 0, failure_messages(out)
    kinds = [(o["kind"], o["metadata"]["name"]) for objs in load_manifests(tmp / "manifests").values() for o in objs]
    assert ("PersistentVolumeClaim", "registry-data") not in kinds


# --- what a change reaches: every workload, every reference ------------------------------------

@pytest.mark.parametrize("name", ["all_rotated", "minio_rotated"])
def test_a_pod_rolls_exactly_when_a_secret_or_config_map_it_reads_changes(day_two, name):
    tmp, rc, out = day_two["cases"][name]
    assert rc == 0, failure_messages(out)
    before, after = by_identity(day_two["installed"]), by_identity(tmp)
    changed_objects = {(kind, nm) for (kind, ns, nm), obj in after.items()
                       if kind in ("Secret", "ConfigMap") and before.get((kind, ns, nm)) != obj}
    assert changed_objects, f"{name} changed no Secret"
    old, new = workloads(before), workloads(after)
    assert old.keys() == new.keys() and len(new) >= 5
    rolled = set()
    for workload, template in new.items():
        read = references(template) & changed_objects
        if template != old[workload]:
            rolled.add(workload[2])
        assert (template != old[workload]) == bool(read), (workload, sorted(read))
    if name == "minio_rotated":
        assert rolled == {"minio", "gitpod-k3s-minio-buckets"}, rolled
    else:
        assert {"mysql", "minio", "registry", "gitpod-k3s-mysql-apply"} <= rolled, rolled


def test_rotated_credentials_reach_every_secret_and_keep_the_old_encryption_key(day_two):
    tmp, rc, out = day_two["cases"]["all_rotated"]
    after, before = by_identity(tmp), by_identity(day_two["installed"])
    database = after[("Secret", "gitpod", "gitpod-database")]["stringData"]
    assert database["password"] == ROTATED["mysql_password"]
    keys = json.loads(database["encryptionKeys"])
    old_material = json.loads(before[("Secret", "gitpod", "gitpod-database")]["stringData"]["encryptionKeys"])[0]["material"]
    assert [(k["version"], k["primary"], k["material"]) for k in keys] == [
        (1, False, old_material), (2, True, ROTATED["database_encryption_key"])]
    mysql = after[("Secret", "gitpod", "gitpod-k3s-mysql")]["stringData"]
    assert mysql["previous-root-password"] == credentials(day_two["installed"])["mysql_root_password"]
    assert f"IDENTIFIED BY '{ROTATED['mysql_password']}'" in mysql["gitpod.sql"]
    assert "Changed by components_credentials_overrides" in json.dumps(out)


def test_mysqls_first_initialisation_cannot_be_killed_by_a_probe(day_two):
    """The first start initialises the volume behind a server without networking (docker-entrypoint.sh
    docker_temp_server_start: --skip-networking), so every ping fails until it is done; the kubelet starts
    liveness only once the startup probe passed, and that gives the initialisation 30 minutes."""
    (container,) = by_identity(day_two["installed"])[("StatefulSet", "gitpod", "mysql")]["spec"]["template"]["spec"]["containers"]
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800
    assert "-h" in startup["exec"]["command"]  # the same TCP ping the temporary server cannot answer
