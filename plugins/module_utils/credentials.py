# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""The components' credentials across runs, controllers and collection upgrades.

The components role writes each credential into a Secret of a manifest that k3s applies (on the first
server, under /var/lib/rancher/k3s/server/manifests) and keeps a copy on the controller
(``components_credentials_file``). The services take them once: the mysql image creates its users
only when it initialises an empty data directory (docker-library/mysql ``docker-entrypoint.sh``,
``DATABASE_ALREADY_EXISTS``), and Gitpod encrypts users' tokens with the database encryption key.
So a credential is never silently replaced. For each key a run takes, in this order:

1. ``components_credentials_overrides``: the user changes it on purpose (a rotation);
2. the controller file, which must agree with what is deployed (else the run is refused: another
   controller's or an old file would replace the running credentials);
3. what is deployed (the manifests on the first server, or the Secrets in the cluster): a controller
   without the file (after an upgrade of the collection, a fresh clone, a colleague's laptop) reads
   them back;
4. a new random value, only where nothing is deployed and the deployed state could be read; when it
   could not be read, the run is refused, naming the missing state and how to restore it.

Gitpod's database encryption keys are a list (``encryptionKeys``: name, version, primary, material;
gitpod-io/gitpod 2022.11 ``components/gitpod-protocol/src/encryption/key-provider.ts``): the primary key
encrypts, every key decrypts what was encrypted under its name and version. A new key material is added
as a new primary version and the old keys are kept, so what Gitpod encrypted stays readable.

Plain functions on plain data: the filter ``selfhosted.gitpod_k3s.components_credentials`` calls them
and the unit tests call them directly.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import re

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None

# Every credential key the controller file holds, in the order they are listed in messages.
KEYS = (
    "mysql_root_password",
    "mysql_password",
    "minio_root_user",
    "minio_root_password",
    "registry_password",
    "registry_http_secret",
    "registry_htpasswd_salt",
    "database_encryption_key",
)
# What each program that takes a credential accepts, read from its source. Each rule returns the
# problem (never quoting the value) or None.
#   mysql root password: docker-library/mysql docker-entrypoint.sh (5.7 and 8.0) pastes it verbatim
#     into SQL ("IDENTIFIED BY '${MYSQL_ROOT_PASSWORD}'") and into a client option file
#     (password="${MYSQL_ROOT_PASSWORD}"): no ', ", \ or line break.
#   mysql password: the collection's own SQL escapes it (templates/mysql.yaml.j2); Gitpod reads it
#     from an environment variable (DB_PASSWORD): no line break or control character.
#   MinIO root user >= 3 and password >= 8 characters: minio internal/auth/credentials.go
#     (accessKeyMinLen, secretKeyMinLen, checked by CreateCredentials for the root user).
#   registry password: bcrypt reads at most 72 bytes (plugins/filter/htpasswd.py refuses more).
#   htpasswd salt: bcrypt's 22 characters, the last one of . O e u.
#   database encryption key: Gitpod's key-provider.ts decodes it as base64 and uses it for
#     aes-256-cbc (encryption-engine.ts), which takes exactly 32 bytes.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# bcrypt's limits, also the htpasswd_bcrypt filter's (plugins/filter/htpasswd.py imports them).
BCRYPT_SALT = re.compile(r"[./A-Za-z0-9]{21}[.Oeu]")
BCRYPT_MAX_BYTES = 72


def _text(value):
    return "a line break or control character" if _CONTROL.search(value) else None


def _mysql_root(value):
    if any(c in value for c in "'\"\\"):
        return ("a ' , \" or \\, which the mysql image's entrypoint pastes unescaped into SQL and its option file; "
                "allowed: any other printable characters")
    return _text(value)


def _min_length(length, program):
    def rule(value):
        if len(value) < length:
            return f"{len(value)} characters, fewer than the {length} {program} needs"
        return _text(value)
    return rule


def _bcrypt_password(value):
    if len(value.encode("utf-8")) > BCRYPT_MAX_BYTES:
        return f"{len(value.encode('utf-8'))} bytes, more than bcrypt's {BCRYPT_MAX_BYTES}"
    return _text(value)


def _salt(value):
    if not BCRYPT_SALT.fullmatch(value):
        return "not a bcrypt salt; allowed: 22 characters of ./A-Za-z0-9 whose last is one of . O e u"
    return None


def _aes256_key(value):
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return "not base64; allowed: 32 random bytes in base64 (e.g. openssl rand -base64 32)"
    if len(raw) != 32:
        return f"{len(raw)} bytes once decoded; Gitpod's aes-256-cbc needs 32 (e.g. openssl rand -base64 32)"
    return None


RULES = {
    "mysql_root_password": _mysql_root,
    "mysql_password": _text,
    "minio_root_user": _min_length(3, "MinIO root user"),
    "minio_root_password": _min_length(8, "MinIO root password"),
    "registry_password": _bcrypt_password,
    "registry_http_secret": _text,
    "registry_htpasswd_salt": _salt,
    "database_encryption_key": _aes256_key,
}


def check_overrides(name, overrides):
    """``components_credentials_overrides``: known keys, each value as the program taking it accepts it."""
    if overrides in (None, ""):
        return []
    if not isinstance(overrides, dict):
        return [f"{name} is not a mapping; allowed: a mapping of credential keys ({', '.join(KEYS)}) to values"]
    errors = []
    for key in sorted(overrides):
        value = overrides[key]
        if key not in RULES:
            close = difflib.get_close_matches(str(key), KEYS, n=1)
            errors.append(f"{name} has the key {str(key)!r}, which is no credential"
                          + (f" (did you mean {close[0]!r}?)" if close else "") + f"; allowed keys: {', '.join(KEYS)}")
        elif not isinstance(value, str) or value == "":
            errors.append(f"{name}.{key} is {'empty' if value == '' else 'not a string'}; allowed: a non-empty string")
        else:
            problem = RULES[key](value)
            if problem:
                errors.append(f"{name}.{key} holds {problem}" if problem.startswith("a ") else f"{name}.{key} is {problem}")
    return errors


# Kept beside the keys: derived, or history rather than a credential of its own.
DERIVED = ("registry_htpasswd", "registry_htpasswd_key", "database_encryption_keys", "mysql_previous_root_password")

# Where each credential is deployed: (Secret name or the role's name for it, key in that Secret).
# The templates of roles/components write these Secrets; tests/unit/test_credentials_state.py renders
# them and reads every key back, so this table cannot drift from the templates.
MYSQL_SECRET = "gitpod-k3s-mysql"
MINIO_SECRET = "gitpod-k3s-minio"
REGISTRY_SECRET = "gitpod-k3s-registry"
ENCRYPTION_KEY_NAME = "general"


def secrets_of(objects, namespace):
    """Secret name -> {key: text} for the Secrets of ``namespace`` among API objects (stringData or data)."""
    found = {}
    for obj in objects or []:
        if not isinstance(obj, dict) or obj.get("kind") != "Secret":
            continue
        meta = obj.get("metadata") or {}
        if meta.get("namespace", namespace) != namespace or not meta.get("name"):
            continue
        values = {}
        for key, value in (obj.get("data") or {}).items():
            try:
                values[key] = base64.b64decode(str(value), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                continue
        for key, value in (obj.get("stringData") or {}).items():
            values[key] = "" if value is None else str(value)
        found[meta["name"]] = values
    return found


def _htpasswd_salt(line):
    """The 22 salt characters of an htpasswd line ``user:$2b$NN$<salt 22><hash 31>``."""
    hashed = line.strip().split(":", 1)[-1]
    parts = hashed.split("$")
    if len(parts) == 4 and parts[1] in ("2a", "2b", "2y") and len(parts[3]) == 53:
        return parts[3][:22]
    return None


def encryption_keys_of(text):
    """Gitpod's encryptionKeys JSON -> a list of {name, version, primary, material}, or None."""
    try:
        keys = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(keys, list) or not all(isinstance(k, dict) and k.get("material") for k in keys):
        return None
    return [{"name": str(k.get("name", ENCRYPTION_KEY_NAME)), "version": int(k.get("version", 1)),
             "primary": bool(k.get("primary")), "material": str(k["material"])} for k in keys]


def primary_material(keys):
    primaries = [k["material"] for k in keys or [] if k.get("primary")]
    return primaries[-1] if primaries else None


def recover(objects, namespace, secret_names, registry_host):
    """The credentials (and the encryption key list) that deployed Secrets hold.

    ``registry_host`` is the in-cluster registry's host: the registry Secret Gitpod reads holds the
    collection's registry password only for that host (for the user's own registry it holds theirs).
    """
    secrets = secrets_of(objects, namespace)
    found = {}
    mysql = secrets.get(MYSQL_SECRET, {})
    for key, name in (("root-password", "mysql_root_password"), ("password", "mysql_password"),
                      ("previous-root-password", "mysql_previous_root_password")):
        if mysql.get(key):
            found[name] = mysql[key]
    minio = secrets.get(MINIO_SECRET, {})
    for key, name in (("root-user", "minio_root_user"), ("root-password", "minio_root_password")):
        if minio.get(key):
            found[name] = minio[key]
    registry = secrets.get(REGISTRY_SECRET, {})
    if registry.get("htpasswd"):
        salt = _htpasswd_salt(registry["htpasswd"])
        if salt:
            found["registry_htpasswd_salt"] = salt
    if registry.get("config.yml") and yaml is not None:
        try:
            config = yaml.safe_load(registry["config.yml"]) or {}
        except yaml.YAMLError:
            config = {}
        secret = ((config.get("http") or {}) if isinstance(config, dict) else {}).get("secret")
        if secret:
            found["registry_http_secret"] = str(secret)
    pull = secrets.get((secret_names or {}).get("registry", ""), {})
    if pull.get(".dockerconfigjson"):
        try:
            auth = json.loads(pull[".dockerconfigjson"]).get("auths", {}).get(registry_host) or {}
        except (ValueError, AttributeError):
            auth = {}
        if auth.get("password"):
            found["registry_password"] = str(auth["password"])
    database = secrets.get((secret_names or {}).get("database", ""), {})
    keys = encryption_keys_of(database.get("encryptionKeys"))
    if keys:
        found["database_encryption_keys"] = keys
        if primary_material(keys):
            found["database_encryption_key"] = primary_material(keys)
    return found


def with_primary(keys, material):
    """``keys`` with ``material`` as the primary key: an earlier version made primary again, or a new
    version added; every other key kept, as a decryption key."""
    keys = [dict(k) for k in keys or []]
    known = [k for k in keys if k["material"] == material]
    if not known:
        version = max([k["version"] for k in keys if k["name"] == ENCRYPTION_KEY_NAME] or [0]) + 1
        keys.append({"name": ENCRYPTION_KEY_NAME, "version": version, "primary": True, "material": material})
        known = keys[-1:]
    for key in keys:
        key["primary"] = key is known[0]
    return keys


def resolve(stored, deployed, overrides, generated, deployed_known, where):
    """Decide every key's value for this run.

    stored: the controller file (dict); deployed: recover()'s result; overrides: the user's changes;
    generated: fresh random values; deployed_known: whether the deployed state could be read at all;
    where: {"file": controller path, "deployed": what was read, "unread": why the deployed state is unknown}.

    Returns {"credentials", "origin" (key -> override|stored|deployed|generated), "changed" (keys whose
    deployed value this run replaces), "errors"}.
    """
    stored, deployed, overrides = dict(stored or {}), dict(deployed or {}), dict(overrides or {})
    if "database_encryption_keys" not in stored and stored.get("database_encryption_key"):
        stored["database_encryption_keys"] = with_primary([], stored["database_encryption_key"])
    credentials, origin, changed, conflicts, missing = {}, {}, [], [], []
    for key in KEYS:
        if key in overrides and overrides[key] not in (None, ""):
            credentials[key], origin[key] = str(overrides[key]), "override"
            if deployed.get(key) not in (None, credentials[key]):
                changed.append(key)
        elif stored.get(key):
            credentials[key], origin[key] = stored[key], "stored"
            if deployed.get(key) not in (None, stored[key]):
                conflicts.append(key)
        elif deployed.get(key):
            credentials[key], origin[key] = deployed[key], "deployed"
        elif deployed_known:
            credentials[key], origin[key] = generated[key], "generated"
        else:
            missing.append(key)
    errors = []
    if conflicts:
        errors.append(
            f"components_credentials_file {where.get('file')} holds other values than the cluster for "
            f"{', '.join(conflicts)} ({where.get('deployed')}). The cluster's values are the ones MySQL, MinIO, the "
            "registry and Gitpod's encrypted data run with, so the file would replace them. To keep the cluster's, "
            "move the file away (the run reads them back from the cluster); to change one on purpose, set it in "
            "components_credentials_overrides.")
    if missing:
        errors.append(
            f"The credentials {', '.join(missing)} are neither in components_credentials_file {where.get('file')} nor "
            f"readable from the cluster ({where.get('unread')}). New ones are not generated: MySQL keeps the users "
            "it made at its first start, and Gitpod could not decrypt what it encrypted. Restore the file from a "
            "backup or from the controller that installed the cluster, or run again once the first server's "
            "manifests or the API server can be read.")
    # Gitpod's encryption keys: the deployed list (or the stored one), with this run's primary key.
    base = deployed.get("database_encryption_keys") or stored.get("database_encryption_keys") or []
    if "database_encryption_key" in credentials:
        credentials["database_encryption_keys"] = with_primary(base, credentials["database_encryption_key"])
    # MySQL's root password: the one MySQL has now stays known until a run has applied the new one.
    old_root = deployed.get("mysql_root_password")
    if "mysql_root_password" in credentials:
        if old_root and old_root != credentials["mysql_root_password"]:
            credentials["mysql_previous_root_password"] = old_root
        else:
            credentials["mysql_previous_root_password"] = (
                deployed.get("mysql_previous_root_password") or stored.get("mysql_previous_root_password")
                or credentials["mysql_root_password"])
    return {"credentials": credentials, "origin": origin, "changed": changed, "errors": errors}
