"""SigV4 request signing checked against the worked examples in AWS's S3 documentation
("Signature Calculations for the Authorization Header", example credentials, 2013-05-24)."""

from __future__ import annotations

import datetime as dt

import pytest

from berth_runtime.s3 import Credentials, S3Object, listing_digest, parse_s3_source, sign
from berth_runtime.transfer import FetchError

EXAMPLE = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
WHEN = dt.datetime(2013, 5, 24, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("url", "headers", "signed_headers", "signature"),
    [
        (  # GET Object with a Range header
            "https://examplebucket.s3.amazonaws.com/test.txt", {"Range": "bytes=0-9"},
            "host;range;x-amz-content-sha256;x-amz-date",
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        ),
        (  # GET Bucket (List Objects) with a query string, sorted
            "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J", {},
            "host;x-amz-content-sha256;x-amz-date",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
        (  # GET Bucket lifecycle: a query parameter without a value
            "https://examplebucket.s3.amazonaws.com/?lifecycle", {},
            "host;x-amz-content-sha256;x-amz-date",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        ),
    ],
)  # fmt: skip
def test_signatures_match_the_aws_documentation(url: str, headers: dict, signed_headers: str, signature: str) -> None:
    authorization = sign("GET", url, headers, EXAMPLE, "us-east-1", WHEN)["authorization"]
    assert authorization == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )


def test_sources_and_digests() -> None:
    assert parse_s3_source("s3://weights/models/tiny/") == ("weights", "models/tiny/")
    assert parse_s3_source("s3://weights") == ("weights", "")
    with pytest.raises(FetchError, match="expected s3://bucket/prefix"):
        parse_s3_source("s3:///models")
    objects = [S3Object("p/a.safetensors", 3, "e1"), S3Object("p/config.json", 2, "e2")]
    assert listing_digest(objects, "p/") == listing_digest(objects[::-1], "p/"), "order does not matter"
    assert listing_digest(objects, "p/") != listing_digest([objects[0], S3Object("p/config.json", 2, "e3")], "p/")
