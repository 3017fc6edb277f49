"""Reading the registry index a server keeps, straight from its database."""

from __future__ import annotations

import contextlib

from sqlalchemy.orm import Session

from mlflow_hokusai.db.engine import get_engine, to_sqlalchemy_url
from mlflow_hokusai.plugins.store import reader


@contextlib.contextmanager
def index_session(database_uri: str):
    with Session(get_engine(to_sqlalchemy_url(database_uri))) as session:
        yield session


def version_rows(database_uri: str, name: str) -> dict[int, dict]:
    with index_session(database_uri) as session:
        return {row["version"]: dict(row) for row in reader.versions(session, name)}


def token_row(database_uri: str, token_id: str):
    with index_session(database_uri) as session:
        row = reader.token(session, token_id)
        return dict(row) if row else None


def run_lineage(database_uri: str, run_id: str):
    with index_session(database_uri) as session:
        return reader.run_lineage(session, run_id)
