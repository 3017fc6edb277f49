"""Content-addressed blobs in S3: ``<root>/.hokusai/blobs/sha256/ab/<digest>``.

The digest of a stream is known only at its end, so streamed bytes go to a
temp key (multipart once they pass one part) and are copied server-side to
the blob key if no blob has those bytes yet; a local file is hashed first and
uploaded straight to its blob key, or not at all if the blob exists.

S3 has no locks and no cheap "touch", so every reference writes an empty
lease object ``.hokusai/leases/<digest>`` before the mapping; the collector
deletes only blobs whose blob and lease are both older than the grace period,
checking again right before the delete, and a publisher checks after writing
its mapping that the blob still exists (and restores it if not).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from mlflow_hokusai.plugins.artifacts.blobs import (
    CHUNK_SIZE,
    DIGEST,
    Blob,
    BlobStore,
    Hasher,
    PendingBlob,
    PendingWrite,
    blob_name,
    hash_file,
)
from mlflow_hokusai.plugins.artifacts.errors import CorruptArtifact
from mlflow_hokusai.plugins.artifacts.paths import RESERVED, join
from mlflow_hokusai.plugins.artifacts.s3 import MIB, S3Objects
from mlflow_hokusai.settings import get_settings

MARKER = "root"
_marked_roots: set[tuple[str, str]] = set()


class S3TempObject(PendingBlob):
    """Bytes already in the bucket under a temp key (a finished stream or multipart upload)."""

    def __init__(self, objects: S3Objects, key: str, blob: Blob | None = None):
        self.objects = objects
        self.key = key
        if blob is not None:
            self.blob = blob

    def materialise(self, blob_key: str) -> None:
        self.objects.copy(self.key, blob_key)

    def discard(self) -> None:
        self.objects.delete_keys([self.key])


class S3StreamPending(S3TempObject, PendingWrite):
    """Streams to a temp key: one PUT for small objects, multipart past one part."""

    def __init__(self, objects: S3Objects, key: str):
        super().__init__(objects, key)
        self._hasher = Hasher()
        self._buffer = bytearray()
        self._part_size = get_settings().artifacts_s3_multipart_mb * MIB
        self._upload_id: str | None = None
        self._parts: list[dict] = []

    def write(self, chunk: bytes | bytearray) -> None:
        self._hasher.update(chunk)
        self._buffer += chunk
        while len(self._buffer) >= self._part_size:
            self._send_part(bytes(self._buffer[:self._part_size]))
            del self._buffer[:self._part_size]

    def _send_part(self, data: bytes) -> None:
        client = self.objects.client
        if self._upload_id is None:
            self._upload_id = client.create_multipart_upload(
                Bucket=self.objects.bucket, Key=self.key, **self.objects.extra)["UploadId"]
        number = len(self._parts) + 1
        etag = client.upload_part(Bucket=self.objects.bucket, Key=self.key, PartNumber=number,
                                  UploadId=self._upload_id, Body=data)["ETag"]
        self._parts.append({"PartNumber": number, "ETag": etag})

    def finish(self) -> Blob:
        if self._upload_id is None:
            self.objects.put_bytes(self.key, bytes(self._buffer))
        else:
            if self._buffer:
                self._send_part(bytes(self._buffer))
            self.objects.client.complete_multipart_upload(
                Bucket=self.objects.bucket, Key=self.key, UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts})
            self._upload_id = None
        self._buffer = bytearray()
        self.blob = self._hasher.blob()
        return self.blob

    def discard(self) -> None:
        if self._upload_id is not None:
            with contextlib.suppress(Exception):
                self.objects.client.abort_multipart_upload(
                    Bucket=self.objects.bucket, Key=self.key, UploadId=self._upload_id)
            self._upload_id = None
        super().discard()


class S3FilePending(PendingBlob):
    """A local file, hashed before anything is sent."""

    def __init__(self, objects: S3Objects, path: str):
        self.objects = objects
        self.path = path
        self.blob = hash_file(path)

    def materialise(self, blob_key: str) -> None:
        self.objects.upload_file(self.path, blob_key)

    def discard(self) -> None:
        pass


class S3BlobStore(BlobStore):
    def __init__(self, objects: S3Objects, root_prefix: str):
        self.objects = objects
        self.root_prefix = root_prefix
        self.root = join(objects.bucket, root_prefix)
        self.area = join(root_prefix, RESERVED)

    @staticmethod
    def marker_key(prefix: str) -> str:
        return join(prefix, RESERVED, MARKER)

    def key(self, digest: str) -> str:
        return join(self.area, "blobs", blob_name(digest))

    def lease_key(self, digest: str) -> str:
        return join(self.area, "leases", digest)

    def upload_prefix(self, scope: str) -> str:
        """Where proxied multipart uploads of one logical path land before hashing."""
        return join(self.area, "uploads", scope) + "/"

    def begin(self) -> S3StreamPending:
        return S3StreamPending(self.objects, join(self.area, "tmp", uuid.uuid4().hex))

    def put_file(self, local_path: str) -> S3FilePending:
        return S3FilePending(self.objects, local_path)

    def hash_object(self, key: str) -> S3TempObject:
        """A temp object already uploaded (multipart), hashed by reading it once."""
        hasher = Hasher()
        body = self.objects.client.get_object(Bucket=self.objects.bucket, Key=key)["Body"]
        for chunk in body.iter_chunks(CHUNK_SIZE):
            hasher.update(chunk)
        return S3TempObject(self.objects, key, hasher.blob())

    def mark_root(self) -> None:
        if (self.objects.bucket, self.root_prefix) not in _marked_roots:
            self.objects.put_bytes(self.marker_key(self.root_prefix),
                                   b"Hokusai content-addressed artifact store\n", "text/plain")
            _marked_roots.add((self.objects.bucket, self.root_prefix))

    @contextlib.contextmanager
    def publish(self, pending):
        blob = pending.blob
        key = self.key(blob.digest)
        try:
            self.mark_root()
            # Not re-sent when a blob with these bytes exists; one of the wrong size
            # (truncated) is replaced. Verifying the rest would mean reading it back.
            found = self.objects.head(key)
            if found is None or found[1] != blob.size:
                pending.materialise(key)
            self.objects.put_bytes(self.lease_key(blob.digest), b"")
            yield blob
            # A collection that judged the blob before our lease existed may have
            # removed it by now; the temp object or file is still here to restore it.
            if self.objects.last_modified(key) is None:
                pending.materialise(key)
        finally:
            pending.discard()

    def read(self, digest: str) -> Iterator[bytes]:
        from botocore.exceptions import ClientError

        try:
            body = self.objects.client.get_object(Bucket=self.objects.bucket,
                                                  Key=self.key(digest))["Body"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise CorruptArtifact("stored blob is missing") from None
            raise
        with body:
            yield from body.iter_chunks(CHUNK_SIZE)

    def ages(self) -> Iterator[tuple[str, float]]:
        leases = {item["Key"].rsplit("/", 1)[-1]: item["LastModified"].timestamp()
                  for item in self.objects.list_objects(join(self.area, "leases") + "/")}
        for item in self.objects.list_objects(join(self.area, "blobs") + "/"):
            digest = item["Key"].rsplit("/", 1)[-1]
            if DIGEST.match(digest):
                yield digest, max(item["LastModified"].timestamp(), leases.get(digest, 0.0))

    def delete_if_older(self, digest: str, cutoff: float) -> bool:
        times = [self.objects.last_modified(self.key(digest)),
                 self.objects.last_modified(self.lease_key(digest))]
        if times[0] is None or max(t or 0.0 for t in times) >= cutoff:
            return False
        self.objects.delete_keys([self.key(digest), self.lease_key(digest)])
        return True

    def stored_bytes(self) -> int:
        listed = self.objects.list_objects(join(self.area, "blobs") + "/")
        return sum(item["Size"] for item in listed)

    def clean_temp(self, cutoff: float) -> int:
        stale = [item["Key"] for prefix in ("tmp", "uploads")
                 for item in self.objects.list_objects(join(self.area, prefix) + "/")
                 if item["LastModified"].timestamp() < cutoff]
        self.objects.delete_keys(stale)
        client = self.objects.client
        uploads = client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.objects.bucket, Prefix=self.area + "/")
        for page in uploads:
            for upload in page.get("Uploads", []):
                if upload["Initiated"].timestamp() < cutoff:
                    client.abort_multipart_upload(Bucket=self.objects.bucket, Key=upload["Key"],
                                                  UploadId=upload["UploadId"])
                    stale.append(upload["Key"])
        return len(stale)
