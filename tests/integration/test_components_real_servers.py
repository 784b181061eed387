"""What the components role renders, run by real servers: MariaDB for MySQL's initialisation and its day
two, Debian's docker-registry for the registry's configuration and a certificate renewal.

One systemd test container with Debian's mariadb-server (MariaDB 10.11) and docker-registry
(distribution 2.8), the same programs tests/integration/test_external_services.py checks against.
playbooks/components.yml renders twice on the controller (tests/render/rendering.py): an install, then a
day two with every credential changed on purpose. Then, in the container:

- MySQL: a fresh data directory is set up the way the mysql image's entrypoint does it on its first
  start (docker-library/mysql 8.0/docker-entrypoint.sh docker_setup_db: ``CREATE USER 'root'@'%'``,
  ``ALTER USER 'root'@'localhost'``; then /docker-entrypoint-initdb.d), which here runs the rendered
  gitpod.sql; Gitpod's dbinit statements run as the Gitpod user; then the day two: the rendered apply
  Job's own script, verbatim, against the running server (mysql.gitpod.svc.cluster.local resolves to
  it through /etc/hosts), and the rotated credentials are the ones that work, with the data kept.
  The stand-in for the image's entrypoint is a TEST DOUBLE of docker-entrypoint.sh; the SQL and the
  Job script are the collection's, and the server is real.
- Registry: the rendered config.yml and htpasswd, the rendered start command and liveness probe, run
  verbatim (the image's /bin/registry is Debian's docker-registry); Gitpod's credentials from the
  rendered pull Secret are accepted; a renewed certificate is not served until the probe fails and the
  container restarts (what the kubelet does on a failed liveness probe), and then is.
"""

from __future__ import annotations

import base64
import json
import shlex
import shutil
import ssl
import sys
import time
from pathlib import Path

import pytest

from containers import ContainerFleet, docker_available

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "render"))
from rendering import failure_messages, load_manifests, run_components_many  # noqa: E402

pytestmark = pytest.mark.docker

# The Gitpod user's password holds a quote and a backslash: the collection's SQL escapes them.
INSTALL = {"mysql_root_password": "root-Install-1", "mysql_password": "gitpod-'quoted'-\\back",
           "minio_root_user": "gitpodminio", "minio_root_password": "minio-Install-1", "registry_password": "reg-Install-1",
           "registry_http_secret": "http-Install-1", "registry_htpasswd_salt": "installinstallinstallO",
           "database_encryption_key": base64.b64encode(b"i" * 32).decode()}
ROTATED = dict(INSTALL, mysql_root_password="root-Rotated-2", mysql_password="gitpod-Rotated-\"2\"",
               registry_password="reg-Rotated-2")
SETTINGS = {"gitpod_k3s_domain": "gitpod.example.com", "components_registry_storage": "pvc"}
MYSQL_HOST = "mysql.gitpod.svc.cluster.local"
SETUP = r"""
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client docker-registry openssl >/dev/null
systemctl stop mariadb docker-registry
echo "127.0.0.1 mysql.gitpod.svc.cluster.local" >> /etc/hosts
ln -sf /usr/bin/docker-registry /usr/local/bin/registry
mkdir -p /etc/gk3s /certs /var/lib/registry && cd /etc/gk3s
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=gk3s-test-ca 2>/dev/null
ip=$(hostname -I | awk '{print $1}')
for n in 1 2; do
  openssl req -newkey rsa:2048 -nodes -keyout server$n.key -out server$n.csr -subj /CN=registry 2>/dev/null
  printf 'subjectAltName=DNS:registry.gitpod.svc.cluster.local,IP:%s\n' "$ip" > san.ext
  openssl x509 -req -in server$n.csr -CA ca.crt -CAkey ca.key -set_serial $((1000 + n)) -out server$n.crt -days 2 \
    -extfile san.ext 2>/dev/null
done
cp server1.crt /certs/tls.crt && cp server1.key /certs/tls.key
"""


def rendered(tmp: Path) -> dict:
    return {(o["kind"], o["metadata"]["name"].rsplit("-", 1)[0] if o["kind"] == "Job" else o["metadata"]["name"]): o
            for objs in load_manifests(tmp / "manifests").values() for o in objs}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    ok, why = docker_available()
    if not ok:
        pytest.skip(why)
    base = tmp_path_factory.mktemp("real-servers")
    (install,) = run_components_many([(base / "install", dict(SETTINGS, components_credentials_overrides=INSTALL), False)])
    assert install[0] == 0, failure_messages(install[1])
    shutil.copytree(base / "install", base / "rotated")
    (rotated,) = run_components_many([(base / "rotated", dict(SETTINGS, components_credentials_overrides=ROTATED), False)])
    assert rotated[0] == 0, failure_messages(rotated[1])
    with ContainerFleet("gk3s-real-", {"real_servers": 1}) as fleet:
        name = fleet.names[0]
        rc, out = fleet.exec(name, ["bash", "-c", SETUP])
        assert rc == 0, out
        container = fleet.client.containers.get(name)
        container.reload()
        ip = list(container.attrs["NetworkSettings"]["Networks"].values())[0]["IPAddress"]
        yield {"fleet": fleet, "name": name, "ip": ip, "install": rendered(base / "install"),
               "rotated": rendered(base / "rotated")}


def sh(servers, script, env=None):
    argv = ["env", *[f"{k}={v}" for k, v in (env or {}).items()], "bash", "-c", script]
    return servers["fleet"].exec(servers["name"], argv)


def put(servers, path, content):
    rc, out = sh(servers, 'mkdir -p "$(dirname "$P")" && printf "%s" "$C" > "$P"', {"C": content, "P": path})
    assert rc == 0, out


# --- MySQL ---------------------------------------------------------------------------------------

def sql_as(servers, user, password, sql, database=""):
    return sh(servers, f"mysql --host=127.0.0.1 --user={shlex.quote(user)} {database} -e \"$SQL\"",
              {"MYSQL_PWD": password, "SQL": sql})


@pytest.fixture(scope="module")
def mysql(servers):
    """A fresh MariaDB data directory, initialised as the mysql image does it, with the rendered gitpod.sql."""
    secret = servers["install"][("Secret", "gitpod-k3s-mysql")]["stringData"]
    root = secret["root-password"]
    rc, out = sh(servers, "mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld && "
                          "mariadb-install-db --user=mysql --datadir=/var/lib/gk3s-mysql >/dev/null && "
                          "systemd-run --unit gk3s-mysql mariadbd --user=mysql --datadir=/var/lib/gk3s-mysql "
                          "--socket=/run/mysqld/gk3s.sock --port=3306 --bind-address=127.0.0.1 && "
                          "for i in $(seq 1 60); do mysqladmin --socket=/run/mysqld/gk3s.sock ping >/dev/null 2>&1 && exit 0; "
                          "sleep 0.5; done; journalctl -u gk3s-mysql --no-pager | tail -20; exit 1")
    assert rc == 0, out
    # The image's data directory (mysqld --initialize-insecure) has no anonymous accounts; MariaDB's
    # install-db makes ''@'localhost', which would shadow 'gitpod'@'%' for local logins.
    rc, out = sh(servers, "mysql --socket=/run/mysqld/gk3s.sock --user=root -e "
                          "\"DROP USER IF EXISTS ''@'localhost'; DROP USER IF EXISTS ''@'$(hostname)';\"")
    assert rc == 0, out
    # docker-entrypoint.sh docker_setup_db (8.0 lines 283 and 291), the root password pasted as it does.
    setup = (f"CREATE USER 'root'@'%' IDENTIFIED BY '{root}'; GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION; "
             f"ALTER USER 'root'@'localhost' IDENTIFIED BY '{root}';")
    rc, out = sh(servers, 'mysql --socket=/run/mysqld/gk3s.sock --user=root -e "$SQL"', {"SQL": setup})
    assert rc == 0, out
    # docker_process_init_files /docker-entrypoint-initdb.d/*: the rendered gitpod.sql, as root.
    rc, out = sh(servers, 'mysql --socket=/run/mysqld/gk3s.sock --user=root <<< "$SQL"',
                 {"SQL": secret["gitpod.sql"], "MYSQL_PWD": root})
    assert rc == 0, out
    return secret


def test_the_rendered_init_creates_gitpods_user_and_databases_utf8mb4(servers, mysql):
    rc, out = sql_as(servers, "gitpod", INSTALL["mysql_password"],
                     "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA "
                     "WHERE SCHEMA_NAME LIKE 'gitpod%' ORDER BY 1")
    assert rc == 0, out
    assert "gitpod\tutf8mb4" in out and "gitpod-sessions\tutf8mb4" in out
    # Gitpod's dbinit Job, as the Gitpod user, and a row of Gitpod's data to keep through day two.
    rc, out = sql_as(servers, "gitpod", INSTALL["mysql_password"],
                     "CREATE DATABASE IF NOT EXISTS `gitpod-sessions`; "
                     "CREATE TABLE IF NOT EXISTS gitpod.d_b_user (id varchar(36) PRIMARY KEY); "
                     "INSERT IGNORE INTO gitpod.d_b_user VALUES ('kept-through-day-two')")
    assert rc == 0, out


def apply_job(servers, secret, job):
    """The rendered apply Job's script, verbatim, with the Secret's values as its env says."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/bin/bash", "-c"]
    put(servers, "/apply/gitpod.sql", secret["gitpod.sql"])
    env = {e["name"]: secret[e["valueFrom"]["secretKeyRef"]["key"]] for e in container["env"]}
    return sh(servers, container["args"][0], env)


def test_day_two_the_apply_job_brings_the_rotated_credentials_to_the_running_server(servers, mysql):
    secret = servers["rotated"][("Secret", "gitpod-k3s-mysql")]["stringData"]
    job = servers["rotated"][("Job", "gitpod-k3s-mysql-apply")]
    assert secret["previous-root-password"] == INSTALL["mysql_root_password"]
    # Before the Job, the running server still has the installed credentials: the Secret alone changes nothing.
    assert sql_as(servers, "gitpod", ROTATED["mysql_password"], "SELECT 1")[0] != 0
    rc, out = apply_job(servers, secret, job)
    assert rc == 0, out
    rc, out = sql_as(servers, "gitpod", ROTATED["mysql_password"], "SELECT id FROM gitpod.d_b_user")
    assert rc == 0 and "kept-through-day-two" in out, out
    assert sql_as(servers, "gitpod", INSTALL["mysql_password"], "SELECT 1")[0] != 0
    assert sql_as(servers, "root", ROTATED["mysql_root_password"], "SELECT 1")[0] == 0
    assert sql_as(servers, "root", INSTALL["mysql_root_password"], "SELECT 1")[0] != 0
    # The Job again (a restarted pod) logs in with the new root password and changes nothing.
    rc, out = apply_job(servers, secret, job)
    assert rc == 0, out
    assert sql_as(servers, "gitpod", ROTATED["mysql_password"], "SELECT COUNT(*) FROM gitpod.d_b_user")[1].split()[-1] == "1"


# --- registry ------------------------------------------------------------------------------------

def served_serial(servers):
    from cryptography import x509

    pem = ssl.get_server_certificate((servers["ip"], 5000), timeout=10)
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


def wait_serving(servers, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return served_serial(servers)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture(scope="module")
def registry(servers):
    secret = servers["install"][("Secret", "gitpod-k3s-registry")]["stringData"]
    statefulset = servers["install"][("StatefulSet", "registry")]
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    put(servers, "/etc/docker/registry/config.yml", secret["config.yml"])
    put(servers, "/etc/docker/registry/htpasswd", secret["htpasswd"])
    start = ["systemd-run", "--unit", "gk3s-registry", *container["command"], *container["args"]]
    rc, out = servers["fleet"].exec(servers["name"], start)
    assert rc == 0, out
    wait_serving(servers)
    return container


def test_the_rendered_registry_accepts_gitpods_credentials(servers, registry, tmp_path):
    from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils import external_registry

    rc, ca = servers["fleet"].exec(servers["name"], ["cat", "/etc/gk3s/ca.crt"])
    (tmp_path / "ca.crt").write_text(ca)
    pull = json.loads(servers["install"][("Secret", "gitpod-registry")]["stringData"][".dockerconfigjson"])
    (auth,) = pull["auths"].values()
    ok = external_registry.check(f"https://{servers['ip']}:5000", auth["username"], auth["password"],
                                 ca_file=str(tmp_path / "ca.crt"), timeout=10)
    assert ok["ok"], ok
    wrong = external_registry.check(f"https://{servers['ip']}:5000", auth["username"], "wrong",
                                    ca_file=str(tmp_path / "ca.crt"), timeout=10)
    assert not wrong["ok"]


def probe(servers, container):
    return servers["fleet"].exec(servers["name"], container["livenessProbe"]["exec"]["command"])[0]


def test_a_renewed_certificate_is_served_after_the_liveness_probe_restarts_the_registry(servers, registry):
    assert wait_serving(servers) == 1001 and probe(servers, registry) == 0
    # cert-manager renews: the kubelet swaps the mounted Secret's files (here: replaced in place).
    rc, out = sh(servers, "cp /etc/gk3s/server2.key /certs/tls.key.new && cp /etc/gk3s/server2.crt /certs/tls.crt.new && "
                          "mv /certs/tls.key.new /certs/tls.key && mv /certs/tls.crt.new /certs/tls.crt")
    assert rc == 0, out
    # distribution 2.8 loaded the certificate once: the old one is still served, and the probe says so.
    assert served_serial(servers) == 1001
    assert probe(servers, registry) != 0
    # The kubelet restarts the container on the failed probe: the same start command again.
    rc, out = servers["fleet"].exec(servers["name"], ["systemctl", "restart", "gk3s-registry"])
    assert rc == 0, out
    time.sleep(0.5)
    assert wait_serving(servers) == 1002 and probe(servers, registry) == 0
