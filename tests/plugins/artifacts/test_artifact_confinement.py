"""Issue 14, item 6: an experiment created through the server may not put its
artifacts on the server's disk outside the server's artifact roots."""

from __future__ import annotations

import os
import uuid

import pytest
import requests

from mlflow_hokusai.plugins.artifacts import confinement
from mlflow_hokusai.plugins.artifacts.locations import InvalidLocation


@pytest.fixture
def environ(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "escape").symlink_to(tmp_path / "elsewhere")
    return {"_MLFLOW_SERVER_ARTIFACT_ROOT": "mlflow-artifacts:/",
            "_MLFLOW_SERVER_ARTIFACT_DESTINATION": str(tmp_path / "root")}


def test_local_locations_must_resolve_inside_a_local_root(tmp_path, environ):
    root = tmp_path / "root"
    for inside in (str(root), f"{root}/1", f"file://{root}/1", f"file://localhost{root}/a/b",
                   f"{root}/x/../y", "s3://bucket/anywhere", "gs://b/p",
                   "mlflow-artifacts:/elsewhere", "hokusai+s3://bucket/x"):
        confinement.check(inside, environ)
    for outside in ("/tmp/elsewhere", f"file://{tmp_path}/elsewhere", f"{root}/../elsewhere",
                    f"{root}/%2e%2e/elsewhere", f"{root}x", f"{root}/escape/in", "relative/dir",
                    f"file://otherhost{root}", f"{root}/\x00"):
        with pytest.raises(InvalidLocation):
            confinement.check(outside, environ)


def test_file_uri_roots_count_and_clients_outside_a_server_are_free(tmp_path, environ):
    confinement.check(f"{tmp_path}/elsewhere", {})  # a client of a hokusai+ store URI
    environ["_MLFLOW_SERVER_ARTIFACT_ROOT"] = f"file://{tmp_path}/other"
    confinement.check(f"{tmp_path}/other/1", environ)
    environ["_MLFLOW_SERVER_ARTIFACT_DESTINATION"] = f"hokusai+file://{tmp_path}/root"
    with pytest.raises(InvalidLocation):  # only through the hokusai+file scheme
        confinement.check(f"{tmp_path}/root/1", environ)


def test_the_server_refuses_a_local_artifact_location_outside_its_roots(uvicorn_sqlite,
                                                                        tmp_path):
    server = uvicorn_sqlite
    headers = {"Authorization": f"Bearer {server.create_key('read,write')}"}
    url = f"{server.url}/api/2.0/mlflow/experiments/create"
    destination = server.server.artifacts
    for location in (str(tmp_path / "elsewhere"), f"file://{tmp_path}/elsewhere",
                     f"{destination}/../elsewhere"):
        answer = requests.post(url, headers=headers, timeout=30, json={
            "name": f"out-{uuid.uuid4().hex[:8]}", "artifact_location": location})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "outside the server's artifact roots" in answer.json()["message"]
    assert not os.path.exists(tmp_path / "elsewhere")
    for location in (f"{destination}/inside-{uuid.uuid4().hex[:6]}", "s3://bucket/prefix"):
        answer = requests.post(url, headers=headers, timeout=30, json={
            "name": f"in-{uuid.uuid4().hex[:8]}", "artifact_location": location})
        assert answer.status_code == 200, answer.text
