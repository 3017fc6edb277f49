"""MLflow's own schema, for ``hokusai db upgrade`` on a ``hokusai+`` backend URI
(``mlflow db upgrade`` does not know the plugin scheme)."""

from __future__ import annotations


def upgrade_mlflow_schema(url: str) -> None:
    from mlflow.store.db.utils import create_sqlalchemy_engine_with_retry

    from mlflow_hokusai.mlflow_compat import create_or_upgrade_mlflow_tables

    engine = create_sqlalchemy_engine_with_retry(url)
    try:
        create_or_upgrade_mlflow_tables(engine)
    finally:
        engine.dispose()
