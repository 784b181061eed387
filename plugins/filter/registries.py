# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Filters that turn the collection's registry settings into containerd and k3s configuration.

Documented in containerd_registries.yml and k3s_registries.yml beside this file.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ansible.errors import AnsibleFilterError

HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$")
ALLOWED_KEYS = ("endpoints", "ca_file")


def _server(host):
    # containerd and k3s both treat docker.io as registry-1.docker.io.
    return "https://registry-1.docker.io" if host == "docker.io" else f"https://{host}"


def containerd_registries(mirrors, gitpod_hosts=None, gitpod_ca_file="", variable="gitpod_k3s_registry_mirrors"):
    """Return the normalised list of registries (documented in containerd_registries.yml)."""
    if mirrors is None:
        mirrors = {}
    if not isinstance(mirrors, dict):
        raise AnsibleFilterError(f"{variable} must be a mapping of registry host to settings, got {type(mirrors).__name__}: {mirrors!r}")
    gitpod_hosts = list(gitpod_hosts or []) if gitpod_ca_file else []
    merged = {}
    for host in gitpod_hosts:
        merged[str(host)] = {"ca_file": gitpod_ca_file}
    for host, settings in mirrors.items():
        host = str(host)
        if settings is None:
            settings = {}
        if not isinstance(settings, dict):
            raise AnsibleFilterError(f"{variable}[{host!r}] must be a mapping with keys {', '.join(ALLOWED_KEYS)}, got {settings!r}")
        unknown = sorted(set(settings) - set(ALLOWED_KEYS))
        if unknown:
            raise AnsibleFilterError(f"{variable}[{host!r}] has unknown keys {', '.join(unknown)}; allowed: {', '.join(ALLOWED_KEYS)}")
        entry = dict(merged.get(host, {}))
        entry.update({k: v for k, v in settings.items() if v not in (None, "")})
        merged[host] = entry

    out = []
    for host in sorted(merged):
        settings = merged[host]
        if not HOST_RE.match(host):
            raise AnsibleFilterError(
                f"{variable}: registry {host!r} is not a host name with an optional port (e.g. reg.example.com:20000); "
                "allowed: letters, digits, '.', '-' and ':PORT'")
        endpoints = settings.get("endpoints") or []
        if isinstance(endpoints, str) or not isinstance(endpoints, list):
            raise AnsibleFilterError(f"{variable}[{host!r}].endpoints must be a list of URLs, got {endpoints!r}")
        endpoint_hosts = []
        for url in endpoints:
            parts = urlsplit(str(url))
            if parts.scheme not in ("http", "https") or not parts.netloc or not HOST_RE.match(parts.netloc):
                raise AnsibleFilterError(
                    f"{variable}[{host!r}].endpoints: {url!r} is not an http:// or https:// URL with a host name")
            if parts.netloc not in endpoint_hosts:
                endpoint_hosts.append(parts.netloc)
        ca_file = settings.get("ca_file") or ""
        if not isinstance(ca_file, str):
            raise AnsibleFilterError(f"{variable}[{host!r}].ca_file must be a path on the controller, got {ca_file!r}")
        out.append({
            "host": host,
            "server": _server(host),
            "endpoints": [str(u).rstrip("/") for u in endpoints],
            "endpoint_hosts": endpoint_hosts,
            "ca_file": ca_file,
        })
    return out


def k3s_registries(registries, certs_dir):
    """The content of k3s' registries.yaml for normalised registries (CA at CERTS_DIR/HOST/ca.crt).

    Every registry gets a mirror entry (its endpoints, or its own server); each registry with a CA
    gets a TLS config for its own host and for every endpoint host, so the CA is trusted whichever
    the pull goes to.
    """
    mirrors, configs = {}, {}
    for reg in registries or []:
        mirrors[reg["host"]] = {"endpoint": list(reg["endpoints"]) or [reg["server"]]}
        if reg["ca_file"]:
            ca = f"{certs_dir.rstrip('/')}/{reg['host']}/ca.crt"
            for name in [reg["host"]] + [h for h in reg["endpoint_hosts"] if h != reg["host"]]:
                configs.setdefault(name, {"tls": {"ca_file": ca}})
    out = {"mirrors": mirrors}
    if configs:
        out["configs"] = configs
    return out


class FilterModule:
    def filters(self):
        return {
            "containerd_registries": containerd_registries,
            "k3s_registries": k3s_registries,
        }
