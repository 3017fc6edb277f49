"""The pipeline as a WSGI middleware around Flask's ``wsgi_app``: under gunicorn
only Flask routes exist, and this sees every one of them before routing."""

from __future__ import annotations

import time
from http import HTTPStatus

from werkzeug.wsgi import ClosingIterator

from mlflow_hokusai import signals
from mlflow_hokusai.errors import HokusaiError, render
from mlflow_hokusai.pipeline import (Pipeline, RequestContext, RequestInfo, current_context,
                                     without_query_key)


class WsgiAdapter:
    def __init__(self, app, pipeline: Pipeline):
        self.app = app
        self.pipeline = pipeline

    def __call__(self, environ, start_response):
        context = RequestContext(RequestInfo.from_wsgi(environ))
        if "api_key" in context.request.query_string:
            environ["QUERY_STRING"] = without_query_key(context.request.query_string)
        started = time.perf_counter()
        status = [500]

        def finished():
            signals.request_finished.send(self, context=context, status=status[0],
                                          seconds=time.perf_counter() - started)

        try:
            self.pipeline.run(context)
        except HokusaiError as error:
            status[0], headers, body = render(error)
            start_response(f"{status[0]} {HTTPStatus(status[0]).phrase}",
                           headers + context.response_headers)
            finished()
            return [body]

        def start_with_headers(status_line, headers, exc_info=None):
            status[0] = int(status_line.split(" ", 1)[0])
            return start_response(status_line, headers + context.response_headers, exc_info)

        token = current_context.set(context)
        try:
            body = self.app(environ, start_with_headers)
        finally:
            current_context.reset(token)
        # Measured until the body is sent, which matters for streamed artifacts.
        return ClosingIterator(body, [finished])
