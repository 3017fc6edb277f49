"""Which database holds Hokusai's tables, and one pooled engine per URI."""

from __future__ import annotations

import functools
import os

import sqlalchemy

from mlflow_hokusai.errors import ConfigurationError

# Exported by `mlflow server` to its workers (mlflow.server.constants).
from mlflow_hokusai.mlflow_compat import BACKEND_STORE_ENV as MLFLOW_BACKEND_ENV

SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
PLUGIN_PREFIX = "hokusai+"


def to_sqlalchemy_url(uri: str) -> str:
    """Strip the store plugin's ``hokusai+`` prefix: the rest is a SQLAlchemy URL."""
    return uri[len(PLUGIN_PREFIX):] if uri.startswith(PLUGIN_PREFIX) else uri


def is_sql_uri(uri: str) -> bool:
    scheme = to_sqlalchemy_url(uri).split(":", 1)[0]
    return scheme.split("+", 1)[0] in SQL_SCHEMES


def resolve_database_uri(explicit: str | None = None) -> str:
    """The explicit URI, else HOKUSAI_DATABASE_URI, else the MLflow backend store."""
    from mlflow_hokusai.settings import get_settings

    for candidate in (explicit, get_settings().database_uri, os.environ.get(MLFLOW_BACKEND_ENV)):
        if candidate and is_sql_uri(candidate):
            return to_sqlalchemy_url(candidate)
        if candidate:
            raise ConfigurationError(
                f"Hokusai needs a SQL database, got {candidate.split(':', 1)[0]!r}: "
                "set HOKUSAI_DATABASE_URI or use a SQL backend store")
    raise ConfigurationError("No database: pass --database-uri or set HOKUSAI_DATABASE_URI")


@functools.lru_cache(maxsize=8)
def get_engine(url: str, connect_timeout: float = 3.0) -> sqlalchemy.engine.Engine:
    dialect = sqlalchemy.engine.make_url(url).get_backend_name()
    kwargs: dict = {"pool_pre_ping": True}
    if dialect == "sqlite":
        # Several workers share one file: wait for the writer rather than fail.
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    elif dialect == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": max(1, int(connect_timeout))}
        kwargs.update(pool_size=5, max_overflow=10, pool_timeout=connect_timeout)
    elif dialect == "mysql":
        kwargs["connect_args"] = {"connect_timeout": max(1, int(connect_timeout))}
    return sqlalchemy.create_engine(url, **kwargs)
