"""The unmodified MLflow client on a test server.

The client and MLflow's fluent API (``mlflow.start_run``, ``log_model``) read
the process-wide tracking URI and the ``MLFLOW_TRACKING_TOKEN`` variable: a test
sets both for a block and leaves them as it found them, so that the next test
in the process talks to its own server with its own key.
"""

from __future__ import annotations

import contextlib

import mlflow
import pytest
from mlflow import MlflowClient


@contextlib.contextmanager
def mlflow_client(url: str, key: str):
    """The client and the fluent API on ``url`` with ``key``, for the block."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_TOKEN", key)
        mlflow.set_tracking_uri(url)
        try:
            yield MlflowClient(url)
        finally:
            mlflow.set_tracking_uri(None)
