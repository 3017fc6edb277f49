"""API-key authentication: the deny-by-default gate, the key store and ``/api/keys``.

The gate itself wraps the whole server (see mlflow_hokusai.app); this plugin's
``init_app`` adds what lives inside Flask.
"""

import flask

from mlflow_hokusai.plugins.auth import api
from mlflow_hokusai.plugins.auth.gate import current_principal


def _hand_principal_to_mlflow():
    # MLflow reads the acting user from here (review queues, jobs, ...).
    principal = current_principal.get()
    if principal is not None:
        flask.g.mlflow_authenticated_user = principal.username
        flask.g.hokusai_principal = principal


def init_app(flask_app: flask.Flask, hokusai) -> None:
    flask_app.register_blueprint(api.blueprint)
    flask_app.before_request(_hand_principal_to_mlflow)
