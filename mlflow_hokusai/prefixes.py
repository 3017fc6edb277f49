"""MLflow under ``/api/mlflow`` and ``/mlflow``: the prefix is removed from the
request itself, outermost, before any pipeline step or router sees it.

Rewriting the request (not only the path the gate judges) is what keeps the
two in step: the gate, the rate limits, the metrics, MLflow's own middlewares
(which read ``scope["path"]``) and both routers all see one path, the canonical
unprefixed one, so ``/api/mlflow//api/keys`` is judged and routed as
``/api/keys``. The prefix goes once: ``/mlflow/mlflow/...`` keeps one and is a
404, and a prefix ends at a segment boundary (``/mlflowx`` is not stripped).

Routes the app itself serves under a prefix (the health plugin's
``/mlflow/health/mlflow/detailed``) are left alone: ``init_app``, run after
every other plugin, collects them from the URL map. MLflow serves none.
"""

from __future__ import annotations

import logging

from mlflow_hokusai.pipeline import route_path

PREFIXES = ("/api/mlflow", "/mlflow")
_logger = logging.getLogger(__name__)
# Exact paths served as they are, never stripped (filled by init_app).
_served_under_prefix: set[str] = set()


def _under_prefix(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in PREFIXES)


def init_app(flask_app, hokusai) -> None:
    for rule in flask_app.url_map.iter_rules():
        if _under_prefix(rule.rule):
            if rule.arguments:  # could not be matched exactly: its paths get stripped
                _logger.warning("Route %s is under an MLflow prefix and will not be reached",
                                rule.rule)
            else:
                _served_under_prefix.add(rule.rule)


def strip(path: str) -> str:
    """The canonical route path without one leading prefix."""
    if path in _served_under_prefix:
        return path
    for prefix in PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            return route_path(path[len(prefix):])
    return path


def unprefix_asgi(scope) -> None:
    root = scope.get("root_path", "").rstrip("/")
    path = scope["path"]
    has_root = bool(root) and (path == root or path.startswith(root + "/"))
    canonical = route_path(path[len(root):] if has_root else path)
    stripped = strip(canonical)
    if stripped != canonical:
        scope["path"] = (root if has_root else "") + stripped
        # raw_path would still carry the prefix; nothing should route on it.
        scope.pop("raw_path", None)


def unprefix_wsgi(environ) -> None:
    # PEP 3333: PATH_INFO is latin-1-decoded bytes (see RequestInfo.from_wsgi).
    path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
    canonical = route_path(path)
    stripped = strip(canonical)
    if stripped != canonical:
        environ["PATH_INFO"] = stripped.encode("utf-8").decode("latin-1")
