# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Filter ``htpasswd_bcrypt``: a Docker registry htpasswd line, hashed by pyca/bcrypt."""

from __future__ import annotations

DOCUMENTATION = r"""
name: htpasswd_bcrypt
short_description: An htpasswd line with a bcrypt hash, deterministic for a given salt
version_added: 0.1.0
author: selfhosted.gitpod_k3s contributors
description:
  - Returns C(user:$2b$NN$...) for the registry's htpasswd file. The same password, user and salt
    always give the same line, so a stored salt keeps the file (and the registry Secret) stable.
  - Hashes with the C(bcrypt) package (pyca/bcrypt) on the controller; neither passlib nor the
    removed crypt module is needed.
  - Fails for a password longer than bcrypt's 72 bytes rather than cutting it silently.
requirements:
  - bcrypt (pyca/bcrypt, tested with 5.0.0) on the controller
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

import sys

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils.credentials import BCRYPT_MAX_BYTES, BCRYPT_SALT

try:
    import bcrypt
except ImportError as exc:
    bcrypt = None
    BCRYPT_IMPORT_ERROR = exc
else:
    BCRYPT_IMPORT_ERROR = None

_SALT = BCRYPT_SALT
MAX_PASSWORD_BYTES = BCRYPT_MAX_BYTES


def htpasswd_bcrypt(password, username, salt, rounds=10):
    if bcrypt is None:
        raise AnsibleFilterError(
            f"htpasswd_bcrypt needs the Python library bcrypt (pyca/bcrypt) in the controller's Python {sys.executable}: "
            "install it from the collection's requirements.txt (pip install bcrypt)", orig_exc=BCRYPT_IMPORT_ERROR)
    username, password = str(username), str(password)
    if ":" in username:
        raise AnsibleFilterError(f"htpasswd_bcrypt: an htpasswd user name cannot contain ':', got {username!r}")
    if not isinstance(salt, str) or not _SALT.fullmatch(salt):
        raise AnsibleFilterError(
            "htpasswd_bcrypt: salt must be 22 characters of ./A-Za-z0-9 whose last is one of . O e u, "
            f"got {len(str(salt))} characters")
    try:
        cost = int(rounds)
    except (TypeError, ValueError):
        raise AnsibleFilterError(f"htpasswd_bcrypt: rounds must be an integer from 4 to 31, got {rounds!r}") from None
    if not 4 <= cost <= 31:
        raise AnsibleFilterError(f"htpasswd_bcrypt: rounds must be from 4 to 31, got {cost}")
    secret = password.encode("utf-8")
    if len(secret) > MAX_PASSWORD_BYTES:
        raise AnsibleFilterError(
            f"htpasswd_bcrypt: the password is {len(secret)} bytes; bcrypt uses at most {MAX_PASSWORD_BYTES}")
    hashed = bcrypt.hashpw(secret, f"$2b${cost:02d}${salt}".encode("ascii")).decode("ascii")
    return f"{username}:{hashed}"


class FilterModule:
    def filters(self):
        return {"htpasswd_bcrypt": htpasswd_bcrypt}
