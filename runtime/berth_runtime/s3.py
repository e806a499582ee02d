"""s3://bucket/prefix sources: any S3-compatible store (AWS, MinIO, Ceph RGW, ...) over its REST API.

Requests are signed with AWS Signature Version 4 from the standard environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, optional AWS_SESSION_TOKEN, AWS_REGION) and sent path-style to AWS_ENDPOINT_URL,
which is what in-cluster stores expect; without credentials the requests go unsigned (a public bucket).
An S3 prefix has no commit SHA, so the revision it resolves to is a digest of the listing of the files
fetched (names, sizes, ETags): it changes whenever any of them does, and spec.model.revision may pin it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from berth_runtime.transfer import FetchError, Progress, http_get, save, wanted

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
NAMESPACE = "{http://s3.amazonaws.com/doc/2006-03-01/}"
HINTS = {
    403: "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in model.credentialsSecret and the bucket policy",
    404: "no such bucket or object (check model.source and model.endpoint)",
}


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    session_token: str | None = None


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    etag: str


def _quote(text: str, safe: str = "-_.~") -> str:
    return urllib.parse.quote(text, safe=safe)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signing_key(secret_key: str, day: str, region: str, service: str = "s3") -> bytes:
    key = _hmac(f"AWS4{secret_key}".encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def sign(
    method: str, url: str, headers: Mapping[str, str], credentials: Credentials, region: str, now: dt.datetime
) -> dict[str, str]:
    """The request's headers plus SigV4's (x-amz-date, x-amz-content-sha256, Authorization). The URL's path
    must already be percent-encoded; it is signed as sent."""
    parts = urllib.parse.urlsplit(url)
    amz_date = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    signed = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    signed |= {"host": parts.netloc, "x-amz-date": amz_date}
    signed.setdefault("x-amz-content-sha256", EMPTY_SHA256)
    if credentials.session_token:
        signed["x-amz-security-token"] = credentials.session_token
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    canonical_query = "&".join(f"{k}={v}" for k, v in sorted((_quote(k), _quote(v)) for k, v in query))
    names = sorted(signed)
    canonical_request = "\n".join([
        method,
        parts.path or "/",
        canonical_query,
        "".join(f"{name}:{signed[name]}\n" for name in names),
        ";".join(names),
        signed["x-amz-content-sha256"],
    ])  # fmt: skip
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    signature = hmac.new(signing_key(credentials.secret_key, amz_date[:8], region), to_sign.encode(), hashlib.sha256)
    signed["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature.hexdigest()}"
    )
    del signed["host"]  # urllib sends Host itself, with the same value
    return signed


def parse_s3_source(source: str) -> tuple[str, str]:
    """s3://bucket/prefix -> (bucket, prefix ending in "/" or empty)."""
    bucket, _, prefix = source.removeprefix("s3://").partition("/")
    if not bucket:
        raise FetchError(f"source {source!r}: expected s3://bucket/prefix")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


class S3:
    def __init__(self, endpoint: str | None = None, region: str | None = None, timeout: float = 60) -> None:
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        default = f"https://s3.{self.region}.amazonaws.com"
        self.endpoint = (endpoint or os.environ.get("AWS_ENDPOINT_URL") or default).rstrip("/")
        access_key, secret_key = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
        token = os.environ.get("AWS_SESSION_TOKEN")
        self.credentials = Credentials(access_key, secret_key, token) if access_key and secret_key else None
        self.timeout = timeout

    def _get(self, path: str, query: Mapping[str, str] | None = None):
        url = self.endpoint + path
        if query:
            url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        headers = {}
        if self.credentials:
            headers = sign("GET", url, {}, self.credentials, self.region, dt.datetime.now(dt.UTC))
        return http_get(url, headers, self.timeout, HINTS)

    def list(self, bucket: str, prefix: str) -> list[S3Object]:
        """Every object under prefix (ListObjectsV2, all pages)."""
        objects, token = [], None
        while True:
            query = {"list-type": "2", "prefix": prefix} | ({"continuation-token": token} if token else {})
            with self._get(f"/{_quote(bucket)}", query) as response:
                root = ET.fromstring(response.read())
            for item in root.iter(f"{NAMESPACE}Contents"):
                key, size, etag = (item.findtext(f"{NAMESPACE}{tag}", "") for tag in ("Key", "Size", "ETag"))
                objects.append(S3Object(key, int(size or 0), etag.strip('"')))
            token = root.findtext(f"{NAMESPACE}NextContinuationToken")
            if root.findtext(f"{NAMESPACE}IsTruncated") != "true" or not token:
                return objects

    def download(self, bucket: str, key: str, target: Path, progress: Progress | None = None) -> int:
        return save(self._get(f"/{_quote(bucket)}/{_quote(key, safe='/-_.~')}"), target, progress)


def listing_digest(objects: list[S3Object], prefix: str) -> str:
    lines = sorted(f"{o.key.removeprefix(prefix)}\t{o.size}\t{o.etag}\n" for o in objects)
    return "sha256:" + hashlib.sha256("".join(lines).encode()).hexdigest()


class S3Remote:
    """The files directly under one S3 prefix, as berth_runtime.fetch reads remotes."""

    def __init__(self, source: str, revision: str | None, s3: S3 | None = None) -> None:
        self.bucket, self.prefix = parse_s3_source(source)
        self.source, self.revision, self.label = source, revision, source
        self.s3 = s3 or S3()

    def resolve(self) -> tuple[str, list[str]]:
        listed = self.s3.list(self.bucket, self.prefix)
        digest = listing_digest([o for o in listed if wanted(o.key.removeprefix(self.prefix))], self.prefix)
        if self.revision and self.revision != digest:
            raise FetchError(
                f"{self.label}: the files there now have digest {digest}, but model.revision pins {self.revision}; "
                "point the source at the pinned files, or update model.revision"
            )
        return digest, [o.key.removeprefix(self.prefix) for o in listed]

    def download(self, filename: str, target: Path, progress: Progress | None = None) -> int:
        return self.s3.download(self.bucket, self.prefix + filename, target, progress)
