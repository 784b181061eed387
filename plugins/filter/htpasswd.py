# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Filter ``htpasswd_bcrypt``: a Docker registry htpasswd line, without passlib."""

from __future__ import annotations

DOCUMENTATION = r"""
name: htpasswd_bcrypt
short_description: An htpasswd line with a bcrypt hash, deterministic for a given salt
version_added: 0.1.0
author: selfhosted.gitpod_k3s contributors
description:
  - Returns C(user:$2b$NN$...) for the registry's htpasswd file. The same password, user and salt
    always give the same line, so a stored salt keeps the file (and the registry Secret) stable.
  - Uses the C(bcrypt) package when installed, else the collection's plain-Python bcrypt
    (about 5 s at cost 10), so neither passlib nor the removed crypt module is needed.
options:
  _input:
    description: The password.
    type: str
    required: true
  username:
    description: The user name.
    type: str
    required: true
  salt:
    description: 22 characters of bcrypt's base64 alphabet (C(./A-Za-z0-9)).
    type: str
    required: true
  rounds:
    description: The bcrypt cost (4 to 31).
    type: int
    default: 10
"""

EXAMPLES = r"""
htpasswd: "{{ registry_password | selfhosted.gitpod_k3s.htpasswd_bcrypt('gitpod', stored_salt) }}"
"""

RETURN = r"""
_value:
  description: The htpasswd line.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils.bcrypt_hash import htpasswd_line


def htpasswd_bcrypt(password, username, salt, rounds=10):
    if not isinstance(salt, str) or len(salt) != 22:
        raise AnsibleFilterError(f"htpasswd_bcrypt: salt must be 22 characters of ./A-Za-z0-9, got {len(str(salt))} characters")
    try:
        return htpasswd_line(str(username), str(password), f"$2b${int(rounds):02d}${salt}")
    except (ValueError, KeyError) as exc:
        raise AnsibleFilterError(f"htpasswd_bcrypt: {exc}") from None


class FilterModule:
    def filters(self):
        return {"htpasswd_bcrypt": htpasswd_bcrypt}
