"""boto3 plumbing for the S3 store: one configured client, and the object calls
the blob store and the manifest share.

Credentials come from boto3's usual chain (environment, profile, instance
role); everything else from the typed settings: endpoint URL (S3-compatible
stores), retries with backoff (botocore's "standard" mode), multipart sizes,
server-side encryption.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator

from mlflow_hokusai.settings import get_settings

MIB = 1024 * 1024


@functools.lru_cache(maxsize=1)
def client():
    import boto3
    from botocore.config import Config

    settings = get_settings()
    # MLflow's own S3 variable is honoured too, so one deployment setting serves both.
    endpoint = settings.artifacts_s3_endpoint_url or os.environ.get("MLFLOW_S3_ENDPOINT_URL")
    config = Config(retries={"mode": "standard",
                             "max_attempts": settings.artifacts_s3_max_attempts},
                    signature_version="s3v4",
                    s3={"addressing_style": settings.artifacts_s3_addressing_style},
                    max_pool_connections=32)
    return boto3.client("s3", endpoint_url=endpoint or None, config=config)


def transfer_config():
    from boto3.s3.transfer import TransferConfig

    settings = get_settings()
    return TransferConfig(multipart_threshold=settings.artifacts_s3_multipart_mb * MIB,
                          multipart_chunksize=settings.artifacts_s3_multipart_mb * MIB,
                          max_concurrency=settings.artifacts_s3_max_concurrency)


def encryption_args() -> dict[str, str]:
    """Extra arguments for every object Hokusai writes (put, upload, copy, multipart)."""
    settings = get_settings()
    args = {}
    if settings.artifacts_s3_sse:
        args["ServerSideEncryption"] = settings.artifacts_s3_sse
        if settings.artifacts_s3_sse_kms_key_id:
            args["SSEKMSKeyId"] = settings.artifacts_s3_sse_kms_key_id
    return args


def _missing(error) -> bool:
    return error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


class S3Objects:
    """The calls on one bucket that Hokusai makes, with its encryption arguments."""

    def __init__(self, bucket: str):
        self.bucket = bucket
        self.client = client()
        self.extra = encryption_args()

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream"):
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                               **self.extra)

    def get_bytes(self, key: str, limit: int) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as error:
            if _missing(error):
                return None
            raise
        with body:
            return body.read(limit)

    def head(self, key: str) -> tuple[float, int] | None:
        """(last-modified epoch seconds, size) of an object, None if it does not exist."""
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _missing(error):
                return None
            raise
        return head["LastModified"].timestamp(), head["ContentLength"]

    def last_modified(self, key: str) -> float | None:
        found = self.head(key)
        return found[0] if found else None

    def list_level(self, prefix: str) -> Iterator[tuple[str, bool]]:
        """(name, is_dir) directly under ``prefix`` (which ends with "/" or is empty)."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/")
        for page in pages:
            for common in page.get("CommonPrefixes", []):
                yield common["Prefix"][len(prefix):].rstrip("/"), True
            for item in page.get("Contents", []):
                if item["Key"] != prefix:
                    yield item["Key"][len(prefix):], False

    def list_objects(self, prefix: str) -> Iterator[dict]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            yield from page.get("Contents", [])

    def list_keys(self, prefix: str) -> Iterator[str]:
        return (item["Key"] for item in self.list_objects(prefix))

    def delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # the DeleteObjects limit
            batch = [{"Key": key} for key in keys[start:start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def copy(self, source_key: str, key: str) -> None:
        """Server-side copy; boto3's managed copy switches to multipart for large objects."""
        self.client.copy({"Bucket": self.bucket, "Key": source_key}, self.bucket, key,
                         ExtraArgs=dict(self.extra) or None, Config=transfer_config())

    def upload_file(self, local_path: str, key: str) -> None:
        self.client.upload_file(local_path, self.bucket, key, ExtraArgs=dict(self.extra) or None,
                                Config=transfer_config())
