"""Tracking and registry stores for ``hokusai+sqlite://``, ``hokusai+postgresql://``
and ``hokusai+mysql://`` (the ``mlflow.tracking_store`` and
``mlflow.model_registry_store`` entry points).

This module stays import-light: MLflow loads entry points while
``mlflow.tracking`` is still initialising, and importing its SQLAlchemy stores
here would be a circular import (the scheme would then silently be missing).
The builders import them when called.
"""

from __future__ import annotations

import os

from mlflow_hokusai.mlflow_compat import READ_REPLICA_ENV


def _read_replica():
    from mlflow_hokusai.db.engine import to_sqlalchemy_url

    uri = os.environ.get(READ_REPLICA_ENV)
    return to_sqlalchemy_url(uri) if uri else None


def tracking_store(store_uri: str, artifact_uri: str | None = None):
    from mlflow.store.tracking import DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH

    from mlflow_hokusai.db.engine import to_sqlalchemy_url
    from mlflow_hokusai.plugins.store.tracking import tracking_store_class

    # A client using the scheme directly passes no artifact root, as for MLflow's own.
    return tracking_store_class()(to_sqlalchemy_url(store_uri),
                                  artifact_uri or DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH,
                                  read_db_uri=_read_replica())


def registry_store(store_uri: str, tracking_uri: str | None = None):
    from mlflow_hokusai.db.engine import to_sqlalchemy_url
    from mlflow_hokusai.plugins.store.registry import registry_store_class

    return registry_store_class()(to_sqlalchemy_url(store_uri), read_db_uri=_read_replica())


# The dialects the registry index's triggers are written for (triggers.py).
PLAIN_SCHEMES = ("sqlite", "postgresql")


def init_app(flask_app, hokusai) -> None:
    """Under ``mlflow server --app-name hokusai`` plain database URIs get the
    Hokusai stores too, in the server process only: the server's own store
    registries and the in-process client's (which server code such as model
    registration from ``models:/`` URIs uses)."""
    from mlflow_hokusai.mlflow_compat import register_store_builders
    from mlflow_hokusai.plugins.auth.resources import READ
    from mlflow_hokusai.plugins.store import api
    from mlflow_hokusai.routes import Access

    for scheme in PLAIN_SCHEMES:
        register_store_builders(scheme, tracking_store, registry_store)
    flask_app.register_blueprint(api.blueprint)
    for template, kind, locator in api.RESOURCES:
        hokusai.routes.declare("GET", template, Access(kind, READ, locator))
