"""Servers proxying artifacts to a hokusai+file:// or hokusai+s3:// store, and what
tests need to look behind them: stored bytes, a blob's digest, damaging a blob,
running the collector as an operator would (the `hokusai` command)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.support.mlflow_client import mlflow_client
from tests.support.s3server import S3Server
from tests.support.servers import BIN

API = "/api/2.0/mlflow-artifacts/artifacts"


@dataclass
class ArtifactStore:
    kind: str  # "file" or "s3"
    running: object  # conftest.RunningServer
    uri: str  # the server's --artifacts-destination
    env: dict = field(default_factory=dict)  # what a process needs to reach the store
    s3: S3Server | None = None

    @property
    def url(self) -> str:
        return self.running.url

    def repository(self, uri: str | None = None):
        """The repository as a client resolving the URI directly builds it."""
        from mlflow_hokusai.plugins.artifacts import file_repository, s3_repository

        factory = file_repository if self.kind == "file" else s3_repository
        return factory(uri or self.uri)

    def stored_bytes(self) -> int:
        return self.repository().blobs.stored_bytes()

    def digest(self, path: str) -> str:
        return self.repository().manifest.get(path).digest

    def damage(self, path: str, data: bytes) -> None:
        """Replace the stored bytes of the blob behind ``path`` (disk rot, a bad copy)."""
        blobs = self.repository().blobs
        digest = self.digest(path)
        if self.kind == "file":
            Path(blobs.path(digest)).write_bytes(data)
        else:
            blobs.objects.put_bytes(blobs.key(digest), data)

    def gc(self, *args: str) -> dict:
        done = subprocess.run([str(BIN / "hokusai"), "artifacts", "gc", "--artifact-uri",
                               self.uri, "--json", *args], env={**os.environ, **self.env},
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def headers(self, scopes: str = "read,write") -> dict:
        return {"Authorization": f"Bearer {self.running.create_key(scopes)}"}

    def put(self, path: str, data, headers: dict) -> requests.Response:
        return requests.put(self.url + API + "/" + path, data=data, headers=headers, timeout=600)

    def get(self, path: str, headers: dict, **kwargs) -> requests.Response:
        return requests.get(self.url + API + "/" + path, headers=headers, timeout=600, **kwargs)

    @contextlib.contextmanager
    def client(self):
        """The unmodified MLflow client, with a read,write key of its own."""
        with mlflow_client(self.url, self.running.create_key("read,write")) as client:
            yield client


def start_store(kind: str, tmp_path_factory, start_server):
    """Start the store (moto for S3) and a server in front of it; yields an ArtifactStore."""
    if kind == "file":
        uri = f"hokusai+file://{tmp_path_factory.mktemp('hokusai-store') / 'store'}"
        running = start_server(artifacts=uri, extra_env={})
        try:
            yield ArtifactStore(kind, running, uri)
        finally:
            running.server.stop()
        return
    from mlflow_hokusai.plugins.artifacts import s3 as s3_module

    s3 = S3Server().start()
    uri = f"hokusai+s3://{s3.bucket}/store"

    try:
        # The test process resolves the URI directly too (as a client would).
        with pytest.MonkeyPatch.context() as patch:
            for name, value in s3.client_env.items():
                patch.setenv(name, value)
            s3_module.client.cache_clear()
            running = start_server(artifacts=uri, extra_env=s3.client_env)
            try:
                yield ArtifactStore(kind, running, uri, env=s3.client_env, s3=s3)
            finally:
                running.server.stop()
    finally:
        s3.stop()
        s3_module.client.cache_clear()
