"""What the unmodified MLflow client does against a server, start to finish,
checked at each step; run at the server's root and behind its URL prefixes."""

import uuid
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunTag


class AddN(mlflow.pyfunc.PythonModel):
    def __init__(self, n):
        self.n = n

    def predict(self, context, model_input, params=None):
        return model_input["x"] + self.n


def full_tracking_and_registry_flow(tracking, tmp_path):
    """Metrics, params, tags, artifacts up and down, a search, a registered
    version with an alias, the model loaded back and run."""
    name = f"flow-{uuid.uuid4().hex[:8]}"
    experiment_id = tracking.create_experiment(name)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_param("alpha", "0.5")
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.set_tag("team", "vision")
        tracking.log_batch(run.info.run_id, metrics=[Metric("acc", 0.9, 0, 0)],
                           params=[Param("depth", "4")], tags=[RunTag("stage", "dev")])
        notes = tmp_path / "notes.txt"
        notes.write_text("hello artifacts")
        mlflow.log_artifact(str(notes), artifact_path="docs")
        model_info = mlflow.pyfunc.log_model(name="model", python_model=AddN(5),
                                             pip_requirements=[])

    stored = tracking.get_run(run.info.run_id).data
    assert stored.params == {"alpha": "0.5", "depth": "4"}
    assert stored.metrics == {"loss": pytest.approx(1 / 3), "acc": pytest.approx(0.9)}
    assert stored.tags["team"] == "vision" and stored.tags["stage"] == "dev"
    assert [m.value for m in tracking.get_metric_history(run.info.run_id, "loss")] == \
        pytest.approx([1.0, 0.5, 1 / 3])

    found = tracking.search_runs([experiment_id], filter_string="params.alpha = '0.5'")
    assert [r.info.run_id for r in found] == [run.info.run_id]
    assert tracking.search_experiments(filter_string=f"name = '{name}'")[0].experiment_id == \
        experiment_id

    assert [a.path for a in tracking.list_artifacts(run.info.run_id, "docs")] == ["docs/notes.txt"]
    downloaded = mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                     artifact_path="docs/notes.txt",
                                                     dst_path=str(tmp_path / "down"))
    assert Path(downloaded).read_text() == "hello artifacts"

    version = mlflow.register_model(model_info.model_uri, name)
    assert version.version == "1"
    tracking.set_registered_model_alias(name, "champion", version.version)
    assert tracking.get_model_version_by_alias(name, "champion").run_id == run.info.run_id
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert list(loaded.predict(pd.DataFrame({"x": [1, 2]}))) == [6, 7]
