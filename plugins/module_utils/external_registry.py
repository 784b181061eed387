# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Check that a URL is a Docker Registry HTTP API V2 and that it accepts the given credentials.

``GET /v2/`` must answer 200, or 401 with ``Docker-Distribution-API-Version: registry/2.0``.
On 401 the ``WWW-Authenticate`` challenge decides the login: ``Basic`` sends the credentials
again; ``Bearer realm=...,service=...`` fetches a token from the realm with the credentials
(the Docker token flow) and retries with it. Standard library only.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import ssl
import urllib.parse

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
    def __init__(self, validate_certs=True, ca_file=None, timeout=15.0):
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=ca_file)
        if not validate_certs:
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE

    def get(self, url, headers=None):
        parsed = urllib.parse.urlsplit(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        where = f"{parsed.scheme}://{parsed.hostname}:{port}"
        if parsed.scheme == "https":
            conn = http.client.HTTPSConnection(parsed.hostname, port, timeout=self.timeout, context=self.context)
        else:
            conn = http.client.HTTPConnection(parsed.hostname, port, timeout=self.timeout)
        path = parsed.path or "/"
        if parsed.query:
            path += "?" + parsed.query
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            body = resp.read(65536)
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
        except ssl.SSLCertVerificationError as exc:
            raise RegistryCheckError(
                f"TLS certificate of {where} is not trusted: {exc.verify_message or exc}; "
                "give ca_file or set validate_certs to false") from None
        except ssl.SSLError as exc:
            raise RegistryCheckError(f"TLS to {where} failed: {exc}") from None
        except socket.gaierror as exc:
            raise RegistryCheckError(f"cannot resolve registry host {parsed.hostname!r}: {exc}") from None
        except (socket.timeout, TimeoutError):
            raise RegistryCheckError(f"registry at {where} is unreachable: no answer within {self.timeout:g}s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise RegistryCheckError(f"registry at {where} is unreachable: {getattr(exc, 'strerror', None) or exc}") from None
        finally:
            conn.close()


def _basic(username, password):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode("utf-8")).decode("ascii")


def check(url, username="", password="", validate_certs=True, ca_file=None, timeout=15.0):
    """Run the check. Returns a dict with ``ok``, ``msg``, ``auth`` (none, basic, bearer) and ``steps``."""
    steps = []
    result = {"ok": False, "url": None, "auth": None, "steps": steps}
    try:
        scheme, host, port = parse_url(url)
        default_port = 443 if scheme == "https" else 80
        base = f"{scheme}://{host}" + ("" if port == default_port else f":{port}")
        result["url"] = base
        client = _Http(validate_certs, ca_file, timeout)
        v2 = base + "/v2/"
        status, headers, body = client.get(v2)
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
            status, headers, body = client.get(v2, {"Authorization": _basic(username, password)})
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
            t_status, dummy, t_body = client.get(token_url, {"Authorization": _basic(username, password)})
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
            status, headers, body = client.get(v2, {"Authorization": "Bearer " + token})
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
