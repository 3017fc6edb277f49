"""Issue 14, item 13: a run's ``mlflow.user`` tag is the principal that created
it; through the server it can be neither changed nor deleted afterwards."""

from __future__ import annotations

import uuid

import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import RunTag
from mlflow.exceptions import MlflowException


def test_mlflow_user_cannot_be_rewritten(each_server_kind, monkeypatch):
    server = each_server_kind
    owner = f"erin-{uuid.uuid4().hex[:6]}"
    key = server.keystore.create("w", owner=owner, scopes="read,write")[1]
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", key)
    client = MlflowClient(server.url)
    run_id = client.create_run(client.create_experiment(f"p-{uuid.uuid4().hex[:8]}")).info.run_id

    attempts = [
        lambda: client.set_tag(run_id, "mlflow.user", "mallory"),
        lambda: client.log_batch(run_id, tags=[RunTag("other", "x"),
                                               RunTag("mlflow.user", "mallory")]),
        lambda: client.delete_tag(run_id, "mlflow.user"),
    ]
    for attempt in attempts:
        with pytest.raises(MlflowException, match=r"mlflow\.user tag is the principal") as refused:
            attempt()
        assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    answer = requests.post(f"{server.url}/api/2.0/mlflow/runs/set-tag", timeout=30,
                           headers={"Authorization": f"Bearer {key}"},
                           json={"run_id": run_id, "key": "mlflow.user", "value": "mallory"})
    assert answer.status_code == 400 and answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    client.set_tag(run_id, "mlflow.user", owner)  # the same value: harmless
    client.log_batch(run_id, tags=[RunTag("stage", "a")])
    tags = client.get_run(run_id).data.tags
    assert tags["mlflow.user"] == owner and tags["stage"] == "a" and "other" not in tags
