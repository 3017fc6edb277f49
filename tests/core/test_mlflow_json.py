"""MLflow's JSON answers and bodies as Hokusai's layer in front of MLflow's
handlers sees them (mlflow_hokusai/rest/mlflow_json.py), on small Flask apps of
their own: database errors lose their SQL, fields MLflow reads without checking
are refused before its handler."""

from __future__ import annotations

import flask
import pytest
import sqlalchemy as sa
from mlflow.exceptions import MlflowException

from mlflow_hokusai.errors import DATABASE_ERROR_MESSAGE, FromMlflow, HokusaiError
from mlflow_hokusai.rest import mlflow_json
from mlflow_hokusai.web import error_response


def _database_error_message() -> str:
    """An MlflowException's message as MLflow's stores make one from a real
    database error (``str`` of SQLAlchemy's exception)."""
    engine = sa.create_engine("sqlite://")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT nothing FROM nowhere WHERE x = :x"), {"x": 1})
    except sa.exc.SQLAlchemyError as error:
        return f"(raw exception) {error}"
    raise AssertionError("the statement should have failed")


def test_mlflow_messages_carry_no_sql():
    """Hokusai's routes pass MLflow's message on (FromMlflow), MLflow's routes
    answer their own (scrubbed after the request): neither carries the SQL."""
    message = _database_error_message()
    assert "[SQL: SELECT nothing" in message
    assert FromMlflow(MlflowException(message)).detail == DATABASE_ERROR_MESSAGE
    assert FromMlflow(MlflowException("Run 'x' not found")).detail == "Run 'x' not found"

    app = flask.Flask(__name__)
    mlflow_json.init_app(app)

    @app.post("/api/2.0/mlflow/runs/search")
    def failing():
        return flask.Response(MlflowException(message).serialize_as_json(), status=500,
                              mimetype="application/json")

    answer = app.test_client().post("/api/2.0/mlflow/runs/search", json={})
    assert answer.status_code == 500 and answer.json["message"] == DATABASE_ERROR_MESSAGE
    assert "SELECT" not in answer.get_data(as_text=True)


@pytest.mark.parametrize(("path", "body", "problem"), [
    ("/ajax-api/3.0/mlflow/demo/generate", {"features": 5}, "features must be a list"),
    ("/ajax-api/3.0/mlflow/demo/generate", {"features": ["traces", 1]}, "features must be a list"),
    ("/api/2.0/mlflow/webhooks", {"events": [{"entity": "run", "action": "created"}]},
     "events.0.entity must be one of"),
    ("/api/3.0/mlflow/traces/link-prompts", {"prompt_versions": [{"name": "p", "version": "x"}]},
     "prompt_versions.0.version must be a whole number"),
])
def test_fields_mlflow_reads_unchecked_are_refused_before_its_handler(path, body, problem):
    """The field checks answer 400 naming the field, and MLflow's
    handler (which would raise a TypeError or ValueError: a 500) never runs."""
    app = flask.Flask(__name__)
    app.register_error_handler(HokusaiError, error_response)  # as Hokusai.init_app does
    mlflow_json.init_app(app)
    reached = []
    app.add_url_rule(path, "handler", lambda: reached.append(path) or {}, methods=["POST"])

    answer = app.test_client().post(path, json=body)
    assert answer.status_code == 400 and problem in answer.json["message"], answer.json
    assert reached == []
    assert app.test_client().post(path, json={}).status_code == 200 and reached == [path]
