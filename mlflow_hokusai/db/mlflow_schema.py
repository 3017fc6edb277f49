"""MLflow's own schema, for ``hokusai db upgrade`` on a ``hokusai+`` backend URI
(``mlflow db upgrade`` does not know the plugin scheme)."""

from __future__ import annotations


def upgrade_mlflow_schema(url: str) -> None:
    from mlflow.store.db.utils import (_all_tables_exist, _initialize_tables, _upgrade_db,
                                       create_sqlalchemy_engine_with_retry)

    engine = create_sqlalchemy_engine_with_retry(url)
    try:
        if _all_tables_exist(engine):
            _upgrade_db(engine)
        else:
            _initialize_tables(engine)
    finally:
        engine.dispose()
