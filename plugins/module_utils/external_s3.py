# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Round-trip check of an S3 bucket through botocore (signing, requests, retries off).

Path-style requests (``https://endpoint/bucket/key``), which AWS, MinIO, Ceph RGW and other
S3-compatible servers accept. The check: HEAD the bucket (create it when asked and missing),
PUT a random object, GET it back and compare, DELETE it and confirm it is gone.
"""

from __future__ import annotations

import os
import socket
import ssl
import traceback
import urllib.parse

try:
    import botocore.config
    import botocore.exceptions
    import botocore.session
except ImportError:
    botocore = None
    HAS_BOTOCORE = False
    BOTOCORE_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_BOTOCORE = True
    BOTOCORE_IMPORT_ERROR = None


class S3CheckError(Exception):
    """A check failure with a message meant for the user."""


def parse_endpoint(endpoint):
    """``https://s3.example.com:9000`` or ``s3.example.com`` -> (scheme, host, port)."""
    text = endpoint.strip()
    if "://" not in text:
        text = "https://" + text
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise S3CheckError(f"endpoint must be http(s)://host[:port], got {endpoint!r}")
    if parsed.path not in ("", "/"):
        raise S3CheckError(f"endpoint must not carry a path (path-style requests add the bucket), got {endpoint!r}")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.scheme, parsed.hostname, port


def _causes(exc):
    """The exception, what botocore wrapped in it (``error``) and its causes, outermost first."""
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        inner = getattr(exc, "kwargs", {}).get("error") if isinstance(getattr(exc, "kwargs", None), dict) else None
        exc = inner if isinstance(inner, BaseException) else (exc.__cause__ or exc.__context__)
    return seen


class S3Client:
    """A botocore S3 client for one endpoint, with the check's error messages."""

    def __init__(self, endpoint, access_key, secret_key, region="us-east-1", validate_certs=True,
                 ca_file=None, timeout=15.0):
        self.scheme, self.hostname, self.port = parse_endpoint(endpoint)
        default_port = 443 if self.scheme == "https" else 80
        host = self.hostname if self.port == default_port else f"{self.hostname}:{self.port}"
        self.endpoint = f"{self.scheme}://{host}"
        self.access_key = access_key
        self.region = region
        self.timeout = timeout
        if not HAS_BOTOCORE:
            raise S3CheckError("the Python library botocore is not installed (pip install botocore)")
        config = botocore.config.Config(
            region_name=region, signature_version="s3v4", connect_timeout=timeout, read_timeout=timeout,
            retries={"total_max_attempts": 1}, s3={"addressing_style": "path"},
            # Plain payload hashes, no aws-chunked checksum trailers: S3-compatible servers differ there.
            request_checksum_calculation="when_required", response_checksum_validation="when_required")
        verify = (ca_file or True) if validate_certs else False
        try:
            self.client = botocore.session.Session().create_client(
                "s3", endpoint_url=self.endpoint, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                verify=verify, config=config)
        except botocore.exceptions.BotoCoreError as exc:
            raise S3CheckError(f"cannot set up an S3 client for {self.endpoint}: {exc}") from None

    def call(self, operation, **params):
        """Run one S3 operation. Returns (status, code, message, response)."""
        try:
            response = getattr(self.client, operation)(**params)
            if "Body" in response:
                response["Body"] = response["Body"].read()
            return response["ResponseMetadata"]["HTTPStatusCode"], "", "", response
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            return status, str(error.get("Code", "")), str(error.get("Message", "")), exc.response
        except botocore.exceptions.SSLError as exc:
            verify = next((c for c in _causes(exc) if isinstance(c, ssl.SSLCertVerificationError)), None)
            if verify is not None:
                raise S3CheckError(
                    f"TLS certificate of {self.endpoint} is not trusted: {verify.verify_message or verify}; "
                    "give ca_file or set validate_certs to false") from None
            raise S3CheckError(f"TLS to S3 endpoint {self.endpoint} failed: {exc}") from None
        except (botocore.exceptions.ConnectTimeoutError, botocore.exceptions.ReadTimeoutError):
            raise S3CheckError(f"S3 endpoint {self.endpoint} is unreachable: no answer within {self.timeout:g}s") from None
        except botocore.exceptions.BotoCoreError as exc:
            causes = _causes(exc)
            if any(isinstance(c, socket.gaierror) for c in causes):
                raise S3CheckError(f"cannot resolve S3 endpoint host {self.hostname!r}") from None
            os_error = next((c for c in causes if isinstance(c, OSError) and c.strerror), None)
            detail = os_error.strerror if os_error is not None else str(exc)
            raise S3CheckError(f"S3 endpoint {self.endpoint} is unreachable: {detail}") from None


def explain(status, code, message, what, client, bucket):
    detail = f"HTTP {status}" + (f" {code}" if code and code != str(status) else "") + (f": {message}" if message else "")
    if code == "InvalidAccessKeyId":
        return f"S3 at {client.endpoint} does not know access key {client.access_key!r} ({detail})"
    if code == "SignatureDoesNotMatch":
        return f"S3 at {client.endpoint} rejected the secret key for access key {client.access_key!r}: wrong secret key ({detail})"
    if code == "NoSuchBucket":
        return f"bucket {bucket!r} does not exist at {client.endpoint} ({detail}); create it or set create_bucket"
    if code in ("AccessDenied", "AllAccessDisabled") or status == 403:
        return f"S3 at {client.endpoint} denied {what} on bucket {bucket!r} ({detail})"
    if status == 301 or code == "PermanentRedirect":
        return f"bucket {bucket!r} is not served by {client.endpoint} in region {client.region!r}; use the bucket's regional endpoint and region ({detail})"
    if code in ("AuthorizationHeaderMalformed", "IllegalLocationConstraintException"):
        return f"S3 at {client.endpoint} rejected region {client.region!r} ({detail})"
    return f"{what} on bucket {bucket!r} at {client.endpoint} failed: {detail}"


def round_trip(endpoint, bucket, access_key, secret_key, region="us-east-1", create_bucket=False,
               validate_certs=True, ca_file=None, timeout=15.0, check_mode=False, key_prefix="gitpod-k3s-check/"):
    """Run the check. Returns a result dict with ``ok``, ``msg``, ``steps``, ``created_bucket``."""
    steps = []
    result = {"ok": False, "endpoint": None, "bucket": bucket, "created_bucket": False, "steps": steps}
    try:
        client = S3Client(endpoint, access_key, secret_key, region, validate_certs, ca_file, timeout)
        result["endpoint"] = client.endpoint
        status, code, message, dummy = client.call("head_bucket", Bucket=bucket)
        if status not in (200, 204) and (not code or code.isdigit()):
            # HEAD answers have no body: ask again with GET to learn the error code.
            status, code, message, dummy = client.call("list_objects", Bucket=bucket, MaxKeys=1)
        if status in (200, 204):
            steps.append("bucket exists")
        elif code == "NoSuchBucket" or (status == 404 and (not code or code.isdigit())):
            if not create_bucket:
                raise S3CheckError(explain(404, "NoSuchBucket", message, "HEAD", client, bucket))
            if check_mode:
                steps.append("bucket missing; would create it")
                result.update(ok=True, msg=f"bucket {bucket!r} would be created at {client.endpoint} (check mode)")
                return result
            params = {"Bucket": bucket}
            if region and region != "us-east-1":
                params["CreateBucketConfiguration"] = {"LocationConstraint": region}
            status, code, message, dummy = client.call("create_bucket", **params)
            if status != 200:
                raise S3CheckError(explain(status, code, message, "create bucket", client, bucket))
            steps.append("bucket created")
            result["created_bucket"] = True
        else:
            raise S3CheckError(explain(status, code, message, "HEAD", client, bucket))
        if check_mode:
            steps.append("object round trip skipped in check mode")
            result.update(ok=True, msg=f"bucket {bucket!r} answers at {client.endpoint} (check mode: no object written)")
            return result
        key = key_prefix + os.urandom(8).hex()
        payload = os.urandom(4096)
        status, code, message, dummy = client.call("put_object", Bucket=bucket, Key=key, Body=payload,
                                                   ContentType="application/octet-stream")
        if status != 200:
            raise S3CheckError(explain(status, code, message, f"PUT {key}", client, bucket))
        steps.append(f"put {key} ({len(payload)} bytes)")
        status, code, message, response = client.call("get_object", Bucket=bucket, Key=key)
        if status != 200:
            raise S3CheckError(explain(status, code, message, f"GET {key}", client, bucket))
        body = response["Body"]
        if body != payload:
            raise S3CheckError(
                f"GET {key} from bucket {bucket!r} at {client.endpoint} returned {len(body)} bytes that differ "
                f"from the {len(payload)} bytes written")
        steps.append("get returned the same bytes")
        status, code, message, dummy = client.call("delete_object", Bucket=bucket, Key=key)
        if status not in (200, 204):
            raise S3CheckError(explain(status, code, message, f"DELETE {key}", client, bucket))
        status, code, message, dummy = client.call("head_object", Bucket=bucket, Key=key)
        if status != 404:
            raise S3CheckError(f"{key} is still in bucket {bucket!r} after DELETE (HEAD answered {status})")
        steps.append("delete removed it")
    except S3CheckError as exc:
        result["msg"] = str(exc)
        return result
    result.update(ok=True, msg=f"S3 round trip passed on bucket {bucket!r} at {client.endpoint}: " + ", ".join(steps))
    return result
