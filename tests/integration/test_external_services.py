"""The bring-your-own checks against real servers started by the tests.

- MySQL: Debian's mariadb-server (MariaDB 10.11), with TLS from a test CA, in a systemd container;
  users with and without the grants Gitpod's dbinit Job needs on `gitpod-sessions`, and the Job's own
  statements run as each of them, so the check's verdict is compared with the server's.
- Registry: Debian's docker-registry (the Docker Registry v2 server, distribution 2.8), TLS and an
  htpasswd file written with the collection's htpasswd_bcrypt filter; a second instance with token auth whose
  tokens come from a small token service on loopback (the Docker token flow); and a plain HTTP
  server that is not a registry.
- S3: moto's server mode (PyPI ``moto[server]``) on loopback with request authentication on (its
  IAM checks verify SigV4 signatures and access keys). No MinIO or Ceph RGW gateway can run here:
  MinIO is not packaged, and Debian's radosgw needs a RADOS cluster.

Traffic goes only to loopback and to the test container. The module_utils functions are called
directly; the Ansible modules and the components role run through ansible-playbook on localhost.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest
import yaml

from containers import REPO, ContainerFleet, docker_available

sys.path.insert(0, os.path.join(REPO, "tests", "render"))
from rendering import cluster_double  # noqa: E402  (tests/render is not a package)

from ansible_collections.selfhosted.gitpod_k3s.plugins.filter.htpasswd import htpasswd_bcrypt
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import external_mysql
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import external_registry
from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import external_s3

pytestmark = pytest.mark.docker

DB_USER, DB_PASSWORD = "gitpod", "db-Secret-123"
REG_USER, REG_PASSWORD = "gitpod", "reg-Secret-456"
TOKEN_USER, TOKEN_PASSWORD = "tokenuser", "token-Secret-789"
BIN = os.path.dirname(sys.executable)

SETUP = r"""
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends mariadb-server docker-registry openssl >/dev/null
ip=$(hostname -I | awk '{print $1}')
mkdir -p /etc/gk3s /srv/not-a-registry && cd /etc/gk3s
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=gk3s-test-ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=gk3s-ext-1 2>/dev/null
printf 'subjectAltName=DNS:gk3s-ext-1,IP:%s\n' "$ip" > san.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext 2>/dev/null
chmod 0644 ca.crt server.crt server.key
cat > /etc/mysql/mariadb.conf.d/99-gk3s.cnf <<'EOF'
[mysqld]
bind-address = 0.0.0.0
ssl_ca = /etc/gk3s/ca.crt
ssl_cert = /etc/gk3s/server.crt
ssl_key = /etc/gk3s/server.key
EOF
systemctl restart mariadb
mariadb -e "CREATE USER IF NOT EXISTS '$DB_USER'@'%' IDENTIFIED BY '$DB_PASSWORD'; GRANT ALL ON *.* TO '$DB_USER'@'%'; FLUSH PRIVILEGES;"
cat > /etc/docker/registry/config.yml <<'EOF'
version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/docker-registry
http:
  addr: :5000
  tls:
    certificate: /etc/gk3s/server.crt
    key: /etc/gk3s/server.key
auth:
  htpasswd:
    realm: gk3s-test
    path: /etc/gk3s/htpasswd
EOF
systemctl restart docker-registry
systemd-run --unit gk3s-token-registry /usr/bin/docker-registry serve /etc/gk3s/token-registry.yml
systemd-run --unit gk3s-not-a-registry --working-directory /srv/not-a-registry python3 -m http.server 8080
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(host, port, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{host}:{port} did not open in {timeout}s")


# --- a token service for the registry's Bearer flow (a test double of an auth server) --------------

def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenService:
    """Issues RS256 JWTs the way a Docker token server does; the key's certificate is the registry's
    rootcertbundle and travels in the token's x5c header."""

    def __init__(self, issuer, service):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
        from cryptography.x509.oid import NameOID

        self.issuer, self.service = issuer, service
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gk3s-token-signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
        self._der = self.cert.public_bytes(serialization.Encoding.DER)
        self._padding, self._hashes = padding, hashes
        self.requests = []
        service_self = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802  http.server naming
                service_self.requests.append(self.path)
                expected = "Basic " + base64.b64encode(f"{TOKEN_USER}:{TOKEN_PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps({"token": service_self.token(TOKEN_USER)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, subject):
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self._der).decode("ascii")]}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": os.urandom(8).hex(), "access": []}
        signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        signature = self.key.sign(signing_input.encode("ascii"), self._padding.PKCS1v15(), self._hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def services(tmp_path_factory):
    ok, why = docker_available()
    if not ok:
        pytest.skip(why)
    pytest.importorskip("cryptography")
    tokens = TokenService("gk3s-test-issuer", "gk3s-test-registry")
    started = time.monotonic()
    with ContainerFleet("gk3s-ext-", {"ext_services": 1}) as fleet:
        name = fleet.names[0]
        container = fleet.client.containers.get(name)
        container.reload()
        ip = list(container.attrs["NetworkSettings"]["Networks"].values())[0]["IPAddress"]
        htpasswd = htpasswd_bcrypt(REG_PASSWORD, REG_USER, "gk3sTestSaltOfTheHtpaO", 10)
        token_config = yaml.safe_dump({
            "version": "0.1",
            "storage": {"filesystem": {"rootdirectory": "/var/lib/gk3s-token-registry"}},
            "http": {"addr": ":5001", "tls": {"certificate": "/etc/gk3s/server.crt", "key": "/etc/gk3s/server.key"}},
            "auth": {"token": {"realm": tokens.realm, "service": tokens.service, "issuer": tokens.issuer,
                               "rootcertbundle": "/etc/gk3s/token.crt"}},
        })
        for path, content in (("/etc/gk3s/htpasswd", htpasswd + "\n"), ("/etc/gk3s/token.crt", tokens.cert_pem),
                              ("/etc/gk3s/token-registry.yml", token_config)):
            rc, out = fleet.exec(name, ["sh", "-c", 'mkdir -p /etc/gk3s && printf "%s" "$1" > "$2"', "sh", content, path])
            assert rc == 0, out
        rc, out = fleet.exec(name, ["env", f"DB_USER={DB_USER}", f"DB_PASSWORD={DB_PASSWORD}", "bash", "-c", SETUP])
        assert rc == 0, out
        for port in (3306, 5000, 5001, 8080):
            wait_port(ip, port)
        ca_dir = tmp_path_factory.mktemp("ca")
        rc, ca = fleet.exec(name, ["cat", "/etc/gk3s/ca.crt"])
        (ca_dir / "ca.crt").write_text(ca)
        setup_seconds = time.monotonic() - started
        yield {"ip": ip, "ca_file": str(ca_dir / "ca.crt"), "fleet": fleet, "name": name, "tokens": tokens,
               "setup_seconds": setup_seconds}
    tokens.close()


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto's S3 server on loopback with authentication on; an IAM user with an S3 policy."""
    if not shutil.which("moto_server", path=BIN):
        pytest.skip("moto[server] is not installed (pip install 'moto[server]')")
    boto3 = pytest.importorskip("boto3")
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")
    # The first 5 requests are not authenticated: they create the users below. After them moto
    # verifies every request's access key and SigV4 signature like AWS does.
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="5")
    proc = subprocess.Popen([os.path.join(BIN, "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_port("127.0.0.1", port, timeout=30)
        endpoint = f"http://127.0.0.1:{port}"
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam.create_user(UserName="gitpod")
        key = iam.create_access_key(UserName="gitpod")["AccessKey"]
        iam.put_user_policy(UserName="gitpod", PolicyName="s3", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        iam.create_user(UserName="nobody")
        nobody = iam.create_access_key(UserName="nobody")["AccessKey"]
        yield {"endpoint": endpoint, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"],
               "nobody_key": nobody["AccessKeyId"], "nobody_secret": nobody["SecretAccessKey"], "port": port}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def closed_port():
    return free_port()  # nothing listens there once the probe socket is closed


# --- MySQL ----------------------------------------------------------------------------------

def test_mysql_passes_and_maps_mariadb(services):
    res = external_mysql.check(services["ip"], 3306, DB_USER, DB_PASSWORD)
    assert res["ok"], res["msg"]
    assert res["flavor"] == "mariadb"
    assert res["version"].startswith("10.11.") and "MariaDB" in res["version"]
    assert res["handshake_version"].startswith("5.5.5-10.11.")
    assert any("MariaDB" in w for w in res["warnings"])


def test_mysql_wrong_password(services):
    res = external_mysql.check(services["ip"], 3306, DB_USER, "not-the-password")
    assert not res["ok"]
    assert "rejected user 'gitpod': wrong password or unknown user" in res["msg"]


def test_mysql_unreachable(services):
    res = external_mysql.check("127.0.0.1", closed_port(), DB_USER, DB_PASSWORD, timeout=3)
    assert not res["ok"]
    assert "is unreachable" in res["msg"] and "refused" in res["msg"].lower()


def test_mysql_unknown_database(services):
    res = external_mysql.check(services["ip"], 3306, DB_USER, DB_PASSWORD, database="no_such_db")
    assert not res["ok"]
    assert "database 'no_such_db' is not usable" in res["msg"]


def test_mysql_too_old_for_the_configured_minimum(services):
    res = external_mysql.check(services["ip"], 3306, DB_USER, DB_PASSWORD, mariadb_min_version="11.4")
    assert not res["ok"]
    assert "need MariaDB >= 11.4" in res["msg"]


def test_mysql_refuses_mariadb_when_told(services):
    res = external_mysql.check(services["ip"], 3306, DB_USER, DB_PASSWORD, allow_mariadb=False)
    assert not res["ok"]
    assert "allow_mariadb is false" in res["msg"]


def test_mysql_over_tls_verified_against_the_ca(services):
    res = external_mysql.check(services["ip"], 3306, DB_USER, DB_PASSWORD, tls="verify_identity", ca_file=services["ca_file"])
    assert res["ok"], res["msg"]
    assert res["tls"] is True


def test_mysql_tls_preferred_encrypts_when_offered(services):
    res = external_mysql.check(services["ip"], 3306, DB_USER, DB_PASSWORD)
    assert res["ok"] and res["tls"] is True


def test_mysql_tls_verify_fails_without_the_ca(services):
    res = external_mysql.check(services["ip"], 3306, DB_USER, DB_PASSWORD, tls="verify_ca")
    assert not res["ok"]
    assert "TLS to MySQL" in res["msg"] and "certificate verify failed" in res["msg"]


def test_mysql_without_tls(services):
    res = external_mysql.check(services["ip"], 3306, DB_USER, DB_PASSWORD, tls="disabled")
    assert res["ok"] and res["tls"] is False


# --- MySQL grants: Gitpod's dbinit Job on gitpod-sessions ----------------------------------------

# What Gitpod's dbinit Job runs as Gitpod's user (its sessions script), then what its session store does.
DBINIT_STATEMENTS = [
    "CREATE DATABASE IF NOT EXISTS `gitpod-sessions` CHARSET utf8mb4",
    "USE `gitpod-sessions`",
    "CREATE TABLE IF NOT EXISTS sessions (`session_id` varchar(128) COLLATE utf8mb4_bin NOT NULL, "
    "`expires` int(11) unsigned NOT NULL, `data` text COLLATE utf8mb4_bin, "
    "`_lastModified` timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6), "
    "PRIMARY KEY (`session_id`))",
    "INSERT INTO sessions (session_id, expires, data) VALUES ('s1', 1, '{}') "
    "ON DUPLICATE KEY UPDATE expires = VALUES(expires), data = VALUES(data)",
    "SELECT data FROM sessions WHERE session_id = 's1'",
    "UPDATE sessions SET expires = 2 WHERE session_id = 's1'",
    "DELETE FROM sessions WHERE session_id = 's1'",
]

GRANT_CASES = {
    # Gitpod's own in-cluster grant.
    "sessions_grant": (["GRANT ALL ON `gitpod-sessions`.* TO {user}"], False, []),
    # A database pattern that covers it.
    "pattern_grant": (["GRANT ALL ON `gitpod%`.* TO {user}"], False, []),
    # Only Gitpod's main database: the dbinit Job cannot create gitpod-sessions.
    "main_db_only": (["GRANT ALL ON `gitpod`.* TO {user}"], False, ["CREATE", "SELECT", "INSERT", "UPDATE", "DELETE"]),
    # The database exists already, the user may use it but not CREATE: the Job's CREATE ... IF NOT EXISTS still fails.
    "no_create": (["GRANT SELECT, INSERT, UPDATE, DELETE ON `gitpod-sessions`.* TO {user}"], True, ["CREATE"]),
    # Through a default role (active at login, as for Gitpod's connections): MariaDB's SHOW GRANTS lists its privileges.
    "default_role": (["DROP ROLE IF EXISTS gk3s_sessions", "CREATE ROLE gk3s_sessions",
                      "GRANT ALL ON `gitpod-sessions`.* TO gk3s_sessions", "GRANT gk3s_sessions TO {user}",
                      "SET DEFAULT ROLE gk3s_sessions FOR {user}"], False, []),
}


def run_as_root(services, sql):
    rc, out = services["fleet"].exec(services["name"], ["mariadb", "-e", sql])
    assert rc == 0, out


def dbinit_as(services, user, password):
    """Run the dbinit Job's statements as ``user``; return the first error, or None when all passed."""
    import pymysql

    conn = pymysql.connect(host=services["ip"], user=user, password=password, connect_timeout=10)
    try:
        with conn.cursor() as cursor:
            for statement in DBINIT_STATEMENTS:
                try:
                    cursor.execute(statement)
                except pymysql.err.MySQLError as exc:
                    return f"{statement.split(' (', maxsplit=1)[0]}: {exc}"
        conn.commit()
    finally:
        conn.close()
    return None


@pytest.mark.parametrize("case", sorted(GRANT_CASES))
def test_mysql_grants_for_gitpod_sessions_agree_with_the_server(services, case):
    grants, precreate, missing = GRANT_CASES[case]
    user, password = f"gk3s_{case}", "grant-Secret-321"
    account = f"'{user}'@'%'"
    run_as_root(services, "DROP DATABASE IF EXISTS `gitpod-sessions`; "
                          + ("CREATE DATABASE `gitpod-sessions`; " if precreate else "")
                          + f"DROP USER IF EXISTS {account}; CREATE USER {account} IDENTIFIED BY '{password}'; "
                          + " ".join(g.format(user=account) + ";" for g in grants))
    try:
        res = external_mysql.check(services["ip"], 3306, user, password)
        error = dbinit_as(services, user, password)
    finally:
        run_as_root(services, f"DROP DATABASE IF EXISTS `gitpod-sessions`; DROP USER IF EXISTS {account}; "
                              "DROP ROLE IF EXISTS gk3s_sessions;")
    assert res["missing_privileges"] == missing, res["msg"]
    assert res["ok"] is (not missing), res["msg"]
    # The check's verdict is the server's: the Job's statements pass exactly when the check does.
    assert (error is None) is res["ok"], error
    if missing:
        assert res["msg"].startswith(f"MySQL user {account} at {services['ip']}:3306 may not create and use database "
                                     "`gitpod-sessions`"), res["msg"]
        assert f"missing {', '.join(missing)} on `gitpod-sessions`.*" in res["msg"]
        assert f"GRANT ALL ON `gitpod-sessions`.* TO {account};" in res["msg"]
    assert "grant-Secret-321" not in res["msg"]


def test_mysql_grant_fix_from_the_message_makes_the_check_pass(services):
    user, password, account = "gk3s_fixme", "fix-Secret-654", "'gk3s_fixme'@'%'"
    run_as_root(services, f"DROP USER IF EXISTS {account}; CREATE USER {account} IDENTIFIED BY '{password}'; "
                          f"GRANT ALL ON `gitpod`.* TO {account};")
    try:
        before = external_mysql.check(services["ip"], 3306, user, password)
        assert not before["ok"]
        statement = before["msg"].split("grant them with: ", 1)[1].split(";", 1)[0]
        run_as_root(services, statement + ";")
        after = external_mysql.check(services["ip"], 3306, user, password)
    finally:
        run_as_root(services, f"DROP USER IF EXISTS {account};")
    assert after["ok"] and after["missing_privileges"] == [], after["msg"]
    assert after["msg"].endswith(f"{account} may create and use `gitpod-sessions`")


# --- registry -------------------------------------------------------------------------------

def test_registry_basic_auth_accepts_the_collections_htpasswd(services):
    res = external_registry.check(f"{services['ip']}:5000", REG_USER, REG_PASSWORD, ca_file=services["ca_file"])
    assert res["ok"], res["msg"]
    assert res["auth"] == "basic"
    assert "registry/2.0" in res["steps"][0]


def test_registry_wrong_password(services):
    res = external_registry.check(f"{services['ip']}:5000", REG_USER, "wrong", ca_file=services["ca_file"])
    assert not res["ok"]
    assert "rejected the credentials of user 'gitpod'" in res["msg"]


def test_registry_untrusted_certificate(services):
    res = external_registry.check(f"{services['ip']}:5000", REG_USER, REG_PASSWORD)
    assert not res["ok"]
    assert "is not trusted" in res["msg"]


def test_registry_that_is_not_v2(services):
    res = external_registry.check(f"http://{services['ip']}:8080", REG_USER, REG_PASSWORD)
    assert not res["ok"]
    assert "is not a Docker Registry v2: GET /v2/ answered 404" in res["msg"]


def test_registry_plain_http_to_a_tls_port(services):
    res = external_registry.check(f"http://{services['ip']}:5000", REG_USER, REG_PASSWORD)
    assert not res["ok"]
    assert "is not a Docker Registry v2" in res["msg"]


def test_registry_unreachable(services):
    res = external_registry.check(f"https://127.0.0.1:{closed_port()}", REG_USER, REG_PASSWORD, timeout=3)
    assert not res["ok"]
    assert "is unreachable" in res["msg"]


def test_registry_bearer_token_flow(services):
    tokens = services["tokens"]
    before = len(tokens.requests)
    res = external_registry.check(f"{services['ip']}:5001", TOKEN_USER, TOKEN_PASSWORD, ca_file=services["ca_file"])
    assert res["ok"], res["msg"]
    assert res["auth"] == "bearer"
    assert res["steps"][-2:] == ["token issued", "token accepted"]
    assert "service=gk3s-test-registry" in tokens.requests[before]


def test_registry_bearer_wrong_password(services):
    res = external_registry.check(f"{services['ip']}:5001", TOKEN_USER, "wrong", ca_file=services["ca_file"])
    assert not res["ok"]
    assert "token service" in res["msg"] and "rejected the credentials" in res["msg"]


# --- S3 -------------------------------------------------------------------------------------

def test_s3_missing_bucket(s3):
    res = external_s3.round_trip(s3["endpoint"], "no-such-bucket", s3["key"], s3["secret"])
    assert not res["ok"]
    assert "bucket 'no-such-bucket' does not exist" in res["msg"]


def test_s3_creates_the_bucket_when_asked_then_round_trips(s3):
    res = external_s3.round_trip(s3["endpoint"], "gitpod-created", s3["key"], s3["secret"], create_bucket=True)
    assert res["ok"], res["msg"]
    assert res["created_bucket"] is True
    assert res["steps"][0] == "bucket created" and res["steps"][-1] == "delete removed it"
    again = external_s3.round_trip(s3["endpoint"], "gitpod-created", s3["key"], s3["secret"])
    assert again["ok"] and again["created_bucket"] is False and again["steps"][0] == "bucket exists"


def test_s3_wrong_secret_key(s3):
    res = external_s3.round_trip(s3["endpoint"], "gitpod-created", s3["key"], "wrong-secret", create_bucket=True)
    assert not res["ok"]
    assert "wrong secret key" in res["msg"] and "SignatureDoesNotMatch" in res["msg"]


def test_s3_unknown_access_key(s3):
    res = external_s3.round_trip(s3["endpoint"], "gitpod-created", "AKIAUNKNOWN0000", s3["secret"])
    assert not res["ok"]
    assert "does not know access key 'AKIAUNKNOWN0000'" in res["msg"]


def test_s3_user_without_permission(s3):
    res = external_s3.round_trip(s3["endpoint"], "gitpod-created", s3["nobody_key"], s3["nobody_secret"])
    assert not res["ok"]
    assert "denied" in res["msg"] and "gitpod-created" in res["msg"]


def test_s3_unreachable(s3):
    res = external_s3.round_trip(f"http://127.0.0.1:{closed_port()}", "b", s3["key"], s3["secret"], timeout=3)
    assert not res["ok"]
    assert "is unreachable" in res["msg"]


def test_s3_check_mode_writes_no_object(s3):
    boto3 = pytest.importorskip("boto3")
    external_s3.round_trip(s3["endpoint"], "gitpod-checkmode", s3["key"], s3["secret"], create_bucket=True)
    res = external_s3.round_trip(s3["endpoint"], "gitpod-checkmode", s3["key"], s3["secret"], check_mode=True)
    assert res["ok"] and "check mode" in res["msg"]
    client = boto3.client("s3", endpoint_url=s3["endpoint"], region_name="us-east-1",
                          aws_access_key_id=s3["key"], aws_secret_access_key=s3["secret"])
    assert client.list_objects_v2(Bucket="gitpod-checkmode").get("KeyCount", 0) == 0


# --- the modules and the components role through ansible-playbook ----------------------------

def run_components(tmp, variables):
    inventory = tmp / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"k3s_servers": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_become": False}}}}}}))
    base = {"cert_manager_wait": False, "cert_manager_manifests_dir": str(tmp / "manifests"),
            "components_manifests_dir": str(tmp / "manifests"), "gitpod_k3s_artifacts_dir": str(tmp / "artifacts"),
            "components_check_timeout": 5,
            # The cluster's Secrets (none: a new cluster) from the kubectl test double.
            "components_kubectl": cluster_double(tmp)}
    base.update(variables)
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", str(inventory),
                           os.path.join(REPO, "playbooks", "components.yml"), "-e", json.dumps(base)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    out = json.loads(proc.stdout)
    results = {}
    for play in out["plays"]:
        for task in play["tasks"]:
            # "role : task" for role tasks
            results.setdefault(task["task"]["name"].split(" : ")[-1], []).append(task["hosts"].get("localhost", {}))
    return proc.returncode, out, results, proc.stdout


def external_vars(services, s3, **overrides):
    variables = {
        "components_mysql": "external",
        "components_mysql_external": {"host": services["ip"], "port": 3306, "username": DB_USER, "password": DB_PASSWORD,
                                      "tls": "verify_identity", "ca_file": services["ca_file"]},
        "components_storage": "external",
        "components_storage_external": {"endpoint": s3["endpoint"], "region": "us-east-1", "bucket": "gitpod-role",
                                        "access_key_id": s3["key"], "secret_access_key": s3["secret"], "create_bucket": True},
        "components_registry": "external",
        "components_registry_external": {"url": f"https://{services['ip']}:5000", "username": REG_USER,
                                         "password": REG_PASSWORD, "ca_file": services["ca_file"]},
    }
    variables.update(overrides)
    return variables


def test_role_checks_real_services_and_installs_nothing_for_them(services, s3, tmp_path):
    rc, out, results, stdout = run_components(tmp_path, external_vars(services, s3))
    assert rc == 0, stdout[-3000:]
    mysql = results["Check the external MySQL"][0]
    assert mysql["flavor"] == "mariadb" and mysql["tls"] is True
    assert results["Check the external S3 bucket"][0]["created_bucket"] is True
    assert results["Check the external registry"][0]["auth"] == "basic"
    names = sorted(os.listdir(tmp_path / "manifests"))
    assert not [n for n in names if n.endswith(("-mysql.yaml", "-minio.yaml", "-registry.yaml"))], names
    # No password or key reaches the output.
    for secret in (DB_PASSWORD, REG_PASSWORD, s3["secret"]):
        assert secret not in stdout


@pytest.mark.parametrize("case, expected", [
    ("mysql_password", "rejected user 'gitpod': wrong password or unknown user"),
    ("missing_bucket", "bucket 'gitpod-absent' does not exist"),
    ("not_v2", "is not a Docker Registry v2: GET /v2/ answered 404"),
    ("mysql_grant", "may not create and use database `gitpod-sessions`"),
])
def test_role_stops_before_writing_anything(services, s3, tmp_path, case, expected):
    if case == "mysql_grant":
        run_as_root(services, "DROP USER IF EXISTS 'gk3s_role'@'%'; CREATE USER 'gk3s_role'@'%' IDENTIFIED BY 'role-Secret-987'; "
                              "GRANT ALL ON `gitpod`.* TO 'gk3s_role'@'%';")
    overrides = {
        "mysql_password": {"components_mysql_external": {"host": services["ip"], "username": DB_USER, "password": "not-the-db-password"}},
        "missing_bucket": {"components_storage_external": {"endpoint": s3["endpoint"], "bucket": "gitpod-absent",
                                                           "access_key_id": s3["key"], "secret_access_key": s3["secret"]}},
        "not_v2": {"components_registry_external": {"url": f"http://{services['ip']}:8080", "username": REG_USER,
                                                    "password": REG_PASSWORD}},
        "mysql_grant": {"components_mysql_external": {"host": services["ip"], "username": "gk3s_role", "password": "role-Secret-987"}},
    }[case]
    rc, out, results, stdout = run_components(tmp_path, external_vars(services, s3, **overrides))
    assert rc != 0
    failed = [r.get("msg", "") for rs in results.values() for r in rs if r.get("failed")]
    assert any(expected in m for m in failed), failed
    assert not (tmp_path / "manifests").exists()


def test_role_refuses_an_unknown_host_for_the_checks(services, s3, tmp_path):
    rc, dummy, results, stdout = run_components(tmp_path, external_vars(services, s3, components_check_delegate_to="no-such-host"))
    assert rc != 0
    failed = [r.get("msg", "") for rs in results.values() for r in rs if r.get("failed")]
    assert any("components_check_delegate_to = 'no-such-host' is no host of the inventory; allowed: localhost (the controller)"
               in m for m in failed), stdout[-2000:]
    assert "Check the external MySQL" not in results or not results["Check the external MySQL"][0].get("version")
    assert not (tmp_path / "manifests").exists()
