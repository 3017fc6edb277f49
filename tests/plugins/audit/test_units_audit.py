"""Which resources a write request touched, read from its parts (no server)."""

import sqlalchemy

from mlflow_hokusai.db import migrate
from mlflow_hokusai.db.schema import audit_log
from mlflow_hokusai.plugins.audit.recorder import AuditRecorder
from mlflow_hokusai.plugins.audit.resources import touched

BASE = {"time": 1, "request_id": "r", "principal": "p", "key_id": "k", "status": 200,
        "action": "POST /x", "path": "/x"}


def _sqlite(tmp_path):
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/audit.db")
    migrate.upgrade(engine)
    return engine


def _rows(engine):
    with engine.connect() as connection:
        return connection.execute(sqlalchemy.select(audit_log).order_by(audit_log.c.id)).all()


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
    engine = _sqlite(tmp_path)
    recorder = AuditRecorder(engine, tmp_path / "spool")
    recorder.record({**BASE, "experiment_id": "1"})
    recorder.record({**BASE, "run_id": "a" * 40, "model_name": "m"})  # overlong id: cut
    recorder.close()
    assert [(r.experiment_id, r.run_id, r.model_name) for r in _rows(engine)] == \
        [("1", None, None), (None, "a" * 32, "m")]


def _asgi_adapter(app, events):
    from mlflow_hokusai.asgi import AsgiAdapter
    from mlflow_hokusai.bodies import BodyLimit
    from mlflow_hokusai.pipeline import Pipeline

    pipeline = Pipeline()
    pipeline.on_shutdown(lambda: events.append("hooks ran"))
    pipeline.before_answer(lambda context, status: (lambda: events.append(f"work {status}"))
                           if context.request.method == "POST" else None)
    return AsgiAdapter(app, pipeline, BodyLimit(16.0))


def test_uvicorn_lifespan_shutdown_runs_the_shutdown_hooks_before_it_completes():
    import anyio

    events = []

    async def app(scope, receive, send):  # a lifespan as Starlette answers it
        assert scope["type"] == "lifespan"
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})

    async def main():
        incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

        async def receive():
            return next(incoming)

        async def send(message):
            events.append(message["type"])

        await _asgi_adapter(app, events)({"type": "lifespan"}, receive, send)

    anyio.run(main)
    assert events == ["lifespan.startup.complete", "hooks ran", "lifespan.shutdown.complete"]


def test_answer_hooks_work_is_done_before_the_answer_starts():
    import anyio

    events = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def main(method):
        async def send(message):
            events.append(message["type"])

        scope = {"type": "http", "method": method, "path": "/x", "headers": [],
                 "query_string": b"", "client": ("127.0.0.1", 1)}
        await _asgi_adapter(app, events)(scope, None, send)

    anyio.run(main, "POST")
    anyio.run(main, "GET")
    assert events == ["work 201", "http.response.start", "http.response.body",
                      "http.response.start", "http.response.body"]


def test_one_spool_directory_per_database(tmp_path, monkeypatch):
    from mlflow_hokusai.plugins.audit.spool import directory_for

    pg = "postgresql://u:{}@db/mlflow"
    assert directory_for(pg.format("a"), None) == directory_for(pg.format("b"), None)
    assert directory_for(pg.format("a"), None) != directory_for("postgresql://u@db/other", None)
    assert directory_for(pg.format("a"), str(tmp_path)).parent == tmp_path
    monkeypatch.chdir(tmp_path)
    here = directory_for("sqlite:///mlflow.db", None)
    assert here == directory_for(f"sqlite:///{tmp_path}/mlflow.db", None)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert directory_for("sqlite:///mlflow.db", None) != here
