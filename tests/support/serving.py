"""Models as the serving tests log them with the unmodified MLflow client, and a
client of the serving API that waits for a deployment to change state."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import infer_signature

from tests.support.callers import Http

DEADLINE = 240  # seconds a deployment may take to change state on this shared machine


def features_frame(features, prefix="f") -> pd.DataFrame:
    return pd.DataFrame(features, columns=[f"{prefix}{i}" for i in range(features.shape[1])])


class Api(Http):
    def __init__(self, server, key):
        super().__init__(server.url + "/api", {"X-API-Key": key}, timeout=120)

    def wait(self, deployment_id, until):
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            status = self("GET", f"/deployment/{deployment_id}").json()
            if until(status):
                return status
            time.sleep(0.5)
        raise AssertionError(f"deployment never reached the state: {status}")

    def deploy(self, **body):
        created = self("POST", "/deployment", json=body)
        assert created.status_code == 201, created.text
        return self.wait(created.json()["deployment_id"], lambda s: s["status"] == "ready")


def log_training_data(server, run, frame, scratch: Path) -> None:
    """The training data as the run's dataset input (SHAP's background, drift's
    reference), its source where the server's artifact store keeps it."""
    csv = scratch / "train.csv"
    frame.to_csv(csv, index=False)
    mlflow.log_artifact(str(csv), artifact_path="data")
    stored = Path(server.server.artifacts, run.info.experiment_id, run.info.run_id,
                  "artifacts", "data", "train.csv")
    assert stored.is_file()
    mlflow.log_input(mlflow.data.from_pandas(frame, source=str(stored), name="train"))


def log_model(model, frame, name, **kwargs):
    # No requirements: the server never installs them, and inferring them loads
    # the model in a Python process of MLflow's (about 5 s a model).
    info = mlflow.sklearn.log_model(model, name="model", input_example=frame[:3],
                                    signature=infer_signature(frame, model.predict(frame)),
                                    pip_requirements=[], **kwargs)
    return mlflow.register_model(info.model_uri, name)
