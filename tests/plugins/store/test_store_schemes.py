"""The hokusai+<db>:// tracking and registry store schemes."""

import subprocess
import uuid

import mlflow
import requests
import sqlalchemy
from mlflow import MlflowClient

from tests.support.mlflow_client import mlflow_client
from tests.support.servers import BIN


def test_db_upgrade_creates_mlflow_and_hokusai_schemas(tmp_path):
    uri = f"hokusai+sqlite:///{tmp_path}/fresh.db"
    result = subprocess.run([str(BIN / "hokusai"), "db", "upgrade", "--database-uri", uri],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "MLflow schema upgraded" in result.stdout
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/fresh.db")
    tables = set(sqlalchemy.inspect(engine).get_table_names())
    engine.dispose()
    assert {"experiments", "runs", "registered_models", "model_versions", "alembic_version",
            "hokusai_api_keys", "alembic_version_hokusai"} <= tables


def test_client_uses_the_scheme_directly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    client = MlflowClient(f"hokusai+sqlite:///{tmp_path}/direct.db")
    assert type(client._tracking_client.store).__name__ == "HokusaiTrackingStore"
    run = client.create_run(client.create_experiment("direct"))
    client.log_metric(run.info.run_id, "m", 1.5)
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.5}
    client.create_registered_model("direct-model")
    assert client.get_registered_model("direct-model").name == "direct-model"


def test_run_user_is_the_principal_not_the_client_claim(hokusai_scheme, monkeypatch):
    key = hokusai_scheme.keystore.create("trainer", owner="erin", scopes="read,write")[1]
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", key)
    client = MlflowClient(hokusai_scheme.url)
    experiment = client.create_experiment(f"owners-{uuid.uuid4().hex[:6]}")
    run = client.create_run(experiment, tags={"mlflow.user": "mallory"})
    assert run.info.user_id == "erin"
    stored = client.get_run(run.info.run_id)
    assert stored.info.user_id == "erin" and stored.data.tags["mlflow.user"] == "erin"
    with mlflow_client(hokusai_scheme.url, key), \
            mlflow.start_run(experiment_id=experiment) as fluent:
        pass
    assert client.get_run(fluent.info.run_id).info.user_id == "erin"


def test_job_api_refuses_the_plugin_scheme_clearly(hokusai_scheme):
    # MLflow's job runner only accepts its own database URIs (see README).
    response = requests.post(hokusai_scheme.url + "/ajax-api/3.0/jobs/search", json={},
                             headers={"X-API-Key": hokusai_scheme.create_key("read")},
                             timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["detail"] == "Job store requires a backend store URI"


def test_entry_point_module_is_import_light():
    # Importing the entry-point module must not import MLflow's SQLAlchemy stores
    # (a circular import while mlflow.tracking initialises would drop the scheme).
    code = ("import sys, mlflow_hokusai.plugins.store as s; "
            "print('mlflow.store.tracking.sqlalchemy_store' in sys.modules)")
    out = subprocess.run([str(BIN / "python"), "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
