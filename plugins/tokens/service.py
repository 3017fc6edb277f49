"""What the tokenized-model endpoints do, over the server's own stores and the
registry index (plugins/store): every lookup is indexed."""

from __future__ import annotations

import base64

from mlflow.entities.model_registry import ModelVersionTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

from mlflow_hokusai.errors import BadRequest, Conflict, NotFound, ValidationFailed
from mlflow_hokusai.pipeline import current_principal
from mlflow_hokusai.plugins.auth import visibility
from mlflow_hokusai.plugins.auth.authorize import require
from mlflow_hokusai.plugins.auth.resources import EDIT, MANAGE
from mlflow_hokusai.plugins.benchmarks import specs, verified
from mlflow_hokusai.plugins.contributors.proof import address_verified
from mlflow_hokusai.plugins.models.blueprint import hokusai
from mlflow_hokusai.plugins.models.registry import ensure_model, registry_store, when
from mlflow_hokusai.plugins.models.sources import resolve
from mlflow_hokusai.plugins.store import deltaone, reader, tags
from mlflow_hokusai.plugins.store.access import read
from mlflow_hokusai.plugins.store.ethereum import InvalidAddress, normalize_address
from mlflow_hokusai.plugins.tokens import schemas
from mlflow_hokusai.values import MAX_VERSION

_ALREADY_EXISTS = ErrorCode.Name(RESOURCE_ALREADY_EXISTS)


# -- pages -------------------------------------------------------------------------
def _after(page: schemas.Page) -> int | None:
    if page.page_token is None:
        return None
    try:
        after = int(base64.urlsafe_b64decode(page.page_token.encode()).decode())
        if not 0 <= after <= MAX_VERSION:
            raise ValueError(after)
        return after
    except ValueError:
        raise ValidationFailed([{"loc": ["query", "page_token"], "msg": "Invalid page token",
                                 "type": "value_error"}]) from None


def _next_token(rows: list, limit: int) -> str | None:
    return base64.urlsafe_b64encode(str(rows[limit - 1]["version"]).encode()).decode() \
        if len(rows) > limit else None


# -- registration ------------------------------------------------------------------
def register(body: schemas.RegisterTokenized) -> dict:
    require("registered_model", body.model_name, EDIT)  # creating one needs only `write`
    bound = read(lambda session: reader.token(session, body.token_id))
    if bound is not None and bound["model_name"] != body.model_name:
        raise Conflict(f"Token '{body.token_id}' is already registered to model "
                       f"'{bound['model_name']}'")
    source = resolve(body.model_uri)
    store = registry_store()
    benchmark = _benchmark(body)
    created_model = ensure_model(store, body.model_name, body.description)
    version_tags = {**(body.tags or {}), tags.TOKEN_ID: body.token_id,
                    tags.BENCHMARK_METRIC: body.metric_name,
                    tags.BENCHMARK_VALUE: repr(body.baseline_value),
                    "hokusai_status": "registered"}
    if body.contributor_address:
        version_tags[tags.CONTRIBUTOR] = body.contributor_address
    try:
        version = store.create_model_version(
            body.model_name, source.source, run_id=source.run_id,
            tags=[ModelVersionTag(k, v) for k, v in version_tags.items()],
            description=body.description, model_id=source.model_id)
    except MlflowException as error:
        if created_model:  # nothing half-written: no empty model left behind
            store.delete_registered_model(body.model_name)
        if error.error_code == _ALREADY_EXISTS:  # a token bound meanwhile
            raise Conflict(error.message) from None
        raise
    if benchmark is not None:
        specs.save(_hokusai_engine(), body.token_id.lower(), benchmark)
    return {"benchmark_digest": benchmark["dataset_digest"] if benchmark else None,
            "model_name": body.model_name, "version": int(version.version),
            "token_id": body.token_id, "metric_name": body.metric_name,
            "baseline_value": body.baseline_value, "model_uri": body.model_uri,
            "status": "registered", "registered_at": when(version.creation_timestamp)}


def _benchmark(body: schemas.RegisterTokenized) -> dict | None:
    """The token's benchmark row, its dataset copied, before anything is written.
    Setting it needs MANAGE on the model, unless this call creates the model."""
    if body.benchmark is None:
        return None
    if read(lambda session: reader.model(session, body.model_name)) is not None:
        require("registered_model", body.model_name, MANAGE)
    principal = current_principal()
    return specs.prepare(body.token_id.lower(), body.benchmark,
                         principal.username if principal else None)


# -- lookups -----------------------------------------------------------------------
def by_token(token_id: str, page: schemas.Page) -> dict:
    after = _after(page)

    def query(session):
        token = reader.token(session, token_id)
        if token is None:
            return None
        name = token["model_name"]
        rows = reader.versions(session, name, after=after, limit=page.max_results + 1)
        shown = rows[:page.max_results]
        return token, rows, shown, reader.mlflow_states(
            session, name, [row["version"] for row in shown])

    found = read(query)
    if found is None or visibility.hidden("registered_model", found[0]["model_name"]):
        raise NotFound(f"Token not found: {token_id}")  # a model one may not read: the same
    token, rows, shown, states = found
    return {"token_id": token["token_id"], "model_name": token["model_name"],
            "metric_name": token["metric_name"],
            "baseline_value": token["baseline_value"],
            "versions": [{"version": row["version"], "run_id": row["run_id"],
                          "benchmark_value": row["benchmark_value"],
                          "created_at": when(row["created_at"]),
                          **states.get(row["version"], {"stage": "None", "aliases": []})}
                         for row in shown],
            "next_page_token": _next_token(rows, page.max_results)}


def _hokusai_engine():
    """Hokusai's own database (verified values live there)."""
    return hokusai().engine


def credited(engine, rows: list[dict]) -> list[dict]:
    """Index rows with ``value_verified`` (the registry measured the value, or an
    evaluator key set it), ``address_verified`` (whoever set the contributor
    proved the address, or was admin) and ``verified``: both hold, for the value
    the improvement is measured from too, so the improvement counts in totals.
    A version naming no contributor needs only its values verified."""
    rows = verified.annotate(engine, rows)
    proven = address_verified(rows)
    for row in rows:
        row["address_verified"] = (row["model_name"], row["version"]) in proven
        row["verified"] = row["verified"] and (row["contributor"] is None
                                               or row["address_verified"])
    return rows


def model_lineage(name: str, page: schemas.Page) -> dict:
    after = _after(page)

    def query(session):
        if reader.model(session, name) is None:
            return None
        rows = reader.versions(session, name, after=after, limit=page.max_results + 1)
        return (rows, *reader.version_summary(session, name), reader.versions(session, name))

    found = read(query)
    if found is None:
        raise NotFound(f"Model not found: {name}")
    rows, total, latest, every = found
    engine = _hokusai_engine()
    cumulative = verified.verified_total(credited(engine, every))
    return {"model_id": name, "total_versions": total, "latest_version": latest,
            "cumulative_improvement": cumulative,
            "cumulative_delta_one": deltaone.points(cumulative),
            "lineage": [{"version": row["version"], "created_at": when(row["created_at"]),
                         "metrics": {row["benchmark_metric"] or "benchmark":
                                     row["benchmark_value"]}
                         if row["benchmark_value"] is not None else {},
                         "contributor": row["contributor"], "improvement": row["improvement"],
                         "delta_one": deltaone.points(row["improvement"]),
                         "address_verified": row["address_verified"],
                         "value_verified": row["value_verified"], "verified": row["verified"]}
                        for row in credited(engine, rows[:page.max_results])],
            "next_page_token": _next_token(rows, page.max_results)}


def version_lineage(name: str, number: int) -> dict:
    found = read(lambda session: (reader.version(session, name, number),
                                  reader.ancestors(session, name, number)))
    row, parents = found
    if row is None:
        raise NotFound(f"Model not found: {name}:{number}")
    run = read(lambda session: reader.run_lineage(session, row["run_id"]), registry=False)
    if run and visibility.hidden("experiment", run["experiment_id"]):
        run = None  # the source run is in an experiment the caller may not read
    return {"model": f"{name}:{number}",
            "parents": [{"version": p["version"], "run_id": p["run_id"],
                         "created_at": when(p["created_at"])} for p in parents],
            "training_data": run["datasets"] if run else [],
            "experiments": [{"experiment_id": run["experiment_id"],
                             "name": run["experiment_name"], "run_id": run["run_id"]}]
            if run else []}


def contributor_impact(address: str) -> dict:
    try:
        normalized = normalize_address(address)
    except InvalidAddress as error:
        raise BadRequest(str(error)) from None
    rows = credited(_hokusai_engine(), [
        row for row in read(lambda session: reader.contributions(session, normalized))
        if not visibility.hidden("registered_model", row["model_name"])])
    improved = {row["model_name"] for row in rows if row["verified"] and row["improvement"] > 0}
    times = [at for row in rows if (at := when(row["contributed_at"])) is not None]
    score = verified.verified_total(rows)
    return {"address": normalized, "total_models_improved": len(improved),
            "total_improvement_score": score, "total_delta_one": deltaone.points(score),
            "contributions": [{"model_id": row["model_name"], "version": row["version"],
                               "improvement_score": row["improvement"],
                               "delta_one": deltaone.points(row["improvement"]),
                               "address_verified": row["address_verified"],
                               "value_verified": row["value_verified"],
                               "verified": row["verified"],
                               "contributed_at": when(row["contributed_at"])} for row in rows],
            "first_contribution": min(times, default=None),
            "last_contribution": max(times, default=None)}
