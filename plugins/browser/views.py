"""The Hokusai view: tokenized models, their benchmark history and contributors,
and (for admins) the API keys. Pages read through the same service functions
as the REST routes; every change is made by the page's script calling the REST
routes themselves (``/api/keys``), so scopes, permissions, validation and the
audit trail are the ones every other client gets."""

from __future__ import annotations

import urllib.parse
from collections import defaultdict

import flask

from mlflow_hokusai.errors import NotFound
from mlflow_hokusai.pipeline import current_principal
from mlflow_hokusai.plugins.auth import scopes
from mlflow_hokusai.plugins.browser.chart import benchmark_chart
from mlflow_hokusai.plugins.browser.pages import page
from mlflow_hokusai.plugins.serving.resolve import DEFAULT_ALIAS
from mlflow_hokusai.plugins.serving.store import READY
from mlflow_hokusai.plugins.store import reader
from mlflow_hokusai.plugins.store.access import read
from mlflow_hokusai.plugins.tokens import schemas, service

VIEW_PREFIX = "/hokusai"
KEYS_PAGE = VIEW_PREFIX + "/keys"
MAX_LISTED = 1000  # the REST routes' largest page

blueprint = flask.Blueprint("hokusai_view", __name__, template_folder="templates",
                            url_prefix=VIEW_PREFIX)


def _render(template: str, status: int = 200, **values) -> flask.Response:
    principal = current_principal()
    return page(template, status, principal=principal,
                is_admin=principal is not None and scopes.grants(principal.scopes, scopes.ADMIN),
                **values)


@blueprint.get("/")
def index():
    tokens = read(lambda session: reader.tokens(session, limit=MAX_LISTED))
    return _render("index.html", tokens=tokens)


def ranked_contributors(lineage: list[dict]) -> list[dict]:
    """Contributors of one model by their summed verified improvement, best first."""
    totals: dict[str, dict] = defaultdict(lambda: {"improvement": 0.0, "versions": []})
    for row in lineage:
        if row["contributor"]:
            entry = totals[row["contributor"]]
            entry["improvement"] += row["improvement"] if row.get("verified") else 0.0
            entry["versions"].append(row["version"])
    return sorted(({"address": address, **entry} for address, entry in totals.items()),
                  key=lambda entry: (-entry["improvement"], entry["address"]))


def drift_link(name: str, deployments: list) -> str:
    """The drift report of what serves the model: the route's default (the
    production alias) names no deployment of a model deployed by version, so
    the link names one, ready first, the production alias's first among them."""
    link = f"/api/v1/monitoring/{urllib.parse.quote(name, safe='')}/drift?format=html"
    if not deployments:
        return link  # the route's 404 says how to deploy it
    chosen = min(deployments, key=lambda d: (d.status != READY, d.alias != DEFAULT_ALIAS))
    return f"{link}&version={urllib.parse.quote(chosen.target, safe='')}"


@blueprint.get("/models/<path:name>")
def model(name: str):
    page = schemas.Page(max_results=MAX_LISTED)
    lineage = service.model_lineage(name, page)  # 404 for an unknown model
    token = read(lambda session: reader.token_of_model(session, name))
    versions = service.by_token(token["token_id"], page)["versions"] if token else []
    metric = next((next(iter(row["metrics"])) for row in lineage["lineage"] if row["metrics"]),
                  "benchmark")
    points = [(row["version"], next(iter(row["metrics"].values()), None), row["improvement"])
              for row in lineage["lineage"]]
    serving = flask.current_app.extensions["hokusai"].serving  # None: serving plugin off
    deployments = serving.store.list(name) if serving is not None else []
    return _render("model.html", name=name, token=token, lineage=lineage, versions=versions,
                   drift=drift_link(name, deployments),
                   metric=metric, chart=benchmark_chart(points, metric),
                   contributors=ranked_contributors(lineage["lineage"]))


@blueprint.get("/keys")
def keys():
    """Admins only (the permission table says so for the path)."""
    store = flask.current_app.extensions["hokusai"].keystore
    return _render("keys.html", keys=[key.to_dict() for key in store.list()])


@blueprint.errorhandler(NotFound)
def not_found(error: NotFound):
    return _render("not_found.html", 404, detail=error.detail)
