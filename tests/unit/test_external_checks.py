"""Unit tests of the bring-your-own checks' logic (the real servers are in tests/integration).

- SigV4 against AWS's published example, bcrypt against libcrypt and a published vector.
- MySQL: version mapping, scramble algorithms (checked the way the server checks them), handshake
  parsing, and the caching_sha2_password exchange against Mysql8Double, an in-process test double
  that speaks MySQL 8's handshake (no MySQL 8 server installs here; MariaDB is tested for real).
- The thin modules' main(): arguments, fail_json with the check's message, check mode.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import socket
import struct
import threading

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import bcrypt_hash
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


# --- SigV4 ----------------------------------------------------------------------------------

def test_sigv4_matches_the_aws_documented_example():
    # "GET Object" example of the S3 SigV4 documentation (Authenticating Requests: header-based auth).
    headers = s3.sign_request(
        "GET", "examplebucket.s3.amazonaws.com", "/test.txt", {}, {"Range": "bytes=0-9"}, s3.EMPTY_SHA256,
        "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1",
        now=datetime.datetime(2013, 5, 24, tzinfo=datetime.timezone.utc))
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


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
    msg = s3._explain(301, b"<Error><Code>PermanentRedirect</Code><Message>use the specified endpoint</Message></Error>",
                      "HEAD", client, "gitpod-eu")
    assert "bucket 'gitpod-eu' is not served by https://s3.amazonaws.com in region 'us-east-1'" in msg


# --- bcrypt ---------------------------------------------------------------------------------

def test_bcrypt_published_vector():
    # OpenBSD's test vector, also in pyca/bcrypt's test suite.
    assert bcrypt_hash._pure_hashpw("U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.") == (
        "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW")


def test_bcrypt_matches_libcrypt():
    crypt = pytest.importorskip("crypt", reason="no crypt module (Python 3.13+)")
    setting = bcrypt_hash.gensalt(6, random_bytes=bytes(range(16)))
    for password in ("reg-pass", "", "ünïcødé", "x" * 80):
        assert bcrypt_hash._pure_hashpw(password, setting) == crypt.crypt(password, setting)


def test_bcrypt_is_deterministic_for_a_salt_and_verifies():
    setting = "$2b$04$" + "abcdefghijklmnopqrstuu"
    first = bcrypt_hash.hashpw("secret", setting)
    assert first == bcrypt_hash.hashpw("secret", setting)
    assert bcrypt_hash.hashpw("secret", first) == first
    assert bcrypt_hash.hashpw("other", first) != first


def test_htpasswd_line_refuses_a_colon_in_the_user():
    with pytest.raises(ValueError):
        bcrypt_hash.htpasswd_line("a:b", "pw", bcrypt_hash.gensalt(4))


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
    ok, _, _, msg, _ = my.judge_version("5.6.51")
    assert not ok and "Gitpod needs MySQL >= 5.7" in msg


def test_mysql_5_7_passes_without_warning():
    ok, flavor, shown, _, warnings = my.judge_version("5.7.44")
    assert ok and flavor == "mysql" and shown == "5.7.44" and warnings == []


def test_mariadb_10_1_is_too_old_even_though_10_is_above_5_7():
    ok, flavor, _, msg, _ = my.judge_version("10.1.48-MariaDB")
    assert not ok and flavor == "mariadb" and "need MariaDB >= 10.2" in msg


def test_mariadb_10_11_passes_with_a_warning():
    ok, _, _, _, warnings = my.judge_version("10.11.6-MariaDB")
    assert ok and "Gitpod is tested on MySQL only" in warnings[0]


def test_unparseable_version_is_a_clear_error():
    with pytest.raises(my.MySQLCheckError, match="cannot read a version"):
        my.parse_version("garbage")


# --- MySQL scrambles, verified the way the server verifies them ------------------------------

def test_native_password_scramble_passes_the_servers_check():
    salt, password = bytes(range(1, 21)), "s3cret"
    stored = hashlib.sha1(hashlib.sha1(password.encode()).digest()).digest()  # mysql.user authentication_string
    reply = my.scramble_native(password, salt)
    stage1 = bytes(a ^ b for a, b in zip(reply, hashlib.sha1(salt + stored).digest()))
    assert hashlib.sha1(stage1).digest() == stored


def test_empty_password_sends_an_empty_scramble():
    assert my.scramble_native("", b"x" * 20) == b"" and my.scramble_caching_sha2("", b"x" * 20) == b""


def test_handshake_of_mysql_8_is_parsed():
    salt1, salt2 = b"abcdefgh", b"ijklmnopqrst"
    caps = my.CLIENT_PROTOCOL_41 | my.CLIENT_SECURE_CONNECTION | my.CLIENT_PLUGIN_AUTH | my.CLIENT_SSL
    packet = (b"\x0a" + b"8.0.36\0" + struct.pack("<I", 7) + salt1 + b"\0" + struct.pack("<H", caps & 0xFFFF)
              + b"\x2d" + struct.pack("<H", 2) + struct.pack("<H", caps >> 16) + bytes([21]) + b"\0" * 10
              + salt2 + b"\0" + b"caching_sha2_password\0")
    hello = my.parse_handshake(packet)
    assert hello["server_version"] == "8.0.36" and hello["connection_id"] == 7
    assert hello["salt"] == salt1 + salt2 and hello["auth_plugin"] == "caching_sha2_password"
    assert hello["capabilities"] & my.CLIENT_SSL


def test_handshake_error_packet_becomes_a_server_error():
    packet = b"\xff" + struct.pack("<H", 1130) + b"Host '10.0.0.9' is not allowed to connect to this MySQL server"
    with pytest.raises(my.ServerError) as exc:
        my.parse_handshake(packet)
    assert exc.value.code == 1130


def test_a_non_mysql_answer_is_named():
    with pytest.raises(my.MySQLCheckError, match="not a MySQL server"):
        my.parse_handshake(b"HTTP/1.1 400 Bad Request\r\n")


class Mysql8Double:
    """Test double of a MySQL 8.0 server: handshake with caching_sha2_password, fast authentication
    (0x01 0x03) or a demand for full authentication (0x01 0x04), and one result set."""

    def __init__(self, password, full_auth=False):
        self.password = password
        self.full_auth = full_auth
        self.salt = b"0123456789abcdefghij"
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @staticmethod
    def send(conn, seq, payload):
        conn.sendall(struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload)

    @staticmethod
    def recv(conn):
        header = conn.recv(4)
        length = header[0] | header[1] << 8 | header[2] << 16
        data = b""
        while len(data) < length:
            data += conn.recv(length - len(data))
        return header[3], data

    def serve(self):
        try:
            self._serve()
        except (OSError, IndexError):
            pass  # the client hung up (a test that stops after the handshake)

    def _serve(self):
        conn, _ = self.sock.accept()
        with conn:
            caps = my.CLIENT_PROTOCOL_41 | my.CLIENT_SECURE_CONNECTION | my.CLIENT_PLUGIN_AUTH
            hello = (b"\x0a8.0.36\0" + struct.pack("<I", 1) + self.salt[:8] + b"\0" + struct.pack("<H", caps & 0xFFFF)
                     + b"\x2d" + struct.pack("<H", 2) + struct.pack("<H", caps >> 16) + bytes([21]) + b"\0" * 10
                     + self.salt[8:] + b"\0" + b"caching_sha2_password\0")
            self.send(conn, 0, hello)
            seq, response = self.recv(conn)
            user_end = response.index(b"\0", 32)
            auth_len = response[user_end + 1]
            auth = response[user_end + 2:user_end + 2 + auth_len]
            if auth != my.scramble_caching_sha2(self.password, self.salt):
                self.send(conn, seq + 1, b"\xff" + struct.pack("<H", 1045) + b"#28000Access denied for user")
                return
            if self.full_auth:
                self.send(conn, seq + 1, b"\x01\x04")
                return
            self.send(conn, seq + 1, b"\x01\x03")
            self.send(conn, seq + 2, b"\x00\x00\x00\x02\x00\x00\x00")
            _, query = self.recv(conn)
            assert query.startswith(b"\x03SELECT VERSION()")
            self.send(conn, 1, b"\x02")
            self.send(conn, 2, b"\x03def\0\0\0\x09VERSION()\0\x0c\x21\0\0\0\0\xfd\0\0\x1f\0\0")
            self.send(conn, 3, b"\x03def\0\0\0\x01x\0\x0c\x3f\0\0\0\0\x08\0\0\0\0\0")
            self.send(conn, 4, b"\xfe\0\0\x02\0")
            self.send(conn, 5, bytes([6]) + b"8.0.36" + bytes([1]) + b"0")
            self.send(conn, 6, b"\xfe\0\0\x02\0")
            try:
                self.recv(conn)  # COM_QUIT
            except (OSError, IndexError):
                pass


def test_caching_sha2_fast_authentication_against_the_double():
    server = Mysql8Double("pw-8")
    res = my.check("127.0.0.1", server.port, "gitpod", "pw-8", tls="disabled", timeout=5)
    assert res["ok"], res["msg"]
    assert res["version"] == "8.0.36" and res["auth_plugin"] == "caching_sha2_password"
    assert res["explicit_defaults_for_timestamp"] == "0" and res["warnings"] == []


def test_caching_sha2_wrong_password_against_the_double():
    server = Mysql8Double("pw-8")
    res = my.check("127.0.0.1", server.port, "gitpod", "other", tls="disabled", timeout=5)
    assert not res["ok"] and "wrong password or unknown user" in res["msg"]


def test_caching_sha2_full_authentication_without_tls_is_explained():
    server = Mysql8Double("pw-8", full_auth=True)
    res = my.check("127.0.0.1", server.port, "gitpod", "pw-8", tls="preferred", timeout=5)
    assert not res["ok"] and "full authentication, which needs TLS" in res["msg"]


def test_tls_required_but_not_offered_against_the_double():
    server = Mysql8Double("pw-8")
    res = my.check("127.0.0.1", server.port, "gitpod", "pw-8", tls="required", timeout=5)
    assert not res["ok"] and "does not offer TLS" in res["msg"]


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
