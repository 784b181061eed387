# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Check that a URL is a Docker Registry HTTP API V2 and that it accepts the given credentials.

``GET /v2/`` must answer 200, or 401 with ``Docker-Distribution-API-Version: registry/2.0``.
On 401 the ``WWW-Authenticate`` challenge decides the login: ``Basic`` sends the credentials
again; ``Bearer realm=...,service=...`` fetches a token from the realm with the credentials
(the Docker token flow) and retries with it. Requests go through ``ansible.module_utils.urls``.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import urllib.error
import urllib.parse

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError, SSLValidationError, open_url

API_HEADER = "docker-distribution-api-version"


class RegistryCheckError(Exception):
    """A check failure with a message meant for the user."""


def parse_url(url):
    text = url.strip()
    if "://" not in text:
        text = "https://" + text
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise RegistryCheckError(f"registry url must be [https://]host[:port], got {url!r}")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.scheme, parsed.hostname, port


def parse_challenge(header):
    """``Bearer realm="https://auth/token",service="reg"`` -> ("bearer", {"realm": ..., "service": ...})."""
    if not header:
        return "", {}
    scheme, dummy, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


class _Http:
    """GET through ansible.module_utils.urls: proxies from the environment, validate_certs, a CA
    bundle and a client certificate the way Ansible's own URL modules handle them."""

    def __init__(self, validate_certs=True, ca_file=None, timeout=15.0, client_cert=None, client_key=None,
                 use_proxy=True):
        self.options = {"validate_certs": validate_certs, "ca_path": ca_file, "timeout": timeout,
                        "client_cert": client_cert, "client_key": client_key, "use_proxy": use_proxy,
                        "follow_redirects": "safe", "use_netrc": False, "http_agent": "selfhosted.gitpod_k3s"}
        self.timeout = timeout

    def get(self, url, username=None, password=None, headers=None):
        """GET ``url`` (Basic auth when ``username`` is given). Returns (status, lower-cased headers, body)."""
        parsed = urllib.parse.urlsplit(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        where = f"{parsed.scheme}://{parsed.hostname}:{port}"
        auth = {"url_username": username, "url_password": password, "force_basic_auth": True} if username else {}
        try:
            with open_url(url, method="GET", headers=headers or {}, **auth, **self.options) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read(65536)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, {k.lower(): v for k, v in (exc.headers or {}).items()}, exc.read(65536)
        except (urllib.error.URLError, UrlsConnectionError, OSError, http.client.HTTPException) as exc:
            raise RegistryCheckError(_unreachable(exc, where, parsed.hostname, self.timeout)) from None


def _unreachable(exc, where, hostname, timeout):
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ssl.SSLCertVerificationError) or isinstance(exc, SSLValidationError):
        detail = getattr(reason, "verify_message", None) or reason
        return f"TLS certificate of {where} is not trusted: {detail}; give ca_file or set validate_certs to false"
    if isinstance(reason, ssl.SSLError):
        return f"TLS to {where} failed: {reason}"
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve registry host {hostname!r}: {reason}"
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"registry at {where} is unreachable: no answer within {timeout:g}s"
    return f"registry at {where} is unreachable: {getattr(reason, 'strerror', None) or reason}"


def check(url, username="", password="", validate_certs=True, ca_file=None, timeout=15.0, client_cert=None,
          client_key=None, use_proxy=True):
    """Run the check. Returns a dict with ``ok``, ``msg``, ``auth`` (none, basic, bearer) and ``steps``."""
    steps = []
    result = {"ok": False, "url": None, "auth": None, "steps": steps}
    try:
        scheme, host, port = parse_url(url)
        default_port = 443 if scheme == "https" else 80
        base = f"{scheme}://{host}" + ("" if port == default_port else f":{port}")
        result["url"] = base
        client = _Http(validate_certs, ca_file, timeout, client_cert, client_key, use_proxy)
        v2 = base + "/v2/"
        status, headers, dummy = client.get(v2)
        api = headers.get(API_HEADER, "")
        steps.append(f"GET /v2/ answered {status}" + (f" with {API_HEADER}: {api}" if api else ""))
        if status not in (200, 401) or (status == 401 and api != "registry/2.0"):
            hint = "" if api else f" and no {API_HEADER} header"
            raise RegistryCheckError(
                f"{base} is not a Docker Registry v2: GET /v2/ answered {status}{hint} "
                "(expected 200, or 401 with Docker-Distribution-API-Version: registry/2.0)")
        if status == 200:
            if api != "registry/2.0":
                raise RegistryCheckError(
                    f"{base} is not a Docker Registry v2: GET /v2/ answered 200 without "
                    "Docker-Distribution-API-Version: registry/2.0")
            result["auth"] = "none"
            if username:
                steps.append("the registry allows anonymous access; credentials not needed")
            result.update(ok=True, msg=f"{base} is a Docker Registry v2 and allows anonymous access")
            return result
        scheme_name, params = parse_challenge(headers.get("www-authenticate", ""))
        if not username:
            raise RegistryCheckError(f"{base} requires authentication ({scheme_name or 'unknown'}) and no username was given")
        if scheme_name == "basic":
            result["auth"] = "basic"
            status, headers, dummy = client.get(v2, username, password)
            if status == 401:
                raise RegistryCheckError(f"{base} rejected the credentials of user {username!r} (basic auth answered 401)")
            if status != 200:
                raise RegistryCheckError(f"{base} answered {status} to GET /v2/ with basic auth (expected 200)")
            steps.append("basic auth accepted")
        elif scheme_name == "bearer":
            result["auth"] = "bearer"
            realm = params.get("realm")
            if not realm:
                raise RegistryCheckError(f"{base} sent a Bearer challenge without a realm: {headers.get('www-authenticate')!r}")
            query = {k: v for k, v in params.items() if k in ("service", "scope")}
            token_url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query) if query else realm
            t_status, dummy, t_body = client.get(token_url, username, password)
            if t_status in (401, 403):
                raise RegistryCheckError(
                    f"the token service {realm} of {base} rejected the credentials of user {username!r} (answered {t_status})")
            if t_status != 200:
                raise RegistryCheckError(f"the token service {realm} of {base} answered {t_status} (expected 200)")
            try:
                doc = json.loads(t_body.decode("utf-8"))
                token = doc.get("token") or doc.get("access_token")
            except (ValueError, AttributeError):
                token = None
            if not token:
                raise RegistryCheckError(f"the token service {realm} of {base} returned no token")
            steps.append("token issued")
            status, headers, dummy = client.get(v2, headers={"Authorization": "Bearer " + token})
            if status != 200:
                raise RegistryCheckError(f"{base} answered {status} to GET /v2/ with the issued token (expected 200)")
            steps.append("token accepted")
        else:
            raise RegistryCheckError(
                f"{base} asks for authentication scheme {scheme_name or '(none given)'!r}; this check speaks Basic and Bearer")
    except RegistryCheckError as exc:
        result["msg"] = str(exc)
        return result
    result.update(ok=True, msg=f"{base} is a Docker Registry v2 and accepted user {username!r} ({result['auth']} auth)")
    return result
