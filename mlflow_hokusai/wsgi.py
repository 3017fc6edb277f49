"""The pipeline as a WSGI middleware around Flask's ``wsgi_app``: under gunicorn
only Flask routes exist, and this sees every one of them before routing."""

from __future__ import annotations

from http import HTTPStatus

from mlflow_hokusai.errors import HokusaiError, render
from mlflow_hokusai.prefixes import unprefix_wsgi
from mlflow_hokusai.pipeline import (Answered, Pipeline, RequestContext, RequestInfo,
                                     current_context, run_all, without_query_key)


class WsgiAdapter:
    def __init__(self, app, pipeline: Pipeline):
        self.app = app
        self.pipeline = pipeline

    def __call__(self, environ, start_response):
        unprefix_wsgi(environ)
        context = RequestContext(RequestInfo.from_wsgi(environ))
        if "api_key" in context.request.query_string:
            environ["QUERY_STRING"] = without_query_key(context.request.query_string)
        answered = Answered(self, context, self.pipeline)
        try:
            self.pipeline.run(context)
        except HokusaiError as error:
            status, headers, body = render(error)
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
