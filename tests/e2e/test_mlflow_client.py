"""The unmodified MLflow client, authenticated with MLFLOW_TRACKING_TOKEN, does
everything it did against a stock server."""

import uuid

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.support.flows import full_tracking_and_registry_flow
from tests.support.mlflow_client import mlflow_client


@pytest.fixture
def tracking(any_server):
    with mlflow_client(any_server.url, any_server.create_key("read,write")) as client:
        yield client


def test_full_tracking_and_registry_flow(tracking, tmp_path):
    full_tracking_and_registry_flow(tracking, tmp_path)


def test_client_without_token_gets_a_clean_error(any_server, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    with pytest.raises(MlflowException, match="API key required"):
        MlflowClient(any_server.url).search_experiments()


def test_read_key_cannot_write_through_the_client(any_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", any_server.create_key("read"))
    client = MlflowClient(any_server.url)
    assert client.search_experiments()  # reading works
    with pytest.raises(MlflowException, match="lacks the 'write' scope"):
        client.create_experiment(f"nope-{uuid.uuid4().hex[:6]}")
