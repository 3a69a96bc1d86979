"""S3 adapter: stream objects in, put objects out. Keys from notifications are URL-decoded."""

from __future__ import annotations

import io
from functools import cache
from typing import IO, Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from .aws import client


def event_key(raw_key: str) -> str:
    return unquote_plus(raw_key)


def s3_records(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The object-created records in one S3 notification (S3's TestEvent has none)."""
    if body.get("Event") == "s3:TestEvent":
        return []
    return [r for r in body.get("Records", []) if str(r.get("eventName", "")).startswith("ObjectCreated")]


class ObjectChanged(Exception):
    """The object at the key is no longer the version that was notified (overwritten or deleted since)."""


def open_object(bucket: str, key: str, version_id: str | None = None, etag: str | None = None) -> IO[bytes]:
    """The notified version: by version id (versioned bucket), else only while the ETag still matches."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    elif etag:
        kwargs["IfMatch"] = f'"{etag}"'
    try:
        body = client("s3").get_object(**kwargs)["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "NoSuchKey", "NoSuchVersion", "412", "404"):
            raise ObjectChanged(exc.response["Error"]["Code"]) from None
        raise
    return io.BufferedReader(_BodyReader(body), buffer_size=1 << 20)


class _BodyReader(io.RawIOBase):
    """botocore's StreamingBody as a raw binary stream (read in pieces, never whole)."""

    def __init__(self, body: Any):
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


def head(bucket: str, key: str) -> dict[str, Any]:
    return client("s3").head_object(Bucket=bucket, Key=key)


def put(bucket: str, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
    client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def get_bytes(bucket: str, key: str) -> bytes:
    return client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def get_bytes_if_exists(bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None when the key does not exist (other errors raise)."""
    try:
        return get_bytes(bucket, key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise


def list_keys(bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def presigned_get_url(bucket: str, key: str, expires_s: int) -> str:
    """A link that reads one object without AWS credentials until it expires (SigV4: at most 7 days;
    signed with a Lambda role's session credentials it stops working when that session ends)."""
    return _sigv4_client().generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=int(expires_s))


@cache
def _sigv4_client() -> Any:
    """botocore still presigns with SigV2 by default in us-east-1; S3 accepts only SigV4 for new buckets."""
    import boto3
    from botocore.config import Config

    from .aws import RETRY_CONFIG

    return boto3.session.Session().client("s3", config=RETRY_CONFIG.merge(Config(signature_version="s3v4")))
