# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Check a MySQL (or MariaDB) server the way Gitpod will use it, through PyMySQL.

PyMySQL speaks the protocol (``mysql_native_password``, ``caching_sha2_password`` fast and full
authentication over TLS or RSA, TLS). The check logs in, runs
``SELECT VERSION(), @@explicit_defaults_for_timestamp``, reads whether the session is encrypted,
compares the version with the minimum and reads the user's grants.

Version rule: MySQL must be ``>= min_version`` (5.7). MariaDB reports e.g. ``10.11.6-MariaDB-0+deb12u1``
(older servers prefix ``5.5.5-`` in the handshake); its 10.x numbers are not MySQL numbers, so
MariaDB is judged against ``mariadb_min_version`` (10.2, the first MariaDB with the MySQL 5.7
features Gitpod's schema uses: JSON functions and generated columns) and reported as ``mariadb``
with a warning, because Gitpod is tested on MySQL only. ``allow_mariadb=False`` refuses it.

Grant rule: Gitpod's ``dbinit`` Job runs ``CREATE DATABASE IF NOT EXISTS `gitpod-sessions```
as Gitpod's user, then creates and uses a table in it, so ``SHOW GRANTS`` must give that user
``SESSIONS_PRIVILEGES`` on ``gitpod-sessions`` (globally, on the database, or through a matching
database pattern such as ``gitpod%``).
"""

from __future__ import annotations

import re
import socket
import ssl
import traceback

try:
    import pymysql
    from pymysql.constants import CR, ER
except ImportError:
    pymysql = None
    HAS_PYMYSQL = False
    PYMYSQL_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_PYMYSQL = True
    PYMYSQL_IMPORT_ERROR = None

TLS_MODES = ("disabled", "preferred", "required", "verify_ca", "verify_identity")

# The database Gitpod's dbinit Job creates, and what its user needs on it: CREATE for the database
# and its table, the rest for Gitpod's session store.
SESSIONS_DATABASE = "gitpod-sessions"
SESSIONS_PRIVILEGES = ("CREATE", "SELECT", "INSERT", "UPDATE", "DELETE")


class MySQLCheckError(Exception):
    """A check failure with a message meant for the user."""


# --- versions ---------------------------------------------------------------------------------

def parse_version(text):
    """Return (flavor, (major, minor, patch), raw) from a server version string.

    ``8.0.36`` -> mysql; ``5.7.44-log`` -> mysql; ``10.11.6-MariaDB-0+deb12u1`` -> mariadb;
    ``5.5.5-10.11.6-MariaDB`` (handshake form) -> mariadb 10.11.6.
    """
    raw = (text or "").strip()
    flavor = "mariadb" if "mariadb" in raw.lower() else "mysql"
    body = raw
    if flavor == "mariadb" and body.startswith("5.5.5-"):
        body = body[len("5.5.5-"):]
    match = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", body)
    if not match:
        raise MySQLCheckError(f"cannot read a version number from the server's answer {raw!r}")
    return flavor, (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)), raw


def version_tuple(text):
    parts = [int(p) for p in re.findall(r"\d+", str(text))[:3]]
    if not parts:
        raise ValueError(f"not a version: {text!r}")
    return tuple(parts + [0] * (3 - len(parts)))


def judge_version(version_text, min_version="5.7", mariadb_min_version="10.2", allow_mariadb=True):
    """Return (ok, flavor, version_string, message, warnings)."""
    flavor, ver, raw = parse_version(version_text)
    shown = ".".join(str(v) for v in ver)
    warnings = []
    if flavor == "mariadb":
        if not allow_mariadb:
            return False, flavor, shown, (
                f"server is MariaDB {shown} ({raw}); allow_mariadb is false and Gitpod expects MySQL >= {min_version}"), warnings
        need = version_tuple(mariadb_min_version)
        if ver < need:
            return False, flavor, shown, (
                f"server is MariaDB {shown} ({raw}); need MariaDB >= {mariadb_min_version} "
                f"(the MariaDB release with MySQL {min_version}'s features) or MySQL >= {min_version}"), warnings
        warnings.append(f"server is MariaDB {shown}, accepted as MySQL {min_version}-compatible; Gitpod is tested on MySQL only")
        return True, flavor, shown, f"MariaDB {shown} ({raw}) meets MariaDB >= {mariadb_min_version}", warnings
    need = version_tuple(min_version)
    if ver < need:
        return False, flavor, shown, f"server is MySQL {shown} ({raw}); Gitpod needs MySQL >= {min_version}", warnings
    return True, flavor, shown, f"MySQL {shown} ({raw}) meets >= {min_version}", warnings


# --- grants -----------------------------------------------------------------------------------

_IDENT = r"`(?:[^`]|``)*`|'(?:[^']|'')*'|\*|[^\s.`']+"
_GRANT_RE = re.compile(
    r"^(?P<verb>GRANT|REVOKE)\s+(?P<privs>.+?)\s+ON\s+(?:(?:TABLE|FUNCTION|PROCEDURE|PACKAGE(?:\s+BODY)?)\s+)?"
    rf"(?P<db>{_IDENT})\.(?P<obj>{_IDENT})\s+(?:TO|FROM)\s", re.IGNORECASE | re.DOTALL)
_ROLE_RE = re.compile(r"^GRANT\s+(?P<roles>(?:(?!\sON\s).)+?)\s+TO\s", re.IGNORECASE | re.DOTALL)


def _unquote(ident):
    if len(ident) >= 2 and ident[0] == ident[-1] and ident[0] in "`'":
        return ident[1:-1].replace(ident[0] * 2, ident[0])
    return ident


def database_pattern_matches(pattern, name):
    """Whether a database-level grant's name (``%`` and ``_`` are wildcards, ``\\`` escapes) covers ``name``."""
    regex, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += ".*" if char == "%" else "." if char == "_" else re.escape(char)
        i += 1
    return re.fullmatch(regex, name, re.DOTALL) is not None


def _privileges(text):
    names = set()
    for part in text.split(","):
        name = " ".join(part.split()).upper()
        if name in ("ALL", "ALL PRIVILEGES"):
            name = "ALL"
        names.add(name)
    return names


def missing_privileges(grants, database=SESSIONS_DATABASE, needed=SESSIONS_PRIVILEGES):
    """Privileges of ``needed`` that the ``SHOW GRANTS`` lines do not give on ``database``.*.

    Returns (missing, roles): the missing privileges in the order of ``needed``, and the roles the
    lines grant (a role's privileges count only where the lines list them, as MariaDB does for the
    role active at login).
    """
    held, revoked, roles = set(), set(), []
    for line in grants:
        line = str(line).strip()
        match = _GRANT_RE.match(line)
        if not match:
            role = _ROLE_RE.match(line)
            if role and not re.match(r"^GRANT\s+PROXY\s", line, re.IGNORECASE):
                roles.append(role.group("roles").strip())
            continue
        if match.group("obj") != "*":
            continue  # table, column and routine grants cannot create or use a database
        db = match.group("db")
        if db != "*" and not database_pattern_matches(_unquote(db), database):
            continue
        privs = _privileges(match.group("privs"))
        if match.group("verb").upper() == "REVOKE":
            revoked |= privs
        else:
            held |= privs
    if "ALL" in revoked:
        held = set()
    else:
        held -= revoked
    missing = [] if "ALL" in held else [p for p in needed if p not in held]
    return missing, roles


def grants_message(account, where, missing, roles, database=SESSIONS_DATABASE):
    """The failure message for missing privileges on Gitpod's sessions database."""
    msg = (f"MySQL user {account} at {where} may not create and use database `{database}`, which Gitpod's dbinit Job "
           f"creates (CREATE DATABASE IF NOT EXISTS `{database}`) and Gitpod's session store uses: missing "
           f"{', '.join(missing)} on `{database}`.*; grant them with: GRANT ALL ON `{database}`.* TO {account};")
    if roles:
        msg += (f" (roles granted: {', '.join(roles)}; a role's privileges count only where SHOW GRANTS lists them, "
                "as for the role active at login: grant them to the user itself otherwise)")
    return msg


def _account(current_user):
    """``gitpod@%`` (CURRENT_USER()) -> ``'gitpod'@'%'``."""
    user, dummy, host = str(current_user or "").rpartition("@")
    return f"'{user}'@'{host}'" if user else f"'{host}'"


# --- the connection ---------------------------------------------------------------------------

def _tls_context(tls, ca_file):
    """MySQL's ssl-mode semantics: required encrypts without verifying, verify_* verify."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if tls in ("verify_ca", "verify_identity"):
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        else:
            context.load_default_certs()
        context.check_hostname = tls == "verify_identity"
        context.verify_mode = ssl.CERT_REQUIRED
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _tls_arguments(tls, ca_file):
    """PyMySQL's arguments for a TLS mode: no ssl argument is its preferred mode, a context its required mode."""
    if tls == "disabled":
        return {"ssl_disabled": True}
    if tls == "preferred":
        return {}
    return {"ssl": _tls_context(tls, ca_file)}


def _connection_class():
    class Connection(pymysql.connections.Connection):
        """PyMySQL's connection, remembering the authentication plugin the login ended with."""

        used_auth_plugin = None

        def _request_authentication(self):
            self.used_auth_plugin = self._auth_plugin_name or "mysql_native_password"
            return super()._request_authentication()

        def _process_auth(self, plugin_name, auth_packet, handler=None):
            name = plugin_name.decode("ascii", "replace") if isinstance(plugin_name, bytes) else str(plugin_name)
            self.used_auth_plugin = name
            return super()._process_auth(plugin_name, auth_packet, handler)

    return Connection


def _explain_connect_error(exc, where, username, database, timeout):
    code = exc.args[0] if exc.args else None
    text = exc.args[1] if len(exc.args) > 1 else str(exc)
    original = getattr(exc, "original_exception", None)
    if isinstance(original, ssl.SSLError):
        detail = getattr(original, "verify_message", None) or str(original)
        if isinstance(original, ssl.SSLCertVerificationError):
            detail = f"certificate verify failed: {detail}"
        return f"TLS to MySQL at {where} failed: {detail}"
    if isinstance(original, socket.gaierror):
        return f"cannot resolve MySQL host {where.rsplit(':', 1)[0]!r}: {original}"
    if isinstance(original, (socket.timeout, TimeoutError)):
        return f"MySQL at {where} is unreachable: no answer within {timeout:g}s"
    if isinstance(original, OSError):
        return f"MySQL at {where} is unreachable: {original.strerror or original}"
    if code == CR.CR_SSL_CONNECTION_ERROR:
        return f"tls is required but MySQL at {where} does not offer TLS"
    if code == ER.HOST_NOT_PRIVILEGED:
        return f"MySQL at {where} refuses this host: {text}"
    if code == ER.ACCESS_DENIED_ERROR:
        return f"MySQL at {where} rejected user {username!r}: wrong password or unknown user ({text})"
    if code in (ER.BAD_DB_ERROR, ER.DBACCESS_DENIED_ERROR):
        return f"MySQL at {where}: database {database!r} is not usable: {text}"
    if code in (CR.CR_SERVER_LOST, CR.CR_SERVER_GONE_ERROR):
        return f"MySQL at {where} stopped answering (timeout {timeout:g}s): {text}"
    return f"MySQL at {where} refused the login: server error {code}: {text}"


def probe(host, port=3306, username="", password="", database="", tls="preferred", ca_file=None, timeout=10.0):
    """Log in and read the version, TLS state and grants. Returns a dict; raises MySQLCheckError.

    ``tls`` follows MySQL's ssl-mode: disabled, preferred (TLS when offered), required,
    verify_ca and verify_identity (TLS with the certificate checked against ``ca_file``).
    """
    if tls not in TLS_MODES:
        raise MySQLCheckError(f"tls must be one of {', '.join(TLS_MODES)}, got {tls!r}")
    if not HAS_PYMYSQL:
        raise MySQLCheckError("the Python library PyMySQL is not installed (pip install PyMySQL)")
    where = f"{host}:{port}"
    try:
        conn = _connection_class()(
            host=host, port=int(port), user=username, password=password, database=database or None,
            connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout, charset="utf8mb4",
            autocommit=None, **_tls_arguments(tls, ca_file))
    except pymysql.err.MySQLError as exc:
        raise MySQLCheckError(_explain_connect_error(exc, where, username, database, timeout)) from None
    except ssl.SSLError as exc:
        raise MySQLCheckError(f"TLS to MySQL at {where} failed: {exc}") from None
    try:
        with conn.cursor() as cursor:
            try:
                cursor.execute("SELECT VERSION(), @@explicit_defaults_for_timestamp")
                version, explicit = cursor.fetchone()
            except pymysql.err.MySQLError:
                cursor.execute("SELECT VERSION()")
                version, = cursor.fetchone()
                explicit = None
            cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            row = cursor.fetchone()
            cipher = row[1] if row else ""
            cursor.execute("SELECT CURRENT_USER()")
            account = _account(cursor.fetchone()[0])
            cursor.execute("SHOW GRANTS")
            grants = [r[0] for r in cursor.fetchall()]
    except pymysql.err.MySQLError as exc:
        code = exc.args[0] if exc.args else None
        text = exc.args[1] if len(exc.args) > 1 else str(exc)
        raise MySQLCheckError(f"MySQL at {where} failed a query after the login: error {code}: {text}") from None
    finally:
        conn.close()
    return {
        "handshake_version": conn.server_version,
        "version": version,
        "explicit_defaults_for_timestamp": None if explicit is None else str(explicit),
        "auth_plugin": conn.used_auth_plugin,
        "tls": bool(cipher),
        "account": account,
        "grants": grants,
    }


def check(host, port=3306, username="", password="", database="", tls="preferred", ca_file=None,
          timeout=10.0, min_version="5.7", mariadb_min_version="10.2", allow_mariadb=True):
    """Probe and judge. Returns a result dict with ``ok`` and ``msg`` (never raises MySQLCheckError)."""
    try:
        info = probe(host, port, username, password, database, tls, ca_file, timeout)
    except MySQLCheckError as exc:
        return {"ok": False, "msg": str(exc)}
    # SHOW GRANTS may carry password hashes (MariaDB's IDENTIFIED BY PASSWORD): never returned.
    grants = info.pop("grants")
    where = f"{host}:{port}"
    ok, flavor, shown, message, warnings = judge_version(info["version"], min_version, mariadb_min_version, allow_mariadb)
    missing, roles = missing_privileges(grants)
    explicit = info["explicit_defaults_for_timestamp"]
    if explicit not in (None, "0", "OFF"):
        warnings.append("explicit_defaults_for_timestamp is ON; Gitpod's own MySQL ran with it OFF")
    result = dict(info, ok=ok and not missing, flavor=flavor, version_number=shown, warnings=warnings,
                  missing_privileges=missing)
    if not ok:
        result["msg"] = f"MySQL at {where}: {message}"
    elif missing:
        result["msg"] = grants_message(info["account"], where, missing, roles)
    else:
        result["msg"] = (f"MySQL check passed at {where}: {message}; {info['account']} may create and use "
                         f"`{SESSIONS_DATABASE}`")
    return result
