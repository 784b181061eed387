"""Unit tests of the bring-your-own checks' logic (the real servers are in tests/integration).

- S3: endpoint parsing and error explanations (botocore signs and sends; moto tests it for real).
- MySQL: version mapping, SHOW GRANTS judged for Gitpod's gitpod-sessions database, and PyMySQL's
  caching_sha2_password exchange (fast, and full with RSA) against Mysql8Double, an in-process test
  double that speaks MySQL 8's handshake (no MySQL 8 server installs here; MariaDB is tested for real).
- The thin modules' main(): arguments, fail_json with the check's message, check mode, and the
  missing_required_lib error when the library is absent.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import socket
import struct
import threading
import time

import bcrypt
import pytest
from ansible.errors import AnsibleFilterError
from ansible.module_utils.testing import patch_module_args

from ansible_collections.selfhosted.gitpod_k3s.plugins.filter import htpasswd

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import external_mysql as my
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import external_registry as reg
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import external_s3 as s3
from ansible_collections.selfhosted.gitpod_k3s.plugins.modules import external_mysql as mysql_module
from ansible_collections.selfhosted.gitpod_k3s.plugins.modules import external_registry as registry_module
from ansible_collections.selfhosted.gitpod_k3s.plugins.modules import external_s3 as s3_module


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- S3 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint, expected", [
    ("https://s3.example.com", ("https", "s3.example.com", 443)),
    ("http://minio.gitpod.svc.cluster.local:9000", ("http", "minio.gitpod.svc.cluster.local", 9000)),
    ("s3.eu-central-1.amazonaws.com", ("https", "s3.eu-central-1.amazonaws.com", 443)),
])
def test_endpoint_parsing(endpoint, expected):
    assert s3.parse_endpoint(endpoint) == expected


def test_endpoint_with_a_path_is_refused():
    with pytest.raises(s3.S3CheckError, match="must not carry a path"):
        s3.parse_endpoint("https://s3.example.com/bucket")


def test_a_bucket_in_another_region_is_explained():
    client = s3.S3Client("https://s3.amazonaws.com", "AKIA", "secret", region="us-east-1")
    msg = s3.explain(301, "PermanentRedirect", "use the specified endpoint", "HEAD", client, "gitpod-eu")
    assert "bucket 'gitpod-eu' is not served by https://s3.amazonaws.com in region 'us-east-1'" in msg


# --- htpasswd filter (pyca/bcrypt) -----------------------------------------------------------------

def test_htpasswd_published_vector():
    # OpenBSD's test vector ($2a$, cost 5), also in pyca/bcrypt's test suite; the filter writes $2b$.
    assert bcrypt.hashpw(b"U*U", b"$2a$05$CCCCCCCCCCCCCCCCCCCCC.") == b"$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
    assert htpasswd.htpasswd_bcrypt("U*U", "gitpod", "CCCCCCCCCCCCCCCCCCCCC.", 5) == (
        "gitpod:$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW")


def test_htpasswd_matches_libcrypt():
    crypt = pytest.importorskip("crypt", reason="no crypt module (Python 3.13+)")
    for password in ("reg-pass", "", "ünïcødé", "x" * 72):
        line = htpasswd.htpasswd_bcrypt(password, "u", "abcdefghijklmnopqrstuu", 6)
        assert line == "u:" + crypt.crypt(password, "$2b$06$abcdefghijklmnopqrstuu")


def test_htpasswd_is_deterministic_for_a_salt_and_verifies():
    first = htpasswd.htpasswd_bcrypt("secret", "gitpod", "abcdefghijklmnopqrstuu", 4)
    assert first == htpasswd.htpasswd_bcrypt("secret", "gitpod", "abcdefghijklmnopqrstuu", 4)
    hashed = first.split(":", 1)[1].encode()
    assert bcrypt.checkpw(b"secret", hashed) and not bcrypt.checkpw(b"other", hashed)


def test_htpasswd_at_cost_10_is_fast():
    started = time.monotonic()
    htpasswd.htpasswd_bcrypt("secret", "gitpod", "abcdefghijklmnopqrstuu", 10)
    assert time.monotonic() - started < 2  # the plain-Python bcrypt it replaces took 5-10 s


@pytest.mark.parametrize("args, message", [
    (("pw", "a:b", "abcdefghijklmnopqrstuu"), "user name cannot contain ':', got 'a:b'"),
    (("pw", "u", "short"), "salt must be 22 characters of ./A-Za-z0-9 whose last is one of . O e u, got 5 characters"),
    (("pw", "u", "abcdefghijklmnopqrstuv"), "whose last is one of . O e u"),
    (("pw", "u", "abcdefghijklmnopqrstuu", 3), "rounds must be from 4 to 31, got 3"),
    (("pw", "u", "abcdefghijklmnopqrstuu", "ten"), "rounds must be an integer from 4 to 31, got 'ten'"),
    (("x" * 73, "u", "abcdefghijklmnopqrstuu", 4), "the password is 73 bytes; bcrypt uses at most 72"),
])
def test_htpasswd_bad_input_is_named(args, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        htpasswd.htpasswd_bcrypt(*args)


def test_htpasswd_without_bcrypt_names_the_library(monkeypatch):
    monkeypatch.setattr(htpasswd, "bcrypt", None)
    with pytest.raises(AnsibleFilterError, match=r"htpasswd_bcrypt needs the Python library bcrypt \(pyca/bcrypt\) in the controller's Python "):
        htpasswd.htpasswd_bcrypt("pw", "u", "abcdefghijklmnopqrstuu", 4)


# --- MySQL version mapping ------------------------------------------------------------------

@pytest.mark.parametrize("text, flavor, version", [
    ("8.0.36", "mysql", (8, 0, 36)),
    ("5.7.44-log", "mysql", (5, 7, 44)),
    ("10.11.6-MariaDB-0+deb12u1", "mariadb", (10, 11, 6)),
    ("5.5.5-10.11.6-MariaDB-0+deb12u1", "mariadb", (10, 11, 6)),
    ("8.0.35-0ubuntu0.22.04.1", "mysql", (8, 0, 35)),
])
def test_version_parsing(text, flavor, version):
    assert my.parse_version(text)[:2] == (flavor, version)


def test_mysql_5_6_is_too_old():
    ok, msg = [my.judge_version("5.6.51")[i] for i in (0, 3)]
    assert not ok and "Gitpod needs MySQL >= 5.7" in msg


def test_mysql_5_7_passes_without_warning():
    ok, flavor, shown, dummy, warnings = my.judge_version("5.7.44")
    assert ok and flavor == "mysql" and shown == "5.7.44" and warnings == []


def test_mariadb_10_1_is_too_old_even_though_10_is_above_5_7():
    ok, flavor, msg = [my.judge_version("10.1.48-MariaDB")[i] for i in (0, 1, 3)]
    assert not ok and flavor == "mariadb" and "need MariaDB >= 10.2" in msg


def test_mariadb_10_11_passes_with_a_warning():
    ok, warnings = [my.judge_version("10.11.6-MariaDB")[i] for i in (0, 4)]
    assert ok and "Gitpod is tested on MySQL only" in warnings[0]


def test_unparseable_version_is_a_clear_error():
    with pytest.raises(my.MySQLCheckError, match="cannot read a version"):
        my.parse_version("garbage")


# --- MySQL grants: what Gitpod's dbinit Job needs on gitpod-sessions ----------------------------

ACCOUNT = "`gitpod`@`%`"


@pytest.mark.parametrize("grants", [
    # MariaDB 10.11, ALL on everything (the password hash is part of the line).
    [f"GRANT ALL PRIVILEGES ON *.* TO {ACCOUNT} IDENTIFIED BY PASSWORD '*0123456789ABCDEF'"],
    # MySQL 5.7, Gitpod's own in-cluster grant.
    ["GRANT USAGE ON *.* TO 'gitpod'@'%'", "GRANT ALL PRIVILEGES ON `gitpod-sessions`.* TO 'gitpod'@'%'"],
    # MySQL 8.0, static privileges listed one by one, WITH GRANT OPTION.
    [f"GRANT USAGE ON *.* TO {ACCOUNT}",
     f"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON `gitpod-sessions`.* TO {ACCOUNT} WITH GRANT OPTION"],
    # A database pattern that covers gitpod-sessions.
    [f"GRANT USAGE ON *.* TO {ACCOUNT}", f"GRANT ALL PRIVILEGES ON `gitpod%`.* TO {ACCOUNT}"],
    # Global CREATE plus data privileges on the database.
    [f"GRANT CREATE ON *.* TO {ACCOUNT}", f"GRANT SELECT, INSERT, UPDATE, DELETE ON `gitpod-sessions`.* TO {ACCOUNT}"],
])
def test_grants_that_let_gitpod_create_its_sessions_database(grants):
    assert my.missing_privileges(grants) == ([], [])


@pytest.mark.parametrize("grants, missing", [
    ([f"GRANT USAGE ON *.* TO {ACCOUNT}"], ["CREATE", "SELECT", "INSERT", "UPDATE", "DELETE"]),
    # Only the main database.
    ([f"GRANT USAGE ON *.* TO {ACCOUNT}", f"GRANT ALL PRIVILEGES ON `gitpod`.* TO {ACCOUNT}"],
     ["CREATE", "SELECT", "INSERT", "UPDATE", "DELETE"]),
    # Data privileges but no CREATE: CREATE DATABASE IF NOT EXISTS fails.
    ([f"GRANT SELECT, INSERT, UPDATE, DELETE ON `gitpod-sessions`.* TO {ACCOUNT}"], ["CREATE"]),
    # CREATE VIEW / CREATE ROUTINE are not CREATE.
    ([f"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE VIEW, CREATE ROUTINE ON *.* TO {ACCOUNT}"], ["CREATE"]),
    # An escaped underscore is a literal underscore: gitpod\_sessions is another database.
    ([f"GRANT ALL PRIVILEGES ON `gitpod\\_sessions`.* TO {ACCOUNT}"], ["CREATE", "SELECT", "INSERT", "UPDATE", "DELETE"]),
    # A table-level grant cannot create the database.
    ([f"GRANT ALL PRIVILEGES ON `gitpod-sessions`.`sessions` TO {ACCOUNT}"], ["CREATE", "SELECT", "INSERT", "UPDATE", "DELETE"]),
    # MySQL 8 partial revokes take privileges away from a global grant.
    ([f"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON *.* TO {ACCOUNT}",
      f"REVOKE CREATE ON `gitpod-sessions`.* FROM {ACCOUNT}"], ["CREATE"]),
])
def test_grants_that_do_not(grants, missing):
    assert my.missing_privileges(grants)[0] == missing


def test_database_patterns():
    assert my.database_pattern_matches("gitpod_sessions", "gitpod-sessions")  # _ matches one character
    assert not my.database_pattern_matches("gitpod\\_sessions", "gitpod-sessions")
    assert my.database_pattern_matches("%", "gitpod-sessions")
    assert not my.database_pattern_matches("gitpod", "gitpod-sessions")


def test_privileges_listed_for_the_active_role_count():
    # MariaDB lists the grants of the role active at login after the user's own.
    grants = [f"GRANT USAGE ON *.* TO {ACCOUNT}", f"GRANT `gitpod_app` TO {ACCOUNT}", "SET DEFAULT ROLE `gitpod_app` FOR `gitpod`@`%`",
              "GRANT ALL PRIVILEGES ON `gitpod-sessions`.* TO `gitpod_app`"]
    assert my.missing_privileges(grants) == ([], ["`gitpod_app`"])


def test_privileges_through_roles_are_named_in_the_message():
    grants = [f"GRANT USAGE ON *.* TO {ACCOUNT}", f"GRANT `gitpod_app`@`%` TO {ACCOUNT}"]
    missing, roles = my.missing_privileges(grants)
    assert missing and roles == ["`gitpod_app`@`%`"]
    msg = my.grants_message("'gitpod'@'%'", "db:3306", missing, roles)
    assert "GRANT ALL ON `gitpod-sessions`.* TO 'gitpod'@'%';" in msg
    assert "roles granted: `gitpod_app`@`%`; a role's privileges count only where SHOW GRANTS lists them" in msg


# --- MySQL 8 through PyMySQL, against a test double ------------------------------------------------

def _lenenc(data):
    if data is None:
        return b"\xfb"
    data = data.encode("utf-8") if isinstance(data, str) else data
    assert len(data) < 251
    return bytes([len(data)]) + data


class Mysql8Double:
    """Test double of a MySQL 8.0 server (no MySQL 8 installs here; MariaDB is tested for real):
    handshake with caching_sha2_password, fast authentication (0x01 0x03) or full authentication
    (0x01 0x04) with the RSA key exchange a client without TLS must use, then text-protocol result
    sets for the check's queries. It verifies the scramble and the RSA-encrypted password itself."""

    def __init__(self, password, full_auth=False, grants=None):
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.password = password
        self.full_auth = full_auth
        self.grants = grants if grants is not None else [f"GRANT ALL PRIVILEGES ON *.* TO {ACCOUNT}"]
        self.salt = b"0123456789abcdefghij"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if full_auth else None
        self.queries = []
        self.seq = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def send(self, conn, payload):
        conn.sendall(struct.pack("<I", len(payload))[:3] + bytes([self.seq]) + payload)
        self.seq = (self.seq + 1) & 0xFF

    def recv(self, conn):
        header = b""
        while len(header) < 4:
            chunk = conn.recv(4 - len(header))
            if not chunk:
                raise OSError("client closed")
            header += chunk
        length = header[0] | header[1] << 8 | header[2] << 16
        data = b""
        while len(data) < length:
            data += conn.recv(length - len(data))
        self.seq = (header[3] + 1) & 0xFF
        return data

    def serve(self):
        try:
            self._serve()
        except (OSError, IndexError):
            pass  # the client hung up

    def ok(self, conn):
        self.send(conn, b"\x00\x00\x00\x02\x00\x00\x00")

    def result_set(self, conn, columns, rows):
        self.send(conn, bytes([len(columns)]))
        for name in columns:
            self.send(conn, _lenenc("def") + _lenenc("") + _lenenc("") + _lenenc("") + _lenenc(name) + _lenenc("")
                      + b"\x0c" + struct.pack("<HIBHB", 45, 1024, 0xFD, 0, 0) + b"\0\0")
        self.send(conn, b"\xfe\0\0\x02\0")
        for row in rows:
            self.send(conn, b"".join(_lenenc(v) for v in row))
        self.send(conn, b"\xfe\0\0\x02\0")

    def answer(self, conn, sql):
        if sql.startswith("SELECT VERSION(), @@explicit_defaults_for_timestamp"):
            self.result_set(conn, ["VERSION()", "@@explicit_defaults_for_timestamp"], [("8.0.36", "0")])
        elif sql.startswith("SHOW SESSION STATUS LIKE 'Ssl_cipher'"):
            self.result_set(conn, ["Variable_name", "Value"], [("Ssl_cipher", "")])
        elif sql.startswith("SELECT CURRENT_USER()"):
            self.result_set(conn, ["CURRENT_USER()"], [("gitpod@%",)])
        elif sql.startswith("SHOW GRANTS"):
            self.result_set(conn, ["Grants for gitpod@%"], [(g,) for g in self.grants])
        else:  # SET NAMES and the like
            self.ok(conn)

    def _serve(self):
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        conn, dummy = self.sock.accept()
        with conn:
            caps = 0x00000200 | 0x00008000 | 0x00080000  # PROTOCOL_41, SECURE_CONNECTION, PLUGIN_AUTH
            self.seq = 0
            self.send(conn, b"\x0a8.0.36\0" + struct.pack("<I", 1) + self.salt[:8] + b"\0" + struct.pack("<H", caps & 0xFFFF)
                      + b"\x2d" + struct.pack("<H", 2) + struct.pack("<H", caps >> 16) + bytes([21]) + b"\0" * 10
                      + self.salt[8:] + b"\0" + b"caching_sha2_password\0")
            response = self.recv(conn)
            user_end = response.index(b"\0", 32)
            auth = response[user_end + 2:user_end + 2 + response[user_end + 1]]
            if auth != pymysql_scramble(self.password, self.salt):
                self.send(conn, b"\xff" + struct.pack("<H", 1045) + b"#28000Access denied for user 'gitpod'@'127.0.0.1'")
                return
            if self.full_auth:
                self.send(conn, b"\x01\x04")
                assert self.recv(conn) == b"\x02"  # the client asks for the public key
                self.send(conn, b"\x01" + self.key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
                sealed = self.key.decrypt(self.recv(conn), padding.OAEP(
                    mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None))
                plain = bytes(b ^ self.salt[i % len(self.salt)] for i, b in enumerate(sealed))
                if plain != self.password.encode() + b"\0":
                    self.send(conn, b"\xff" + struct.pack("<H", 1045) + b"#28000Access denied (full authentication)")
                    return
            else:
                self.send(conn, b"\x01\x03")
            self.ok(conn)
            while True:
                packet = self.recv(conn)
                if packet[:1] == b"\x01":  # COM_QUIT
                    return
                sql = packet[1:].decode("utf-8")
                self.queries.append(sql)
                self.answer(conn, sql)


def pymysql_scramble(password, salt):
    """caching_sha2_password's scramble, as the server checks it: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + salt)."""
    p1 = hashlib.sha256(password.encode()).digest()
    p2 = hashlib.sha256(p1).digest()
    return bytes(a ^ b for a, b in zip(p1, hashlib.sha256(p2 + salt).digest()))


def test_caching_sha2_fast_authentication_against_the_double():
    server = Mysql8Double("pw-8")
    res = my.check("127.0.0.1", server.port, "gitpod", "pw-8", tls="disabled", timeout=5)
    assert res["ok"], res["msg"]
    assert res["version"] == "8.0.36" and res["auth_plugin"] == "caching_sha2_password"
    assert res["explicit_defaults_for_timestamp"] == "0" and res["warnings"] == []
    assert res["account"] == "'gitpod'@'%'" and res["missing_privileges"] == [] and res["tls"] is False
    assert "SHOW GRANTS" in server.queries


def test_caching_sha2_wrong_password_against_the_double():
    server = Mysql8Double("pw-8")
    res = my.check("127.0.0.1", server.port, "gitpod", "other", tls="disabled", timeout=5)
    assert not res["ok"] and "rejected user 'gitpod': wrong password or unknown user" in res["msg"]


def test_caching_sha2_full_authentication_without_tls_uses_the_rsa_key_exchange():
    server = Mysql8Double("pw-8", full_auth=True)
    res = my.check("127.0.0.1", server.port, "gitpod", "pw-8", tls="preferred", timeout=5)
    assert res["ok"], res["msg"]
    assert res["auth_plugin"] == "caching_sha2_password" and res["tls"] is False


def test_missing_sessions_grant_against_the_double():
    server = Mysql8Double("pw-8", grants=[f"GRANT USAGE ON *.* TO {ACCOUNT}",
                                          f"GRANT ALL PRIVILEGES ON `gitpod`.* TO {ACCOUNT}"])
    res = my.check("127.0.0.1", server.port, "gitpod", "pw-8", tls="disabled", timeout=5)
    assert not res["ok"]
    assert res["missing_privileges"] == ["CREATE", "SELECT", "INSERT", "UPDATE", "DELETE"]
    assert res["msg"].startswith(f"MySQL user 'gitpod'@'%' at 127.0.0.1:{server.port} may not create and use database `gitpod-sessions`")
    assert "GRANT ALL ON `gitpod-sessions`.* TO 'gitpod'@'%';" in res["msg"]


def test_tls_required_but_not_offered_against_the_double():
    server = Mysql8Double("pw-8")
    res = my.check("127.0.0.1", server.port, "gitpod", "pw-8", tls="required", timeout=5)
    assert not res["ok"] and res["msg"] == f"tls is required but MySQL at 127.0.0.1:{server.port} does not offer TLS"


def test_unknown_tls_mode_is_refused():
    res = my.check("127.0.0.1", 1, "u", "p", tls="maybe")
    assert not res["ok"] and "tls must be one of" in res["msg"]


# --- registry challenge parsing ---------------------------------------------------------------

def test_bearer_challenge_is_parsed():
    scheme, params = reg.parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                      "scope": "repository:a/b:pull"}


def test_basic_challenge_is_parsed():
    assert reg.parse_challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})


def test_registry_url_with_a_bad_scheme_is_refused():
    res = reg.check("ftp://reg.example.com", "u", "p")
    assert not res["ok"] and "must be [https://]host[:port]" in res["msg"]


# --- the modules' main() ----------------------------------------------------------------------

def run_module(module, args):
    out = io.StringIO()
    code = None
    with patch_module_args(args), contextlib.redirect_stdout(out):
        try:
            module.main()
        except SystemExit as exc:
            code = exc.code
    return code, json.loads(out.getvalue())


def test_mysql_module_fails_with_the_checks_message():
    port = closed_port()
    code, result = run_module(mysql_module, {"host": "127.0.0.1", "port": port, "username": "gitpod",
                                             "password": "pw", "timeout": 2})
    assert code == 1 and result["failed"] is True
    assert result["msg"] == f"MySQL at 127.0.0.1:{port} is unreachable: Connection refused"


def test_mysql_module_passes_against_the_double_and_changes_nothing():
    server = Mysql8Double("pw-8")
    code, result = run_module(mysql_module, {"host": "127.0.0.1", "port": server.port, "username": "gitpod",
                                             "password": "pw-8", "tls": "disabled", "_ansible_check_mode": True})
    assert code == 0 and result["changed"] is False and result["flavor"] == "mysql"
    assert "pw-8" not in json.dumps(result)


def test_mysql_module_rejects_an_unknown_tls_mode():
    code, result = run_module(mysql_module, {"host": "h", "username": "u", "password": "p", "tls": "sometimes"})
    assert code == 1 and "tls" in result["msg"] and "sometimes" in result["msg"]


def test_s3_module_fails_with_the_checks_message():
    port = closed_port()
    code, result = run_module(s3_module, {"endpoint": f"http://127.0.0.1:{port}", "bucket": "b",
                                          "access_key_id": "AKIA", "secret_access_key": "sk", "timeout": 2})
    assert code == 1 and result["msg"] == f"S3 endpoint http://127.0.0.1:{port} is unreachable: Connection refused"
    assert result["changed"] is False


def test_s3_module_requires_the_bucket():
    code, result = run_module(s3_module, {"endpoint": "http://127.0.0.1:1", "access_key_id": "AKIAEXAMPLE",
                                          "secret_access_key": "secret-key-123"})
    assert code == 1 and result["msg"] == "missing required arguments: bucket"


def test_registry_module_fails_with_the_checks_message():
    port = closed_port()
    code, result = run_module(registry_module, {"url": f"https://127.0.0.1:{port}", "username": "gitpod",
                                                "password": "registry-pw-123", "timeout": 2})
    assert code == 1 and result["msg"] == f"registry at https://127.0.0.1:{port} is unreachable: Connection refused"


@pytest.mark.parametrize("module, flag, library, args", [
    (mysql_module, "HAS_PYMYSQL", "PyMySQL", {"host": "h", "username": "u", "password": "db-secret-123"}),
    (s3_module, "HAS_BOTOCORE", "botocore", {"endpoint": "http://127.0.0.1:1", "bucket": "b", "access_key_id": "AKIAEXAMPLE",
                                             "secret_access_key": "secret-key-123"}),
])
def test_module_without_its_library_says_which(monkeypatch, module, flag, library, args):
    monkeypatch.setattr(module, flag, False)
    code, result = run_module(module, args)
    assert code == 1 and result["failed"] is True
    assert result["msg"].startswith(f"Failed to import the required Python library ({library}) on ")
