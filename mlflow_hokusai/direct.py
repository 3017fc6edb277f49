"""Hot JSON operations (predictions) served from the ASGI adapter straight to
Flask, in one hop to a thread.

Under uvicorn everything else reaches Flask through MLflow's FastAPI app: its
router, two ``BaseHTTPMiddleware`` layers and a WSGI bridge that hands every
message between the event loop and a thread. For a single-record prediction
that cost the server about as much CPU as the prediction itself
(benchmarks/bench_serving.py). Flask still serves these operations as it does
under gunicorn (every before/after-request hook and error handler, MLflow's
own workspace handling), and MLflow's ASGI security middlewares (host check,
CORS, security headers) stay around them, configured as MLflow configures
them; Starlette's error layer does not, so a failure of the bridge itself is
answered here with the plain 500 the adapter renders. Operations opt in with
``RestBlueprint.operation(..., direct=True)``; their answers are buffered
(JSON, never a stream).
"""

from __future__ import annotations

import logging
import warnings

import anyio

from mlflow_hokusai import mlflow_compat
from mlflow_hokusai.asgi import encode_headers

with warnings.catch_warnings():
    # The module is deprecated as a middleware, but MLflow's own WSGI bridge
    # builds its environ with it: the same environ, built the same way.
    warnings.simplefilter("ignore")
    from starlette.middleware.wsgi import build_environ

_logger = logging.getLogger(__name__)


class DirectRoutes:
    def __init__(self, flask_app, endpoints: frozenset[str]):
        self.flask_app = flask_app
        self.endpoints = endpoints  # Flask endpoints, as the route table's keys
        self.app = mlflow_compat.with_mlflow_security(self._serve)

    def handles(self, route) -> bool:
        return route is not None and route.key in self.endpoints

    async def _serve(self, scope, receive, send):
        chunks, more = [], True
        while more:  # the adapter already held the body to its limit
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        try:
            # anyio's threads, as MLflow's bridge uses: a slow model never holds
            # the pipeline's own pool (asgi.py), which every request needs.
            status, headers, body = await anyio.to_thread.run_sync(
                self._call_flask, scope, b"".join(chunks))
        except Exception:  # Flask answers its own errors: this is the bridge failing
            _logger.exception("Direct route %s failed", scope.get("path"))
            # Starlette's plain 500, which the adapter renders as the one error body.
            status, headers, body = 500, [(b"content-type", b"text/plain")], b""
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _call_flask(self, scope, body: bytes) -> tuple[int, list, bytes]:
        started: list = []

        def start_response(status, headers, exc_info=None):
            started[:] = [int(status.split(" ", 1)[0]), encode_headers(headers)]

        answer = self.flask_app(build_environ(scope, body), start_response)
        try:
            content = b"".join(answer)
        finally:
            if hasattr(answer, "close"):
                answer.close()
        return started[0], started[1], content
