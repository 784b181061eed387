# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Check a MySQL (or MariaDB) server the way Gitpod will use it, with the standard library only.

A small client for the MySQL client/server protocol (handshake v10, ``mysql_native_password``,
``caching_sha2_password`` fast and full authentication, optional TLS, ``COM_QUERY``), so the
check runs on any host with Python 3 and needs no PyMySQL. It logs in, runs
``SELECT VERSION(), @@explicit_defaults_for_timestamp`` and compares the version with the minimum.

Version rule: MySQL must be ``>= min_version`` (5.7). MariaDB reports e.g. ``10.11.6-MariaDB-0+deb12u1``
(older servers prefix ``5.5.5-`` in the handshake); its 10.x numbers are not MySQL numbers, so
MariaDB is judged against ``mariadb_min_version`` (10.2, the first MariaDB with the MySQL 5.7
features Gitpod's schema uses: JSON functions and generated columns) and reported as ``mariadb``
with a warning, because Gitpod is tested on MySQL only. ``allow_mariadb=False`` refuses it.
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import struct

# Capability flags (include/mysql_com.h).
CLIENT_LONG_PASSWORD = 0x00000001
CLIENT_LONG_FLAG = 0x00000004
CLIENT_CONNECT_WITH_DB = 0x00000008
CLIENT_PROTOCOL_41 = 0x00000200
CLIENT_SSL = 0x00000800
CLIENT_TRANSACTIONS = 0x00002000
CLIENT_SECURE_CONNECTION = 0x00008000
CLIENT_MULTI_RESULTS = 0x00020000
CLIENT_PLUGIN_AUTH = 0x00080000
CLIENT_PLUGIN_AUTH_LENENC_DATA = 0x00200000

CHARSET_UTF8MB4_GENERAL_CI = 45
MAX_PACKET = 16 * 1024 * 1024 - 1

ER_ACCESS_DENIED = 1045
ER_DBACCESS_DENIED = 1044
ER_BAD_DB = 1049
ER_HOST_NOT_PRIVILEGED = 1130


class MySQLCheckError(Exception):
    """A check failure with a message meant for the user."""


class ServerError(MySQLCheckError):
    def __init__(self, code, sqlstate, message):
        self.code = code
        self.sqlstate = sqlstate
        self.server_message = message
        super().__init__(f"server error {code} ({sqlstate}): {message}")


# --- password scrambles -----------------------------------------------------------------------

def _xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def scramble_native(password, salt):
    """mysql_native_password: SHA1(pw) XOR SHA1(salt + SHA1(SHA1(pw)))."""
    if not password:
        return b""
    pw = password.encode("utf-8")
    stage1 = hashlib.sha1(pw).digest()
    stage2 = hashlib.sha1(stage1).digest()
    return _xor(stage1, hashlib.sha1(salt[:20] + stage2).digest())


def scramble_caching_sha2(password, salt):
    """caching_sha2_password fast path: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + salt)."""
    if not password:
        return b""
    pw = password.encode("utf-8")
    p1 = hashlib.sha256(pw).digest()
    p2 = hashlib.sha256(p1).digest()
    return _xor(p1, hashlib.sha256(p2 + salt[:20]).digest())


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


# --- wire protocol ----------------------------------------------------------------------------

def _lenenc_int(data, pos):
    first = data[pos]
    if first < 0xFB:
        return first, pos + 1
    if first == 0xFB:  # NULL
        return None, pos + 1
    if first == 0xFC:
        return struct.unpack_from("<H", data, pos + 1)[0], pos + 3
    if first == 0xFD:
        return struct.unpack_from("<I", data[pos + 1:pos + 4] + b"\0")[0], pos + 4
    return struct.unpack_from("<Q", data, pos + 1)[0], pos + 9


def _lenenc_str(data, pos):
    length, pos = _lenenc_int(data, pos)
    if length is None:
        return None, pos
    return data[pos:pos + length], pos + length


def parse_err_packet(payload):
    code = struct.unpack_from("<H", payload, 1)[0]
    rest = payload[3:]
    sqlstate = ""
    if rest[:1] == b"#":
        sqlstate = rest[1:6].decode("ascii", "replace")
        rest = rest[6:]
    return ServerError(code, sqlstate, rest.decode("utf-8", "replace"))


def parse_handshake(payload):
    """Parse the server's Initial Handshake Packet (protocol 10)."""
    if payload[:1] == b"\xff":
        raise parse_err_packet(payload)
    if payload[0] != 10:
        raise MySQLCheckError(f"not a MySQL server: handshake protocol version {payload[0]} (expected 10)")
    pos = 1
    end = payload.index(b"\0", pos)
    server_version = payload[pos:end].decode("utf-8", "replace")
    pos = end + 1
    connection_id = struct.unpack_from("<I", payload, pos)[0]
    pos += 4
    salt = payload[pos:pos + 8]
    pos += 9  # 8 bytes + filler
    caps = struct.unpack_from("<H", payload, pos)[0]
    pos += 2
    plugin = "mysql_native_password"
    if len(payload) > pos:
        pos += 1  # charset
        pos += 2  # status flags
        caps |= struct.unpack_from("<H", payload, pos)[0] << 16
        pos += 2
        auth_len = payload[pos]
        pos += 1 + 10  # auth data length, reserved
        if caps & CLIENT_SECURE_CONNECTION:
            part2_len = max(13, auth_len - 8)
            salt += payload[pos:pos + part2_len].rstrip(b"\0")
            pos += part2_len
        if caps & CLIENT_PLUGIN_AUTH:
            end = payload.find(b"\0", pos)
            plugin = payload[pos:end if end >= 0 else len(payload)].decode("ascii", "replace") or plugin
    return {"server_version": server_version, "connection_id": connection_id, "salt": salt,
            "capabilities": caps, "auth_plugin": plugin}


class _Conn:
    def __init__(self, sock):
        self.sock = sock
        self.seq = 0

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise MySQLCheckError("the server closed the connection")
            buf += chunk
        return buf

    def read(self):
        payload = b""
        while True:
            header = self._recv_exact(4)
            length = header[0] | header[1] << 8 | header[2] << 16
            self.seq = (header[3] + 1) & 0xFF
            payload += self._recv_exact(length)
            if length < MAX_PACKET:
                return payload

    def write(self, payload):
        self.sock.sendall(struct.pack("<I", len(payload))[:3] + bytes([self.seq]) + payload)
        self.seq = (self.seq + 1) & 0xFF


def _auth_response(plugin, password, salt):
    if plugin == "mysql_native_password":
        return scramble_native(password, salt)
    if plugin == "caching_sha2_password":
        return scramble_caching_sha2(password, salt)
    if plugin == "mysql_clear_password":
        return password.encode("utf-8") + b"\0"
    raise MySQLCheckError(
        f"the server asks for authentication plugin {plugin!r}; this check speaks mysql_native_password, "
        "caching_sha2_password and mysql_clear_password (over TLS)")


def _authenticate(conn, plugin, password, salt, tls_active):
    """Follow the server through auth switches and caching_sha2 exchanges until OK or ERR."""
    while True:
        packet = conn.read()
        kind = packet[:1]
        if kind == b"\x00":
            return plugin
        if kind == b"\xff":
            raise parse_err_packet(packet)
        if kind == b"\xfe":  # AuthSwitchRequest
            end = packet.find(b"\0", 1)
            plugin = packet[1:end].decode("ascii", "replace")
            salt = packet[end + 1:].rstrip(b"\0")
            if plugin == "mysql_clear_password" and not tls_active:
                raise MySQLCheckError("the server asks for the cleartext password without TLS; refusing (set tls: required)")
            conn.write(_auth_response(plugin, password, salt))
            continue
        if kind == b"\x01" and plugin == "caching_sha2_password":
            status = packet[1:2]
            if status == b"\x03":  # fast auth succeeded, OK follows
                continue
            if status == b"\x04":  # full authentication required
                if not tls_active:
                    raise MySQLCheckError(
                        "MySQL asks for caching_sha2_password full authentication, which needs TLS or RSA key "
                        "exchange; this server offered no TLS. Enable TLS on the server, or log in once with "
                        "another client so the password is cached, or use mysql_native_password for this user")
                conn.write(password.encode("utf-8") + b"\0")
                continue
        raise MySQLCheckError(f"unexpected authentication packet 0x{packet[:1].hex()} from the server")


def _query_first_row(conn, sql):
    conn.seq = 0
    conn.write(b"\x03" + sql.encode("utf-8"))
    packet = conn.read()
    if packet[:1] == b"\xff":
        raise parse_err_packet(packet)
    columns, dummy = _lenenc_int(packet, 0)
    for dummy in range(columns):
        conn.read()  # column definitions
    packet = conn.read()
    if packet[:1] == b"\xfe" and len(packet) < 9:  # EOF after column definitions
        packet = conn.read()
    row = []
    pos = 0
    for dummy in range(columns):
        value, pos = _lenenc_str(packet, pos)
        row.append(None if value is None else value.decode("utf-8", "replace"))
    conn.read()  # the EOF that ends the result set
    return row


TLS_MODES = ("disabled", "preferred", "required", "verify_ca", "verify_identity")


def _tls_context(tls, ca_file):
    """MySQL's ssl-mode semantics: preferred/required encrypt without verifying, verify_* verify."""
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


def probe(host, port=3306, username="", password="", database="", tls="preferred", ca_file=None, timeout=10.0):
    """Log in and read the version. Returns a dict; raises MySQLCheckError with a clear message.

    ``tls`` follows MySQL's ssl-mode: disabled, preferred (TLS when offered), required,
    verify_ca and verify_identity (TLS with the certificate checked against ``ca_file``).
    """
    if tls not in TLS_MODES:
        raise MySQLCheckError(f"tls must be one of {', '.join(TLS_MODES)}, got {tls!r}")
    where = f"{host}:{port}"
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    except socket.gaierror as exc:
        raise MySQLCheckError(f"cannot resolve MySQL host {host!r}: {exc}") from None
    except (socket.timeout, TimeoutError):
        raise MySQLCheckError(f"MySQL at {where} is unreachable: no answer within {timeout:g}s") from None
    except OSError as exc:
        raise MySQLCheckError(f"MySQL at {where} is unreachable: {exc.strerror or exc}") from None
    sock.settimeout(timeout)
    conn = _Conn(sock)
    try:
        try:
            hello = parse_handshake(conn.read())
        except ServerError as exc:
            if exc.code == ER_HOST_NOT_PRIVILEGED:
                raise MySQLCheckError(f"MySQL at {where} refuses this host: {exc.server_message}") from None
            raise MySQLCheckError(f"MySQL at {where} refused the connection: {exc}") from None
        server_caps = hello["capabilities"]
        caps = (CLIENT_LONG_PASSWORD | CLIENT_LONG_FLAG | CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS
                | CLIENT_SECURE_CONNECTION | CLIENT_MULTI_RESULTS | CLIENT_PLUGIN_AUTH)
        caps &= server_caps | CLIENT_PROTOCOL_41
        if database:
            caps |= CLIENT_CONNECT_WITH_DB
        tls_active = False
        if tls != "disabled" and server_caps & CLIENT_SSL:
            caps |= CLIENT_SSL
            conn.write(struct.pack("<IIB23x", caps, MAX_PACKET, CHARSET_UTF8MB4_GENERAL_CI))
            try:
                conn.sock = _tls_context(tls, ca_file).wrap_socket(sock, server_hostname=host)
            except (ssl.SSLError, OSError) as exc:
                raise MySQLCheckError(f"TLS to MySQL at {where} failed: {exc}") from None
            tls_active = True
        elif tls not in ("disabled", "preferred"):
            raise MySQLCheckError(f"tls is required but MySQL at {where} does not offer TLS")
        plugin = hello["auth_plugin"]
        if plugin not in ("mysql_native_password", "caching_sha2_password"):
            plugin = "mysql_native_password"
        auth = _auth_response(plugin, password, hello["salt"])
        payload = struct.pack("<IIB23x", caps, MAX_PACKET, CHARSET_UTF8MB4_GENERAL_CI)
        payload += username.encode("utf-8") + b"\0"
        payload += bytes([len(auth)]) + auth
        if database:
            payload += database.encode("utf-8") + b"\0"
        payload += plugin.encode("ascii") + b"\0"
        conn.write(payload)
        try:
            used_plugin = _authenticate(conn, plugin, password, hello["salt"], tls_active)
        except ServerError as exc:
            if exc.code == ER_ACCESS_DENIED:
                raise MySQLCheckError(
                    f"MySQL at {where} rejected user {username!r}: wrong password or unknown user ({exc.server_message})") from None
            if exc.code in (ER_BAD_DB, ER_DBACCESS_DENIED):
                raise MySQLCheckError(f"MySQL at {where}: database {database!r} is not usable: {exc.server_message}") from None
            raise MySQLCheckError(f"MySQL at {where} refused the login: {exc}") from None
        try:
            version, explicit = _query_first_row(conn, "SELECT VERSION(), @@explicit_defaults_for_timestamp")
        except ServerError:
            conn.seq = 0
            version, = _query_first_row(conn, "SELECT VERSION()")
            explicit = None
        try:
            conn.seq = 0
            conn.write(b"\x01")  # COM_QUIT
        except OSError:
            pass
    except (socket.timeout, TimeoutError):
        raise MySQLCheckError(f"MySQL at {where} stopped answering (timeout {timeout:g}s)") from None
    except OSError as exc:
        raise MySQLCheckError(f"connection to MySQL at {where} failed: {exc}") from None
    finally:
        try:
            conn.sock.close()
        except OSError:
            pass
    return {
        "handshake_version": hello["server_version"],
        "version": version,
        "explicit_defaults_for_timestamp": explicit,
        "auth_plugin": used_plugin,
        "tls": tls_active,
    }


def check(host, port=3306, username="", password="", database="", tls="preferred", ca_file=None,
          timeout=10.0, min_version="5.7", mariadb_min_version="10.2", allow_mariadb=True):
    """Probe and judge. Returns a result dict with ``ok`` and ``msg`` (never raises MySQLCheckError)."""
    try:
        info = probe(host, port, username, password, database, tls, ca_file, timeout)
    except MySQLCheckError as exc:
        return {"ok": False, "msg": str(exc)}
    ok, flavor, shown, message, warnings = judge_version(info["version"], min_version, mariadb_min_version, allow_mariadb)
    explicit = info["explicit_defaults_for_timestamp"]
    if explicit not in (None, "0", "OFF"):
        warnings.append("explicit_defaults_for_timestamp is ON; Gitpod's own MySQL ran with it OFF")
    result = dict(info, ok=ok, flavor=flavor, version_number=shown, warnings=warnings,
                  msg=(f"MySQL check passed at {host}:{port}: {message}" if ok else f"MySQL at {host}:{port}: {message}"))
    return result
