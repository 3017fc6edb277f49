"""The one blueprint of the model management API; the views_* modules add to it."""

from __future__ import annotations

import flask

from mlflow_hokusai.pipeline import current_principal
from mlflow_hokusai.rest import RestBlueprint

blueprint = RestBlueprint("hokusai_models", __name__, tag="models")


def hokusai():
    return flask.current_app.extensions["hokusai"]


def acting_user() -> str | None:
    principal = current_principal()
    return principal.username if principal else None
