"""The API reference's verbs for four MLflow routes (``GET runs/search``,
``POST registered-models/update``, ``POST registered-models/delete``, ``POST
model-versions/update``), served by MLflow's own views beside MLflow's verbs,
at every path MLflow serves them (``/api/2.0/...``, ``/ajax-api/2.0/...``, and
so under ``/api/mlflow`` and ``/mlflow`` too).

The route table names an alias by MLflow's request class
(routes.VERB_ALIASES), so the gate, the per-resource check, the limits and the
audit trail judge it exactly as the MLflow verb. MLflow's views read a GET's
query string and any other method's JSON body, so the views need no change.
"""

from __future__ import annotations

import flask

from mlflow_hokusai.routes import VERB_ALIASES


def init_app(flask_app: flask.Flask) -> None:
    from mlflow.server import handlers

    endpoints: dict[tuple[str, str], str] = {}  # (path, method) -> MLflow's rule's endpoint
    for rule in flask_app.url_map.iter_rules():
        for method in rule.methods or ():
            endpoints.setdefault((rule.rule, method), rule.endpoint)
    for path, handler, _methods in handlers.get_endpoints(lambda cls: cls):
        verbs = VERB_ALIASES.get(getattr(handler, "__name__", ""))
        if verbs is None or (path, verbs[0]) not in endpoints:
            continue
        mlflow_method, alias = verbs
        endpoint = endpoints[(path, mlflow_method)]
        flask_app.add_url_rule(path, endpoint=f"hokusai_alias_{alias.lower()}_{endpoint}",
                               view_func=flask_app.view_functions[endpoint], methods=[alias])
