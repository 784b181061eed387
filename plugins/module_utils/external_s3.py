# Copyright: selfhosted.gitpod_k3s contributors
# Apache License 2.0
"""Round-trip check of an S3 bucket with AWS Signature Version 4, standard library only (no boto3).

Path-style requests (``https://endpoint/bucket/key``), which AWS, MinIO, Ceph RGW and other
S3-compatible servers accept. The check: HEAD the bucket (create it when asked and missing),
PUT a random object, GET it back and compare, DELETE it and confirm it is gone.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import os
import re
import socket
import ssl
import urllib.parse

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class S3CheckError(Exception):
    """A check failure with a message meant for the user."""


def _sign(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret_key, date_stamp, region, service="s3"):
    k_date = _sign(("AWS4" + secret_key).encode("utf-8"), date_stamp)
    k_region = _sign(k_date, region)
    k_service = _sign(k_region, service)
    return _sign(k_service, "aws4_request")


def _uri_encode(text, safe="-_.~"):
    return urllib.parse.quote(text, safe=safe)


def sign_request(method, host, path, query, headers, payload_hash, access_key, secret_key, region,
                 now=None, service="s3"):
    """Return the headers (with Authorization) for a SigV4-signed request.

    ``path`` is the already-encoded absolute path; ``query`` a dict; ``headers`` extra headers.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date_stamp = now.strftime("%Y%m%d")
    signed = {k.lower(): str(v).strip() for k, v in headers.items()}
    signed["host"] = host
    signed["x-amz-date"] = amz_date
    signed["x-amz-content-sha256"] = payload_hash
    canonical_query = "&".join(
        f"{_uri_encode(k)}={_uri_encode(str(v))}" for k, v in sorted(query.items()))
    names = sorted(signed)
    canonical_headers = "".join(f"{n}:{signed[n]}\n" for n in names)
    signed_headers = ";".join(names)
    canonical_request = "\n".join([method, path, canonical_query, canonical_headers, signed_headers, payload_hash])
    scope = f"{date_stamp}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join([
        "AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()])
    signature = hmac.new(signing_key(secret_key, date_stamp, region, service),
                         string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    out = {k: v for k, v in signed.items() if k != "host"}
    out["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed_headers}, Signature={signature}")
    return out


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


def _error_code(body):
    match = re.search(rb"<Code>([^<]+)</Code>", body or b"")
    return match.group(1).decode("utf-8", "replace") if match else ""


def _error_message(body):
    match = re.search(rb"<Message>([^<]*)</Message>", body or b"")
    return match.group(1).decode("utf-8", "replace") if match else ""


class S3Client:
    def __init__(self, endpoint, access_key, secret_key, region="us-east-1", validate_certs=True,
                 ca_file=None, timeout=15.0):
        self.scheme, self.hostname, self.port = parse_endpoint(endpoint)
        default_port = 443 if self.scheme == "https" else 80
        self.host_header = self.hostname if self.port == default_port else f"{self.hostname}:{self.port}"
        self.endpoint = f"{self.scheme}://{self.host_header}"
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.timeout = timeout
        self.context = None
        if self.scheme == "https":
            self.context = ssl.create_default_context(cafile=ca_file)
            if not validate_certs:
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE

    def request(self, method, bucket, key="", body=b"", query=None, headers=None):
        path = "/" + _uri_encode(bucket)
        if key:
            path += "/" + _uri_encode(key, safe="-_.~/")
        query = query or {}
        payload_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        signed = sign_request(method, self.host_header, path, query, headers or {}, payload_hash,
                              self.access_key, self.secret_key, self.region)
        if body:
            signed["content-length"] = str(len(body))
        url = path + ("?" + urllib.parse.urlencode(query) if query else "")
        if self.scheme == "https":
            conn = http.client.HTTPSConnection(self.hostname, self.port, timeout=self.timeout, context=self.context)
        else:
            conn = http.client.HTTPConnection(self.hostname, self.port, timeout=self.timeout)
        try:
            conn.request(method, url, body=body or None, headers=signed)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), data
        except ssl.SSLCertVerificationError as exc:
            raise S3CheckError(
                f"TLS certificate of {self.endpoint} is not trusted: {exc.verify_message or exc}; "
                "give ca_file or set validate_certs to false") from None
        except socket.gaierror as exc:
            raise S3CheckError(f"cannot resolve S3 endpoint host {self.hostname!r}: {exc}") from None
        except (socket.timeout, TimeoutError):
            raise S3CheckError(f"S3 endpoint {self.endpoint} is unreachable: no answer within {self.timeout:g}s") from None
        except (ConnectionError, OSError, http.client.HTTPException) as exc:
            raise S3CheckError(f"S3 endpoint {self.endpoint} is unreachable: {getattr(exc, 'strerror', None) or exc}") from None
        finally:
            conn.close()


def _explain(status, body, what, client, bucket):
    code = _error_code(body)
    message = _error_message(body)
    detail = f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
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
        status, dummy, body = client.request("HEAD", bucket)
        if status not in (200, 204) and not body:
            # HEAD answers have no body: ask again with GET to learn the error code.
            status, dummy, body = client.request("GET", bucket, query={"max-keys": "1"})
        if status in (200, 204):
            steps.append("bucket exists")
        elif _error_code(body) == "NoSuchBucket" or (status == 404 and not body):
            if not create_bucket:
                raise S3CheckError(_explain(404, body or b"<Code>NoSuchBucket</Code>", "HEAD", client, bucket))
            if check_mode:
                steps.append("bucket missing; would create it")
                result.update(ok=True, msg=f"bucket {bucket!r} would be created at {client.endpoint} (check mode)")
                return result
            create_body = b""
            if region and region != "us-east-1":
                create_body = (
                    "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                    f"<LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>").encode("utf-8")
            status, dummy, body = client.request("PUT", bucket, body=create_body)
            if status != 200:
                raise S3CheckError(_explain(status, body, "create bucket", client, bucket))
            steps.append("bucket created")
            result["created_bucket"] = True
        else:
            raise S3CheckError(_explain(status, body, "HEAD", client, bucket))
        if check_mode:
            steps.append("object round trip skipped in check mode")
            result.update(ok=True, msg=f"bucket {bucket!r} answers at {client.endpoint} (check mode: no object written)")
            return result
        key = key_prefix + os.urandom(8).hex()
        payload = os.urandom(4096)
        status, dummy, body = client.request("PUT", bucket, key, body=payload,
                                             headers={"content-type": "application/octet-stream"})
        if status != 200:
            raise S3CheckError(_explain(status, body, f"PUT {key}", client, bucket))
        steps.append(f"put {key} ({len(payload)} bytes)")
        status, dummy, body = client.request("GET", bucket, key)
        if status != 200:
            raise S3CheckError(_explain(status, body, f"GET {key}", client, bucket))
        if body != payload:
            raise S3CheckError(
                f"GET {key} from bucket {bucket!r} at {client.endpoint} returned {len(body)} bytes that differ "
                f"from the {len(payload)} bytes written")
        steps.append("get returned the same bytes")
        status, dummy, body = client.request("DELETE", bucket, key)
        if status not in (200, 204):
            raise S3CheckError(_explain(status, body, f"DELETE {key}", client, bucket))
        status, dummy, body = client.request("HEAD", bucket, key)
        if status != 404:
            raise S3CheckError(f"{key} is still in bucket {bucket!r} after DELETE (HEAD answered {status})")
        steps.append("delete removed it")
    except S3CheckError as exc:
        result["msg"] = str(exc)
        return result
    result.update(ok=True, msg=f"S3 round trip passed on bucket {bucket!r} at {client.endpoint}: " + ", ".join(steps))
    return result
