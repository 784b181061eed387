#!/usr/bin/python
# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Ansible module: check a user-provided container registry for Gitpod."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: external_registry
short_description: Check that a URL is a Docker Registry v2 that accepts the given credentials
description:
  - Sends C(GET /v2/) and requires 200, or 401 with C(Docker-Distribution-API-Version) C(registry/2.0).
  - On 401 follows the C(WWW-Authenticate) challenge, C(Basic) (credentials sent again) or C(Bearer)
    (a token fetched from the realm with the credentials, then sent), and requires 200.
  - Fails with a message naming the cause for a server that is not a v2 registry, rejected credentials,
    an untrusted certificate or an unreachable host. Changes nothing.
  - Requests go through C(ansible.module_utils.urls), with proxies from C(https_proxy)/C(http_proxy)/C(no_proxy)
    (unless O(use_proxy=false)), O(validate_certs), O(ca_file) and a client certificate.
version_added: 0.1.0
author:
  - selfhosted.gitpod_k3s maintainers (@selfhosted)
options:
  url:
    description: C([https://]host[:port]) of the registry.
    type: str
    required: true
  username:
    description: User Gitpod pushes and pulls as; empty for anonymous access.
    type: str
    default: ""
  password:
    description: That user's password or token.
    type: str
    default: ""
  validate_certs:
    description: Verify the registry's TLS certificate.
    type: bool
    default: true
  ca_file:
    description: CA bundle to verify the registry with; the system bundle when empty.
    type: path
  client_cert:
    description: PEM client certificate (it may hold the key too) for registries that require mutual TLS.
    type: path
  client_key:
    description: PEM key of O(client_cert) when it is in a separate file.
    type: path
  use_proxy:
    description: Use the proxy given by the environment (C(https_proxy), C(http_proxy), C(no_proxy)).
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each answer.
    type: float
    default: 15
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Runs in check mode; the check changes nothing.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
"""

EXAMPLES = r"""
- name: Check the user's registry
  selfhosted.gitpod_k3s.external_registry:
    url: registry.example.com
    username: gitpod
    password: "{{ vault_registry_password }}"
  no_log: true
"""

RETURN = r"""
url:
  description: The registry's base URL as used.
  type: str
  returned: always
  sample: https://registry.example.com
auth:
  description: How the registry authenticated (none, basic or bearer).
  type: str
  returned: when GET /v2/ answered as a v2 registry
  sample: basic
steps:
  description: What was done, in order.
  type: list
  elements: str
  returned: always
msg:
  description: One line saying what passed or why it failed.
  type: str
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils.external_registry import check


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            username=dict(type="str", default=""),
            password=dict(type="str", default="", no_log=True),
            validate_certs=dict(type="bool", default=True),
            ca_file=dict(type="path"),
            timeout=dict(type="float", default=15.0),
            client_cert=dict(type="path"),
            client_key=dict(type="path", no_log=False),
            use_proxy=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    result = check(p["url"], p["username"], p["password"], p["validate_certs"], p["ca_file"], p["timeout"],
                   p["client_cert"], p["client_key"], p["use_proxy"])
    ok = result.pop("ok")
    if not ok:
        module.fail_json(**result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
