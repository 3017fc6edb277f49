"""An existing plain-MLflow database gets Hokusai's tables and a full registry
index in place, without losing data, and workers starting together on it index
it once."""

import concurrent.futures
import json
import subprocess
import uuid

import pytest
import requests
import sqlalchemy
from mlflow import MlflowClient

from tests.support.index_helpers import token_row, version_rows
from tests.support.servers import BIN, MlflowServer

ALICE = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
MLFLOW_TABLES = ("experiments", "runs", "params", "registered_models", "model_versions",
                 "model_version_tags", "registered_model_tags")


@pytest.fixture(params=["sqlite", "postgresql"])
def plain_database(request, tmp_path, make_postgres_database):
    """A database filled by stock MLflow (its own store: no Hokusai in this process)."""
    uri = f"sqlite:///{tmp_path}/plain.db" if request.param == "sqlite" \
        else make_postgres_database()
    client = MlflowClient(uri)
    assert type(client._get_registry_client().store).__name__ == "SqlAlchemyStore"
    run = client.create_run(client.create_experiment("legacy"))
    client.log_param(run.info.run_id, "alpha", "1")
    client.create_registered_model("legacy-model", tags={"benchmark_direction": "lower"})
    for tags in ({"hokusai_token_id": "LEGACY", "benchmark_value": "0.5"},
                 {"benchmark_value": "0.3", "hokusai_contributor": ALICE},
                 {"benchmark_value": "0.25"},  # deleted below
                 {"benchmark_value": "0.2", "hokusai_contributor": ALICE},
                 {"benchmark_value": "not-a-number"}):  # stock MLflow never checked this
        client.create_model_version("legacy-model", "mlflow-artifacts:/m", run_id=run.info.run_id,
                                    tags=tags)
    client.delete_model_version("legacy-model", "3")
    client.create_registered_model("other-model")
    client.create_model_version("other-model", "mlflow-artifacts:/o",
                                tags={"hokusai_token_id": "legacy"})  # a conflicting binding
    return uri


def _counts(uri):
    engine = sqlalchemy.create_engine(uri)
    with engine.connect() as connection:
        counts = {t: connection.execute(sqlalchemy.text(f"SELECT count(*) FROM {t}")).scalar()
                  for t in MLFLOW_TABLES}
    engine.dispose()
    return counts


def test_upgrade_indexes_an_existing_database_in_place(plain_database):
    before = _counts(plain_database)
    result = subprocess.run([str(BIN / "hokusai"), "db", "upgrade", "--database-uri",
                             plain_database], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert _counts(plain_database) == before  # MLflow's data untouched
    rows = version_rows(plain_database, "legacy-model")
    assert sorted(rows) == [1, 2, 4, 5]  # the deleted version is not indexed
    assert rows[2]["improvement"] == pytest.approx(0.2)  # lower is better: 0.5 -> 0.3
    assert rows[4]["parent_version"] == 2 and rows[4]["baseline_value"] == 0.3
    assert rows[4]["improvement"] == pytest.approx(0.1)
    assert rows[5]["benchmark_value"] is None and rows[5]["parent_version"] == 4
    assert token_row(plain_database, "legacy")["model_name"] == "legacy-model"
    assert version_rows(plain_database, "other-model")[1]["token_id"] is None
    assert "Not indexed: Invalid benchmark_value 'not-a-number'" in result.stderr


def test_workers_starting_together_index_it_once(plain_database, tmp_path):
    key = json.loads(subprocess.run(
        [str(BIN / "hokusai"), "keys", "bootstrap", "--json", "--database-uri", plain_database],
        check=True, capture_output=True, text=True).stdout)["key"]
    engine = sqlalchemy.create_engine(plain_database)
    with engine.connect() as connection:  # keys exist, the index does not yet
        assert connection.execute(sqlalchemy.text(
            "SELECT count(*) FROM hokusai_model_versions")).scalar() == 0
    engine.dispose()
    server = MlflowServer(tmp_path, plain_database, workers=4).start()
    try:
        def search(_):
            return requests.get(
                f"{server.url}/api/2.0/mlflow/registered-models/search",
                headers={"X-API-Key": key}, timeout=60).status_code

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            assert set(pool.map(search, range(32))) == {200}
        assert sorted(version_rows(plain_database, "legacy-model")) == [1, 2, 4, 5]
        name = f"new-{uuid.uuid4().hex[:6]}"
        answer = requests.post(f"{server.url}/api/2.0/mlflow/registered-models/create",
                               json={"name": name}, headers={"X-API-Key": key}, timeout=60)
        assert answer.status_code == 200, answer.text
    finally:
        server.stop()
