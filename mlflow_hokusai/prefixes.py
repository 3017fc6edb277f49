"""MLflow under ``/api/mlflow`` and ``/mlflow``: the prefix is removed from the
request itself, outermost, before any pipeline step or router sees it.

Rewriting the request (not only the path the gate judges) is what keeps the
two in step: the gate, the rate limits, the metrics, MLflow's own middlewares
(which read ``scope["path"]``) and both routers all see one path, the canonical
unprefixed one, so ``/api/mlflow//api/keys`` is judged and routed as
``/api/keys``. The prefix goes once: ``/mlflow/mlflow/...`` keeps one and is a
404. MLflow serves nothing under either prefix (only Hokusai's
``/mlflow/health/mlflow``, which is its ``/health/mlflow`` anyway), and a prefix
ends at a segment boundary (``/mlflowx`` is not stripped).
"""

from __future__ import annotations

from mlflow_hokusai.pipeline import route_path

PREFIXES = ("/api/mlflow", "/mlflow")


def strip(path: str) -> str:
    """The canonical route path without one leading prefix."""
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
