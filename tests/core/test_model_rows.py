"""What Hokusai keeps under a registered model's name follows the model through
MLflow's own rename and delete routes, on both server kinds: deployments, batch
jobs, prediction counts and samples, monitored predictions, drift checks and
results, contributor claims and verified values. A later model of a deleted
model's name (another principal's) starts with none of them."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from mlflow_hokusai.db import schema
from mlflow_hokusai.db.engine import get_engine, to_sqlalchemy_url
from tests.support.callers import API

FAR = 4_102_444_800_000  # 2100: no scheduled check or retention reaches these rows


def _rows() -> dict[sa.Table, dict]:
    """One row of each table, as little as each needs, in states the server's
    background work leaves alone (a failed deployment, a failed batch job, a
    drift check due in 2100)."""
    tag = uuid.uuid4().hex
    return {
        schema.deployments: {"id": tag, "version": 1, "replicas": 1, "status": "failed",
                             "reason": "test row", "created_at": 1, "updated_at": 1},
        schema.batch_jobs: {"id": tag, "input_path": "x", "output_path": "y", "batch_size": 1,
                            "status": "failed", "created_at": 1, "updated_at": 1},
        schema.predictions: {"model_version": 1, "predicted_at": FAR},
        schema.prediction_samples: {"model_version": 1, "sampled_at": FAR,
                                    "inputs": '{"secret": 1}'},
        schema.monitored_predictions: {"model_version": 1, "predicted_at": FAR, "records": 1},
        schema.drift_checks: {"interval_minutes": 60, "period_hours": 1, "method": "psi",
                              "threshold": 0.1, "log_to_mlflow": False, "next_run_at": FAR,
                              "updated_at": 1},
        schema.drift_results: {"model_version": 1, "checked_at": FAR},
        schema.contributor_claims: {"version": 1, "address": "0x" + "ab" * 20,
                                    "proof": "admin", "set_at": 1},
        schema.verified_values: {"version": 1, "value": 0.5, "source": "measured",
                                 "recorded_at": 1},
    }


def _count(engine, name: str) -> dict[str, int]:
    with engine.connect() as connection:
        return {table.name: connection.execute(
            sa.select(sa.func.count()).select_from(table)
            .where(table.c.model_name == name)).scalar_one() for table in _rows()}


def test_rows_follow_a_renamed_model_and_go_with_a_deleted_one(team):
    server, owner, other, _, tag = team
    engine = get_engine(to_sqlalchemy_url(server.database_uri))
    name, renamed = f"rows-{tag}", f"rows-renamed-{tag}"
    owner.ok("POST", f"{API}/registered-models/create", json={"name": name})
    with engine.begin() as connection:
        for table, values in _rows().items():
            connection.execute(table.insert().values(model_name=name, **values))
    everything = {table.name: 1 for table in _rows()}
    none = {table.name: 0 for table in _rows()}
    assert _count(engine, name) == everything

    # MLflow answers a rename to the same name 200: it must move (or drop) nothing.
    owner.ok("POST", f"{API}/registered-models/rename", json={"name": name, "new_name": name})
    assert _count(engine, name) == everything

    owner.ok("POST", f"{API}/registered-models/rename", json={"name": name, "new_name": renamed})
    assert _count(engine, name) == none
    assert _count(engine, renamed) == everything

    owner.ok("DELETE", f"{API}/registered-models/delete", json={"name": renamed})
    assert _count(engine, renamed) == none

    # Another principal takes the name: nothing of the first model's reaches it.
    other.ok("POST", f"{API}/registered-models/create", json={"name": renamed})
    assert _count(engine, renamed) == none


def test_a_refused_delete_moves_nothing(team):
    server, owner, other, _, tag = team
    engine = get_engine(to_sqlalchemy_url(server.database_uri))
    name = f"rows-kept-{tag}"
    owner.ok("POST", f"{API}/registered-models/create", json={"name": name})
    with engine.begin() as connection:
        connection.execute(schema.prediction_samples.insert().values(
            model_name=name, **_rows()[schema.prediction_samples]))
    refused = other("DELETE", f"{API}/registered-models/delete", json={"name": name})
    assert refused.status_code == 403, refused.text
    missing = owner("DELETE", f"{API}/registered-models/delete", json={"name": name + "-x"})
    assert missing.status_code == 404, missing.text
    assert _count(engine, name)["hokusai_prediction_samples"] == 1
