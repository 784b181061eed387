#!/usr/bin/python
# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Ansible module: check a user-provided MySQL server for Gitpod."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: external_mysql
short_description: Check that a MySQL server accepts Gitpod's credentials and is new enough
description:
  - Logs in to a MySQL (or MariaDB) server through PyMySQL and reads C(SELECT VERSION()).
  - Reads C(SHOW GRANTS) and requires the user to hold C(CREATE), C(SELECT), C(INSERT), C(UPDATE) and
    C(DELETE) on the database C(gitpod-sessions) (globally, on that database or through a matching
    pattern such as C(gitpod%)), because Gitpod's C(dbinit) Job runs
    C(CREATE DATABASE IF NOT EXISTS `gitpod-sessions`) as this user and Gitpod's session store uses it.
    A role's privileges count where C(SHOW GRANTS) lists them (MariaDB lists those of the role active at login).
  - Fails with a message naming the cause when the host is unreachable, the password is wrong,
    the database is not usable, the version is too old or a privilege is missing (with the C(GRANT)
    statement that adds it).
  - MySQL must be at least O(min_version). MariaDB (C(10.11.6-MariaDB)) is judged against
    O(mariadb_min_version) and passes with a warning, unless O(allow_mariadb=false).
  - Changes nothing, so it runs in check mode too.
version_added: 0.1.0
requirements:
  - PyMySQL (tested with 1.2.4) on the host the module runs on
  - cryptography, for C(caching_sha2_password) full authentication without TLS (RSA key exchange)
author:
  - selfhosted.gitpod_k3s maintainers (@selfhosted)
options:
  host:
    description: Server name or address.
    type: str
    required: true
  port:
    description: TCP port.
    type: int
    default: 3306
  username:
    description: User Gitpod logs in as.
    type: str
    required: true
  password:
    description: That user's password.
    type: str
    required: true
  database:
    description: Database to select at login; empty to log in without one (Gitpod creates its databases itself).
    type: str
    default: ""
  tls:
    description:
      - MySQL's ssl-mode. V(preferred) encrypts when the server offers TLS, V(required) insists on it,
        V(verify_ca) and V(verify_identity) also check the certificate against O(ca_file).
    type: str
    choices: [disabled, preferred, required, verify_ca, verify_identity]
    default: preferred
  ca_file:
    description: CA bundle for O(tls=verify_ca) and O(tls=verify_identity); the system bundle when empty.
    type: path
  timeout:
    description: Seconds to wait for the connection and each answer.
    type: float
    default: 10
  min_version:
    description: Lowest MySQL version accepted.
    type: str
    default: "5.7"
  mariadb_min_version:
    description: Lowest MariaDB version accepted (MariaDB numbers its releases 10.x, 11.x).
    type: str
    default: "10.2"
  allow_mariadb:
    description: Accept MariaDB at all.
    type: bool
    default: true
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
- name: Check the user's MySQL
  selfhosted.gitpod_k3s.external_mysql:
    host: db.example.com
    username: gitpod
    password: "{{ vault_gitpod_db_password }}"
  no_log: true
"""

RETURN = r"""
version:
  description: What C(SELECT VERSION()) returned.
  type: str
  returned: when the login succeeded
  sample: 8.0.36
version_number:
  description: The numeric part of the version.
  type: str
  returned: when the login succeeded
  sample: 8.0.36
flavor:
  description: C(mysql) or C(mariadb).
  type: str
  returned: when the login succeeded
  sample: mysql
tls:
  description: Whether the session was encrypted.
  type: bool
  returned: when the login succeeded
  sample: true
auth_plugin:
  description: Authentication plugin the login used.
  type: str
  returned: when the login succeeded
  sample: caching_sha2_password
explicit_defaults_for_timestamp:
  description: The server's C(@@explicit_defaults_for_timestamp) (C(0) or C(1)).
  type: str
  returned: when the login succeeded
  sample: "0"
account:
  description: The account the server matched the login to (C(CURRENT_USER())).
  type: str
  returned: when the login succeeded
  sample: "'gitpod'@'%'"
missing_privileges:
  description: Privileges on C(gitpod-sessions) the account lacks; empty when it may create and use it.
  type: list
  elements: str
  returned: when the login succeeded
  sample: [CREATE]
warnings:
  description: Things that pass but deserve a look (MariaDB, explicit_defaults_for_timestamp ON).
  type: list
  elements: str
  returned: when the login succeeded
msg:
  description: One line saying what passed or why it failed.
  type: str
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils.external_mysql import (
    HAS_PYMYSQL, PYMYSQL_IMPORT_ERROR, TLS_MODES, check)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", required=True),
            port=dict(type="int", default=3306),
            username=dict(type="str", required=True),
            password=dict(type="str", required=True, no_log=True),
            database=dict(type="str", default=""),
            tls=dict(type="str", default="preferred", choices=list(TLS_MODES)),
            ca_file=dict(type="path"),
            timeout=dict(type="float", default=10.0),
            min_version=dict(type="str", default="5.7"),
            mariadb_min_version=dict(type="str", default="10.2"),
            allow_mariadb=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    if not HAS_PYMYSQL:
        module.fail_json(msg=missing_required_lib("PyMySQL"), exception=PYMYSQL_IMPORT_ERROR)
    p = module.params
    result = check(p["host"], p["port"], p["username"], p["password"], p["database"], p["tls"], p["ca_file"],
                   p["timeout"], p["min_version"], p["mariadb_min_version"], p["allow_mariadb"])
    ok = result.pop("ok")
    for warning in result.get("warnings", []):
        module.warn(warning)
    if not ok:
        module.fail_json(**result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
