#!/usr/bin/python
# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Ansible module: round-trip check of a user-provided S3 bucket for Gitpod."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: external_s3
short_description: Check that an S3 bucket survives a put, get, compare and delete
description:
  - Talks to an S3 or S3-compatible endpoint through botocore (AWS Signature Version 4, path-style
    requests, no retries), on the host the module runs on.
  - Checks the bucket exists (or creates it with O(create_bucket=true)), puts a random 4 KiB object
    under O(key_prefix), gets it back, compares the bytes, deletes it and confirms it is gone.
  - Fails with a message naming the cause for an unknown access key, a wrong secret key, a missing
    bucket, a denied operation, an untrusted certificate or an unreachable endpoint.
  - In check mode only the bucket is looked at; nothing is written.
version_added: 0.1.0
requirements:
  - botocore (tested with 1.44.8) on the host the module runs on
author:
  - selfhosted.gitpod_k3s maintainers (@selfhosted)
options:
  endpoint:
    description: C(https://host[:port]) (or C(http://) for plain HTTP); C(https://) when no scheme is given.
    type: str
    required: true
  bucket:
    description: Bucket Gitpod will use.
    type: str
    required: true
  access_key_id:
    description: Access key.
    type: str
    required: true
  secret_access_key:
    description: Secret key.
    type: str
    required: true
  region:
    description: Region used in the signature and for bucket creation.
    type: str
    default: us-east-1
  create_bucket:
    description: Create the bucket when it does not exist (reported as changed).
    type: bool
    default: false
  validate_certs:
    description: Verify the endpoint's TLS certificate.
    type: bool
    default: true
  ca_file:
    description: CA bundle to verify the endpoint with; the system bundle when empty.
    type: path
  key_prefix:
    description: Prefix of the temporary test object.
    type: str
    default: gitpod-k3s-check/
  timeout:
    description: Seconds to wait for each answer.
    type: float
    default: 15
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: In check mode only the bucket is looked at; no object is written and no bucket created.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
"""

EXAMPLES = r"""
- name: Check the user's bucket
  selfhosted.gitpod_k3s.external_s3:
    endpoint: https://s3.eu-central-1.amazonaws.com
    region: eu-central-1
    bucket: gitpod-prod
    access_key_id: "{{ vault_s3_key }}"
    secret_access_key: "{{ vault_s3_secret }}"
  no_log: true
"""

RETURN = r"""
endpoint:
  description: The endpoint as used.
  type: str
  returned: always
  sample: https://s3.eu-central-1.amazonaws.com
created_bucket:
  description: Whether the bucket was created.
  type: bool
  returned: always
steps:
  description: What was done, in order.
  type: list
  elements: str
  returned: always
  sample: [bucket exists, put gitpod-k3s-check/1a2b (4096 bytes), get returned the same bytes, delete removed it]
msg:
  description: One line saying what passed or why it failed.
  type: str
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.selfhosted.gitpod_k3s.plugins.module_utils.external_s3 import (
    BOTOCORE_IMPORT_ERROR, HAS_BOTOCORE, round_trip)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            endpoint=dict(type="str", required=True),
            bucket=dict(type="str", required=True),
            access_key_id=dict(type="str", required=True, no_log=True),
            secret_access_key=dict(type="str", required=True, no_log=True),
            region=dict(type="str", default="us-east-1"),
            create_bucket=dict(type="bool", default=False),
            validate_certs=dict(type="bool", default=True),
            ca_file=dict(type="path"),
            key_prefix=dict(type="str", default="gitpod-k3s-check/", no_log=False),
            timeout=dict(type="float", default=15.0),
        ),
        supports_check_mode=True,
    )
    if not HAS_BOTOCORE:
        module.fail_json(msg=missing_required_lib("botocore"), exception=BOTOCORE_IMPORT_ERROR)
    p = module.params
    result = round_trip(p["endpoint"], p["bucket"], p["access_key_id"], p["secret_access_key"], p["region"],
                        p["create_bucket"], p["validate_certs"], p["ca_file"], p["timeout"], module.check_mode,
                        p["key_prefix"])
    ok = result.pop("ok")
    changed = bool(result["created_bucket"]) or (module.check_mode and "would create" in " ".join(result["steps"]))
    if not ok:
        module.fail_json(changed=changed, **result)
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
