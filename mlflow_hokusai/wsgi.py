"""The pipeline as a WSGI middleware around Flask's ``wsgi_app``: under gunicorn
only Flask routes exist, and this sees every one of them before routing."""

from __future__ import annotations

import io
from http import HTTPStatus

from mlflow_hokusai.bodies import BodyLimit
from mlflow_hokusai.errors import HokusaiError, render
from mlflow_hokusai.pipeline import (
    Answered,
    Pipeline,
    RequestContext,
    RequestInfo,
    current_context,
    run_all,
    strip_query_key,
)
from mlflow_hokusai.prefixes import unprefix_wsgi


def _strip_query_key(environ, query_string: str) -> None:
    """Out of the query string MLflow reads, and out of the request line
    gunicorn's access log prints (``RAW_URI``), which is this same dict."""
    stripped = strip_query_key(query_string)
    if stripped is None:
        return
    environ["QUERY_STRING"] = stripped
    for name in ("RAW_URI", "REQUEST_URI"):
        if name in environ:
            path = environ[name].split("?", 1)[0]
            environ[name] = f"{path}?{stripped}" if stripped else path


class WsgiAdapter:
    def __init__(self, app, pipeline: Pipeline, body_limit: BodyLimit):
        self.app = app
        self.pipeline = pipeline
        self.body_limit = body_limit

    def _limit_body(self, request: RequestInfo, environ) -> None:
        limit = self.body_limit
        if not limit.applies(request):
            return
        if limit.declared_too_large(request):
            raise limit.error()
        if limit.streams_undeclared(request):
            body = environ["wsgi.input"].read(limit.max_bytes + 1)
            if len(body) > limit.max_bytes:
                raise limit.error()
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)

    def __call__(self, environ, start_response):
        unprefix_wsgi(environ)
        context = RequestContext(RequestInfo.from_wsgi(environ))
        _strip_query_key(environ, context.request.query_string)
        answered = Answered(context, self.pipeline)
        try:
            self.pipeline.run(context)
            self._limit_body(context.request, environ)
        except HokusaiError as error:
            status, headers, body = render(error, context.request_id)
            run_all(answered(status))
            start_response(f"{status} {HTTPStatus(status).phrase}",
                           headers + context.response_headers)
            return [body]

        def start_with_headers(status_line, headers, exc_info=None):
            run_all(answered(int(status_line.split(" ", 1)[0])))
            return start_response(status_line, headers + context.response_headers, exc_info)

        token = current_context.set(context)
        try:
            return self.app(environ, start_with_headers)
        except BaseException:
            run_all(answered(500))
            raise
        finally:
            current_context.reset(token)
