"""The ArtifactRepository classes MLflow instantiates for the hokusai+ schemes.

One class does the work over two seams, a blob store and a manifest; the
subclasses only build those for their backend. Every path from a caller goes
through ``paths.clean`` first, and every error leaves as an MlflowException
(``errors.as_mlflow_errors``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import posixpath
import uuid
from abc import abstractmethod
from collections.abc import AsyncIterable
from typing import BinaryIO

from mlflow.entities.file_info import FileInfo
from mlflow.entities.multipart_upload import (
    CreateMultipartUploadResponse,
    MultipartUploadCredential,
)
from mlflow.store.artifact.artifact_repo import (
    ArtifactRepository,
    MultipartUploadMixin,
    StreamUploadMixin,
)

from mlflow_hokusai.mlflow_compat import UnsupportedMultipartUpload
from mlflow_hokusai.plugins.artifacts import locations, paths
from mlflow_hokusai.plugins.artifacts.blobs import (
    CHUNK_SIZE,
    BlobStore,
    LocalBlobStore,
    PendingBlob,
    PendingWrite,
    copy_verified,
)
from mlflow_hokusai.plugins.artifacts.errors import (
    ArtifactNotFound,
    InvalidRequest,
    as_mlflow_errors,
)
from mlflow_hokusai.plugins.artifacts.manifest import LocalManifest, Manifest, S3Manifest
from mlflow_hokusai.plugins.artifacts.paths import RESERVED
from mlflow_hokusai.plugins.artifacts.s3 import S3Objects
from mlflow_hokusai.plugins.artifacts.s3blobs import S3BlobStore


class HokusaiArtifactRepository(ArtifactRepository, StreamUploadMixin):
    """Content-addressed, verified, streaming; see README "Artifact repository"."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None,
                 registry_uri: str | None = None) -> None:
        super().__init__(artifact_uri, tracking_uri, registry_uri)
        with as_mlflow_errors():
            self.location = locations.parse(artifact_uri)
            self.blobs, self.manifest = self._open(self.location)

    @abstractmethod
    def _open(self, location: locations.Location) -> tuple[BlobStore, Manifest]:
        """The blob store (at the store root) and the manifest (at this URI)."""

    @staticmethod
    def _destination(file_name: str, artifact_path: str | None) -> str:
        # As in MLflow: only the file's base name counts, placed under artifact_path.
        name = paths.clean(os.path.basename(file_name))
        if not name:
            raise paths.UnsafePath("a file name is required")
        return paths.join(paths.clean(artifact_path), name)

    def _store(self, pending: PendingBlob, destination: str) -> None:
        with self.blobs.publish(pending) as blob:
            self.manifest.put(destination, blob)

    def log_artifact(self, local_file, artifact_path=None):
        with as_mlflow_errors():
            destination = self._destination(local_file, artifact_path)
            self._store(self.blobs.put_file(local_file), destination)

    def log_artifacts(self, local_dir, artifact_path=None):
        with as_mlflow_errors():
            base = paths.clean(artifact_path)
            jobs = []
            for directory, _, files in os.walk(local_dir):
                relative = os.path.relpath(directory, local_dir).replace(os.sep, "/")
                target = paths.join(base, paths.clean("" if relative == "." else relative))
                jobs += [(os.path.join(directory, name), target) for name in files]
        # Files go in parallel (MLflow's pool); each one is independent.
        for _ in self.thread_pool.map(lambda job: self.log_artifact(*job), jobs):
            pass

    def log_artifact_from_stream(self, stream: BinaryIO, artifact_file_name: str,
                                 artifact_path: str | None = None) -> None:
        with as_mlflow_errors():
            destination = self._destination(artifact_file_name, artifact_path)
            self._store(self.blobs.begin().write_all(stream), destination)

    async def log_artifact_from_async_stream(self, chunks: AsyncIterable[bytes],
                                             artifact_file_name: str,
                                             artifact_path: str | None = None) -> None:
        with as_mlflow_errors():
            destination = self._destination(artifact_file_name, artifact_path)
            # The ASGI server hands over small chunks (64 KiB): they are batched to
            # 1 MiB per hop to a thread, and a file smaller than that is written,
            # published and mapped in a single hop.
            pending: PendingWrite | None = None
            buffer = bytearray()
            try:
                async for chunk in chunks:
                    buffer += chunk
                    if len(buffer) >= CHUNK_SIZE:
                        if pending is None:
                            pending = await asyncio.to_thread(self.blobs.begin)
                        full, buffer = buffer, bytearray()
                        await asyncio.to_thread(pending.write, full)
            except BaseException:
                if pending is not None:
                    await asyncio.to_thread(pending.discard)
                raise
            await asyncio.to_thread(self._finish_and_store, pending, bytes(buffer), destination)

    def _finish_and_store(self, pending: PendingWrite | None, tail: bytes,
                          destination: str) -> None:
        pending = pending or self.blobs.begin()
        try:
            pending.write(tail)
            pending.finish()
        except BaseException:
            pending.discard()
            raise
        self._store(pending, destination)

    def list_artifacts(self, path=None):
        with as_mlflow_errors():
            directory = paths.clean(path)
            entries = self.manifest.list(directory)
        infos = [FileInfo(paths.join(directory, entry.name), entry.is_dir, entry.size)
                 for entry in entries]
        return sorted(infos, key=lambda info: info.path)

    def _download_file(self, remote_file_path, local_path):
        with as_mlflow_errors():
            path = paths.clean(remote_file_path)
            blob = self.manifest.get(path)
            copy_verified(self.blobs.read(blob.digest), blob, local_path)

    def delete_artifacts(self, artifact_path=None):
        with as_mlflow_errors():
            self.manifest.delete(paths.clean(artifact_path))


class HokusaiLocalArtifactRepository(HokusaiArtifactRepository):
    """``hokusai+file:///dir``: blobs under ``<root>/.hokusai/blobs``."""

    blobs: LocalBlobStore
    manifest: LocalManifest

    def _open(self, location):
        root = locations.find_root(location, lambda d: os.path.isdir(os.path.join(d, RESERVED)))
        return LocalBlobStore(root), LocalManifest(location.base)

    def get_local_path(self, artifact_path: str) -> str:
        """What MLflow's server sends for a download: a verified link to the blob
        (read once to check it, then streamed by the server without a temp copy)."""
        with as_mlflow_errors():
            path = paths.clean(artifact_path)
            try:
                blob = self.manifest.get(path)
            except ArtifactNotFound:
                directory = self.manifest.directory(path)
                if directory is None:
                    raise
                return directory  # MLflow answers "refers to a directory", as for its own
            return self.blobs.verified_view(blob, posixpath.basename(path))


# Store roots found through their marker, per (bucket/prefix) URI: markers are
# never removed, so a found root stays valid; not finding one is not cached.
_s3_roots: dict[str, str] = {}


def _s3_root(location: locations.Location, objects: S3Objects) -> str:
    if location.base not in _s3_roots:
        def has_marker(base: str) -> bool:
            key = S3BlobStore.marker_key(locations.Location(location.scheme, base).key_prefix)
            return objects.last_modified(key) is not None

        root = locations.find_root(location, has_marker)
        if root == location.base and not has_marker(root):
            return root
        _s3_roots[location.base] = root
    return _s3_roots[location.base]


class HokusaiS3ArtifactRepository(HokusaiArtifactRepository, MultipartUploadMixin):
    """``hokusai+s3://bucket/prefix``, with MLflow's proxied multipart upload: parts
    go straight to S3 through presigned URLs, then the server hashes the result once."""

    blobs: S3BlobStore

    def _open(self, location):
        objects = S3Objects(location.bucket)
        root = locations.Location(location.scheme, _s3_root(location, objects))
        self.objects = objects
        return S3BlobStore(objects, root.key_prefix), \
            S3Manifest(objects, location.key_prefix, self.thread_pool)

    def _upload_prefix(self, local_file, artifact_path) -> tuple[str, str]:
        """The logical destination, and the key prefix its multipart uploads live under
        (the client hands back only the upload id, so the key is found by listing)."""
        destination = self._destination(local_file, artifact_path)
        scope = hashlib.sha256(paths.join(self.location.base, destination).encode()).hexdigest()
        return destination, self.blobs.upload_prefix(scope[:32])

    def create_multipart_upload(self, local_file, num_parts=1, artifact_path=None):
        from botocore.exceptions import NoCredentialsError

        with as_mlflow_errors():
            if not 1 <= int(num_parts) <= 10000:
                raise InvalidRequest("num_parts must be between 1 and 10000")
            _, prefix = self._upload_prefix(local_file, artifact_path)
            client, bucket = self.objects.client, self.objects.bucket
            key = prefix + uuid.uuid4().hex
            try:
                # Presigning needs credentials that can sign; without them the client
                # is told multipart is unsupported and falls back to a proxied PUT.
                client.generate_presigned_url("head_object", Params={"Bucket": bucket,
                                                                     "Key": key})
            except NoCredentialsError:
                raise UnsupportedMultipartUpload() from None
            upload_id = client.create_multipart_upload(Bucket=bucket, Key=key,
                                                       **self.objects.extra)["UploadId"]
            credentials = [
                MultipartUploadCredential(
                    url=client.generate_presigned_url(
                        "upload_part", Params={"Bucket": bucket, "Key": key, "PartNumber": number,
                                               "UploadId": upload_id}),
                    part_number=number, headers={})
                for number in range(1, int(num_parts) + 1)]
            return CreateMultipartUploadResponse(credentials=credentials, upload_id=upload_id)

    def _find_upload(self, local_file, upload_id, artifact_path) -> tuple[str, str]:
        destination, prefix = self._upload_prefix(local_file, artifact_path)
        pages = self.objects.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.objects.bucket, Prefix=prefix)
        for page in pages:
            for upload in page.get("Uploads", []):
                if upload["UploadId"] == upload_id:
                    return destination, upload["Key"]
        raise ArtifactNotFound(f"multipart upload of {destination}")

    def complete_multipart_upload(self, local_file, upload_id, parts=None, artifact_path=None):
        with as_mlflow_errors():
            destination, key = self._find_upload(local_file, upload_id, artifact_path)
            self.objects.client.complete_multipart_upload(
                Bucket=self.objects.bucket, Key=key, UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": p.part_number, "ETag": p.etag}
                                           for p in parts or []]})
            self._store(self.blobs.hash_object(key), destination)

    def abort_multipart_upload(self, local_file, upload_id, artifact_path=None):
        with as_mlflow_errors():
            _, key = self._find_upload(local_file, upload_id, artifact_path)
            self.objects.client.abort_multipart_upload(Bucket=self.objects.bucket, Key=key,
                                                       UploadId=upload_id)
