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


def version_owner_rows(database_uri: str, name: str) -> dict[int, dict]:
    """The owners of a model's live versions (hokusai_version_owners), by number."""
    with index_session(database_uri) as session:
        return {number: dict(reader.version_owner(session, "default", name, number))
                for number in version_rows(database_uri, name)}


def token_row(database_uri: str, token_id: str):
    with index_session(database_uri) as session:
        row = reader.token(session, token_id)
        return dict(row) if row else None


def run_lineage(database_uri: str, run_id: str):
    with index_session(database_uri) as session:
        return reader.run_lineage(session, run_id)


def service_answers(session, names, tokens, addresses) -> dict:
    """What the token, lineage and contributor routes answer (their service
    functions, read through ``session``), for these models, tokens and addresses:
    a NotFound is an answer too."""
    from unittest import mock

    from mlflow_hokusai.errors import HokusaiError
    from mlflow_hokusai.plugins.tokens import schemas, service

    def answer(call, *args):
        try:
            return call(*args)
        except HokusaiError as error:
            return (error.status, error.detail)

    page = schemas.Page()
    found = {}
    with mock.patch.object(service, "read", lambda query, registry=True: query(session)), \
            mock.patch.object(service, "_hokusai_engine", session.get_bind):
        for name in names:
            found[("model", name)] = answer(service.model_lineage, name, page)
            for number in range(1, 9):
                found[("version", name, number)] = answer(service.version_lineage, name, number)
        for token_id in tokens:
            found[("token", token_id)] = answer(service.by_token, token_id, page)
        for address in addresses:
            found[("contributor", address)] = answer(service.contributor_impact, address)
    return found


def rebuilt_answers(engine, names, tokens, addresses) -> dict:
    """The same answers after a full rebuild of the index, rolled back after."""
    from mlflow_hokusai.plugins.store import backfill

    with Session(engine) as session:
        backfill.rebuild(session)
        try:
            return service_answers(session, names, tokens, addresses)
        finally:
            session.rollback()
