"""Which resources a write request touched, read from its parts (no server)."""

from mlflow_hokusai.plugins.audit.resources import touched


def test_ids_come_from_path_query_body_and_creation_answers():
    assert touched("/api/2.0/mlflow/runs/create", {}, {}, {"experiment_id": "3"},
                   {"run": {"info": {"run_id": "abc", "experiment_id": "3"}}}) == \
        {"experiment_id": "3", "run_id": "abc"}
    assert touched("/api/2.0/mlflow/model-versions/create", {}, {}, {"name": "m"},
                   {"model_version": {"name": "m", "version": "2", "run_id": "r"}}) == \
        {"model_name": "m", "model_version": "2", "run_id": "r"}
    assert touched("/api/keys/k1", {"key_id": "k1"}, {}, None, None) == {"api_key_id": "k1"}
    # "name" is a model's only on registry routes (an experiment's name is not an id).
    assert touched("/api/2.0/mlflow/experiments/create", {}, {}, {"name": "e"},
                   {"experiment_id": "7"}) == {"experiment_id": "7"}


def test_odd_shapes_are_ignored_not_errors():
    answer = {"model_version": 3, "run": ["x"], "registered_model": None,
              "experiment_id": {"nested": 1}, "model_name": "m", "version": 4}
    assert touched("/api/models/evaluate", {}, {}, ["not", "a", "dict"], answer) == \
        {"model_name": "m", "model_version": "4"}
    assert touched("/x", {}, {"run_id": True}, {"run_id": ""}, None) == {}


def test_a_batch_of_records_with_different_resources_is_stored(tmp_path):
    import sqlalchemy

    from mlflow_hokusai.db import migrate
    from mlflow_hokusai.db.schema import audit_log
    from mlflow_hokusai.plugins.audit.recorder import AuditRecorder

    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/audit.db")
    migrate.upgrade(engine)
    recorder = AuditRecorder(engine, capacity=10)
    base = {"time": 1, "request_id": "r", "principal": "p", "key_id": "k", "status": 200,
            "action": "POST /x", "path": "/x"}
    recorder.record({**base, "experiment_id": "1"})
    recorder.record({**base, "run_id": "a" * 40, "model_name": "m"})  # overlong id: cut
    recorder.close()
    with engine.connect() as connection:
        rows = connection.execute(sqlalchemy.select(audit_log).order_by(audit_log.c.id)).all()
    assert [(r.experiment_id, r.run_id, r.model_name) for r in rows] == \
        [("1", None, None), (None, "a" * 32, "m")]
