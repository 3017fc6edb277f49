"""Which database holds Hokusai's tables, and one pooled engine per URI."""

from __future__ import annotations

import collections
import os
import threading

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


MAX_ENGINES = 8
_engines: collections.OrderedDict[tuple[str, float], sqlalchemy.engine.Engine] = \
    collections.OrderedDict()
_engines_lock = threading.Lock()


def get_engine(url: str, connect_timeout: float = 3.0) -> sqlalchemy.engine.Engine:
    """One engine per URL and timeout in the process, the last MAX_ENGINES used.
    One pushed out is disposed: its idle pooled connections close (a process
    visiting many databases, as the test suite does, held them until garbage
    collection); a holder of it still works, connecting anew."""
    key = (url, connect_timeout)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is not None:
            _engines.move_to_end(key)
            return engine
        engine = _engines[key] = _create_engine(url, connect_timeout)
        evicted = _engines.popitem(last=False)[1] if len(_engines) > MAX_ENGINES else None
    if evicted is not None:
        evicted.dispose()
    return engine


def _pool_setting(name: str, default: int) -> int:
    """MLflow's store pools are sized by its documented variables: Hokusai's
    follows them, so that one setting bounds a worker's connections to a shared
    server (SQLAlchemy's defaults, 5 and 10, when unset, as in MLflow)."""
    from mlflow import environment_variables

    try:
        value = getattr(environment_variables, name).get()
    except ValueError as error:  # MLflow's message names the variable and the value
        raise ConfigurationError(f"{error}: a whole number is needed") from None
    if value is not None and value < 0:
        raise ConfigurationError(f"{name} must not be negative, got {value}")
    return value or default  # 0, as unset: MLflow passes only a non-zero size on


def _create_engine(url: str, connect_timeout: float) -> sqlalchemy.engine.Engine:
    dialect = sqlalchemy.engine.make_url(url).get_backend_name()
    kwargs: dict = {"pool_pre_ping": True}
    if dialect == "sqlite":
        # Several workers share one file: wait for the writer rather than fail.
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    elif dialect == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": max(1, int(connect_timeout))}
        kwargs.update(pool_size=_pool_setting("MLFLOW_SQLALCHEMYSTORE_POOL_SIZE", 5),
                      max_overflow=_pool_setting("MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW", 10),
                      pool_timeout=connect_timeout)
    elif dialect == "mysql":
        kwargs["connect_args"] = {"connect_timeout": max(1, int(connect_timeout))}
    return sqlalchemy.create_engine(url, **kwargs)
