"""The artifact repository plugin behind a real server, on local disk and on S3,
used by the unmodified MLflow client: artifacts and models round-trip, identical
content is stored once, damaged blobs are refused, deletes and the collector,
clients resolving URIs below the root directly, and traversal attempts."""

import hashlib
import os
import uuid

import mlflow
import pandas as pd
import pytest
import requests
from mlflow.exceptions import MlflowException

# Bytes of a model attribute large enough to dominate the model's stored size.
MODEL_PAYLOAD = 2 * 1024 * 1024


class AddN(mlflow.pyfunc.PythonModel):
    def __init__(self, n):
        self.n = n
        self.weights = os.urandom(MODEL_PAYLOAD) if n else b""

    def predict(self, context, model_input, params=None):
        return model_input["x"] + self.n


def _tree(root, files):
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_artifacts_and_models_round_trip(artifact_store, tmp_path):
    files = {"a.txt": b"hello", "nested/deeper/b.bin": os.urandom(3000),
             "nested/c.json": b"{}", "empty.txt": b"",
             # Past one S3 part (8 MiB): the streamed upload goes multipart.
             "big/weights.bin": os.urandom(9 * 1024 * 1024)}
    _tree(tmp_path / "src", files)
    with artifact_store.client() as client:
        experiment = client.create_experiment(f"art-{uuid.uuid4().hex[:8]}")
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_artifacts(str(tmp_path / "src"), artifact_path="data")
            mlflow.log_text("plain", "notes/readme.md")
            info = mlflow.pyfunc.log_model(name="model", python_model=AddN(3),
                                           pip_requirements=[])
        run_id = run.info.run_id

        listing = {f.path: (f.is_dir, f.file_size) for f in client.list_artifacts(run_id, "data")}
        # MLflow's FileInfo.to_proto drops a size of 0, for its own repositories too.
        assert listing == {"data/a.txt": (False, 5), "data/big": (True, None),
                           "data/empty.txt": (False, None), "data/nested": (True, None)}
        nested = client.list_artifacts(run_id, "data/nested")
        assert [(f.path, f.file_size) for f in nested] == [
            ("data/nested/c.json", 2), ("data/nested/deeper", None)]
        assert client.list_artifacts(run_id, "data/a.txt") == []

        down = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="data",
                                                   dst_path=str(tmp_path / "down"))
        for relative, data in files.items():
            assert (tmp_path / "down" / "data" / relative).read_bytes() == data
        assert mlflow.artifacts.load_text(f"runs:/{run_id}/notes/readme.md") == "plain"
        assert os.path.isdir(down)

        name = f"model-{uuid.uuid4().hex[:8]}"
        version = mlflow.register_model(info.model_uri, name)
        loaded = mlflow.pyfunc.load_model(f"models:/{name}/{version.version}")
        assert list(loaded.predict(pd.DataFrame({"x": [1, 2]}))) == [4, 5]


def test_identical_content_is_stored_once(artifact_store, tmp_path):
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(1024 * 1024))
    with artifact_store.client() as client:
        experiment = client.create_experiment(f"dedup-{uuid.uuid4().hex[:8]}")
        with mlflow.start_run(experiment_id=experiment):
            mlflow.log_artifact(str(payload), "first")
            after_first = artifact_store.stored_bytes()
            mlflow.log_artifact(str(payload), "second")
        with mlflow.start_run(experiment_id=experiment):
            mlflow.log_artifact(str(payload), "again")
        assert artifact_store.stored_bytes() == after_first

        # A model logged twice: only the files that really differ (MLmodel carries
        # ids and times) are stored again, never the weights.
        model = AddN(1)
        with mlflow.start_run(experiment_id=experiment):
            mlflow.pyfunc.log_model(name="m", python_model=model, pip_requirements=[])
        once = artifact_store.stored_bytes()
        with mlflow.start_run(experiment_id=experiment):
            mlflow.pyfunc.log_model(name="m", python_model=model, pip_requirements=[])
        assert artifact_store.stored_bytes() - once < 64 * 1024


def _log_one(artifact_store, data: bytes) -> tuple[str, str]:
    """Log ``data`` as a fresh run's artifact; (run id, its path in the store)."""
    with artifact_store.client() as client:
        experiment = client.create_experiment(f"one-{uuid.uuid4().hex[:8]}")
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_text(data.decode("latin-1"), "f.txt")
        artifact_uri = run.info.artifact_uri  # mlflow-artifacts:/<exp>/<run>/artifacts
    return run.info.run_id, artifact_uri.split(":", 1)[1].lstrip("/") + "/f.txt"


@pytest.mark.parametrize("damage", ["flipped", "truncated", "longer"])
def test_damaged_blob_is_refused(artifact_store, tmp_path, damage, monkeypatch):
    # DATA_LOSS is a 500, which MLflow's client retries for minutes; no retry here.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    data = f"unique content {uuid.uuid4()} ".encode() * 100
    run_id, path = _log_one(artifact_store, data)
    broken = {"flipped": data[:-1] + b"!", "truncated": data[:-10],
              "longer": data + b"extra"}[damage]
    artifact_store.damage(path, broken)

    response = artifact_store.get(path, artifact_store.headers("read"))
    assert response.status_code == 500
    assert response.json()["error_code"] == "DATA_LOSS"
    with artifact_store.client(), pytest.raises(MlflowException):
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="f.txt",
                                            dst_path=str(tmp_path / "down"))
    assert not (tmp_path / "down" / "f.txt").exists()
    # A client resolving the store URI directly is refused the same way, with no file left.
    with pytest.raises(MlflowException, match="verification"):
        artifact_store.repository()._download_file(path, str(tmp_path / "direct"))
    assert not (tmp_path / "direct").exists()

    # Logging the same content again repairs the blob: always on local disk (the
    # new copy replaces it), on S3 when its size is wrong (a HEAD shows that much).
    _log_one(artifact_store, data)
    repaired = artifact_store.get(path, artifact_store.headers("read"))
    if artifact_store.kind == "file" or damage != "flipped":
        assert repaired.content == data
    else:
        assert repaired.json()["error_code"] == "DATA_LOSS"


def test_delete_then_collect(artifact_store):
    headers = artifact_store.headers()
    shared = f"shared {uuid.uuid4()}".encode() * 1000
    doomed = f"doomed {uuid.uuid4()}".encode() * 1000
    base = f"gc-{uuid.uuid4().hex[:8]}"
    for path, data in ((f"{base}/keep.bin", shared), (f"{base}/dir/also.bin", shared),
                       (f"{base}/dir/doomed.bin", doomed)):
        assert artifact_store.put(path, data, headers).status_code == 200
    shared_digest = artifact_store.digest(f"{base}/keep.bin")
    repository = artifact_store.repository()

    delete = f"{artifact_store.url}/api/2.0/mlflow-artifacts/artifacts/{base}/dir"
    assert requests.delete(delete, headers=headers, timeout=30).status_code == 200
    assert [f.path for f in repository.list_artifacts(base)] == [f"{base}/keep.bin"]
    assert artifact_store.get(f"{base}/dir/doomed.bin", headers).status_code == 404

    # Within the grace period nothing is deleted: an upload may be about to refer to it.
    young = artifact_store.gc()
    assert young["deleted"] == 0 and young["young_kept"] >= 1
    before = artifact_store.stored_bytes()
    dry = artifact_store.gc("--grace-seconds", "0", "--dry-run")
    assert dry["deleted"] >= 1 and artifact_store.stored_bytes() == before
    report = artifact_store.gc("--grace-seconds", "0")
    assert report["deleted"] >= 1
    assert artifact_store.stored_bytes() <= before - len(doomed)
    # The blob still referenced by keep.bin survived, and reads back verified.
    assert artifact_store.get(f"{base}/keep.bin", headers).content == shared
    assert artifact_store.digest(f"{base}/keep.bin") == shared_digest == \
        hashlib.sha256(shared).hexdigest()


def test_client_resolving_a_sub_uri_shares_the_roots_blobs(artifact_store, tmp_path):
    data = f"shared {uuid.uuid4()}".encode() * 100
    assert artifact_store.put("sub-a/x.bin", data, artifact_store.headers()).status_code == 200
    before = artifact_store.stored_bytes()
    # No server in between: the repository finds the root's marker above the URI.
    below = artifact_store.repository(f"{artifact_store.uri}/sub-b/deeper")
    assert below.blobs.root == artifact_store.repository().location.base
    (tmp_path / "y.bin").write_bytes(data)
    below.log_artifact(str(tmp_path / "y.bin"))
    assert artifact_store.stored_bytes() == before
    (tmp_path / "down").mkdir()
    below.download_artifacts("y.bin", str(tmp_path / "down"))
    assert (tmp_path / "down" / "y.bin").read_bytes() == data
    assert [f.path for f in artifact_store.repository().list_artifacts("sub-b/deeper")] == \
        ["sub-b/deeper/y.bin"]


TRAVERSALS = [
    "../outside.txt", "a/../../outside.txt", "%2e%2e/outside.txt", "%252e%252e/outside.txt",
    "a/%2e%2e/%2e%2e/outside.txt", "..%2foutside.txt", "..%5coutside.txt", "a%5c..%5cb.txt",
    # (A leading control character never reaches the repository: MLflow strips it.)
    "a%00.txt", "a%00/b.txt", "a%0a.txt", "%2fetc/passwd", "%252fetc%252fpasswd",
    ".hokusai/blobs/x", "a/.hokusai/x", ".hokusai-tmp-x",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_is_refused(artifact_store, path):
    headers = artifact_store.headers()
    put = artifact_store.put(path, b"x", headers)
    assert put.status_code in (400, 404), (path, put.status_code, put.text)
    got = artifact_store.get(path, headers)
    assert got.status_code in (400, 404), (path, got.status_code, got.text)
    listed = requests.get(f"{artifact_store.url}/api/2.0/mlflow-artifacts/artifacts",
                          params={"path": path.replace("%2f", "/")}, headers=headers, timeout=30)
    assert listed.status_code in (200, 400) and "outside" not in listed.text
    if listed.status_code == 200:
        assert listed.json().get("files", []) == []
