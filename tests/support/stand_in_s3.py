"""A stand-in for an S3-compatible store (MinIO, Ceph RGW, AWS), on loopback over HTTPS with a private CA:
path-style ListObjectsV2 (paged) and GetObject, each request's SigV4 signature checked against the
credentials given. Buckets live in memory. Tests never reach a real store."""

from __future__ import annotations

import hashlib
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from berth_runtime.s3 import Credentials, sign
from tests.support.loopback import serve_on_loopback
from tests.support.tls import PrivatePki

AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/\d{8}/([^/]+)/s3/aws4_request, SignedHeaders=([^,]+), ")


@dataclass
class StandInS3:
    buckets: dict[str, dict[str, bytes]]
    credentials: Credentials | None  # None: anonymous reads allowed
    page_size: int = 2  # small, so clients must follow continuation tokens
    requests: list[str] = field(default_factory=list)  # "LIST <bucket> <prefix>" or "GET <bucket>/<key>"
    url: str = ""


def etag(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # what S3 reports for a single-part upload


def _signature_problem(store: StandInS3, method: str, url: str, headers) -> str | None:
    """Recomputes the signature from the request as received; None when it matches."""
    if store.credentials is None:
        return None
    authorization = headers.get("Authorization", "")
    match = AUTH.match(authorization)
    if not match:
        return "AccessDenied"
    access_key, region, signed_headers = match.groups()
    if access_key != store.credentials.access_key:
        return "InvalidAccessKeyId"
    now = datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    extra = {h: headers[h] for h in signed_headers.split(";") if h not in ("host", "x-amz-date")}
    expected = sign(method, url, extra, store.credentials, region, now)["authorization"]
    return None if expected == authorization else "SignatureDoesNotMatch"


def _list_xml(store: StandInS3, bucket: str, query: dict[str, list[str]]) -> bytes:
    prefix = query.get("prefix", [""])[0]
    keys = sorted(k for k in store.buckets[bucket] if k.startswith(prefix))
    start = int(query.get("continuation-token", ["0"])[0])
    page = keys[start : start + store.page_size]
    truncated = start + store.page_size < len(keys)
    contents = "".join(
        f"<Contents><Key>{escape(k)}</Key><Size>{len(store.buckets[bucket][k])}</Size>"
        f"<ETag>&quot;{etag(store.buckets[bucket][k])}&quot;</ETag><StorageClass>STANDARD</StorageClass></Contents>"
        for k in page
    )
    token = f"<NextContinuationToken>{start + store.page_size}</NextContinuationToken>" if truncated else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Name>{bucket}</Name><Prefix>{escape(prefix)}</Prefix><KeyCount>{len(page)}</KeyCount>"
        f"<MaxKeys>{store.page_size}</MaxKeys><IsTruncated>{str(truncated).lower()}</IsTruncated>"
        f"{contents}{token}</ListBucketResult>"
    ).encode()


def _handler(store: StandInS3) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, code: str) -> None:
            body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{code}</Message></Error>'
            self._send(status, body.encode(), {"Content-Type": "application/xml"})

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            problem = _signature_problem(store, "GET", f"https://{self.headers['Host']}{self.path}", self.headers)
            if problem:
                return self._error(403, problem)
            bucket, _, key = unquote(parts.path).lstrip("/").partition("/")
            if bucket not in store.buckets:
                return self._error(404, "NoSuchBucket")
            if not key:
                query = parse_qs(parts.query)
                store.requests.append(f"LIST {bucket} {query.get('prefix', [''])[0]}")
                return self._send(200, _list_xml(store, bucket, query), {"Content-Type": "application/xml"})
            store.requests.append(f"GET {bucket}/{key}")
            if key not in store.buckets[bucket]:
                return self._error(404, "NoSuchKey")
            data = store.buckets[bucket][key]
            self._send(200, data, {"ETag": f'"{etag(data)}"', "Content-Type": "application/octet-stream"})

    return Handler


@contextmanager
def stand_in_s3(
    buckets: dict[str, dict[str, bytes]], pki: PrivatePki, credentials: Credentials | None = None
) -> Iterator[StandInS3]:
    store = StandInS3(buckets, credentials)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(pki.cert, pki.key)
    with serve_on_loopback(_handler(store), tls) as store.url:
        yield store
