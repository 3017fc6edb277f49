"""hokusai+s3:// specifics against a real S3-compatible server (moto, on 127.0.0.1):
MLflow's proxied multipart upload, server-side encryption and endpoint settings."""

import os
import pathlib
import uuid

import mlflow
import pytest

from mlflow_hokusai.plugins.artifacts import s3 as s3_module
from mlflow_hokusai.plugins.artifacts import s3_repository
from mlflow_hokusai.settings import get_settings

MIB = 1024 * 1024


def _leftovers(store) -> list[str]:
    """Temp objects and unfinished multipart uploads left in the store's area."""
    objects = store.repository().blobs.objects
    area = "store/.hokusai/"
    keys = [key for prefix in ("tmp/", "uploads/") for key in objects.list_keys(area + prefix)]
    uploads = objects.client.list_multipart_uploads(Bucket=objects.bucket, Prefix=area)
    return keys + [u["Key"] for u in uploads.get("Uploads", [])]


def test_proxied_multipart_upload(hokusai_s3_store, tmp_path, monkeypatch):
    store = hokusai_s3_store
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(MIB))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MIB))  # S3's minimum part
    data = os.urandom(12 * MIB)
    (tmp_path / "weights.bin").write_bytes(data)
    with store.client() as client:
        experiment = client.create_experiment(f"mpu-{uuid.uuid4().hex[:8]}")
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_artifact(str(tmp_path / "weights.bin"), "model")
        log = store.running.server.log_path.read_text()
        assert "mlflow-artifacts/mpu/create" in log and "mlflow-artifacts/mpu/complete" in log
        assert [(f.path, f.file_size) for f in client.list_artifacts(run.info.run_id, "model")] \
            == [("model/weights.bin", len(data))]
        down = client.download_artifacts(run.info.run_id, "model/weights.bin", str(tmp_path))
    assert pathlib.Path(down).read_bytes() == data
    assert _leftovers(store) == []


@pytest.fixture
def settings_env(monkeypatch):
    """Set HOKUSAI_* variables for repositories built in this process."""
    def apply(**values):
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        s3_module.client.cache_clear()

    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()
    s3_module.client.cache_clear()


def test_server_side_encryption_and_endpoint_settings(hokusai_s3_store, tmp_path, settings_env):
    store = hokusai_s3_store
    settings_env(HOKUSAI_ARTIFACTS_S3_SSE="aes256",
                 HOKUSAI_ARTIFACTS_S3_ENDPOINT_URL=store.s3.url,
                 MLFLOW_S3_ENDPOINT_URL="http://127.0.0.1:9",  # the Hokusai setting wins
                 HOKUSAI_ARTIFACTS_S3_ADDRESSING_STYLE="path")
    repository = s3_repository(f"{store.uri}/sse-{uuid.uuid4().hex[:8]}")
    (tmp_path / "secret.bin").write_bytes(os.urandom(1000))
    repository.log_artifact(str(tmp_path / "secret.bin"))
    digest = repository.manifest.get("secret.bin").digest
    objects = repository.blobs.objects
    for key in (repository.blobs.key(digest), f"{repository.location.key_prefix}/secret.bin"):
        head = objects.client.head_object(Bucket=objects.bucket, Key=key)
        assert head["ServerSideEncryption"] == "AES256"

