"""A token's benchmark: its metric, direction, target column and dataset. The
dataset is copied into the server's artifact store when the spec is set, under
a content-addressed path, and its SHA-256 recorded: a measurement reads only
that copy and refuses it if its digest no longer matches."""

from __future__ import annotations

import hashlib
import os
import posixpath
import tempfile
import time

import sqlalchemy as sa

from mlflow_hokusai.db.schema import token_benchmarks as B
from mlflow_hokusai.errors import BadRequest, EvaluationRefused, NotFound
from mlflow_hokusai.plugins.auth import visibility
from mlflow_hokusai.plugins.auth.authorize import require
from mlflow_hokusai.plugins.auth.resources import MANAGE
from mlflow_hokusai.plugins.models import artifacts, datasets
from mlflow_hokusai.plugins.models.registry import when
from mlflow_hokusai.plugins.store import reader
from mlflow_hokusai.plugins.store.access import read

STORE_ROOT = "mlflow-artifacts:/"
STORE_PREFIX = "hokusai-benchmarks"


def digest_of(path: str) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return "sha256:" + sha.hexdigest()


def bound_token(token_id: str) -> dict:
    token = read(lambda session: reader.token(session, token_id))
    if token is None or visibility.hidden("registered_model", token["model_name"]):
        raise NotFound(f"Token not found: {token_id}")
    return token


def _check_columns(path: str, target: str) -> None:
    frame = datasets.read(path)
    if target not in frame.columns:
        raise BadRequest(f"Target column {target!r} is not in the dataset; columns: "
                         f"{', '.join(map(str, frame.columns))}")
    if frame.empty or len(frame.columns) < 2:
        raise BadRequest("The dataset needs rows and at least one feature column")


def _store_copy(local: str, token_key: str, digest: str) -> str:
    repo, base = artifacts.repository(STORE_ROOT)
    folder = posixpath.join(STORE_PREFIX, token_key, digest.split(":")[1])
    repo.log_artifact(local, posixpath.join(base, folder) if base else folder)
    return posixpath.join(STORE_ROOT.rstrip("/"), folder, os.path.basename(local))


def prepare(token_key: str, spec, principal: str | None) -> dict:
    """The row of ``spec`` (schemas.BenchmarkSpec), its dataset checked and
    copied into the artifact store (content-addressed: a copy that is never
    used costs only its bytes)."""
    with tempfile.TemporaryDirectory() as scratch:
        local = datasets.fetch(spec.dataset_uri, _settings(), scratch)
        _check_columns(local, spec.target_column)
        digest = digest_of(local)
        stored = _store_copy(local, token_key, digest)
    return {"metric": spec.metric, "direction": spec.direction,
            "target_column": spec.target_column, "source_uri": spec.dataset_uri,
            "dataset_uri": stored, "dataset_digest": digest, "set_by": principal,
            "set_at": int(time.time() * 1000)}


def save(engine, token_key: str, row: dict) -> None:
    with engine.begin() as connection:
        if connection.execute(sa.update(B).where(B.c.token_key == token_key)
                              .values(row)).rowcount == 0:
            connection.execute(sa.insert(B).values(token_key=token_key, **row))


def set_spec(engine, token_id: str, spec, principal: str | None) -> dict:
    """Set the token's benchmark; the caller needs MANAGE on the token's model."""
    token = bound_token(token_id)
    require("registered_model", token["model_name"], MANAGE)
    row = prepare(token["token_key"], spec, principal)
    save(engine, token["token_key"], row)
    return _answer(token, row)


def get_spec(engine, token_id: str) -> dict:
    token = bound_token(token_id)
    row = load(engine, token["token_key"])
    if row is None:
        raise NotFound(f"Token '{token['token_id']}' has no benchmark; its model's MANAGE "
                       "holder sets one with PUT /api/tokens/{token}/benchmark")
    return _answer(token, row)


def load(engine, token_key: str):
    with engine.connect() as connection:
        return connection.execute(sa.select(B).where(B.c.token_key == token_key)
                                  ).mappings().first()


def fetch_copy(row, scratch: str) -> str:
    """The stored dataset, downloaded into ``scratch``, its digest checked."""
    path = row["dataset_uri"][len(STORE_ROOT.rstrip("/")):].lstrip("/")
    repo, base = artifacts.repository(STORE_ROOT)
    local = artifacts.download(repo, posixpath.join(base, path) if base else path, scratch)
    if digest_of(local) != row["dataset_digest"]:
        raise EvaluationRefused("The stored benchmark dataset no longer matches its digest; "
                                "set the benchmark again", reason="dataset digest mismatch")
    return local


def _settings():
    import flask

    return flask.current_app.extensions["hokusai"].settings


def _answer(token: dict, row) -> dict:
    return {"token_id": token["token_id"], "model_name": token["model_name"],
            **{k: row[k] for k in ("metric", "direction", "target_column", "source_uri",
                                   "dataset_uri", "dataset_digest", "set_by")},
            "set_at": when(row["set_at"])}
