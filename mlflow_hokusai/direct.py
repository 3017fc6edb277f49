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
them. Operations opt in with ``RestBlueprint.operation(..., direct=True)``;
their answers are buffered (JSON, never a stream).
"""

from __future__ import annotations

import warnings

from mlflow_hokusai import mlflow_compat
from mlflow_hokusai.asgi import in_thread

with warnings.catch_warnings():
    # The module is deprecated as a middleware, but MLflow's own WSGI bridge
    # builds its environ with it: the same environ, built the same way.
    warnings.simplefilter("ignore")
    from starlette.middleware.wsgi import build_environ


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
        status, headers, body = await in_thread(self._call_flask, scope, b"".join(chunks))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _call_flask(self, scope, body: bytes) -> tuple[int, list, bytes]:
        started: list = []

        def start_response(status, headers, exc_info=None):
            started[:] = [int(status.split(" ", 1)[0]),
                          [(k.lower().encode("latin-1"), v.encode("latin-1"))
                           for k, v in headers]]

        answer = self.flask_app(build_environ(scope, body), start_response)
        try:
            content = b"".join(answer)
        finally:
            if hasattr(answer, "close"):
                answer.close()
        return started[0], started[1], content
