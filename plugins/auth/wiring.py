"""How the auth plugin installs itself into an app: the gate is the first step
of the request pipeline, which wraps the whole server (see mlflow_hokusai.app);
``/api/keys``, grants and the hand-over of the principal to MLflow live inside
Flask."""

import flask
from mlflow.environment_variables import MLFLOW_ENABLE_WORKSPACES

from mlflow_hokusai import signals
from mlflow_hokusai.pipeline import current_principal
from mlflow_hokusai.plugins.auth import api, grants_api, permissions, visibility
from mlflow_hokusai.plugins.auth.authorize import Authorizer
from mlflow_hokusai.plugins.auth.gate import MarkPublic
from mlflow_hokusai.plugins.auth.grants import Grants
from mlflow_hokusai.plugins.auth.ownership import Ownership
from mlflow_hokusai.plugins.auth.tenants import TenantStep


def _hand_principal_to_mlflow():
    # MLflow reads the acting user from here (review queues, jobs, ...).
    principal = current_principal()
    if principal is not None:
        flask.g.mlflow_authenticated_user = principal.username
        flask.g.hokusai_principal = principal


def init_app(flask_app: flask.Flask, hokusai) -> None:
    for pattern in permissions.GATEWAY_CALLS:
        hokusai.routes.add_rule({"POST"}, pattern, hokusai.settings.gateway_scope)
    hokusai.pipeline.add(MarkPublic(hokusai.routes.public_paths), order=-20)
    hokusai.pipeline.add(hokusai.gate, order=0)
    hokusai.pipeline.add(TenantStep(MLFLOW_ENABLE_WORKSPACES.get()), order=1)
    ttl = hokusai.settings.key_cache_ttl_seconds
    hokusai.authorizer = Authorizer(hokusai.settings, Grants(hokusai.engine, ttl), Ownership(ttl))
    visibility.configure(hokusai.authorizer)
    # After the rate limits (10): a refused probe still counts against the key.
    hokusai.pipeline.add(hokusai.authorizer.native_step, order=20)
    flask_app.register_blueprint(api.blueprint)
    flask_app.register_blueprint(grants_api.blueprint)
    hokusai.connect(signals.model_changed, grants_api.model_follower(hokusai))
    flask_app.before_request(_hand_principal_to_mlflow)
    flask_app.before_request(hokusai.authorizer.flask_hook)
