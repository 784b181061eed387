"""The components' credentials across runs, and the changes a re-run may not apply (pure functions).

plugins/module_utils/credentials.py decides each credential (override, controller file, deployed,
new); plugins/module_utils/apply_rules.py judges the objects a run would write against the deployed
ones. No process is started: the objects are written here, the way the role's templates and kubectl
give them (stringData in the manifests, base64 data from the cluster).
"""

from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import apply_rules, credentials

NS = "gitpod"
NAMES = {"database": "gitpod-database", "storage": "gitpod-storage", "registry": "gitpod-registry"}
REGISTRY_HOST = "registry.gitpod.svc.cluster.local"
KEY_A = base64.b64encode(b"a" * 32).decode()
KEY_B = base64.b64encode(b"b" * 32).decode()
SALT = "abcdefghijklmnopqrstuO"
WHERE = {"file": "/p/artifacts/components-credentials.yml", "deployed": "the manifests", "unread": "kubectl failed"}
VALUES = {"mysql_root_password": "root-1", "mysql_password": "gitpod-1", "minio_root_user": "gitpodminio",
          "minio_root_password": "minio-pw-1", "registry_password": "reg-1", "registry_http_secret": "http-1",
          "registry_htpasswd_salt": SALT, "database_encryption_key": KEY_A}
GENERATED = {key: f"new-{key}" for key in credentials.KEYS}


def secret(name, data, encoded=False):
    field = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()} if encoded else data
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS},
            "data" if encoded else "stringData": field}


def deployed_objects(values=None, encoded=False, keys=None):
    """The Secrets templates/*.yaml.j2 write for ``values`` (as manifests, or as kubectl returns them)."""
    values = values or VALUES
    htpasswd = f"gitpod:$2b$10${values['registry_htpasswd_salt']}{'x' * 31}\n"
    return [
        secret("gitpod-k3s-mysql", {"root-password": values["mysql_root_password"], "password": values["mysql_password"],
                                    "previous-root-password": values["mysql_root_password"]}, encoded),
        secret("gitpod-k3s-minio", {"root-user": values["minio_root_user"], "root-password": values["minio_root_password"]}, encoded),
        secret("gitpod-k3s-registry", {"htpasswd": htpasswd, "config.yml": f"http:\n  secret: {values['registry_http_secret']}\n"},
               encoded),
        secret("gitpod-registry", {".dockerconfigjson": json.dumps({"auths": {REGISTRY_HOST: {
            "username": "gitpod", "password": values["registry_password"]}}})}, encoded),
        secret("gitpod-database", {"encryptionKeys": json.dumps(keys or [
            {"name": "general", "version": 1, "primary": True, "material": values["database_encryption_key"]}])}, encoded),
    ]


def resolve(stored=None, deployed=None, overrides=None, known=True):
    found = credentials.recover(deployed or [], NS, NAMES, REGISTRY_HOST)
    return credentials.resolve(stored or {}, found, overrides or {}, GENERATED, known, WHERE)


@pytest.mark.parametrize("encoded", [False, True], ids=["manifests", "cluster"])
def test_every_key_is_read_back_from_what_is_deployed(encoded):
    found = credentials.recover(deployed_objects(encoded=encoded), NS, NAMES, REGISTRY_HOST)
    assert {k: found[k] for k in credentials.KEYS} == VALUES


def test_a_controller_without_the_file_reads_the_cluster_and_generates_nothing():
    result = resolve(deployed=deployed_objects())
    assert result["errors"] == [] and result["changed"] == []
    assert {k: result["credentials"][k] for k in credentials.KEYS} == VALUES
    assert set(result["origin"].values()) == {"deployed"}


def test_a_new_cluster_gets_new_credentials():
    result = resolve(deployed=[], known=True)
    assert result["errors"] == [] and set(result["origin"].values()) == {"generated"}
    assert result["credentials"]["database_encryption_keys"] == [
        {"name": "general", "version": 1, "primary": True, "material": GENERATED["database_encryption_key"]}]


def test_nothing_kept_and_nothing_readable_is_refused_naming_the_keys_and_the_way_back():
    result = resolve(deployed=[], known=False)
    (message,) = result["errors"]
    assert "mysql_root_password" in message and "database_encryption_key" in message
    assert WHERE["file"] in message and "kubectl failed" in message and "Restore the file" in message
    assert "mysql_password" not in result["credentials"]


def test_a_controller_file_that_disagrees_with_the_cluster_is_refused():
    stored = dict(VALUES, mysql_password="Zq9-stale", minio_root_password="Zq9-stale-pw")
    (message,) = resolve(stored=stored, deployed=deployed_objects())["errors"]
    assert "mysql_password, minio_root_password" in message and "components_credentials_overrides" in message
    assert "Zq9" not in message  # never a value


def test_the_controller_file_that_agrees_is_used_and_changes_nothing():
    result = resolve(stored=VALUES, deployed=deployed_objects())
    assert result["errors"] == [] and result["changed"] == [] and set(result["origin"].values()) == {"stored"}


def test_an_override_changes_a_credential_on_purpose_and_says_so():
    result = resolve(stored=VALUES, deployed=deployed_objects(), overrides={"mysql_password": "rotated"})
    assert result["errors"] == [] and result["changed"] == ["mysql_password"]
    assert result["credentials"]["mysql_password"] == "rotated"


def test_a_new_encryption_key_is_added_as_primary_and_the_old_kept():
    result = resolve(stored=VALUES, deployed=deployed_objects(), overrides={"database_encryption_key": KEY_B})
    assert result["credentials"]["database_encryption_keys"] == [
        {"name": "general", "version": 1, "primary": False, "material": KEY_A},
        {"name": "general", "version": 2, "primary": True, "material": KEY_B}]
    # The next run (file and cluster now at version 2, override still set) changes nothing more.
    keys = result["credentials"]["database_encryption_keys"]
    again = resolve(stored=result["credentials"], deployed=deployed_objects(dict(VALUES, database_encryption_key=KEY_B), keys=keys),
                    overrides={"database_encryption_key": KEY_B})
    assert again["credentials"]["database_encryption_keys"] == keys and again["changed"] == []
    # Back to the first key: version 1 is primary again, nothing is lost or duplicated.
    back = credentials.with_primary(keys, KEY_A)
    assert [(k["version"], k["primary"]) for k in back] == [(1, True), (2, False)]


def test_a_file_of_an_earlier_release_with_one_key_becomes_version_one():
    stored = dict(VALUES)
    result = resolve(stored=stored, deployed=[])
    assert result["credentials"]["database_encryption_keys"] == [
        {"name": "general", "version": 1, "primary": True, "material": KEY_A}]


def test_a_rotated_root_password_keeps_the_previous_one_until_applied():
    result = resolve(stored=VALUES, deployed=deployed_objects(), overrides={"mysql_root_password": "root-2"})
    assert result["credentials"]["mysql_previous_root_password"] == "root-1"
    # Once deployed, the next run keeps the same previous password: the Secret does not change again.
    deployed = deployed_objects(dict(VALUES, mysql_root_password="root-2"))
    deployed[0]["stringData"]["previous-root-password"] = "root-1"
    again = resolve(stored=result["credentials"], deployed=deployed, overrides={"mysql_root_password": "root-2"})
    assert again["credentials"]["mysql_previous_root_password"] == "root-1"


def test_the_users_own_registry_password_is_not_taken_for_the_collections():
    objs = deployed_objects()
    objs[3]["stringData"][".dockerconfigjson"] = json.dumps({"auths": {"reg.example.com": {"password": "theirs"}}})
    assert "registry_password" not in credentials.recover(objs, NS, NAMES, REGISTRY_HOST)


# --- the overrides, by the rules of the programs that take them --------------------------------

GOOD = dict(VALUES, database_encryption_key=KEY_B, mysql_root_password="Root-Pw_2026!", minio_root_password="12345678")
BAD = [
    ("mysql_root_password", "it's", "pastes unescaped"),
    ("mysql_root_password", 'say "hi"', "pastes unescaped"),
    ("mysql_root_password", "back\\slash", "pastes unescaped"),
    ("mysql_password", "two\nlines", "line break"),
    ("minio_root_user", "ab", "fewer than the 3"),
    ("minio_root_password", "1234567", "fewer than the 8"),
    ("registry_password", "x" * 73, "more than bcrypt's 72"),
    ("registry_htpasswd_salt", "abcdefghijklmnopqrstuv", "not a bcrypt salt"),
    ("database_encryption_key", "not base64!", "not base64"),
    ("database_encryption_key", base64.b64encode(b"k" * 31).decode(), "31 bytes"),
    ("mysql_pasword", "x", "did you mean 'mysql_password'"),
    ("mysql_password", 12345, "not a string"),
]


def test_good_overrides_pass():
    assert credentials.check_overrides("components_credentials_overrides", GOOD) == []
    # Boundaries: exactly 3 and 8 characters, exactly 72 bytes, 32 bytes.
    edge = {"minio_root_user": "abc", "minio_root_password": "12345678", "registry_password": "x" * 72,
            "database_encryption_key": KEY_A, "mysql_password": "it's \\ fine"}
    assert credentials.check_overrides("components_credentials_overrides", edge) == []


@pytest.mark.parametrize("key, value, expected", BAD, ids=[f"{k}-{i}" for i, (k, _v, _e) in enumerate(BAD)])
def test_bad_overrides_are_refused_naming_the_key_never_the_value(key, value, expected):
    (message,) = credentials.check_overrides("components_credentials_overrides", {key: value})
    assert expected in message and "components_credentials_overrides" in message
    if isinstance(value, str) and len(value) > 3:
        assert value not in message


def test_every_key_has_a_rule():
    assert set(credentials.RULES) == set(credentials.KEYS)


# --- what the API server, k3s and the servers would refuse ---------------------------------------

def statefulset(size="20Gi", image="docker.io/library/mysql:5.7.44", storage_class=None, template_note="a"):
    claim = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class:
        claim["storageClassName"] = storage_class
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "mysql", "namespace": NS},
            "spec": {"serviceName": "mysql", "selector": {"matchLabels": {"app": "mysql"}},
                     "template": {"metadata": {"annotations": {"note": template_note}},
                                  "spec": {"containers": [{"name": "mysql", "image": image}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": claim}]}}


def claim(name="registry-data", size="50Gi", storage_class=None):
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": NS}, "spec": spec}


SETTINGS = {"StatefulSet/mysql": ["components_mysql_storage_size"], "PersistentVolumeClaim/registry-data": ["components_registry_storage"]}


def refusals(old, new, confirmed=()):
    return apply_rules.refusals(old, new, confirmed, SETTINGS, {"StatefulSet/mysql": ["mysql"]})


def test_a_changed_pod_template_or_image_upgrade_is_accepted():
    assert refusals([statefulset()], [statefulset(template_note="b", image="docker.io/library/mysql:8.0.40")]) == []


@pytest.mark.parametrize("new, field", [
    (statefulset(size="30Gi"), "spec.volumeClaimTemplates"),
    (statefulset(storage_class="fast"), "spec.volumeClaimTemplates"),
])
def test_a_volume_claim_template_change_is_refused_naming_the_setting(new, field):
    (message,) = refusals([statefulset()], [new])
    assert f"StatefulSet gitpod/mysql (set by components_mysql_storage_size): {field}" in message


def test_a_mysql_downgrade_is_refused():
    (message,) = refusals([statefulset(image="docker.io/library/mysql:8.0.40")], [statefulset()])
    assert "mysql:8.0.40" in message and "mysql:5.7.44" in message and "older release" in message


@pytest.mark.parametrize("new", [claim(size="60Gi"), claim(storage_class="fast")])
def test_a_claims_size_or_class_change_is_refused(new):
    (message,) = refusals([claim()], [new])
    assert "PersistentVolumeClaim gitpod/registry-data" in message


def test_a_claim_taken_out_is_refused_unless_confirmed_by_name():
    (message,) = refusals([claim(), statefulset()], [statefulset()])
    assert "components_confirm_delete_claims: [registry-data]" in message
    assert refusals([claim(), statefulset()], [statefulset()], confirmed=["registry-data"]) == []
    assert refusals([claim(), statefulset()], [statefulset()], confirmed=["other"]) != []


def test_a_service_keeps_its_cluster_ip_and_a_job_its_selector():
    svc = {"kind": "Service", "metadata": {"name": "s", "namespace": NS}, "spec": {"clusterIP": "10.43.0.10", "type": "ClusterIP"}}
    assert refusals([svc], [dict(svc, spec={"type": "LoadBalancer", "clusterIP": "10.43.0.10"})]) == []
    assert refusals([svc], [dict(svc, spec={"type": "ClusterIP", "clusterIP": "10.43.0.11"})]) != []
    job = {"kind": "Job", "metadata": {"name": "j", "namespace": NS}, "spec": {"selector": {"a": "1"}, "template": {"x": 1}}}
    # wrangler replaces a Job whose pod template changed (ErrReplace); its selector is immutable.
    assert refusals([job], [dict(job, spec={"selector": {"a": "1"}, "template": {"x": 2}})]) == []
    assert refusals([job], [dict(job, spec={"selector": {"a": "2"}, "template": {"x": 1}})]) != []


def test_a_statefulset_moved_away_leaves_its_data_behind_and_is_refused_unless_confirmed():
    moved = dict(statefulset(), metadata={"name": "mysql", "namespace": "elsewhere"})
    (message,) = refusals([statefulset()], [moved])
    assert "PersistentVolumeClaim gitpod/data-mysql-0 would be left behind" in message
    assert "components_confirm_delete_claims: [data-mysql-0]" in message
    assert refusals([statefulset()], [moved], confirmed=["data-mysql-0"]) == []
